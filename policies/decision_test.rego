package guard

test_no_findings_allow_with_no_reasons if {
	d := decision with input as human_input
	d == {"outcome": "allow", "reasons": []}
}

test_block_outranks_escalate if {
	inp := with_marker(with_freezes(off_hours_input, [weekly_freeze]), "a_test.go", "go:t.Skip", "t.Skip()")
	d := decision with input as inp
	d.outcome == "block"
	[r.outcome | some r in d.reasons] == ["block", "escalate", "escalate"]
	[r.rule | some r in d.reasons] == ["merge_freeze", "agent_self_merge", "test_quarantine_off_hours"]
}

test_cleared_escalations_leave_allow_with_notes if {
	inp := with_changes(with_marker(off_hours_input, "a_test.go", "go:t.Skip", "t.Skip()"), {"overrides": [approve_override(head)]})
	d := decision with input as inp
	d.outcome == "allow"
	[r.rule | some r in d.reasons] == ["override", "override"]
	every r in d.reasons {
		r.outcome == "allow"
	}
}

test_reasons_are_ordered_by_freeze_within_a_rule if {
	second := object.union(weekly_freeze, {"name": "another"})
	d := decision with input as with_freezes(human_input, [object.union(window_freeze, {"name": "zeta"}), object.union(second, {"applies_to": "everyone"})])
	[r.freeze | some r in d.reasons] == ["another", "zeta"]
}

test_null_arrays_are_tolerated if {
	inp := with_changes(agent_input, {"reviews": null, "commits": null, "files": null, "overrides": null, "agent_reasons": null, "quarantine_files": null, "time": {"freezes": null}, "pull_request": {"labels": null}})
	d := decision with input as inp
	d.outcome == "escalate"
	rules_of(d) == {"agent_self_merge"}
}
