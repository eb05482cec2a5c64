# agent_self_merge (escalate): an agent's pull request may not be merged
# without an approval from a human on its current head commit.
#
# A human approval is a reviewer's latest state-changing review
# (APPROVED, CHANGES_REQUESTED or DISMISSED, as GitHub counts them) that is
# APPROVED, on pull_request.head_sha, by an account of type "User" that is
# not an agent, not the PR's author, neither author nor committer of any of
# the PR's commits, and an approver (review.approver).
#
# Cleared by an `approve` override for the head SHA (see overrides.rego).
# When a human approval exists, the rule gives an allow reason
# "Approved by @login" instead.
package guard

# Review states that change a reviewer's verdict; COMMENTED and PENDING do not.
verdict_states := {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}

# latest_verdict[login] is the reviewer's last verdict review: the latest by
# submitted_at, then id, then position in input.reviews. verdicts are sorted
# [login, submitted, id, position] tuples, so a reviewer's last verdict is the
# one followed by another reviewer's (or by none).
verdicts := sort([[lower(r.user.login), submitted_ns(r), r.id, i] |
	some i, r in input.reviews
	r.state in verdict_states
])

latest_verdict := {v[0]: input.reviews[v[3]] |
	some k, v in verdicts
	not verdicts[k + 1][0] == v[0]
}

submitted_ns(r) := ns if {
	ns := time.parse_rfc3339_ns(r.submitted_at)
} else := 0

# Lowercased logins of everyone who authored or committed a commit of the PR.
committers := {lower(login) |
	some c in input.commits
	some p in [c.author, c.committer]
	login := p.account.login
	login != ""
}

# why_not_human(r) is a set of words explaining why an approval does not
# count as a human's; empty when it does. A missing field counts against the
# review, so that an incomplete input never yields an approval.
why_not_human(r) := {why |
	login := lower(object.get(r, ["user", "login"], ""))
	some why, failed in {
		"bot": object.get(r, ["user", "type"], "") != "User",
		"agent": object.get(r, ["user", "agent"], true) != false,
		"the author": login == lower(object.get(input, ["pull_request", "author", "login"], "")),
		"committer": login in committers,
		"not an approver": object.get(r, "approver", false) != true,
	}
	failed
}

# human_approvers are the logins of the reviewers whose approval counts.
human_approvers := {r.user.login |
	some r in latest_verdict
	r.state == "APPROVED"
	r.commit_id == head_sha
	count(why_not_human(r)) == 0
}

findings contains {
	"rule": "agent_self_merge",
	"outcome": "escalate",
	"message": self_merge_message,
} if {
	input.agent_pr == true
	count(human_approvers) == 0
}

# With a human approval, an allow-level reason names the approver (the first
# by login when there are several); the check run's title shows it.
findings contains {
	"rule": "agent_self_merge",
	"outcome": "allow",
	"message": sprintf("Approved by @%s", [sort(human_approvers)[0]]),
} if {
	input.agent_pr == true
	count(human_approvers) > 0
}

self_merge_message := msg if {
	msg := sprintf(
		"%s needs an approval from a human on head commit %s: %s. A human reviewer (an approver; not the author, an agent, a bot or a committer of this PR) must approve the current head, or an approver comments `/guard approve <reason>`.",
		[agent_pr_phrase, short_sha(head_sha), concat("; ", self_merge_details)],
	)
} else := "Agent PR needs an approval from a human on its head commit: an approver who is not the author, an agent, a bot or a committer of this PR must approve it, or comment `/guard approve <reason>`."

agent_pr_phrase := sprintf("Agent PR (%s)", [concat(", ", input.agent_reasons)]) if {
	count(input.agent_reasons) > 0
} else := "Agent PR"


self_merge_details := details if {
	found := {d | some d in self_merge_facts}
	count(found) > 0
	details := sort(found)
} else := ["no approving review"]

self_merge_facts contains sprintf("auto-merge was enabled by agent @%s", [am.enabled_by.login]) if {
	am := input.pull_request.auto_merge
	am.enabled_by.agent == true
}

self_merge_facts contains sprintf("approvals only from bots/the author/committers: %s", [concat(", ", sort(discounted))]) if {
	discounted := {sprintf("@%s (%s)", [r.user.login, concat(", ", sort(why_not_human(r)))]) |
		some r in latest_verdict
		r.state == "APPROVED"
		r.commit_id == head_sha
		count(why_not_human(r)) > 0
	}
	count(discounted) > 0
}

self_merge_facts contains sprintf("approval by @%s was for an older commit %s", [r.user.login, short_sha(r.commit_id)]) if {
	some r in latest_verdict
	r.state == "APPROVED"
	r.commit_id != head_sha
}

self_merge_facts contains sprintf("@%s requested changes", [r.user.login]) if {
	some r in latest_verdict
	r.state == "CHANGES_REQUESTED"
}

self_merge_facts contains sprintf("the review by @%s was dismissed", [r.user.login]) if {
	some r in latest_verdict
	r.state == "DISMISSED"
}
