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

reasons := {r | some r in all_findings; not cleared(r)} | override_notes

outcome := "block" if {
	some r in reasons
	r.outcome == "block"
} else := "escalate" if {
	some r in reasons
	r.outcome == "escalate"
} else := "allow"

severity := {"allow": 0, "escalate": 1, "block": 2}

ordered_reasons := [k[4] | some k in sort([[0 - object.get(severity, r.outcome, 3), r.rule, object.get(r, "freeze", ""), r.message, r] | some r in reasons])]
