# data.guard.decision assembles the decision from every rule's findings:
#
#   {"outcome": "allow|escalate|block", "reasons": [{"rule", "outcome", "message", ...}]}
#
# A rule contributes with `findings contains {"rule": …, "outcome": …,
# "message": …} if { … }` (optional "freeze", "until", "matches"). Findings
# cleared by an override (overrides.rego) are dropped and noted. The outcome
# is the most severe remaining reason (block > escalate > allow), "allow" when
# there is none. Reasons are sorted: most severe first, then by rule, freeze
# and message.
package guard

decision := {"outcome": outcome, "reasons": ordered_reasons}

# all_findings evaluates the findings once (iterating a partial set rule
# re-evaluates it; a complete rule is cached for the evaluation).
all_findings := {r | some r in findings}

# Only an override given for the head commit can clear a finding; without
# one, every finding is a reason (and cleared is not evaluated per finding).
reasons := all_findings if {
	not override_for_head
} else := {r | some r in all_findings; not cleared(r)} | override_notes

override_for_head if {
	some o in input.overrides
	o.head_sha == head_sha
}

outcome := "block" if {
	some r in reasons
	r.outcome == "block"
} else := "escalate" if {
	some r in reasons
	r.outcome == "escalate"
} else := "allow"

# Sort keys rank outcomes most severe first (an unknown one, which Decide
# refuses, before all).
ordered_reasons := [k[4] | some k in sort([[object.get(rank, r.outcome, -3), r.rule, object.get(r, "freeze", ""), r.message, r] |
	rank := {"block": -2, "escalate": -1, "allow": 0}
	some r in reasons
])]
