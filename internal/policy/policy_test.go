package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/quarantine"
	"github.com/mergeguard/guard/policies"
)

// mustCompile compiles the embedded policies.
func mustCompile(tb testing.TB) *Engine {
	tb.Helper()
	e, err := Compile(context.Background(), policies.FS)
	if err != nil {
		tb.Fatalf("compile embedded policies: %v", err)
	}
	return e
}

const headSHA = sampleHead

var (
	agentAccount = pr.Account{Login: "coder[bot]", Type: "Bot", Agent: true}
	alice        = pr.Account{Login: "alice", Type: "User"}
)

// agentInput is an agent's PR on a Tuesday afternoon with no reviews, by
// agentAccount, at headSHA.
func agentInput() *pr.Input { return sampleBase() }

func TestDecideBuiltinPolicies(t *testing.T) {
	e := mustCompile(t)
	tests := []struct {
		name   string
		modify func(in *pr.Input)
		want   pr.Outcome
		rules  []string
	}{
		{"agent PR without approval escalates", func(in *pr.Input) {}, pr.Escalate, []string{"agent_self_merge"}},
		{"agent PR approved by a human on the head is allowed", func(in *pr.Input) {
			in.Reviews = []pr.Review{{ID: 1, User: alice, State: "APPROVED", CommitID: headSHA, Approver: true}}
		}, pr.Allow, []string{"agent_self_merge"}},
		{"human PR is allowed", func(in *pr.Input) {
			in.AgentPR, in.PullRequest.Author = false, alice
		}, pr.Allow, nil},
		{"agent PR during a weekly freeze is blocked", func(in *pr.Input) {
			in.Time.Freezes = []pr.Freeze{{Name: "friday-deploys", Kind: "weekly", AppliesTo: "agents", Until: "2026-03-09T08:00:00-04:00"}}
		}, pr.Block, []string{"merge_freeze", "agent_self_merge"}},
		{"agent PR skipping a test off hours escalates twice", func(in *pr.Input) {
			in.Time.BusinessHours = false
			in.Files = []pr.File{{Filename: "a_test.go", AddedLines: []pr.Line{{Number: 9, Text: "\tt.Skip()"}}}}
		}, pr.Escalate, []string{"agent_self_merge", "test_quarantine_off_hours"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := agentInput()
			tt.modify(in)
			quarantine.Annotate(in)
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Outcome != tt.want {
				t.Errorf("outcome = %q, want %q (reasons %+v)", d.Outcome, tt.want, d.Reasons)
			}
			if got := d.Rules(); strings.Join(got, ",") != strings.Join(tt.rules, ",") {
				t.Errorf("rules = %v, want %v", got, tt.rules)
			}
		})
	}
}

func TestDecideReportsMatchesAndFreeze(t *testing.T) {
	e := mustCompile(t)
	in := agentInput()
	in.Time.BusinessHours = false
	in.Files = []pr.File{{Filename: "a_test.go", AddedLines: []pr.Line{{Number: 9, Text: "\tt.Skip()"}}}}
	in.Time.Freezes = []pr.Freeze{{Name: "friday-deploys", Kind: "weekly", AppliesTo: "agents", Until: "2026-03-09T08:00:00-04:00"}}
	quarantine.Annotate(in)
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := pr.Match{File: "a_test.go", Line: 9, Text: "\tt.Skip()"}
	var sawMatch, sawFreeze bool
	for _, r := range d.Reasons {
		switch r.Rule {
		case "test_quarantine_off_hours":
			sawMatch = len(r.Matches) == 1 && r.Matches[0] == want
		case "merge_freeze":
			sawFreeze = r.Freeze == "friday-deploys" && r.Until == "2026-03-09T08:00:00-04:00"
		}
	}
	if !sawMatch || !sawFreeze {
		t.Errorf("reasons = %+v, want the match %+v and the freeze with its end", d.Reasons, want)
	}
}

func TestDecideRefusesUnannotatedFiles(t *testing.T) {
	e := mustCompile(t)
	tests := []struct {
		name    string
		file    pr.File
		wantErr bool
	}{
		{"added lines without markers", pr.File{Filename: "a_test.go", AddedLines: []pr.Line{{Number: 1, Text: "\tt.Skip()"}}}, true},
		{"a patch without markers", pr.File{Filename: "a_test.go", Patch: "@@ -0,0 +1 @@\n+\tt.Skip()\n"}, true},
		{"annotated", pr.File{Filename: "a_test.go", AddedLines: []pr.Line{{Number: 1, Text: "\tt.Skip()"}}, Markers: []pr.Marker{}}, false},
		{"nothing added (a removed file)", pr.File{Filename: "old_test.go", Status: "removed", Deletions: 3}, false},
		{"markers missing from marked_files", pr.File{Filename: "a_test.go", Markers: []pr.Marker{{Line: 1, Text: "\tt.Skip()", Kind: "go:t.Skip"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := agentInput()
			in.Files = []pr.File{tt.file}
			_, err := e.Decide(context.Background(), in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Decide error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "quarantine.Annotate") {
				t.Errorf("error %q does not say what to do", err)
			}
		})
	}
	t.Run("marked_files naming a file without markers", func(t *testing.T) {
		in := agentInput()
		in.MarkedFiles = []int{0}
		if _, err := e.Decide(context.Background(), in); err == nil || !strings.Contains(err.Error(), "marked_files") {
			t.Fatalf("Decide error = %v, want one about marked_files", err)
		}
	})
}

func TestDecideNamesTheHumanApprover(t *testing.T) {
	in := agentInput()
	in.Reviews = []pr.Review{
		{ID: 1, User: pr.Account{Login: "zoe", Type: "User"}, State: "APPROVED", CommitID: headSHA, Approver: true},
		{ID: 2, User: alice, State: "APPROVED", CommitID: headSHA, Approver: true},
	}
	d, err := mustCompile(t).Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := pr.Reason{Rule: "agent_self_merge", Outcome: pr.Allow, Message: "Approved by @alice"}
	if d.Outcome != pr.Allow || len(d.Reasons) != 1 || fmt.Sprint(d.Reasons[0]) != fmt.Sprint(want) {
		t.Errorf("decision = %+v, want allow with %+v", d, want)
	}
}

func TestDecideNilInput(t *testing.T) {
	if _, err := mustCompile(t).Decide(context.Background(), nil); err == nil {
		t.Fatal("Decide(nil) succeeded, want an error")
	}
}

func TestBuiltinRegoTests(t *testing.T) {
	var buf bytes.Buffer
	passed, failed, err := Test(context.Background(), policies.FS, &buf, false)
	if err != nil {
		t.Fatalf("policy tests do not compile: %v", err)
	}
	if failed > 0 || passed == 0 {
		t.Fatalf("%d Rego tests passed, %d failed:\n%s", passed, failed, buf.String())
	}
	if testing.Verbose() {
		t.Log("\n" + buf.String())
	}
}

// policySet is a policy directory holding decision.rego with body.
func policySet(body string) fstest.MapFS {
	return fstest.MapFS{"decision.rego": {Data: []byte("package guard\n\n" + body + "\n")}}
}

func TestCompileRefusesBrokenPolicies(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want []string // substrings of the error
	}{
		{"syntax error names file and line", policySet(`decision := {"outcome": "allow", "reasons": []}` + "\n\nbroken if { x := }\n\nok := 1"), []string{"decision.rego:5:", "rego_parse_error"}},
		{"type error names file and line", policySet(`decision := {"outcome": "allow", "reasons": []}` + "\n\nn := count(7)"), []string{"decision.rego:5:", "rego_type_error"}},
		{"unsafe variable names file and line", policySet("decision := x if { y == 1 }"), []string{"decision.rego:3:", "unsafe"}},
		{"non-deterministic builtin is refused", policySet("decision := {\"outcome\": \"allow\", \"reasons\": [], \"t\": time.now_ns()}"), []string{"decision.rego:3:", "time.now_ns"}},
		{"http.send is refused", policySet("decision := http.send({\"method\": \"get\", \"url\": \"http://x\"})"), []string{"decision.rego:3:", "http.send"}},
		{"error in a second file is located there", fstest.MapFS{
			"decision.rego": {Data: []byte("package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n")},
			"extra.rego":    {Data: []byte("package guard\n\nx := 1\n\ny := z\n")},
		}, []string{"extra.rego:5:", "var z is unsafe"}},
		{"no policies", fstest.MapFS{"README.md": {Data: []byte("hi")}}, []string{"no *.rego files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(context.Background(), tt.fsys)
			if err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileErrorIsPolicyError(t *testing.T) {
	_, err := Compile(context.Background(), policySet("decision := {\n  \"outcome\": count(1),\n}"))
	var pe *PolicyError
	if !errors.As(err, &pe) || len(pe.Problems) == 0 {
		t.Fatalf("error %v is not a *PolicyError with problems", err)
	}
	if p := pe.Problems[0]; p.File != "decision.rego" || p.Line != 4 {
		t.Errorf("problem at %s:%d, want decision.rego:4", p.File, p.Line)
	}
}

func TestCompileSkipsTestFiles(t *testing.T) {
	fsys := policySet(`decision := {"outcome": "allow", "reasons": []}`)
	fsys["decision_test.rego"] = &fstest.MapFile{Data: []byte("package guard\n\ntest_broken if {")}
	if _, err := Compile(context.Background(), fsys); err != nil {
		t.Fatalf("Compile read a test file: %v", err)
	}
}

func TestDecideRejectsBadDecisions(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"undefined decision", `other := 1`, "undefined"},
		{"decision defined only sometimes", `decision := {"outcome": "allow", "reasons": []} if input.agent_pr == false`, "undefined"},
		{"decision is not an object", `decision := "allow"`, "want an object"},
		{"unknown outcome", `decision := {"outcome": "maybe", "reasons": []}`, `"outcome" is "maybe"`},
		{"error is not a policy outcome", `decision := {"outcome": "error", "reasons": []}`, `"outcome" is "error"`},
		{"outcome missing", `decision := {"reasons": []}`, `"outcome" is missing`},
		{"reasons missing", `decision := {"outcome": "allow"}`, `"reasons" is missing`},
		{"reasons not an array", `decision := {"outcome": "allow", "reasons": "a"}`, `"reasons" must be an array`},
		{"reason without message", `decision := {"outcome": "block", "reasons": [{"rule": "r", "outcome": "block"}]}`, `reasons[0]: rule "r": "message" is missing`},
		{"reason with empty rule", `decision := {"outcome": "block", "reasons": [{"rule": "", "outcome": "block", "message": "m"}]}`, `"rule" is empty`},
		{"reason with bad outcome", `decision := {"outcome": "block", "reasons": [{"rule": "r", "outcome": "deny", "message": "m"}]}`, `"outcome" is "deny"`},
		{"freeze not a string", `decision := {"outcome": "block", "reasons": [{"rule": "r", "outcome": "block", "message": "m", "freeze": 1}]}`, `"freeze" must be a string`},
		{"match line not a number", `decision := {"outcome": "block", "reasons": [{"rule": "r", "outcome": "block", "message": "m", "matches": [{"file": "f", "line": "1", "text": "t"}]}]}`, `"line" must be a number`},
		{"match line not an integer", `decision := {"outcome": "block", "reasons": [{"rule": "r", "outcome": "block", "message": "m", "matches": [{"file": "f", "line": 1.5, "text": "t"}]}]}`, `"line" must be a non-negative integer`},
		{"outcome milder than a reason", `decision := {"outcome": "allow", "reasons": [{"rule": "r", "outcome": "block", "message": "m"}]}`, `less severe`},
		{"block without a reason", `decision := {"outcome": "block", "reasons": []}`, `has no reason with that outcome`},
		{"block with only an escalation", `decision := {"outcome": "block", "reasons": [{"rule": "r", "outcome": "escalate", "message": "m"}]}`, `has no reason with that outcome (the worst reason is "escalate")`},
		{"conflicting values", "decision := {\"outcome\": \"allow\", \"reasons\": []} if true\n\ndecision := {\"outcome\": \"block\", \"reasons\": []} if true", "evaluate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Compile tries a sample agent PR and refuses a set whose
			// decision for it is bad; Decide checks every decision.
			e, err := Compile(context.Background(), policySet(tt.body))
			if err == nil {
				var d pr.Decision
				if d, err = e.Decide(context.Background(), agentInput()); err == nil {
					t.Fatalf("Decide = %+v, want an error", d)
				}
			} else if !strings.Contains(err.Error(), "no valid decision") {
				t.Errorf("Compile error %q does not say the set gives no valid decision", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	t.Run("a set that decides the sample but not another PR fails at Decide", func(t *testing.T) {
		e, err := Compile(context.Background(), policySet(`decision := {"outcome": "allow", "reasons": []} if input.agent_pr == true`))
		if err != nil {
			t.Fatal(err)
		}
		in := agentInput()
		in.AgentPR = false
		if d, err := e.Decide(context.Background(), in); err == nil || !strings.Contains(err.Error(), "undefined") {
			t.Fatalf("Decide = %+v, %v; want undefined", d, err)
		}
	})
}

func TestDecideAcceptsWellFormedDecision(t *testing.T) {
	body := `decision := {"outcome": "block", "extra": 1, "reasons": [
	{"rule": "r", "outcome": "block", "message": "m", "freeze": "f", "until": "2026-03-09T08:00:00-04:00",
	 "matches": [{"file": "a_test.go", "line": 3, "text": "t.Skip()"}]},
	{"rule": "n", "outcome": "allow", "message": "note"},
]}`
	e, err := Compile(context.Background(), policySet(body))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), agentInput())
	if err != nil {
		t.Fatal(err)
	}
	want := pr.Decision{Outcome: pr.Block, Reasons: []pr.Reason{
		{Rule: "r", Outcome: pr.Block, Message: "m", Freeze: "f", Until: "2026-03-09T08:00:00-04:00",
			Matches: []pr.Match{{File: "a_test.go", Line: 3, Text: "t.Skip()"}}},
		{Rule: "n", Outcome: pr.Allow, Message: "note"},
	}}
	if fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("decision = %+v, want %+v", d, want)
	}
}

func TestRevision(t *testing.T) {
	ctx := context.Background()
	base := policySet(`decision := {"outcome": "allow", "reasons": []}`)
	e1, err := Compile(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(e1.Revision()) != 12 {
		t.Errorf("Revision() = %q, want 12 hex digits", e1.Revision())
	}
	withTest := policySet(`decision := {"outcome": "allow", "reasons": []}`)
	withTest["decision_test.rego"] = &fstest.MapFile{Data: []byte("package guard\n\ntest_x if true\n")}
	changed := policySet(`decision := {"outcome": "allow", "reasons": [] }`)
	renamed := fstest.MapFS{"main.rego": base["decision.rego"]}
	tests := []struct {
		name string
		fsys fstest.MapFS
		same bool
	}{
		{"same files give the same revision", policySet(`decision := {"outcome": "allow", "reasons": []}`), true},
		{"test files do not count", withTest, true},
		{"a changed byte changes it", changed, false},
		{"a renamed file changes it", renamed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e2, err := Compile(ctx, tt.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if (e1.Revision() == e2.Revision()) != tt.same {
				t.Errorf("revisions %s and %s, want same=%v", e1.Revision(), e2.Revision(), tt.same)
			}
		})
	}
}

func TestTestReportsPassAndFail(t *testing.T) {
	fsys := policySet(`decision := {"outcome": "allow", "reasons": []}`)
	fsys["decision_test.rego"] = &fstest.MapFile{Data: []byte(`package guard

test_allows if decision.outcome == "allow"

test_blocks if decision.outcome == "block"

cases := {"one": 1, "two": 2}

test_cases[name] if {
	some name, n in cases
	n == 1
}
`)}
	var buf bytes.Buffer
	passed, failed, err := Test(context.Background(), fsys, &buf, false)
	if err != nil {
		t.Fatal(err)
	}
	if passed != 1 || failed != 2 {
		t.Errorf("passed, failed = %d, %d, want 1, 2", passed, failed)
	}
	out := buf.String()
	for _, want := range []string{
		"PASS test_allows (decision_test.rego:3)\n",
		"FAIL test_blocks (decision_test.rego:5)\n",
		"FAIL test_cases (decision_test.rego:9)\n    FAIL two\n",
		"1 passed, 2 failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestTestRefusesBrokenPolicies(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"syntax error in a test", fstest.MapFS{
			"decision.rego":      {Data: []byte("package guard\n\ndecision := 1\n")},
			"decision_test.rego": {Data: []byte("package guard\n\ntest_x if { x := }\n\ntest_y if true\n")},
		}, "decision_test.rego:3:"},
		{"type error in a policy", fstest.MapFS{
			"decision.rego":      {Data: []byte("package guard\n\ndecision := 1\n\nx := count(1)\n")},
			"decision_test.rego": {Data: []byte("package guard\n\ntest_x if true\n")},
		}, "decision.rego:5:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Test(context.Background(), tt.fsys, &bytes.Buffer{}, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestDecideReadsSetsAsArrays: reasons and matches given as sets read as
// arrays (in sorted order), as OPA's JSON gives them, with both evaluators.
func TestDecideReadsSetsAsArrays(t *testing.T) {
	body := `decision := {"outcome": "escalate", "reasons": {
	{"rule": "r", "outcome": "escalate", "message": "m", "matches": {{"file": "b", "line": 2, "text": ""}, {"file": "a", "line": 1, "text": "t"}}},
	{"rule": "n", "outcome": "allow", "message": "note"},
}}`
	e, err := Compile(context.Background(), policySet(body))
	if err != nil {
		t.Fatal(err)
	}
	want := pr.Decision{Outcome: pr.Escalate, Reasons: []pr.Reason{
		{Rule: "r", Outcome: pr.Escalate, Message: "m", Matches: []pr.Match{{File: "a", Line: 1, Text: "t"}, {File: "b", Line: 2}}},
		{Rule: "n", Outcome: pr.Allow, Message: "note"},
	}}
	for name, decide := range map[string]func(context.Context, *pr.Input) (pr.Decision, error){
		"plan": e.decidePlan, "topdown": e.decideTopdown,
	} {
		d, err := decide(context.Background(), agentInput())
		if err != nil || !reflect.DeepEqual(d, want) {
			t.Errorf("%s: decision = %+v, %v; want %+v", name, d, err, want)
		}
	}
}
