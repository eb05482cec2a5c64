# test_quarantine_off_hours (escalate): an agent's pull request may not skip
# or quarantine tests outside business hours (nights, weekends, holidays),
# when no human is around to notice.
#
# Evidence is any of:
#   - a marker on a changed file (input.files[_].markers): an added line of a
#     test file that skips a test in its language (Go t.Skip, pytest/unittest
#     skip and xfail, Jest/Mocha it.skip/xit/..., JUnit @Disabled/@Ignore,
#     RSpec/Minitest skip/pending/xit, Rust #[ignore], xUnit/NUnit
#     Skip=/[Ignore]), or a non-blank added line of a file matching
#     input.quarantine_files. The guard finds markers (internal/quarantine)
#     before it decides; each names its kind, e.g. "go:t.Skip" or
#     "quarantine-list";
#   - a whole-file marker (line 0): a test file deleted ("removed-test") or
#     renamed to a name that is no test ("renamed-test"), or a test or
#     quarantine-list file with added lines GitHub sent no patch for
#     ("unreadable-patch": they cannot be checked, so they count);
#   - a "quarantine" label on the pull request.
#
# Cleared by an `approve` override for the head SHA (see overrides.rego).
package guard

# Outside business hours; a missing flag counts as outside (fail closed).
off_hours := true if {
	not input.time.business_hours == true
} else := true if {
	input.time.holiday == true
}

# At most this many matches are reported; the message gives the total.
max_reported_matches := 20

quarantine_evidence := {e | some e in quarantine_evidence_of}

# quarantine_found are the markers as {"file", "line", "text"} (text cut at
# 200 characters), sorted by file and line (objects with the same keys sort
# by their values in key order). input.marked_files lists the files that have
# markers, so that the other changed files cost nothing here.
quarantine_found := sort([{"file": f.filename, "line": m.line, "text": substring(m.text, 0, 200)} |
	f := input.files[input.marked_files[_]]
	m := f.markers[_]
])

quarantine_label if {
	some label in input.pull_request.labels
	lower(label) == "quarantine"
}

quarantine_evidence_of contains sprintf("adds %d skip/quarantine line(s) in %s", [count(found), concat(", ", sort({m.file | some m in found}))]) if {
	found := [m | some m in quarantine_found; m.line > 0]
	found != []
}

# whole_file_markers are the markers of whole files (line 0) by kind.
whole_file_markers[kind] contains f.filename if {
	f := input.files[input.marked_files[_]]
	some m in f.markers
	m.line == 0
	kind := m.kind
}

quarantine_evidence_of contains sprintf("deletes or renames test file(s) %s", [concat(", ", sort(files))]) if {
	files := {f | some k in {"removed-test", "renamed-test"}; some f in whole_file_markers[k]}
	files != set()
}

quarantine_evidence_of contains sprintf("changes %s, whose added lines GitHub sent no patch for and the guard could not check", [concat(", ", sort(whole_file_markers["unreadable-patch"]))])

quarantine_evidence_of contains "has the quarantine label" if quarantine_label

findings contains {
	"rule": "test_quarantine_off_hours",
	"outcome": "escalate",
	"message": quarantine_message,
	"matches": array.slice(quarantine_found, 0, max_reported_matches),
} if {
	input.agent_pr == true
	off_hours
	quarantine_evidence != set()
}

when_phrase := concat(", ", [p | some p in [
	object.get(input, ["time", "weekday"], ""),
	object.get(input, ["time", "local"], ""),
	object.get(input, ["time", "timezone"], ""),
	holiday_word,
]; p != ""])

holiday_word := "holiday" if input.time.holiday == true
else := ""

quarantine_message := msg if {
	msg := sprintf(
		"Agent PR skips or quarantines tests outside business hours (%s): it %s. A human approver must review it and comment `/guard approve <reason>` for head commit %s.",
		[when_phrase, concat(" and ", sort(quarantine_evidence)), head_short],
	)
} else := "Agent PR skips or quarantines tests outside business hours. A human approver must review it and comment `/guard approve <reason>`."
