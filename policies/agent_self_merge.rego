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

author_login := lower(object.get(input, ["pull_request", "author", "login"], ""))

# head_approvals maps the login (as the review gives it) of each reviewer
# whose verdict approves the head to why the approval does not count as a
# human's: a set of words, empty when it does. A missing field counts against
# the review, so that an incomplete input never yields an approval. It is
# computed once per reviewer, for both the decision and the message.
head_approvals := {r.user.login: why |
	some login, r in latest_verdict # login is lowercased
	r.state == "APPROVED"
	r.commit_id == head_sha
	why := {w |
		some w, failed in {
			"bot": object.get(r, ["user", "type"], "") != "User",
			"agent": object.get(r, ["user", "agent"], true) != false,
			"the author": login == author_login,
			"committer": login in committers,
			"not an approver": object.get(r, "approver", false) != true,
		}
		failed
	}
}

# human_approvers are the logins of the reviewers whose approval counts.
human_approvers := {login | some login, why in head_approvals; count(why) == 0}

findings contains self_merge_finding if input.agent_pr == true

# With a human approval, an allow-level reason names the approver (the first
# by login when there are several); the check run's title shows it.
self_merge_finding := {
	"rule": "agent_self_merge",
	"outcome": "allow",
	"message": sprintf("Approved by @%s", [sort(human_approvers)[0]]),
} if {
	count(human_approvers) > 0
} else := {
	"rule": "agent_self_merge",
	"outcome": "escalate",
	"message": self_merge_message,
}

self_merge_message := msg if {
	msg := sprintf(
		"%s needs an approval from a human on head commit %s: %s. A human reviewer (an approver; not the author, an agent, a bot or a committer of this PR) must approve the current head, or an approver comments `/guard approve <reason>`.",
		[agent_pr_phrase, head_short, concat("; ", self_merge_details)],
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
	discounted := {sprintf("@%s (%s)", [login, concat(", ", sort(why))]) |
		some login, why in head_approvals
		count(why) > 0
	}
	count(discounted) > 0
}

self_merge_facts contains sprintf("approval by @%s was for an older commit %s", [r.user.login, short_sha(r.commit_id)]) if {
	some r in latest_verdict
	r.state == "APPROVED"
	r.commit_id != head_sha
}

# The other verdicts that stand in the way, by state.
verdict_fact_formats := {
	"CHANGES_REQUESTED": "@%s requested changes",
	"DISMISSED": "the review by @%s was dismissed",
}

self_merge_facts contains sprintf(verdict_fact_formats[r.state], [r.user.login]) if {
	some r in latest_verdict
}
