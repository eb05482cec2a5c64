package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/pr"
)

// TestEvalExamples runs the README's guard eval examples (testdata/eval).
func TestEvalExamples(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join("..", "..", "testdata", "eval")
	f := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name     string
		event    string
		facts    string
		at       string
		outcome  string
		rule     string // a reason with this rule and outcome must be present
		contains string // in that reason's message
	}{
		{"agent quarantines a test at 03:17 local", "agent_pr.pull_request.json", "quarantine.facts.json", "2026-11-24T03:17:00-05:00",
			"escalate", "test_quarantine_off_hours", "checkout/checkout_test.go"},
		{"the same at 11:00 on a weekday with a human approval", "agent_pr.pull_request.json", "quarantine-approved.facts.json", "2026-11-24T11:00:00-05:00",
			"allow", "agent_self_merge", "Approved by @carol"},
		{"agent PR to main during friday-deploys", "agent_pr.pull_request.json", "quarantine-approved.facts.json", "2026-11-27T17:30:00-05:00",
			"block", "merge_freeze", "friday-deploys"},
		{"a human's PR during the freeze", "human_pr.pull_request.json", "human.facts.json", "2026-11-27T17:30:00-05:00",
			"allow", "", ""},
		{"agent renames a test file away at 03:17 (previous_filename)", "agent_pr.pull_request.json", "renamed.facts.json", "2026-11-24T03:17:00-05:00",
			"escalate", "test_quarantine_off_hours", "renames test file(s) checkout/checkout_test.go.disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runGuard(t, "eval", "--config", f("guard.yaml"), "--event", f(tt.event), "--facts", f(tt.facts), "--at", tt.at)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got struct {
				Outcome string `json:"outcome"`
				Reasons []struct {
					Rule, Outcome, Message, Until string
				} `json:"reasons"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not the decision JSON: %v\n%s", err, out)
			}
			if got.Outcome != tt.outcome {
				t.Fatalf("outcome %q, want %q\n%s", got.Outcome, tt.outcome, out)
			}
			if tt.rule == "" {
				return
			}
			for _, r := range got.Reasons {
				if r.Rule == tt.rule && strings.Contains(r.Message, tt.contains) {
					if tt.rule == "merge_freeze" && r.Until != "2026-11-30T13:00:00Z" {
						t.Fatalf("freeze end %q, want Monday 08:00 New York", r.Until)
					}
					return
				}
			}
			t.Fatalf("no %s reason mentioning %q:\n%s", tt.rule, tt.contains, out)
		})
	}
}

func TestEvalBadInput(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join("..", "..", "testdata", "eval")
	good := filepath.Join(dir, "agent_pr.pull_request.json")
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.json")
	os.WriteFile(bad, []byte(`{"action": "opened",`), 0o644)
	facts := filepath.Join(tmp, "facts.json")
	os.WriteFile(facts, []byte(`{"reviewz": []}`), 0o644)
	issue := filepath.Join(tmp, "issue.json")
	os.WriteFile(issue, []byte(`{"action":"created","issue":{"number":1},"comment":{"id":1,"body":"hi"},"repository":{"full_name":"a/b"}}`), 0o644)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no event file", []string{"eval"}, 2, "--event FILE is required"},
		{"missing event file", []string{"eval", "--event", filepath.Join(tmp, "nope.json")}, 1, "read --event"},
		{"malformed event JSON", []string{"eval", "--event", bad, "--event-name", "pull_request"}, 1, "not valid JSON"},
		{"bad --at", []string{"eval", "--event", good, "--at", "yesterday"}, 2, "RFC 3339"},
		{"unknown facts field", []string{"eval", "--event", good, "--facts", facts}, 1, `unknown field "reviewz"`},
		{"issue comment without a PR", []string{"eval", "--event", issue, "--event-name", "issue_comment"}, 1, "does not name a pull request"},
		{"a merge group", []string{"eval", "--event", filepath.Join("..", "..", "testdata", "webhooks", "merge_group.checks_requested.json"), "--event-name", "merge_group"}, 1, "pass the pull_request, pull_request_review or issue_comment payload"},
		{"unknown event", []string{"eval", "--event", good, "--event-name", "star"}, 1, "star"},
		{"missing policy dir", []string{"eval", "--event", good, "--policy-dir", filepath.Join(tmp, "nope")}, 1, "--policy-dir " + filepath.Join(tmp, "nope") + ":"},
		{"policy dir is a file", []string{"eval", "--event", good, "--policy-dir", bad}, 1, "is not a directory"},
		{"policies without a decision", []string{"eval", "--event", good, "--policy-dir", emptyPolicies(t)}, 1, "no valid decision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runGuard(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q, want it to contain %q", code, tt.code, errOut, tt.stderr)
			}
		})
	}
}

// emptyPolicies is a policy directory whose only file decides nothing.
func emptyPolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.rego"), []byte("package guard\n\nx := 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEvalNotesWhatServeWouldNotPublish: eval prints the policies' decision
// on stdout and says on stderr when `guard serve` would not publish it so.
func TestEvalNotesWhatServeWouldNotPublish(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join("..", "..", "testdata", "eval")
	base, err := os.ReadFile(filepath.Join(dir, "guard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	payload, err := os.ReadFile(filepath.Join(dir, "agent_pr.pull_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(payload, &doc); err != nil {
		t.Fatal(err)
	}
	doc["pull_request"].(map[string]any)["state"] = "closed"
	closed, _ := json.Marshal(doc)
	open := filepath.Join(dir, "agent_pr.pull_request.json")
	facts := filepath.Join(dir, "quarantine.facts.json")
	const night = "2026-11-24T03:17:00-05:00" // escalates
	for _, tt := range []struct {
		name, config, event, want string
	}{
		{"enforced, included, open", write("plain.yaml", string(base)), open, ""},
		{"excluded repository", write("excluded.yaml", string(base)+"repos:\n  exclude: [\"octo-org/*\"]\n"), open, "leave out octo-org/shop"},
		{"advisory mode", write("advisory.yaml", string(base)+"mode: advisory\n"), open, "as a passing check run"},
		{"closed pull request", write("plain2.yaml", string(base)), write("closed.pull_request.json", string(closed)), "the pull request is closed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runGuard(t, "eval", "--config", tt.config, "--event", tt.event, "--event-name", "pull_request", "--facts", facts, "--at", night)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got struct{ Outcome string }
			if err := json.Unmarshal([]byte(out), &got); err != nil || got.Outcome != "escalate" {
				t.Fatalf("stdout is not the policies' decision (escalate): %v\n%s", err, out)
			}
			if tt.want == "" {
				if strings.Contains(errOut, "note:") {
					t.Errorf("unexpected note: %s", errOut)
				}
				return
			}
			if !strings.Contains(errOut, "note: ") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not note %q", errOut, tt.want)
			}
		})
	}
}

// TestEvalReplay: a decision serve recorded is decided again from the
// trail's input (which keeps patch text only for the lines a rule
// matched), with the same outcome; other policies that decide otherwise
// exit 1 naming both.
func TestEvalReplay(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "timezone: UTC\n")
	h.clock.Set(time.Date(2026, 11, 28, 3, 17, 0, 0, time.UTC)) // a Saturday night
	addPull(fake, 5, agent, sha('5'))
	fake.AddFile(testRepo, 5, pr.File{Filename: "pay/pay_test.go", Status: "modified", Additions: 2,
		Patch: "@@ -1,1 +1,3 @@\n func TestPay(t *testing.T) {\n+\tt.Skip(\"flaky\")\n+\t// token=not-for-the-trail\n"})
	h.deliver("pull_request", prEvent(t, "opened", 5, agent, sha('5'), agent))
	run := h.waitCheckOn(t, sha('5'), "action_required")
	id := run.ExternalID
	st := openAudit(t, h)
	rec := waitRecord(t, st, 5, "the decision", kind("decision", "escalate"))
	if rec.ID != id || !slices.Contains(rec.Rules, "test_quarantine_off_hours") {
		t.Fatalf("record %s %v, check run %s", rec.ID, rec.Rules, id)
	}
	if strings.Contains(string(rec.Details), "not-for-the-trail") || !strings.Contains(string(rec.Details), `t.Skip(\"flaky\")`) {
		t.Fatalf("the trail keeps an added line no rule matched, or lacks the one matched:\n%s", rec.Details)
	}

	code, out, errOut := runGuard(t, "eval", "--replay", id, "--db", h.db)
	if code != 0 || !strings.Contains(out, `"outcome": "escalate"`) || !strings.Contains(out, "pay/pay_test.go") ||
		!strings.Contains(errOut, "as recorded") || !strings.Contains(errOut, "replayed with the same policies") {
		t.Fatalf("replay: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	allow := t.TempDir()
	if err := os.WriteFile(filepath.Join(allow, "decision.rego"), []byte("package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runGuard(t, "eval", "--replay", id, "--db", h.db, "--policy-dir", allow)
	if code != 1 || !strings.Contains(errOut, "replayed as allow ()") || !strings.Contains(errOut, "the trail has escalate (") || !strings.Contains(errOut, "test_quarantine_off_hours") ||
		!strings.Contains(errOut, "replayed with other policies: revision ") {
		t.Fatalf("replay with other policies: exit %d, stderr %s", code, errOut)
	}

	// A decision recorded by a guard that kept no markers.
	old := `{"input": {"version": 1, "files": [{"filename": "a_test.go", "status": "modified", "additions": 1, "added_lines": [], "added_lines_sha256": "x", "added_lines_omitted": 1}]}}`
	if _, err := st.Append(context.Background(), audit.Record{ID: "older", Kind: audit.KindDecision, Repository: testRepo, PullRequest: 9,
		Outcome: "allow", CheckRunID: 1, Details: json.RawMessage(old)}); err != nil {
		t.Fatal(err)
	}
	// A merge group's decision keeps its result, not a policy input.
	if _, err := st.Append(context.Background(), audit.Record{ID: "group", Kind: audit.KindDecision, Repository: testRepo,
		Outcome: "allow", CheckRunID: 2, Details: json.RawMessage(`{"result": {"outcome": "allow"}, "pull_requests": [1]}`)}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--replay", "older", "--db", h.db}, 1, "recorded by an older guard"},
		{[]string{"--replay", "group", "--db", h.db}, 1, "only a pull request's decision can be replayed"},
		{[]string{"--replay", "nope", "--db", h.db}, 1, "not found"},
		{[]string{"--replay", id, "--db", h.db, "--event", "x.json"}, 2, "leave out --event"},
		{[]string{"--replay", id, "--db", h.db, "--config", "guard.yaml"}, 2, "configuration included"},
		{[]string{"--replay", id, "--db", filepath.Join(t.TempDir(), "none.db")}, 1, "guard serve' creates it"},
	} {
		if code, _, errOut := runGuard(t, append([]string{"eval"}, tt.args...)...); code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("eval %v: exit %d, stderr %s; want %d, %q", tt.args, code, errOut, tt.code, tt.stderr)
		}
	}
}
