# incident_freeze (block): while an incident freeze declared with
# `guard freeze start` or `/guard freeze` is active for the repository (and
# base branch), agent PRs are blocked, and so is everyone's PR when the freeze
# applies_to "everyone". One reason per freeze, naming it in "freeze".
package guard

findings contains freeze_reason("incident_freeze", f, incident_freeze_message(f)) if {
	some f in input.time.freezes
	f.kind == "incident"
	freeze_holds(f)
}

incident_freeze_message(f) := msg if {
	msg := sprintf(
		"Incident freeze %q declared by %s (%s) is active for %s until %s. %s",
		[f.name, declared_by(f), incident_reason(f), input.pull_request.base_ref, freeze_until_phrase(f), override_hint],
	)
} else := sprintf("Incident freeze %s is active. %s", [json.marshal(object.get(f, "name", null)), override_hint])

declared_by(f) := sprintf("@%s", [f.by]) if {
	f.by != ""
	f.by != "schedule"
} else := "the schedule" if f.by == "schedule"
else := "an unknown actor"

incident_reason(f) := sprintf("reason: %s", [f.reason]) if f.reason != ""
else := "no reason given"
