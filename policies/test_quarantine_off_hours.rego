# test_quarantine_off_hours (escalate): an agent's pull request may not skip
# or quarantine tests outside business hours (nights, weekends, holidays),
# when no human is around to notice.
#
# Evidence is any of:
#   - an added line in a test file carrying a skip marker of its language
#     (Go t.Skip, pytest/unittest skip and xfail, Jest/Mocha it.skip/xit/...,
#     JUnit @Disabled/@Ignore, RSpec/Minitest skip/pending/xit, Rust
#     #[ignore], xUnit/NUnit/MSTest Skip=/[Ignore]);
#   - any non-blank added line in a file matching input.quarantine_files
#     (globs where * stays within a path segment and ** crosses them);
#   - a "quarantine" label on the pull request.
#
# Cleared by an `approve` override for the head SHA (see overrides.rego).
package guard

# Outside business hours; a missing flag counts as outside (fail closed).
off_hours if input.time.business_hours != true

off_hours if not input.time.business_hours

off_hours if input.time.holiday == true

# At most this many matches are reported; the message gives the total.
max_reported_matches := 20

# A test file by its path (a glob where * stays within a path segment and **
# crosses them): Go/Python/Ruby *_test.*, Python/Ruby test_*.*, *.test.* and
# *.spec.* (JS/TS and others), Java/Kotlin/C# *Test, *Tests and *IT, Ruby
# *_spec.rb, anything under tests/, test/, spec/, __tests__/ or src/test/, and
# every Rust file (#[ignore] is only meaningful on tests, and Rust unit tests
# live in #[cfg(test)] modules of ordinary files). One glob, so that each
# changed file costs one match.
tests_glob := concat(",", [
	"{**_test.go,**_test.py,**_test.rb,**_spec.rb",
	"test_*.py,test_*.rb,**/test_*.py,**/test_*.rb",
	"*.test.*,*.spec.*,**/*.test.*,**/*.spec.*",
	"**Test.java,**Tests.java,**IT.java,**Test.kt,**Tests.kt,**IT.kt,**Test.cs,**Tests.cs",
	"**.rs",
	"test/**,tests/**,spec/**,__tests__/**,**/test/**,**/tests/**,**/spec/**,**/__tests__/**}",
])

# Skip markers per file extension; (?m) so that one match on a file's added
# lines joined by newlines finds whether any line has one.
skip_markers := {
	"go": `\b(?:t|tb|b|tt)\.Skip(?:f|Now)?\(`,
	"py": `@pytest\.mark\.(?:skip|skipif|xfail)\b|\bpytest\.(?:skip|xfail)\(|@unittest\.(?:skip|skipIf|skipUnless|expectedFailure)\b|\bself\.skipTest\(`,
	"js": js_skip_marker,
	"jsx": js_skip_marker,
	"mjs": js_skip_marker,
	"cjs": js_skip_marker,
	"ts": js_skip_marker,
	"tsx": js_skip_marker,
	"mts": js_skip_marker,
	"cts": js_skip_marker,
	"java": jvm_skip_marker,
	"kt": jvm_skip_marker,
	"kts": jvm_skip_marker,
	"rb": `(?m)^\s*(?:skip|pending|xit|xspecify|xdescribe|xcontext)\b|\bskip:\s*true\b`,
	"rs": `#\[\s*ignore\b`,
	"cs": `\b(?:Fact|Theory)\s*\([^)]*\bSkip\s*=|[\[,]\s*Ignore\b`,
}

js_skip_marker := `\b(?:it|test|describe|context|suite|specify)\.(?:skip|todo)\b|\b(?:xit|xtest|xdescribe|xcontext|xspecify)\s*\(`

jvm_skip_marker := `@(?:Disabled|Ignore)\b`

quarantine_evidence := {e | some e in quarantine_evidence_of}

# Matches as [file, line, text], text cut at 200 bytes.
quarantine_matches contains [f.filename, l.number, substring(l.text, 0, 200)] if {
	some f in input.files
	glob.match(tests_glob, ["/"], f.filename)
	marker := skip_markers[file_extension(f.filename)]
	regex.match(marker, concat("\n", [l.text | some l in f.added_lines]))
	some l in f.added_lines
	regex.match(marker, l.text)
}

quarantine_matches contains [f.filename, l.number, substring(l.text, 0, 200)] if {
	some f in input.files
	glob.match(quarantine_glob, ["/"], f.filename)
	some l in f.added_lines
	trim_space(l.text) != ""
}

# quarantine_files as one glob ({a,b,...}) when the patterns allow it, so that
# each changed file costs one match; else each pattern on its own.
quarantine_glob := input.quarantine_files[0] if count(input.quarantine_files) == 1

quarantine_glob := concat("", ["{", concat(",", input.quarantine_files), "}"]) if {
	count(input.quarantine_files) > 1
	not quarantine_globs_nest
}

quarantine_globs_nest if {
	some p in input.quarantine_files
	regex.match(`[{},]`, p)
}

quarantine_matches contains [f.filename, l.number, substring(l.text, 0, 200)] if {
	quarantine_globs_nest
	some pattern in input.quarantine_files
	some f in input.files
	glob.match(pattern, ["/"], f.filename)
	some l in f.added_lines
	trim_space(l.text) != ""
}

# quarantine_found are the matches, sorted by file and line, evaluated once.
quarantine_found := sort(quarantine_matches)

file_extension(name) := regex.find_n(`[^./]+$`, name, 1)[0]

quarantine_label if {
	some label in input.pull_request.labels
	lower(label) == "quarantine"
}

quarantine_evidence_of contains sprintf("adds %d skip/quarantine line(s) in %s", [count(quarantine_found), concat(", ", sort({m[0] | some m in quarantine_found}))]) if {
	count(quarantine_found) > 0
}

quarantine_evidence_of contains "has the quarantine label" if quarantine_label

findings contains {
	"rule": "test_quarantine_off_hours",
	"outcome": "escalate",
	"message": quarantine_message,
	"matches": [{"file": m[0], "line": m[1], "text": m[2]} | some m in array.slice(quarantine_found, 0, max_reported_matches)],
} if {
	input.agent_pr == true
	off_hours
	count(quarantine_evidence) > 0
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
		[when_phrase, concat(" and ", sort(quarantine_evidence)), short_sha(head_sha)],
	)
} else := "Agent PR skips or quarantines tests outside business hours. A human approver must review it and comment `/guard approve <reason>`."
