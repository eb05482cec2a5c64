package guard

test_agent_pr_without_review_escalates if {
	d := decision with input as agent_input
	d.outcome == "escalate"
	r := only_reason(d, "agent_self_merge")
	r.outcome == "escalate"
	contains(r.message, "no approving review")
	contains(r.message, "author @coder[bot] is an agent")
	contains(r.message, "/guard approve")
}

test_human_pr_without_review_is_allowed if {
	d := decision with input as human_input
	d == {"outcome": "allow", "reasons": []}
}

test_human_approval_on_head_allows if {
	d := decision with input as with_changes(agent_input, {"reviews": [approved_by(alice)]})
	d == {"outcome": "allow", "reasons": [{"rule": "agent_self_merge", "outcome": "allow", "message": "Approved by @alice"}]}
}

test_several_human_approvals_name_the_first_by_login if {
	d := decision with input as with_changes(agent_input, {"reviews": [approved_by(carol), approved_by(bob)]})
	d.reasons == [{"rule": "agent_self_merge", "outcome": "allow", "message": "Approved by @bob"}]
}

test_human_approval_of_a_human_pr_gives_no_reason if {
	d := decision with input as with_changes(human_input, {"reviews": [approved_by(bob)]})
	d == {"outcome": "allow", "reasons": []}
}

test_approval_for_older_commit_escalates if {
	stale := review(alice, "APPROVED", older, "2026-03-03T15:00:00Z")
	d := decision with input as with_changes(agent_input, {"reviews": [stale]})
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "approval by @alice was for an older commit 0000000")
}

test_approval_by_the_author_does_not_count if {
	# alice's PR that an agent pushed to: it is an agent PR, and alice's own
	# approval does not count.
	inp := with_changes(human_input, {"agent_pr": true, "agent_reasons": ["agent @coder[bot] pushed"], "reviews": [approved_by(alice)]})
	d := decision with input as inp
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "approvals only from bots/the author/committers: @alice (committer, the author)")
}

test_approval_by_a_bot_does_not_count if {
	reviewer := {"login": "review-bot[bot]", "type": "Bot", "agent": false}
	d := decision with input as with_changes(agent_input, {"reviews": [approved_by(reviewer)]})
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "@review-bot[bot] (bot)")
}

test_approval_by_an_agent_user_does_not_count if {
	d := decision with input as with_changes(agent_input, {"reviews": [approved_by(agent_user)]})
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "@ci-agent (agent)")
}

test_approval_by_a_committer_does_not_count if {
	inp := with_changes(agent_input, {
		"commits": [commit_by(bot, web_flow), commit_by(bot, bob)],
		"reviews": [approved_by(bob)],
	})
	d := decision with input as inp
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "@bob (committer)")
}

test_approval_by_a_commit_author_does_not_count if {
	inp := with_changes(agent_input, {
		"commits": [commit_by(bot, web_flow), commit_by(bob, web_flow)],
		"reviews": [approved_by({"login": "Bob", "type": "User", "agent": false})],
	})
	d := decision with input as inp
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "@Bob (committer)")
}

test_approval_by_a_non_approver_does_not_count if {
	not_approver := object.union(approved_by(alice), {"approver": false})
	d := decision with input as with_changes(agent_input, {"reviews": [not_approver]})
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "@alice (not an approver)")
}

test_review_missing_fields_does_not_count if {
	incomplete := {"user": {"login": "alice", "type": "User"}, "state": "APPROVED", "commit_id": head}
	d := decision with input as with_changes(agent_input, {"reviews": [incomplete]})
	d.outcome == "escalate"
}

test_changes_requested_after_approval_escalates if {
	inp := with_changes(agent_input, {"reviews": [
		review(alice, "APPROVED", head, "2026-03-03T15:00:00Z"),
		review(alice, "CHANGES_REQUESTED", head, "2026-03-03T16:00:00Z"),
	]})
	d := decision with input as inp
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "@alice requested changes")
}

test_approval_after_changes_requested_allows if {
	inp := with_changes(agent_input, {"reviews": [
		review(alice, "CHANGES_REQUESTED", head, "2026-03-03T15:00:00Z"),
		review(alice, "APPROVED", head, "2026-03-03T16:00:00Z"),
	]})
	d := decision with input as inp
	d.outcome == "allow"
}

test_comment_after_approval_keeps_approval if {
	inp := with_changes(agent_input, {"reviews": [
		review(alice, "APPROVED", head, "2026-03-03T15:00:00Z"),
		review(alice, "COMMENTED", head, "2026-03-03T16:00:00Z"),
	]})
	d := decision with input as inp
	d.outcome == "allow"
}

test_dismissed_approval_escalates if {
	inp := with_changes(agent_input, {"reviews": [
		review(alice, "APPROVED", head, "2026-03-03T15:00:00Z"),
		review(alice, "DISMISSED", head, "2026-03-03T16:00:00Z"),
	]})
	d := decision with input as inp
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "the review by @alice was dismissed")
}

test_one_human_among_discounted_approvals_allows if {
	inp := with_changes(agent_input, {"reviews": [approved_by(agent_user), approved_by(bob)]})
	d := decision with input as inp
	d.outcome == "allow"
}

test_auto_merge_enabled_by_agent_is_named if {
	inp := with_changes(agent_input, {"pull_request": {"auto_merge": {"enabled_by": bot, "merge_method": "squash"}}})
	d := decision with input as inp
	r := only_reason(d, "agent_self_merge")
	contains(r.message, "auto-merge was enabled by agent @coder[bot]")
}

test_approve_override_for_head_clears if {
	d := decision with input as with_changes(agent_input, {"overrides": [approve_override(head)]})
	d.outcome == "allow"
	not "agent_self_merge" in rules_of(d)
	note := only_reason(d, "override")
	note.outcome == "allow"
	contains(note.message, "agent_self_merge was cleared for head commit 1111111 by /guard approve by @carol (looked at it)")
}

test_approve_override_for_older_commit_does_not_clear if {
	d := decision with input as with_changes(agent_input, {"overrides": [approve_override(older)]})
	d.outcome == "escalate"
	not "override" in rules_of(d)
}

test_freeze_override_does_not_clear_escalation if {
	d := decision with input as with_changes(agent_input, {"overrides": [freeze_override(head, "main", [])]})
	d.outcome == "escalate"
}
