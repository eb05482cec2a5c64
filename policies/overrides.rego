# Overrides recorded by approvers clear reasons:
#   - an `approve` (`/guard approve`, or the check run's approve button) whose
#     head_sha is the PR's current head clears every escalate reason;
#   - an `override` (`/guard override`, or the override button) whose
#     head_sha and base_ref match the PR clears a block reason bound to a
#     freeze when its "freezes" names that freeze, and a block reason bound to
#     no freeze when its "rules" names the rule. A freeze that started after
#     the override is therefore not cleared by it.
# A cleared reason is dropped from the decision; an allow-level reason with
# rule "override" records who cleared what, so that the check run and the
# audit trail show it.
package guard

approves contains o if {
	some o in input.overrides
	o.kind == "approve"
	o.head_sha == head_sha
}

overrides_for_head contains o if {
	some o in input.overrides
	o.kind == "override"
	o.head_sha == head_sha
	o.base_ref == input.pull_request.base_ref
}

# clearers(r) are the overrides that clear reason r.
clearers(r) := approves if r.outcome == "escalate"

clearers(r) := {o |
	some o in overrides_for_head
	r.freeze in o.freezes
} if {
	r.outcome == "block"
	object.get(r, "freeze", "") != ""
}

clearers(r) := {o |
	some o in overrides_for_head
	r.rule in o.rules
} if {
	r.outcome == "block"
	object.get(r, "freeze", "") == ""
}

cleared(r) if count(clearers(r)) > 0

override_notes := {n | some n in override_note}

override_note contains {
	"rule": "override",
	"outcome": "allow",
	"message": sprintf("%s was cleared for head commit %s by %s.", [reason_label(r), short_sha(head_sha), concat("; ", sort(by))]),
} if {
	some r in all_findings
	cleared(r)
	by := {sprintf("%s by @%s (%s)", [override_verb[o.kind], object.get(o, "actor", ""), object.get(o, "reason", "")]) |
		some o in clearers(r)
	}
}

override_verb := {"approve": "/guard approve", "override": "/guard override"}

reason_label(r) := sprintf("%s (freeze %q)", [r.rule, r.freeze]) if object.get(r, "freeze", "") != ""
else := r.rule
