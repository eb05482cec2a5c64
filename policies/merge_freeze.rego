# merge_freeze (block): while a scheduled freeze (kind "weekly", or "window"
# with absolute from/to) is active for the PR's base branch, agent PRs are
# blocked, and so is everyone's PR when the freeze applies_to "everyone".
#
# input.time.freezes holds only the freezes active now for this base branch
# (the Go side filters by time and branch). One reason per freeze, naming it
# in "freeze" so that `/guard override <reason>` can clear exactly that one.
package guard

findings contains freeze_reason("merge_freeze", f, merge_freeze_message(f)) if {
	some f in input.time.freezes
	f.kind in {"weekly", "window"}
	freeze_holds(f)
}

# How a freeze's kind reads in the message; "window" (and anything else)
# reads "scheduled window".
freeze_schedules := {"weekly": "weekly"}

merge_freeze_message(f) := msg if {
	msg := sprintf(
		"Merge freeze %q (%s) is active for %s until %s. %s",
		[f.name, object.get(freeze_schedules, f.kind, "scheduled window"), input.pull_request.base_ref, freeze_until_phrase(f), override_hint],
	)
} else := sprintf("Merge freeze %s is active. %s", [json.marshal(object.get(f, "name", null)), override_hint])
