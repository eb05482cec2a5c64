package guard

test_incident_freeze_blocks_an_agent_pr if {
	d := decision with input as with_freezes(agent_input, [incident])
	d.outcome == "block"
	r := only_reason(d, "incident_freeze")
	r.freeze == "incident"
	not r.until
	contains(r.message, `Incident freeze "incident" declared by @dave (reason: payments down) is active for main until it is ended by hand.`)
	contains(r.message, "/guard override <reason>")
}

test_incident_freeze_with_end_names_it if {
	f := object.union(incident, {"until": "2026-03-03T20:00:00Z"})
	d := decision with input as with_freezes(agent_input, [f])
	r := only_reason(d, "incident_freeze")
	r.until == "2026-03-03T20:00:00Z"
	contains(r.message, "until Tue 2026-03-03 15:00 EST")
}

test_incident_freeze_allows_a_human_pr if {
	d := decision with input as with_freezes(human_input, [incident])
	d == {"outcome": "allow", "reasons": []}
}

test_incident_freeze_for_everyone_blocks_a_human_pr if {
	f := object.union(incident, {"applies_to": "everyone"})
	d := decision with input as with_freezes(human_input, [f])
	d.outcome == "block"
	rules_of(d) == {"incident_freeze"}
}

test_incident_without_reason_or_declarer_still_blocks if {
	f := {"name": "incident", "kind": "incident", "applies_to": "agents"}
	d := decision with input as with_freezes(agent_input, [f])
	r := only_reason(d, "incident_freeze")
	contains(r.message, "declared by an unknown actor (no reason given)")
}

test_both_freeze_kinds_block_with_one_reason_each if {
	d := decision with input as with_freezes(agent_input, [weekly_freeze, incident])
	d.outcome == "block"
	[r.rule | some r in d.reasons] == ["incident_freeze", "merge_freeze", "agent_self_merge"]
}

test_override_of_the_incident_keeps_the_weekly_freeze if {
	inp := with_changes(with_freezes(agent_input, [weekly_freeze, incident]), {
		"reviews": [approved_by(alice)],
		"overrides": [freeze_override(head, "main", ["incident"])],
	})
	d := decision with input as inp
	d.outcome == "block"
	[r.rule | some r in d.reasons] == ["merge_freeze", "agent_self_merge", "override"]
}
