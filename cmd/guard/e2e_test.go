package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

const (
	testRepo   = "octo-org/widgets"
	testInst   = int64(42)
	testSecret = "e2e-webhook-secret"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a guard served in-process on :0 against a fake GitHub.
type harness struct {
	t     *testing.T
	fake  *githubtest.Server
	base  string
	db    string
	log   *syncBuffer
	seq   int
	stop  func()
	clock *testClock
}

// testClock is a settable clock; zero means the real time.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// newFake returns a fake GitHub with the test installation and repository.
func newFake(t *testing.T) *githubtest.Server {
	fake := githubtest.New(t)
	fake.AddInstallation(testInst, "octo-org")
	fake.AddRepo(testInst, testRepo)
	return fake
}

// startGuard serves a guard with cfgYAML (may be "") until the test ends.
func startGuard(t *testing.T, fake *githubtest.Server, cfgYAML string) *harness {
	t.Helper()
	return startGuardWith(t, fake, cfgYAML, nil)
}

// startGuardWith is startGuard with a hook that changes the server config.
func startGuardWith(t *testing.T, fake *githubtest.Server, cfgYAML string, edit func(*serveConfig)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, fake: fake, db: filepath.Join(dir, "guard.db"), log: &syncBuffer{}, clock: &testClock{}}
	c := &serveConfig{
		Addr:          "127.0.0.1:0",
		DB:            h.db,
		AppID:         fake.AppID(),
		PrivateKey:    fake.PrivateKeyPEM(),
		WebhookSecret: testSecret,
		GitHubURL:     fake.URL(),
		PublicURL:     "https://guard.example.com",
		Workers:       4,
		LogLevel:      "debug",
		now:           h.clock.Now,
		tick:          50 * time.Millisecond,
		// The reconcile evaluates every open PR of the fake at start; tests
		// that want it turn it on.
		reconcile: -1,
		// GitHub retry waits are real waits, shortened so tests stay fast.
		ghSleep: func(ctx context.Context, d time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d / 100):
				return nil
			}
		},
	}
	if cfgYAML != "" {
		c.ConfigPath = filepath.Join(dir, "guard.yaml")
		if err := os.WriteFile(c.ConfigPath, []byte(cfgYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(c)
	}
	ready := make(chan string, 1)
	c.ready = ready
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, stdio{in: strings.NewReader(""), out: io.Discard, err: h.log}) }()
	select {
	case addr := <-ready:
		h.base = "http://" + addr
	case err := <-done:
		t.Fatalf("guard did not start: %v\n%s", err, h.log)
	case <-time.After(20 * time.Second):
		t.Fatal("guard did not start in time")
	}
	var once sync.Once
	h.stop = func() { // idempotent: a test may stop a guard to restart on its database
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("guard log:\n%s", h.log)
		}
	})
	return h
}

// deliver posts a signed webhook and returns the status code.
func (h *harness) deliver(event string, payload []byte) int {
	h.t.Helper()
	h.seq++
	return postWebhook(h.t, h.base, event, fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), h.seq), payload)
}

func postWebhook(t *testing.T, base, event, id string, payload []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(payload))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(testSecret), payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post webhook: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitCheck waits until the merge-guard run on sha has conclusion want,
// failing the harness's test otherwise.
func (h *harness) waitCheck(sha, want string) githubtest.CheckRun {
	h.t.Helper()
	return h.waitCheckOn(h.t, sha, want)
}

// waitCheckOn is waitCheck failing t (use it in subtests).
func (h *harness) waitCheckOn(t testing.TB, sha, want string) githubtest.CheckRun {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var runs []githubtest.CheckRun
	for time.Now().Before(deadline) {
		runs = h.fake.CheckRuns(testRepo, sha)
		if len(runs) > 0 && runs[len(runs)-1].Conclusion == want {
			return runs[len(runs)-1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("check run on %s: want conclusion %q, have %+v", sha[:7], want, runs)
	return githubtest.CheckRun{}
}

// payload loads a GitHub example payload and sets dotted paths in it.
func payload(t testing.TB, fixture string, set map[string]any) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	base := map[string]any{
		"installation":              map[string]any{"id": testInst, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="},
		"repository.full_name":      testRepo,
		"repository.name":           "widgets",
		"repository.owner.login":    "octo-org",
		"repository.owner.type":     "Organization",
		"repository.default_branch": "main",
	}
	for k, v := range set {
		base[k] = v
	}
	for path, v := range base {
		setPath(m, path, v)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// prEvent is a pull_request payload for PR n by author at head.
func prEvent(t testing.TB, action string, n int, author pr.Account, head string, sender pr.Account) []byte {
	return payload(t, "pull_request.opened", map[string]any{
		"action":                           action,
		"number":                           n,
		"pull_request.number":              n,
		"pull_request.user.login":          author.Login,
		"pull_request.user.type":           author.Type,
		"pull_request.head.sha":            head,
		"pull_request.head.ref":            fmt.Sprintf("pr-%d", n),
		"pull_request.base.ref":            "main",
		"pull_request.state":               "open",
		"pull_request.updated_at":          time.Now().UTC().Format(time.RFC3339),
		"pull_request.head.repo.full_name": testRepo,
		"pull_request.base.repo.full_name": testRepo,
		"sender.login":                     sender.Login,
		"sender.type":                      sender.Type,
	})
}

// reviewEvent is a pull_request_review payload.
func reviewEvent(t testing.TB, n int, author pr.Account, head string, reviewer pr.Account, commit string) []byte {
	return payload(t, "pull_request_review.submitted", map[string]any{
		"pull_request.number":     n,
		"pull_request.user.login": author.Login,
		"pull_request.user.type":  author.Type,
		"pull_request.head.sha":   head,
		"pull_request.base.ref":   "main",
		"pull_request.state":      "open",
		"pull_request.updated_at": time.Now().UTC().Format(time.RFC3339),
		"review.user.login":       reviewer.Login,
		"review.user.type":        reviewer.Type,
		"review.state":            "approved",
		"review.commit_id":        commit,
		"sender.login":            reviewer.Login,
		"sender.type":             reviewer.Type,
	})
}

var (
	alice = pr.Account{Login: "alice", Type: "User"}
	carol = pr.Account{Login: "carol", Type: "User"}
	agent = pr.Account{Login: "ci-agent[bot]", Type: "Bot"}
	other = pr.Account{Login: "renovate[bot]", Type: "Bot"}
)

// addPull seeds the fake with an open PR and one commit by its author.
func addPull(fake *githubtest.Server, n int, author pr.Account, head string) {
	fake.AddPull(testRepo, pr.PullRequest{Number: n, Title: fmt.Sprintf("change %d", n), Author: author, HeadSHA: head, BaseRef: "main", BaseSHA: strings.Repeat("0", 40)})
	fake.AddCommit(testRepo, n, pr.Commit{
		SHA: head, Message: "change",
		Author:    pr.Person{Name: author.Login, Email: author.Login + "@example.com", Account: author, Date: time.Now().Add(-time.Hour)},
		Committer: pr.Person{Name: author.Login, Email: author.Login + "@example.com", Account: author, Date: time.Now().Add(-time.Hour)},
	})
}

func sha(c byte) string { return strings.Repeat(string(c), 40) }

// TestEndToEnd drives the real handler and workers against the fake GitHub:
// SPEC §1's core table for self-merging agents.
func TestEndToEnd(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")

	t.Run("a human's PR gets success", func(t *testing.T) {
		addPull(fake, 1, alice, sha('1'))
		if code := h.deliver("pull_request", prEvent(t, "opened", 1, alice, sha('1'), alice)); code != http.StatusAccepted {
			t.Fatalf("webhook answered %d", code)
		}
		run := h.waitCheckOn(t, sha('1'), "success")
		if run.Name != "merge-guard" || !strings.Contains(run.Title, "Not agent-authored") {
			t.Fatalf("run %+v", run)
		}
		waitFor(t, "the decision log line", func() bool { return strings.Contains(h.log.String(), "msg=decided") })
		for _, line := range strings.Split(h.log.String(), "\n") {
			if strings.Contains(line, "msg=decided") && !(strings.Contains(line, "delivery=e2e-") &&
				strings.Contains(line, "repo="+testRepo) && strings.Contains(line, "pr=1") && strings.Contains(line, "sha=")) {
				t.Fatalf("log line lacks delivery, repo, PR or SHA: %s", line)
			}
		}
	})

	t.Run("an agent's PR without human approval is held for a human", func(t *testing.T) {
		addPull(fake, 2, agent, sha('2'))
		h.deliver("pull_request", prEvent(t, "opened", 2, agent, sha('2'), agent))
		run := h.waitCheckOn(t, sha('2'), "action_required")
		if !strings.HasPrefix(run.DetailsURL, "https://guard.example.com/decisions/") || !strings.Contains(run.DetailsURL, "sig=") {
			t.Fatalf("details URL %q", run.DetailsURL)
		}
		if !strings.Contains(run.Summary, "/guard approve") {
			t.Fatalf("summary does not say what a human must do:\n%s", run.Summary)
		}
		if len(run.Actions) != 1 || run.Actions[0].Identifier != "approve" {
			t.Fatalf("escalated run offers %+v, want the Approve button", run.Actions)
		}
	})

	t.Run("a human approval on the head updates the same run to success", func(t *testing.T) {
		before := fake.CheckRuns(testRepo, sha('2'))
		fake.AddReview(testRepo, 2, pr.Review{User: carol, State: "APPROVED", CommitID: sha('2')})
		h.deliver("pull_request_review", reviewEvent(t, 2, agent, sha('2'), carol, sha('2')))
		run := h.waitCheckOn(t, sha('2'), "success")
		if runs := fake.CheckRuns(testRepo, sha('2')); len(runs) != 1 || run.ID != before[0].ID {
			t.Fatalf("want the run updated in place, have %d runs (%d -> %d)", len(runs), before[0].ID, run.ID)
		}
		if !strings.Contains(run.Title, "carol") {
			t.Fatalf("title %q does not name the approver", run.Title)
		}
		if len(run.Actions) != 0 {
			t.Fatalf("an allowed run still offers %+v", run.Actions)
		}
	})

	approvals := []struct {
		name     string
		reviewer pr.Account
		commit   string
	}{
		{"an approval of an older SHA does not count", carol, sha('e')},
		{"an approval by a bot does not count", other, ""},
		{"an approval by the author does not count", agent, ""},
	}
	for i, tt := range approvals {
		t.Run(tt.name, func(t *testing.T) {
			n := 10 + i
			head := sha(byte('a' + i))
			addPull(fake, n, agent, head)
			commit := tt.commit
			if commit == "" {
				commit = head
			}
			fake.AddReview(testRepo, n, pr.Review{User: tt.reviewer, State: "APPROVED", CommitID: commit})
			h.deliver("pull_request_review", reviewEvent(t, n, agent, head, tt.reviewer, commit))
			h.waitCheckOn(t, head, "action_required")
		})
	}
}

// TestGitHubFailures: GitHub errors are retried, and a GitHub that stays
// down fails the check closed, with the reason.
func TestGitHubFailures(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")

	t.Run("5xx then success is retried to the right answer", func(t *testing.T) {
		addPull(fake, 30, agent, sha('3'))
		fake.AddReview(testRepo, 30, pr.Review{User: carol, State: "APPROVED", CommitID: sha('3')})
		fake.FailNext("GET", "/repos/{owner}/{repo}/pulls/{number}/reviews", 2, http.StatusBadGateway, nil, "")
		h.deliver("pull_request", prEvent(t, "opened", 30, agent, sha('3'), agent))
		h.waitCheckOn(t, sha('3'), "success")
	})

	t.Run("GitHub down after retries fails closed with the error", func(t *testing.T) {
		addPull(fake, 31, agent, sha('4'))
		fake.FailNext("GET", "/repos/{owner}/{repo}/pulls/{number}/files", 0, http.StatusServiceUnavailable, nil, "")
		defer fake.ClearFaults()
		h.deliver("pull_request", prEvent(t, "opened", 31, agent, sha('4'), agent))
		run := h.waitCheckOn(t, sha('4'), "failure")
		if !strings.Contains(run.Title, "could not decide") || !strings.Contains(run.Summary, "list files") {
			t.Fatalf("failure run does not say why: %q\n%s", run.Title, run.Summary)
		}
	})

	t.Run("a delivery that failed is processed when GitHub redelivers it", func(t *testing.T) {
		addPull(fake, 32, agent, sha('5'))
		fake.FailNext("", "", 0, http.StatusInternalServerError, nil, "")
		body := prEvent(t, "opened", 32, agent, sha('5'), agent)
		if code := postWebhook(t, h.base, "pull_request", "redeliver-me", body); code != http.StatusAccepted {
			t.Fatalf("first delivery answered %d", code)
		}
		waitFor(t, "the delivery to fail", func() bool { return strings.Contains(h.log.String(), "delivery failed") })
		fake.ClearFaults()
		if runs := fake.CheckRuns(testRepo, sha('5')); len(runs) != 0 {
			t.Fatalf("a check run appeared while GitHub refused everything: %+v", runs)
		}
		if code := postWebhook(t, h.base, "pull_request", "redeliver-me", body); code != http.StatusAccepted {
			t.Fatalf("redelivery of a failed delivery answered %d, want 202 (processed again)", code)
		}
		h.waitCheckOn(t, sha('5'), "action_required")
		if code := postWebhook(t, h.base, "pull_request", "redeliver-me", body); code != http.StatusOK {
			t.Fatalf("redelivery of a processed delivery answered %d, want 200 (not processed again)", code)
		}
	})
}

// waitFor polls cond until it holds or fails the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEndpoints: health, readiness, metrics and the intake's refusals on the
// real server.
func TestEndpoints(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	get := func(path string) (int, string) {
		resp, err := http.Get(h.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("readyz %d %q", code, body)
	}
	// A bad signature is refused and stored nowhere.
	body := prEvent(t, "opened", 1, alice, sha('1'), alice)
	req, _ := http.NewRequest(http.MethodPost, h.base+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", "forged")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("not the secret"), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged delivery answered %d", resp.StatusCode)
	}
	if code := h.deliver("star", []byte(`{"action":"created"}`)); code != http.StatusOK {
		t.Fatalf("unused event answered %d", code)
	}
	addPull(fake, 1, alice, sha('1'))
	h.deliver("pull_request", body)
	h.waitCheckOn(t, sha('1'), "success")
	// The decision is counted once it is recorded, just after publishing.
	waitFor(t, "the decision metric", func() bool {
		_, m := get("/metrics")
		return strings.Contains(m, `guard_decisions_total{outcome="allow"} 1`)
	})
	_, metrics := get("/metrics")
	for _, want := range []string{
		`guard_webhook_deliveries_total{event="pull_request",result="unauthorized"} 1`,
		`guard_webhook_deliveries_total{event="other",result="ignored"} 1`,
		`guard_webhook_deliveries_total{event="pull_request",result="accepted"} 1`,
		`guard_decisions_total{outcome="allow"} 1`,
		"guard_queue_depth",
		"guard_github_api_calls_total",
		"guard_github_rate_limit_remaining",
		"guard_processing_seconds_count",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestStaleHeadIsRecordedNotPublished: GitHub may deliver out of order; an
// evaluation of a head that is no longer the PR's head never reaches GitHub,
// also when both events carry the same updated_at second (bots push within
// one), and the unpublished record does not make the merge of the current
// head a bypass.
func TestStaleHeadIsRecordedNotPublished(t *testing.T) {
	for _, tt := range []struct {
		name, olderAt string
	}{
		{"the late event is older", "2026-11-20T10:00:00Z"},
		{"both in the same second", "2026-11-20T10:05:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			h := startGuard(t, fake, "")
			addPull(fake, 40, agent, sha('b'))
			fake.AddReview(testRepo, 40, pr.Review{User: carol, State: "APPROVED", CommitID: sha('b')})
			event := func(action, head, at string) []byte {
				return payload(t, "pull_request."+action, map[string]any{
					"number": 40, "pull_request.number": 40, "pull_request.user.login": agent.Login, "pull_request.user.type": "Bot",
					"pull_request.head.sha": head, "pull_request.base.ref": "main", "pull_request.state": "open",
					"pull_request.updated_at": at, "sender.login": agent.Login, "sender.type": "Bot",
				})
			}
			h.deliver("pull_request", event("synchronize", sha('b'), "2026-11-20T10:05:00Z"))
			h.waitCheckOn(t, sha('b'), "success")
			h.deliver("pull_request", event("opened", sha('a'), tt.olderAt))
			st := openAudit(t, h)
			waitFor(t, "the late delivery to be processed", func() bool {
				return len(records(t, st, 40, kind("decision", ""))) == 2
			})
			if runs := fake.CheckRuns(testRepo, sha('a')); len(runs) != 0 {
				t.Fatalf("a decision for a stale head was published: %+v", runs)
			}
			if p, _, err := st.TrackedPR(context.Background(), testRepo, 40); err != nil || p.HeadSHA != sha('b') {
				t.Fatalf("tracked head %s (%v), want the current one", p.HeadSHA, err)
			}
			if runs := fake.CheckRuns(testRepo, sha('b')); len(runs) != 1 || runs[0].Conclusion != "success" {
				t.Fatalf("the current head's runs: %+v", runs)
			}

			closed := patchJSON(t, payload(t, "pull_request.closed", nil), map[string]any{
				"number": 40, "pull_request.number": 40,
				"pull_request.user":     map[string]any{"login": agent.Login, "type": "Bot", "id": 5},
				"pull_request.head.sha": sha('b'), "pull_request.base.ref": "main", "pull_request.merged": true,
				"pull_request.merged_by": map[string]any{"login": "mona", "type": "User", "id": 6},
				"pull_request.state":     "closed", "sender": map[string]any{"login": "mona", "type": "User", "id": 6},
			})
			h.deliver("pull_request", closed)
			if rec := waitRecord(t, st, 40, "the merge", kind("merge", "")); rec.Outcome != "merged" {
				t.Fatalf("the merge of the allowed head was recorded as %s: %s", rec.Outcome, rec.Reason)
			}
		})
	}
}

// TestPolicyReload: with --policy-dir the guard reloads policies changed on
// disk; a broken change is refused (file:line logged) and the last good set
// keeps deciding.
func TestPolicyReload(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Glob(filepath.Join("..", "..", "policies", "*.rego"))
	if err != nil || len(src) == 0 {
		t.Fatalf("policies: %v", err)
	}
	for _, f := range src {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		b, _ := os.ReadFile(f)
		os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
	}
	fake := newFake(t)
	h := startGuardWith(t, fake, "", func(c *serveConfig) {
		c.PolicyDir = dir
		c.reloadEvery = 100 * time.Millisecond
	})

	os.WriteFile(filepath.Join(dir, "house.rego"), []byte("package guard\n\nfindings contains {\n"), 0o644)
	waitFor(t, "the broken policy to be refused", func() bool {
		return strings.Contains(h.log.String(), "policy reload refused") && strings.Contains(h.log.String(), "house.rego:")
	})
	addPull(fake, 50, alice, sha('6'))
	h.deliver("pull_request", prEvent(t, "opened", 50, alice, sha('6'), alice))
	h.waitCheckOn(t, sha('6'), "success")

	os.WriteFile(filepath.Join(dir, "house.rego"), []byte(`package guard

findings contains {"rule": "house_rule", "outcome": "block", "message": "nothing merges today"} if {
	input.pull_request.title == "change 51"
}
`), 0o644)
	waitFor(t, "the new policy set", func() bool { return strings.Contains(h.log.String(), "policies reloaded") })
	addPull(fake, 51, alice, sha('7'))
	h.deliver("pull_request", payload(t, "pull_request.opened", map[string]any{
		"number": 51, "pull_request.number": 51, "pull_request.title": "change 51",
		"pull_request.user.login": "alice", "pull_request.user.type": "User", "pull_request.head.sha": sha('7'),
		"pull_request.base.ref": "main", "pull_request.state": "open", "sender.login": "alice",
	}))
	run := h.waitCheckOn(t, sha('7'), "failure")
	if !strings.Contains(run.Title, "nothing merges today") {
		t.Fatalf("title %q", run.Title)
	}
}

// TestReconcileRepairsLostWebhooks: GitHub never redelivers by itself, so
// the reconcile finds open PRs without a current check run (never seen, or
// head moved without a synchronize) and evaluates them.
func TestReconcileRepairsLostWebhooks(t *testing.T) {
	fake := newFake(t)
	addPull(fake, 60, agent, sha('c')) // its "opened" webhook was lost
	addPull(fake, 61, alice, sha('d'))
	h := startGuardWith(t, fake, "", func(c *serveConfig) { c.reconcile = 200 * time.Millisecond })
	h.waitCheckOn(t, sha('c'), "action_required")
	h.waitCheckOn(t, sha('d'), "success")

	// A push whose synchronize never arrives.
	fake.AddCommit(testRepo, 60, pr.Commit{SHA: sha('e'), Message: "more",
		Author:    pr.Person{Name: "agent", Account: agent, Date: time.Now()},
		Committer: pr.Person{Name: "agent", Account: agent, Date: time.Now()}})
	p, _ := fake.Pull(testRepo, 60)
	p.HeadSHA = sha('e')
	fake.AddPull(testRepo, p)
	h.waitCheckOn(t, sha('e'), "action_required")

	// Steady state: nothing changed, so a reconcile costs only 304s.
	time.Sleep(300 * time.Millisecond)
	fake.ResetCalls()
	time.Sleep(500 * time.Millisecond)
	for _, c := range fake.Calls() {
		t.Errorf("a quiet reconcile cost a call: %s %s -> %d", c.Method, c.Route, c.Status)
	}
	if len(fake.FreeCalls()) == 0 {
		t.Error("no reconcile ran in the quiet window")
	}
}

// TestLatePayloadOnTheSameHeadIsReadAfresh: an event that shows the PR as it
// was before a state already evaluated (here: the agent PR was retargeted
// to a frozen branch, then an older `labeled` on the same head arrives) is
// decided on the PR as it is now, not on the payload's old base.
func TestLatePayloadOnTheSameHeadIsReadAfresh(t *testing.T) {
	fake := newFake(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	cfg := fmt.Sprintf("freezes:\n  - name: release-window\n    from: %q\n    to: %q\n    branches: [main]\n",
		t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339))
	h := startGuard(t, fake, cfg)
	h.clock.Set(t0)
	addPull(fake, 42, agent, sha('c')) // base main: frozen
	fake.AddReview(testRepo, 42, pr.Review{User: carol, State: "APPROVED", CommitID: sha('c')})
	event := func(action, base, updated string) []byte {
		return payload(t, "pull_request."+action, map[string]any{
			"number": 42, "pull_request.number": 42, "pull_request.user.login": agent.Login, "pull_request.user.type": "Bot",
			"pull_request.head.sha": sha('c'), "pull_request.base.ref": base, "pull_request.state": "open",
			"pull_request.updated_at": updated, "sender.login": agent.Login, "sender.type": "Bot",
		})
	}
	h.deliver("pull_request", event("opened", "main", "2026-11-20T10:10:00Z"))
	blocked := h.waitCheckOn(t, sha('c'), "failure")
	h.deliver("pull_request", event("labeled", "feature", "2026-11-20T10:00:00Z"))
	waitFor(t, "the late delivery to be processed", func() bool {
		code, out, _ := runGuard(t, "audit", "export", "--db", h.db, "--format", "jsonl", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z")
		return code == 0 && strings.Count(out, `"kind":"decision"`) >= 2
	})
	runs := fake.CheckRuns(testRepo, sha('c'))
	if len(runs) != 1 || runs[0].ID != blocked.ID || runs[0].Conclusion != "failure" {
		t.Fatalf("after a late payload with the old base: runs %+v, want the blocked run still failing", runs)
	}
}

// TestConfigChangeReevaluatesAtOnce: a freeze added to guard.yaml reaches
// the open agent PRs as soon as the guard runs with it, not at the next
// boundary of the calendar it ran with before.
func TestConfigChangeReevaluatesAtOnce(t *testing.T) {
	fake := newFake(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	h := startGuard(t, fake, "timezone: UTC\nbusiness_hours:\n  days: []\n")
	h.clock.Set(t0)
	addPull(fake, 43, agent, sha('d'))
	fake.AddReview(testRepo, 43, pr.Review{User: carol, State: "APPROVED", CommitID: sha('d')})
	h.deliver("pull_request", prEvent(t, "opened", 43, agent, sha('d'), agent))
	green := h.waitCheckOn(t, sha('d'), "success")
	h.stop()

	cfg := fmt.Sprintf("timezone: UTC\nbusiness_hours:\n  days: []\nfreezes:\n  - name: added-later\n    from: %q\n    to: %q\n",
		t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339))
	h2 := startGuardWith(t, fake, cfg, func(c *serveConfig) { c.DB = h.db })
	h2.clock.Set(t0.Add(time.Minute))
	run := h2.waitCheckOn(t, sha('d'), "failure")
	if run.ID != green.ID || !strings.Contains(run.Title+run.Summary, "added-later") {
		t.Fatalf("blocked run %+v: not the same run or does not name the freeze", run)
	}
}

// TestSchedulerDropsPRsGitHubNoLongerShows: a tracked PR GitHub answers 404
// for (its repository left the installation) stops being tracked at the
// next boundary instead of failing every tick, and the other PRs are still
// re-evaluated.
func TestSchedulerDropsPRsGitHubNoLongerShows(t *testing.T) {
	fake := newFake(t)
	h, from, _ := guardWithWindow(t, fake, "")
	for _, n := range []int{44, 45} {
		head := fmt.Sprintf("%040x", n)
		addPull(fake, n, agent, head)
		fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: head})
		h.deliver("pull_request", prEvent(t, "opened", n, agent, head, agent))
		h.waitCheckOn(t, head, "success")
	}
	fake.FailNext("GET", "/repos/"+testRepo+"/pulls/44", 0, http.StatusNotFound, nil, "")
	fake.FailNext("GET", "/repos/"+testRepo+"/pulls/44/*", 0, http.StatusNotFound, nil, "")
	h.clock.Set(from.Add(time.Minute))
	h.waitCheckOn(t, fmt.Sprintf("%040x", 45), "failure")
	st := openAudit(t, h)
	waitFor(t, "the PR GitHub no longer shows to stop being tracked", func() bool {
		p, ok, err := st.TrackedPR(context.Background(), testRepo, 44)
		return err == nil && ok && !p.Open
	})
}

// TestSchedulerRetriesOnlyWhatFailed: in an outage a re-evaluation pass
// stops after three failures in a row; the next tick tries the PRs not
// tried yet first, so a few PRs that keep failing do not keep a freeze from
// the others, and a PR done is not asked for again. A boundary passing
// meanwhile starts the re-evaluation over.
func TestSchedulerRetriesOnlyWhatFailed(t *testing.T) {
	fake := newFake(t)
	h, from, to := guardWithWindow(t, fake, "")
	heads := map[int]string{}
	for n := 60; n <= 64; n++ {
		heads[n] = fmt.Sprintf("%040x", n)
		addPull(fake, n, agent, heads[n])
		fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: heads[n]})
		h.deliver("pull_request", prEvent(t, "opened", n, agent, heads[n], agent))
		h.waitCheckOn(t, heads[n], "success")
	}
	for n := 60; n <= 62; n++ { // the first three, in the order they are tried
		fake.FailNext("GET", fmt.Sprintf("/repos/%s/pulls/%d", testRepo, n), 0, http.StatusBadGateway, nil, "")
		fake.FailNext("GET", fmt.Sprintf("/repos/%s/pulls/%d/*", testRepo, n), 0, http.StatusBadGateway, nil, "")
	}
	calls := func(n int) int { // GitHub calls about PR n, 304s included
		pull := fmt.Sprintf("/repos/%s/pulls/%d", testRepo, n)
		c := 0
		for _, call := range slices.Concat(fake.Calls(), fake.FreeCalls()) {
			if call.Path == pull || strings.HasPrefix(call.Path, pull+"/") || strings.Contains(call.Path, heads[n]) {
				c++
			}
		}
		return c
	}
	failures := func() int { return strings.Count(h.log.String(), "pr=60 err=") }

	h.clock.Set(from.Add(time.Minute)) // the freeze window has begun
	waitFor(t, "a first pass to stop after three failures", func() bool {
		return strings.Contains(h.log.String(), "the rest at the next tick\" failures=3 left=2")
	})
	h.waitCheckOn(t, heads[63], "failure")
	h.waitCheckOn(t, heads[64], "failure")
	done63, done64, f := calls(63), calls(64), failures()
	waitFor(t, "three more passes", func() bool { return failures() >= f+3 })
	if calls(63) != done63 || calls(64) != done64 {
		t.Errorf("PRs 63 and 64, done, were asked for again by the retries: %d, %d calls, then %d, %d", done63, done64, calls(63), calls(64))
	}

	// The window ends while GitHub still fails: that is another
	// re-evaluation, so what the retried one did counts for nothing.
	h.clock.Set(to.Add(time.Minute))
	h.waitCheckOn(t, heads[63], "success")
	h.waitCheckOn(t, heads[64], "success")
	fake.ClearFaults()
	st := openAudit(t, h)
	waitFor(t, "the re-evaluation to succeed (the next boundary noted)", func() bool {
		v, ok, err := st.State(context.Background(), "scheduler.next_boundary")
		b, perr := time.Parse(time.RFC3339Nano, v)
		return err == nil && ok && perr == nil && b.After(to)
	})
}

// TestTruncatedCommitListFailsClosed: GitHub lists at most 250 commits of a
// pull request; with more, an agent's commit can be among those it does not
// list, so the guard fails closed rather than call the PR a human's. Also
// when the event's payload has no counts (a review's, GitHub's
// simple-pull-request): the guard reads them.
func TestTruncatedCommitListFailsClosed(t *testing.T) {
	for _, tt := range []struct {
		name  string
		event string
		body  func(t *testing.T, head string) []byte
	}{
		{"pull_request payload", "pull_request", func(t *testing.T, head string) []byte {
			return patchJSON(t, prEvent(t, "opened", 46, alice, head, alice), map[string]any{"pull_request.commits": 251})
		}},
		{"review payload, which has no counts", "pull_request_review", func(t *testing.T, head string) []byte {
			return reviewEvent(t, 46, alice, head, carol, head)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			h := startGuard(t, fake, "")
			head := sha('e')
			addPull(fake, 46, alice, head)
			for i := 1; i <= 250; i++ { // with addPull's: 251, the agent's last
				by := alice
				if i == 250 {
					by = agent
				}
				p := pr.Person{Name: by.Login, Account: by, Date: time.Now().Add(-time.Hour)}
				fake.AddCommit(testRepo, 46, pr.Commit{SHA: fmt.Sprintf("%040x", 0xe000+i), Message: "more", Author: p, Committer: p})
			}
			h.deliver(tt.event, tt.body(t, head))
			run := h.waitCheckOn(t, head, "failure")
			if !strings.Contains(run.Title+run.Summary+run.Text, "GitHub lists at most 250") {
				t.Fatalf("failure does not say why: %s\n%s\n%s", run.Title, run.Summary, run.Text)
			}
		})
	}
}

// guardWithWindow starts a guard whose guard.yaml (extra, then) has one
// freeze window, release-window, from 5 to 10 minutes after now; the
// guard's clock is set to now (whole seconds).
func guardWithWindow(t *testing.T, fake *githubtest.Server, extra string) (h *harness, from, to time.Time) {
	t.Helper()
	t0 := time.Now().UTC().Truncate(time.Second)
	from, to = t0.Add(5*time.Minute), t0.Add(10*time.Minute)
	cfg := extra + fmt.Sprintf("freezes:\n  - name: release-window\n    from: %q\n    to: %q\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
	h = startGuard(t, fake, cfg)
	h.clock.Set(t0)
	return h, from, to
}

// TestAdvisoryMode: with mode: advisory the check always passes, its title
// saying what enforce mode would do (also when the guard cannot decide),
// with no buttons; the trail keeps the real outcome and no reviewer is
// asked.
func TestAdvisoryMode(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "mode: advisory\nescalation:\n  reviewers: {users: [carol]}\n")
	st := openAudit(t, h)

	addPull(fake, 1, agent, sha('1'))
	h.deliver("pull_request", prEvent(t, "opened", 1, agent, sha('1'), agent))
	run := h.waitCheckOn(t, sha('1'), "success")
	if !strings.HasPrefix(run.Title, "Advisory: enforce mode would hold this for a human: ") || len(run.Actions) != 0 {
		t.Fatalf("advisory run %q with actions %+v", run.Title, run.Actions)
	}
	if rec := waitRecord(t, st, 1, "the decision", kind("decision", "")); rec.Outcome != "escalate" {
		t.Fatalf("recorded %s, want the real outcome escalate", rec.Outcome)
	}
	if n := fake.CallCount("POST", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers"); n != 0 {
		t.Fatalf("%d reviewer requests in advisory mode", n)
	}

	addPull(fake, 2, agent, sha('2'))
	fake.FailNext("GET", "/repos/"+testRepo+"/pulls/2/*", 0, http.StatusNotFound, nil, "")
	h.deliver("pull_request", prEvent(t, "opened", 2, agent, sha('2'), agent))
	run = h.waitCheckOn(t, sha('2'), "success")
	if !strings.HasPrefix(run.Title, "Advisory: enforce mode would fail this (the guard could not decide): ") {
		t.Fatalf("advisory run of an error %q", run.Title)
	}
	if rec := waitRecord(t, st, 2, "the decision", kind("decision", "")); rec.Outcome != "error" {
		t.Fatalf("recorded %s, want error", rec.Outcome)
	}
}

// TestBlocksGoOutFirst: when a freeze begins, the PRs it blocks are
// re-evaluated and published before those it leaves alone (SPEC §6), so
// that with GitHub pacing the calls nothing is let through meanwhile.
func TestBlocksGoOutFirst(t *testing.T) {
	fake := newFake(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	from, to := t0.Add(5*time.Minute), t0.Add(10*time.Minute)
	h := startGuard(t, fake, fmt.Sprintf("freezes:\n  - name: release-cut\n    from: %q\n    to: %q\n    branches: [\"release/*\"]\n",
		from.Format(time.RFC3339), to.Format(time.RFC3339)))
	h.clock.Set(t0)
	runs := map[int64]int{} // check run id -> PR
	for n := 1; n <= 4; n++ {
		head := fmt.Sprintf("%040x", 0xb10c00+n)
		base := "main"
		if n == 4 { // the last one listed, the only one the freeze holds
			base = "release/1"
		}
		fake.AddPull(testRepo, pr.PullRequest{Number: n, Title: "change", Author: agent, HeadSHA: head, BaseRef: base, BaseSHA: sha('0')})
		fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: head})
		body := patchJSON(t, prEvent(t, "opened", n, agent, head, agent), map[string]any{"pull_request.base.ref": base})
		h.deliver("pull_request", body)
		runs[h.waitCheckOn(t, head, "success").ID] = n
	}
	fake.ResetCalls()
	h.clock.Set(from.Add(time.Minute))
	h.waitCheckOn(t, fmt.Sprintf("%040x", 0xb10c00+4), "failure")
	waitFor(t, "every PR to be re-evaluated", func() bool {
		return fake.CallCount("PATCH", "/repos/{owner}/{repo}/check-runs/{id}") == 4
	})
	var order []int
	for _, c := range fake.Calls() {
		if c.Method == "PATCH" && c.Route == "/repos/{owner}/{repo}/check-runs/{id}" {
			id, _ := strconv.ParseInt(c.Path[strings.LastIndex(c.Path, "/")+1:], 10, 64)
			order = append(order, runs[id])
		}
	}
	if len(order) != 4 || order[0] != 4 {
		t.Fatalf("check runs updated in the order of PRs %v; want #4, the blocked one, first", order)
	}
}
