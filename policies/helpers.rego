# Helpers shared by the rules of package guard.
package guard

# head_sha is the PR's current head commit ("" when missing, which matches no
# review or override).
head_sha := object.get(input, ["pull_request", "head_sha"], "")

# head_short is head_sha as messages show it.
head_short := short_sha(head_sha)

# short_sha abbreviates a commit SHA to 7 characters for messages.
short_sha(sha) := substring(sha, 0, 7) if {
	is_string(sha)
	count(sha) > 7
} else := sha if is_string(sha)
else := "(unknown)"

# A freeze holds agent PRs, and everyone's PRs when it applies_to "everyone".
freeze_holds(f) := true if {
	input.agent_pr == true
} else := true if {
	f.applies_to == "everyone"
}

# freeze_reason builds a block reason bound to freeze f, with "until" when the
# freeze has a known end.
freeze_reason(rule, f, message) := {"rule": rule, "outcome": "block", "freeze": freeze_name(f), "message": message, "until": f.until} if {
	is_string(f.until)
	f.until != ""
} else := {"rule": rule, "outcome": "block", "freeze": freeze_name(f), "message": message}

freeze_name(f) := f.name if is_string(f.name)
else := ""

# freeze_until_phrase is the freeze's end in the configured zone
# ("Mon 2026-03-09 08:00 EDT"), the raw value when it cannot be read, or
# "it is ended by hand" when it has none.
freeze_until_phrase(f) := local if {
	f.until != ""
	input.time.timezone != ""
	local := time.format([time.parse_rfc3339_ns(f.until), input.time.timezone, "Mon 2006-01-02 15:04 MST"])
} else := f.until if {
	is_string(f.until)
	f.until != ""
} else := "it is ended by hand"

override_hint := "To merge anyway, an approver (escalation.approvers, or a maintainer or admin of the repository when none are configured) comments `/guard override <reason>` on the PR; it clears the freezes active then, for the current head commit only."
