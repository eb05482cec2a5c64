package guard

# Added lines that skip or quarantine a test, by language and test file.
skip_marker_cases := {
	"go t.Skip": ["pkg/store/store_test.go", "\tt.Skip(\"flaky on CI\")"],
	"go t.SkipNow": ["pkg/store/store_test.go", "\tt.SkipNow()"],
	"go t.Skipf": ["pkg/store/store_test.go", "\tt.Skipf(\"see #%d\", 12)"],
	"python pytest.mark.skip": ["tests/test_api.py", "@pytest.mark.skip(reason=\"flaky\")"],
	"python pytest.mark.xfail": ["app/api_test.py", "@pytest.mark.xfail"],
	"python unittest.skip": ["test_models.py", "    @unittest.skip(\"later\")"],
	"python pytest.skip call": ["tests/test_api.py", "    pytest.skip(\"no network\")"],
	"js it.skip": ["src/cart.test.ts", "  it.skip('adds items', () => {"],
	"js xit": ["src/cart.spec.js", "  xit('adds items', () => {"],
	"js describe.skip": ["web/cart.test.tsx", "describe.skip('cart', () => {"],
	"js test.skip": ["web/cart.test.jsx", "test.skip('total', () => {"],
	"js xdescribe": ["src/__tests__/cart.js", "xdescribe('cart', () => {"],
	"js it.todo": ["src/cart.test.ts", "it.todo('handles refunds')"],
	"java @Disabled": ["src/test/java/com/acme/CartTest.java", "    @Disabled(\"flaky\")"],
	"java @Ignore": ["core/CartTests.java", "    @Ignore"],
	"kotlin @Disabled": ["app/src/test/kotlin/CartTest.kt", "    @Disabled"],
	"ruby skip": ["spec/models/cart_spec.rb", "    skip \"flaky\""],
	"ruby pending": ["spec/models/cart_spec.rb", "    pending \"not yet\""],
	"ruby xit": ["test/cart_test.rb", "  xit \"totals\" do"],
	"rust #[ignore] under tests": ["tests/cart.rs", "#[ignore]"],
	"rust #[ignore] in a unit test module": ["src/cart.rs", "    #[ignore = \"slow\"]"],
	"csharp Fact Skip": ["Shop.Tests/CartTests.cs", "    [Fact(Skip = \"flaky\")]"],
	"csharp Theory Skip": ["Shop.Tests/CartTests.cs", "    [Theory(Skip=\"flaky\")]"],
	"csharp Ignore": ["Shop.Tests/CartTest.cs", "    [Test, Ignore(\"flaky\")]"],
	"csharp bare Ignore": ["Shop.Tests/CartTest.cs", "    [Ignore]"],
}

test_skip_marker_off_hours_escalates[name] if {
	some name, c in skip_marker_cases
	d := decision with input as with_file(off_hours_input, c[0], c[1])
	d.outcome == "escalate"
	r := only_reason(d, "test_quarantine_off_hours")
	r.outcome == "escalate"
	r.matches == [{"file": c[0], "line": 42, "text": c[1]}]
	contains(r.message, sprintf("in %s", [c[0]]))
	contains(r.message, "sat")
}

# Lines that look alike but skip nothing, or a marker outside a test file.
not_skip_cases := {
	"go marker in a non-test file": ["pkg/store/store.go", "\tt.Skip(\"x\")"],
	"go test named Skip": ["pkg/store/store_test.go", "func TestSkipper(t *testing.T) {"],
	"python comment": ["tests/test_api.py", "# we no longer skip this"],
	"js plain it": ["src/cart.test.ts", "it('adds', () => {"],
	"java annotation in main code": ["src/main/java/Cart.java", "@Disabled"],
	"ruby word inside a string": ["spec/cart_spec.rb", "  it 'does not skip' do"],
	"marker of another language": ["pkg/store/store_test.go", "@pytest.mark.skip"],
}

test_lookalike_does_not_escalate[name] if {
	some name, c in not_skip_cases
	rules := {r.rule | some r in findings} with input as with_file(off_hours_input, c[0], c[1])
	not "test_quarantine_off_hours" in rules
}

test_skip_marker_in_business_hours_is_allowed_with_approval if {
	inp := with_changes(with_file(agent_input, "pkg/store/store_test.go", "\tt.Skip()"), {"reviews": [approved_by(alice)]})
	d := decision with input as inp
	d == {"outcome": "allow", "reasons": []}
}

test_skip_marker_in_business_hours_needs_only_the_approval if {
	d := decision with input as with_file(agent_input, "pkg/store/store_test.go", "\tt.Skip()")
	rules_of(d) == {"agent_self_merge"}
}

test_skip_marker_on_a_holiday_escalates if {
	holiday := with_changes(agent_input, {"time": {"business_hours": false, "holiday": true}})
	d := decision with input as with_file(holiday, "pkg/store/store_test.go", "\tt.Skip()")
	r := only_reason(d, "test_quarantine_off_hours")
	contains(r.message, "holiday")
}

test_holiday_flag_alone_counts_as_off_hours if {
	holiday := with_changes(agent_input, {"time": {"business_hours": true, "holiday": true}})
	d := decision with input as with_file(holiday, "pkg/store/store_test.go", "\tt.Skip()")
	"test_quarantine_off_hours" in rules_of(d)
}

test_skip_marker_in_a_human_pr_off_hours_is_allowed if {
	off := with_changes(human_input, {"time": {"business_hours": false}})
	d := decision with input as with_file(off, "pkg/store/store_test.go", "\tt.Skip()")
	d == {"outcome": "allow", "reasons": []}
}

test_quarantine_list_entry_escalates if {
	inp := with_changes(with_file(off_hours_input, ".github/quarantine.yml", "- TestCheckout"), {"quarantine_files": [".github/quarantine.yml"]})
	d := decision with input as inp
	r := only_reason(d, "test_quarantine_off_hours")
	r.matches == [
		{"file": ".github/quarantine.yml", "line": 41, "text": "    // nothing to see here"},
		{"file": ".github/quarantine.yml", "line": 42, "text": "- TestCheckout"},
	]
}

test_quarantine_list_glob_crosses_directories if {
	inp := with_changes(with_file(off_hours_input, "services/cart/flaky.txt", "TestTotals"), {"quarantine_files": ["**/flaky.txt"]})
	d := decision with input as inp
	"test_quarantine_off_hours" in rules_of(d)
}

test_quarantine_list_star_stays_in_its_directory if {
	inp := with_changes(with_file(off_hours_input, "services/cart/flaky.txt", "TestTotals"), {"quarantine_files": ["*/flaky.txt"]})
	rules := {r.rule | some r in findings} with input as inp
	not "test_quarantine_off_hours" in rules
}

test_quarantine_list_blank_line_is_no_entry if {
	inp := with_changes(with_file(off_hours_input, "flaky.txt", "   "), {
		"quarantine_files": ["flaky.txt"],
		"files": [{"filename": "flaky.txt", "status": "modified", "additions": 1, "deletions": 0, "added_lines": [{"number": 3, "text": "  "}]}],
	})
	rules := {r.rule | some r in findings} with input as inp
	not "test_quarantine_off_hours" in rules
}

test_quarantine_label_escalates if {
	inp := with_changes(off_hours_input, {"pull_request": {"labels": ["deps", "Quarantine"]}})
	d := decision with input as inp
	r := only_reason(d, "test_quarantine_off_hours")
	contains(r.message, "has the quarantine label")
	r.matches == []
}

test_quarantine_label_in_business_hours_is_no_finding if {
	inp := with_changes(agent_input, {"pull_request": {"labels": ["quarantine"]}})
	rules := {r.rule | some r in findings} with input as inp
	not "test_quarantine_off_hours" in rules
}

test_missing_business_hours_counts_as_off_hours if {
	inp := json.remove(with_file(agent_input, "a_test.go", "t.Skip()"), ["time/business_hours"])
	rules := {r.rule | some r in findings} with input as inp
	"test_quarantine_off_hours" in rules
}

test_matches_are_capped_and_counted if {
	lines := [{"number": n, "text": sprintf("t.Skip() // %d", [n])} | some n in numbers.range(1, 30)]
	inp := with_changes(off_hours_input, {"files": [{"filename": "a_test.go", "status": "added", "additions": 30, "deletions": 0, "added_lines": lines}]})
	d := decision with input as inp
	r := only_reason(d, "test_quarantine_off_hours")
	count(r.matches) == max_reported_matches
	r.matches[0].line == 1
	contains(r.message, "adds 30 skip/quarantine line(s) in a_test.go")
}

test_approve_override_for_head_clears_quarantine if {
	inp := with_changes(with_file(off_hours_input, "a_test.go", "t.Skip()"), {"reviews": [approved_by(alice)], "overrides": [approve_override(head)]})
	d := decision with input as inp
	d.outcome == "allow"
	rules_of(d) == {"override"}
}

test_approve_override_for_older_commit_keeps_quarantine if {
	inp := with_changes(with_file(off_hours_input, "a_test.go", "t.Skip()"), {"reviews": [approved_by(alice)], "overrides": [approve_override(older)]})
	d := decision with input as inp
	d.outcome == "escalate"
	rules_of(d) == {"test_quarantine_off_hours"}
}

path_cases := {
	"go": ["a_test.go", "pkg/x/a_test.go"],
	"python": ["test_a.py", "pkg/test_a.py", "pkg/a_test.py"],
	"js": ["a.test.ts", "web/a.spec.jsx", "src/__tests__/a.js"],
	"jvm": ["src/test/java/A.java", "core/ATest.java", "core/ATests.kt", "core/AIT.java"],
	"ruby": ["spec/a_spec.rb", "a_spec.rb", "test/a_test.rb"],
	"rust": ["src/lib.rs", "tests/it.rs"],
	"csharp": ["Shop.Tests/CartTests.cs", "CartTest.cs"],
}

test_test_paths_are_recognised[name] if {
	some name, paths in path_cases
	every p in paths {
		glob.match(tests_glob, ["/"], p)
	}
}

test_other_paths_are_not_test_files if {
	every p in ["main.go", "pkg/testing.go", "contest.py", "src/latest/a.ts", "docs/spec.md", "Attest.java"] {
		not glob.match(tests_glob, ["/"], p)
	}
}

test_quarantine_list_with_several_globs if {
	inp := with_changes(with_file(off_hours_input, "ci/flaky.txt", "TestTotals"), {"quarantine_files": ["quarantine.yml", "ci/*.txt"]})
	rules := {r.rule | some r in findings} with input as inp
	"test_quarantine_off_hours" in rules
}

test_quarantine_list_with_brace_globs if {
	inp := with_changes(with_file(off_hours_input, "ci/flaky.txt", "TestTotals"), {"quarantine_files": ["quarantine.{yml,yaml}", "ci/*.txt"]})
	rules := {r.rule | some r in findings} with input as inp
	"test_quarantine_off_hours" in rules
}
