package guard

# Markers as internal/quarantine reports them; which lines are markers is
# tested in Go (internal/quarantine), the rule's reaction to them here.
marker_cases := {
	"go t.Skip": ["pkg/store/store_test.go", "go:t.Skip", "\tt.Skip(\"flaky on CI\")"],
	"python pytest.mark.skip": ["tests/test_api.py", "python:pytest.mark.skip", "@pytest.mark.skip(reason=\"flaky\")"],
	"js it.skip": ["src/cart.test.ts", "js:it.skip", "  it.skip('adds items', () => {"],
	"java @Disabled": ["src/test/java/com/acme/CartTest.java", "java:@Disabled", "    @Disabled(\"flaky\")"],
	"rust #[ignore]": ["src/cart.rs", "rust:#[ignore]", "    #[ignore = \"slow\"]"],
	"quarantine list entry": [".github/quarantine.yml", "quarantine-list", "- TestCheckout"],
}

test_marker_off_hours_escalates[name] if {
	some name, c in marker_cases
	d := decision with input as with_marker(off_hours_input, c[0], c[1], c[2])
	d.outcome == "escalate"
	r := only_reason(d, "test_quarantine_off_hours")
	r.outcome == "escalate"
	r.matches == [{"file": c[0], "line": 42, "text": c[2]}]
	contains(r.message, sprintf("adds 1 skip/quarantine line(s) in %s", [c[0]]))
	contains(r.message, "(sat, 2026-03-07T14:00:00-05:00, America/New_York)")
	contains(r.message, "/guard approve <reason>` for head commit 1111111")
}

test_test_file_without_markers_does_not_escalate if {
	inp := with_changes(off_hours_input, {"files": [{
		"filename": "a_test.go", "status": "modified", "additions": 1, "deletions": 0, "test": true, "quarantine_list": false,
		"added_lines": [{"number": 1, "text": "\tt.Skip()"}], "markers": [],
	}]})
	rules := {r.rule | some r in findings} with input as inp
	not "test_quarantine_off_hours" in rules
}

test_marker_in_business_hours_is_allowed_with_approval if {
	inp := with_changes(with_marker(agent_input, "pkg/store/store_test.go", "go:t.Skip", "\tt.Skip()"), {"reviews": [approved_by(alice)]})
	d := decision with input as inp
	d.outcome == "allow"
	rules_of(d) == {"agent_self_merge"}
}

test_marker_in_business_hours_needs_only_the_approval if {
	d := decision with input as with_marker(agent_input, "pkg/store/store_test.go", "go:t.Skip", "\tt.Skip()")
	rules_of(d) == {"agent_self_merge"}
}

test_marker_on_a_holiday_escalates if {
	holiday := with_changes(agent_input, {"time": {"business_hours": false, "holiday": true}})
	d := decision with input as with_marker(holiday, "pkg/store/store_test.go", "go:t.Skip", "\tt.Skip()")
	r := only_reason(d, "test_quarantine_off_hours")
	contains(r.message, "holiday")
}

test_holiday_flag_alone_counts_as_off_hours if {
	holiday := with_changes(agent_input, {"time": {"business_hours": true, "holiday": true}})
	d := decision with input as with_marker(holiday, "pkg/store/store_test.go", "go:t.Skip", "\tt.Skip()")
	"test_quarantine_off_hours" in rules_of(d)
}

test_marker_in_a_human_pr_off_hours_is_allowed if {
	off := with_changes(human_input, {"time": {"business_hours": false}})
	d := decision with input as with_marker(off, "pkg/store/store_test.go", "go:t.Skip", "\tt.Skip()")
	d == {"outcome": "allow", "reasons": []}
}

test_quarantine_label_escalates if {
	inp := with_changes(off_hours_input, {"pull_request": {"labels": ["deps", "Quarantine"]}})
	d := decision with input as inp
	r := only_reason(d, "test_quarantine_off_hours")
	contains(r.message, "it has the quarantine label.")
	r.matches == []
}

test_label_and_markers_are_both_named if {
	inp := with_changes(with_marker(off_hours_input, "a_test.go", "go:t.Skip", "t.Skip()"), {"pull_request": {"labels": ["quarantine"]}})
	r := only_reason(decision, "test_quarantine_off_hours") with input as inp
	contains(r.message, "it adds 1 skip/quarantine line(s) in a_test.go and has the quarantine label.")
}

test_quarantine_label_in_business_hours_is_no_finding if {
	inp := with_changes(agent_input, {"pull_request": {"labels": ["quarantine"]}})
	rules := {r.rule | some r in findings} with input as inp
	not "test_quarantine_off_hours" in rules
}

test_missing_business_hours_counts_as_off_hours if {
	inp := json.remove(with_marker(agent_input, "a_test.go", "go:t.Skip", "t.Skip()"), ["time/business_hours"])
	rules := {r.rule | some r in findings} with input as inp
	"test_quarantine_off_hours" in rules
}

test_matches_are_sorted_capped_and_counted if {
	markers := [{"line": n, "text": sprintf("t.Skip() // %d", [n]), "kind": "go:t.Skip"} | some n in numbers.range(1, 30)]
	b := {"filename": "b_test.go", "status": "added", "additions": 30, "deletions": 0, "test": true, "quarantine_list": false, "added_lines": [], "markers": markers}
	a := object.union(b, {"filename": "a_test.go", "markers": [markers[3]]})
	d := decision with input as with_changes(off_hours_input, {"files": [b, go_mod, a], "marked_files": [0, 2]})
	r := only_reason(d, "test_quarantine_off_hours")
	count(r.matches) == max_reported_matches
	r.matches[0] == {"file": "a_test.go", "line": 4, "text": "t.Skip() // 4"}
	r.matches[1].file == "b_test.go"
	r.matches[1].line == 1
	contains(r.message, "adds 31 skip/quarantine line(s) in a_test.go, b_test.go")
}

test_match_text_is_cut_at_200_characters if {
	long := concat("", ["t.Skip() ", concat("", [x | some _ in numbers.range(1, 300); x := "é"])])
	d := decision with input as with_marker(off_hours_input, "a_test.go", "go:t.Skip", long)
	r := only_reason(d, "test_quarantine_off_hours")
	count(r.matches[0].text) == 200
}

test_approve_override_for_head_clears_quarantine if {
	inp := with_changes(with_marker(off_hours_input, "a_test.go", "go:t.Skip", "t.Skip()"), {"reviews": [approved_by(alice)], "overrides": [approve_override(head)]})
	d := decision with input as inp
	d.outcome == "allow"
	rules_of(d) == {"agent_self_merge", "override"}
}

test_approve_override_for_older_commit_keeps_quarantine if {
	inp := with_changes(with_marker(off_hours_input, "a_test.go", "go:t.Skip", "t.Skip()"), {"reviews": [approved_by(alice)], "overrides": [approve_override(older)]})
	d := decision with input as inp
	d.outcome == "escalate"
	rules_of(d) == {"agent_self_merge", "test_quarantine_off_hours"}
}

test_only_marked_files_are_looked_at if {
	# Decide refuses an input whose marked_files is not what
	# quarantine.Annotate computed; the rule trusts it.
	inp := object.union(with_marker(off_hours_input, "a_test.go", "go:t.Skip", "t.Skip()"), {"marked_files": []})
	rules := {r.rule | some r in findings} with input as inp
	not "test_quarantine_off_hours" in rules
}

test_missing_marker_fields_are_tolerated if {
	inp := with_changes(off_hours_input, {"files": [{"filename": "a_test.go"}, {"filename": "b_test.go", "markers": null}], "marked_files": [0, 1, 7]})
	d := decision with input as inp
	rules_of(d) == {"agent_self_merge"}
}

# Whole-file markers (line 0) as internal/quarantine reports them.
whole_file(file, status, kind) := {
	"filename": file, "status": status, "additions": 0, "deletions": 30, "test": kind != "renamed-test",
	"quarantine_list": false, "added_lines": [], "markers": [{"line": 0, "text": sprintf("%s: %s", [kind, file]), "kind": kind}],
}

test_deleted_or_renamed_test_escalates if {
	inp := with_changes(off_hours_input, {"files": [
		whole_file("pkg/a_test.go", "removed", "removed-test"),
		whole_file("pkg/b_test.go.off", "renamed", "renamed-test"),
	], "marked_files": [0, 1]})
	d := decision with input as inp
	r := only_reason(d, "test_quarantine_off_hours")
	contains(r.message, "it deletes or renames test file(s) pkg/a_test.go, pkg/b_test.go.off.")
	not contains(r.message, "skip/quarantine line")
	count(r.matches) == 2
}

test_unreadable_patch_escalates if {
	inp := with_changes(off_hours_input, {"files": [whole_file("pkg/c_test.go", "modified", "unreadable-patch")], "marked_files": [0]})
	d := decision with input as inp
	r := only_reason(d, "test_quarantine_off_hours")
	contains(r.message, "changes pkg/c_test.go, whose added lines GitHub sent no patch for")
}
