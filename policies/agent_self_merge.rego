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

# Performance note: a decision is evaluated for every webhook, and OPA's
# evaluator charges for each reference to a rule (even one already computed)
# and each function call several times what a local variable or a builtin
# costs. The rules below therefore copy a rule they use in a loop into a local
# variable first, compare with literals instead of small constant rules, and
# compute what several rules need once.

# latest_verdict[login] is the index in input.reviews of the reviewer's last
# verdict review, that is of state APPROVED, CHANGES_REQUESTED or DISMISSED
# (COMMENTED and PENDING change no verdict): the latest by submitted_at, then
# id, then position in input.reviews. verdicts are sorted [login, submitted,
# id, position] tuples, so a reviewer's last verdict is the one followed by
# another reviewer's (or by none). (Positions, not the reviews themselves,
# keep the tuples and the map small.)
verdicts := sort([[lower(r.user.login), object.get(times, i, 0), r.id, i] |
	times := review_times
	some i, r in input.reviews
	r.state in {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}
])

latest_verdict := {v[0]: v[3] |
	vs := verdicts
	some k, v in vs
	not vs[k + 1][0] == v[0]
}

# review_times[i] is submitted_at of input.reviews[i] in nanoseconds; absent
# when it is missing or unreadable (verdicts count it as 0).
review_times := {i: ns |
	some i, r in input.reviews
	ns := time.parse_rfc3339_ns(r.submitted_at)
}

# Lowercased logins of everyone who authored or committed a commit of the PR.
committers contains lower(login) if {
	some c in input.commits
	login := c.author.account.login
	login != ""
}

committers contains lower(login) if {
	some c in input.commits
	login := c.committer.account.login
	login != ""
}

author_login := lower(object.get(input, ["pull_request", "author", "login"], ""))

# head_approvals maps the login (as the review gives it) of each reviewer
# whose verdict approves the head to why the approval does not count as a
# human's: a set of words, empty when it does. A missing field counts against
# the review, so that an incomplete input never yields an approval. It is
# computed once per reviewer, for both the decision and the message.
head_approvals := {r.user.login: why |
	head := head_sha
	some login, i in latest_verdict # login is lowercased
	r := input.reviews[i]
	r.state == "APPROVED"
	r.commit_id == head
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
human_approvers := {login | some login, why in head_approvals; why == set()}

findings contains self_merge_finding if input.agent_pr == true

# With a human approval, an allow-level reason names the approver (the first
# by login when there are several); the check run's title shows it.
self_merge_finding := {
	"rule": "agent_self_merge",
	"outcome": "allow",
	"message": sprintf("Approved by @%s", [sort(human_approvers)[0]]),
} if {
	human_approvers != set()
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
	found != set()
	details := sort(found)
} else := ["no approving review"]

self_merge_facts contains sprintf("auto-merge was enabled by agent @%s", [am.enabled_by.login]) if {
	am := input.pull_request.auto_merge
	am.enabled_by.agent == true
}

self_merge_facts contains sprintf("approvals only from bots/the author/committers: %s", [concat(", ", sort(discounted))]) if {
	discounted := {sprintf("@%s (%s)", [login, concat(", ", sort(why))]) |
		some login, why in head_approvals
		why != set()
	}
	discounted != set()
}

self_merge_facts contains sprintf("approval by @%s was for an older commit %s", [r.user.login, short_sha(r.commit_id)]) if {
	head := head_sha
	some i in latest_verdict
	r := input.reviews[i]
	r.state == "APPROVED"
	r.commit_id != head
}

# The other verdicts that stand in the way, by state.
self_merge_facts contains sprintf(format, [r.user.login]) if {
	formats := {
		"CHANGES_REQUESTED": "@%s requested changes",
		"DISMISSED": "the review by @%s was dismissed",
	}
	some i in latest_verdict
	r := input.reviews[i]
	format := formats[r.state]
}
