package guard

test_weekly_freeze_blocks_an_agent_pr if {
	d := decision with input as with_freezes(agent_input, [weekly_freeze])
	d.outcome == "block"
	r := only_reason(d, "merge_freeze")
	r.outcome == "block"
	r.freeze == "friday-deploys"
	r.until == "2026-03-09T08:00:00-04:00"
	contains(r.message, `Merge freeze "friday-deploys" (weekly) is active for main until Mon 2026-03-09 08:00 EDT`)
	contains(r.message, "/guard override <reason>")
	d.reasons[0] == r
}

test_window_freeze_blocks_an_agent_pr if {
	d := decision with input as with_freezes(agent_input, [window_freeze])
	r := only_reason(d, "merge_freeze")
	r.freeze == "year-end"
	contains(r.message, "(scheduled window)")
	contains(r.message, "until Mon 2027-01-04 09:00 EST")
}

test_agents_freeze_allows_a_human_pr if {
	d := decision with input as with_freezes(human_input, [weekly_freeze])
	d == {"outcome": "allow", "reasons": []}
}

test_everyone_freeze_blocks_a_human_pr if {
	d := decision with input as with_freezes(human_input, [window_freeze])
	d.outcome == "block"
	rules_of(d) == {"merge_freeze"}
}

test_unreadable_until_is_shown_as_is if {
	f := object.union(weekly_freeze, {"until": "next monday"})
	d := decision with input as with_freezes(agent_input, [f])
	r := only_reason(d, "merge_freeze")
	contains(r.message, "until next monday")
}

test_freeze_without_name_still_blocks if {
	f := json.remove(weekly_freeze, ["name"])
	d := decision with input as with_freezes(human_input, [object.union(f, {"applies_to": "everyone"})])
	d.outcome == "block"
}

test_override_clears_the_named_freeze if {
	inp := with_changes(with_freezes(agent_input, [weekly_freeze]), {
		"reviews": [approved_by(alice)],
		"overrides": [freeze_override(head, "main", ["friday-deploys"])],
	})
	d := decision with input as inp
	d.outcome == "allow"
	note := only_reason(d, "override")
	contains(note.message, `merge_freeze (freeze "friday-deploys") was cleared for head commit 1111111 by /guard override by @carol (hotfix)`)
}

test_override_of_one_freeze_keeps_another if {
	inp := with_changes(with_freezes(agent_input, [weekly_freeze, window_freeze]), {
		"reviews": [approved_by(alice)],
		"overrides": [freeze_override(head, "main", ["friday-deploys"])],
	})
	d := decision with input as inp
	d.outcome == "block"
	r := only_reason(d, "merge_freeze")
	r.freeze == "year-end"
	"override" in rules_of(d)
}

test_override_for_older_commit_does_not_clear if {
	inp := with_changes(with_freezes(agent_input, [weekly_freeze]), {
		"reviews": [approved_by(alice)],
		"overrides": [freeze_override(older, "main", ["friday-deploys"])],
	})
	d := decision with input as inp
	d.outcome == "block"
}

test_override_for_another_base_branch_does_not_clear if {
	inp := with_changes(with_freezes(agent_input, [weekly_freeze]), {
		"reviews": [approved_by(alice)],
		"overrides": [freeze_override(head, "release/1.0", ["friday-deploys"])],
	})
	d := decision with input as inp
	d.outcome == "block"
}

test_approve_does_not_clear_a_freeze if {
	inp := with_changes(with_freezes(agent_input, [weekly_freeze]), {"overrides": [approve_override(head)]})
	d := decision with input as inp
	d.outcome == "block"
	rules_of(d) == {"merge_freeze", "override"}
}
