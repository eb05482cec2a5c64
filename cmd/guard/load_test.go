package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// economyConfig makes every classification and approval ask GitHub for team
// memberships, so the test also proves the directory cache.
const economyConfig = `
agents:
  teams: [automation]
  all_bots: true
escalation:
  reviewers: {teams: [release-managers]}
  approvers: {teams: [release-managers]}
`

// publishedAfter waits until the merge-guard run on sha carries a decision
// other than prev (every evaluation publishes its decision id as the
// run's external_id) and returns the new one.
func (h *harness) publishedAfter(sha, prev string) string {
	h.t.Helper()
	var ext string
	waitFor(h.t, "a new decision on "+sha[:7], func() bool {
		runs := h.fake.CheckRuns(testRepo, sha)
		if len(runs) == 0 {
			return false
		}
		ext = runs[len(runs)-1].ExternalID
		return ext != prev
	})
	return ext
}

// costly describes calls that cost (everything but 304s), for failure
// messages.
func costly(calls []githubtest.Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "\n  %s %s -> %d", c.Method, c.Path, c.Status)
	}
	return b.String()
}

// TestAPIEconomy drives repeated events on the same pull requests through the
// real guard and counts what each costs on GitHub (SPEC §8: in steady state
// at most 1 call per human-PR event and 4 per agent-PR event; 304s are free).
func TestAPIEconomy(t *testing.T) {
	fake := newFake(t)
	fake.AddTeamMember("octo-org", "release-managers", carol.Login, "active")
	fake.AddTeamMember("octo-org", "automation", "dave", "active")
	h := startGuard(t, fake, economyConfig)

	// One human PR and one agent PR, each with reviews, commits and files.
	addPull(fake, 1, alice, sha('1'))
	fake.AddFile(testRepo, 1, pr.File{Filename: "main.go", Status: "modified", Additions: 1, Patch: "@@ -1,1 +1,2 @@\n package main\n+// hello"})
	fake.AddReview(testRepo, 1, pr.Review{User: carol, State: "COMMENTED", CommitID: sha('1')})
	addPull(fake, 2, agent, sha('2'))
	fake.AddFile(testRepo, 2, pr.File{Filename: "main_test.go", Status: "modified", Additions: 1, Patch: "@@ -1,1 +1,2 @@\n package main\n+// agent was here"})
	fake.AddReview(testRepo, 2, pr.Review{User: alice, State: "COMMENTED", CommitID: sha('2')})

	// First sight of each PR: not steady state (tokens, first fetches,
	// check-run creation, escalation).
	ext := map[string]string{}
	for _, p := range []struct {
		n      int
		author pr.Account
		head   string
	}{{1, alice, sha('1')}, {2, agent, sha('2')}} {
		h.deliver("pull_request", prEvent(t, "opened", p.n, p.author, p.head, p.author))
		ext[p.head] = h.publishedAfter(p.head, "")
	}

	const rounds = 6
	events := []struct {
		name  string
		head  string
		agent bool
		body  func(i int) (string, []byte)
	}{
		{"human PR labeled", sha('1'), false, func(int) (string, []byte) {
			return "pull_request", prEvent(t, "labeled", 1, alice, sha('1'), alice)
		}},
		{"human PR edited", sha('1'), false, func(int) (string, []byte) {
			return "pull_request", prEvent(t, "edited", 1, alice, sha('1'), carol)
		}},
		{"human PR reviewed", sha('1'), false, func(int) (string, []byte) {
			return "pull_request_review", reviewEvent(t, 1, alice, sha('1'), carol, sha('1'))
		}},
		{"agent PR labeled", sha('2'), true, func(int) (string, []byte) {
			return "pull_request", prEvent(t, "labeled", 2, agent, sha('2'), agent)
		}},
		{"agent PR edited by a human", sha('2'), true, func(int) (string, []byte) {
			return "pull_request", prEvent(t, "edited", 2, agent, sha('2'), alice)
		}},
		{"agent PR reviewed by a non-approver", sha('2'), true, func(int) (string, []byte) {
			return "pull_request_review", reviewEvent(t, 2, agent, sha('2'), alice, sha('2'))
		}},
	}
	perKind := map[bool][]int{}
	for round := range rounds {
		for _, e := range events {
			fake.ResetCalls()
			event, body := e.body(round)
			if code := h.deliver(event, body); code != http.StatusAccepted {
				t.Fatalf("%s: webhook answered %d", e.name, code)
			}
			ext[e.head] = h.publishedAfter(e.head, ext[e.head])
			calls := fake.Calls()
			perKind[e.agent] = append(perKind[e.agent], len(calls))
			limit := 1
			if e.agent {
				limit = 4
			}
			if round > 0 && len(calls) > limit {
				t.Errorf("%s (round %d): %d GitHub calls, budget %d:%s", e.name, round, len(calls), limit, costly(calls))
			}
			if round == rounds-1 {
				t.Logf("%s: %d calls that cost, %d answered 304:%s", e.name, len(calls), len(fake.FreeCalls()), costly(calls))
			}
		}
	}
	for _, agentPR := range []bool{false, true} {
		n := perKind[agentPR][len(events)/2:] // without the first round (3 events per kind)
		sort.Ints(n)
		t.Logf("agent=%v: calls per event after the first round, sorted: %v", agentPR, n)
	}

	t.Run("a comment that is no command costs nothing", func(t *testing.T) {
		fake.ResetCalls()
		body := payload(t, "issue_comment.created", map[string]any{
			"issue.number": 2, "issue.pull_request.url": "https://api.github.com/repos/" + testRepo + "/pulls/2",
			"comment.body": "looks good to me", "comment.user.login": alice.Login, "sender.login": alice.Login,
		})
		if code := h.deliver("issue_comment", body); code != http.StatusAccepted {
			t.Fatalf("webhook answered %d", code)
		}
		// Then an event that publishes, so that the comment has been handled
		// (one key per PR: deliveries of a PR are processed in order).
		h.deliver("pull_request", prEvent(t, "labeled", 2, agent, sha('2'), agent))
		ext[sha('2')] = h.publishedAfter(sha('2'), ext[sha('2')])
		if calls := fake.Calls(); len(calls) != 1 {
			t.Fatalf("a chat comment and a label: %d calls, want 1 (the label's PATCH):%s", len(calls), costly(calls))
		}
	})

	t.Run("a new head is not steady state: what it costs", func(t *testing.T) {
		for _, p := range []struct {
			n      int
			author pr.Account
			head   string
		}{{1, alice, sha('3')}, {2, agent, sha('4')}} {
			addPull(fake, p.n, p.author, p.head)
			fake.ResetCalls()
			h.deliver("pull_request", prEvent(t, "synchronize", p.n, p.author, p.head, p.author))
			ext[p.head] = h.publishedAfter(p.head, "")
			calls := fake.Calls()
			t.Logf("%s pushed a new head: %d calls that cost, %d answered 304:%s", p.author.Login, len(calls), len(fake.FreeCalls()), costly(calls))
		}
	})

	t.Run("team memberships are asked once, not per event", func(t *testing.T) {
		// Every event above classified its author, sender, committers and
		// reviewers against the automation team, and reviewers against the
		// approvers' team: the directory answered from its cache.
		fake.ResetCalls()
		h.deliver("pull_request", prEvent(t, "labeled", 2, agent, sha('4'), alice)) // the head since the last subtest
		ext[sha('4')] = h.publishedAfter(sha('4'), ext[sha('4')])
		if n := fake.CallCount("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"); n != 0 {
			t.Fatalf("%d team membership calls in steady state", n)
		}
	})
}

// BenchmarkServeUnderLoad runs the whole guard in-process against a
// zero-latency fake GitHub: b.N steady-state deliveries (labeled, on 100 PRs
// of which half are agent PRs) from 32 concurrent senders, then waits until
// every one has published its check run. It reports acknowledgements/s,
// the p50/p99 acknowledgement latency and processed deliveries/s; run it
// with -cpuprofile/-blockprofile to see where the time goes (the load tool,
// cmd/guard-load, measures the real binary, RSS included).
//
//	go test ./cmd/guard -run XXX -bench ServeUnderLoad -benchtime 5000x -cpuprofile /tmp/cpu.out
func BenchmarkServeUnderLoad(b *testing.B) {
	fake := githubtest.New(b)
	fake.AddInstallation(testInst, "octo-org")
	fake.AddRepo(testInst, testRepo)
	fake.SetRateLimit(1<<30, 1<<30, time.Now().Add(24*time.Hour))
	const pulls = 100
	var bodies [][]byte
	for n := 1; n <= pulls; n++ {
		author := alice
		if n%2 == 0 {
			author = agent
		}
		head := fmt.Sprintf("%040x", n)
		addPull(fake, n, author, head)
		fake.AddFile(testRepo, n, pr.File{Filename: "main.go", Status: "modified", Additions: 1, Patch: "@@ -1,1 +1,2 @@\n package main\n+// change"})
		bodies = append(bodies, prEvent(b, "labeled", n, author, head, author))
	}
	var written atomic.Int64
	fake.OnCheckRun(func(string, githubtest.CheckRun) { written.Add(1) })
	base, stop := serveForBench(b, fake)
	defer stop()

	// Warm-up: every PR has its run, tokens are minted, caches are filled.
	sigs := make([]string, len(bodies))
	for i, body := range bodies {
		sigs[i] = webhook.Sign([]byte(testSecret), body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	post := func(id string, k int) (time.Duration, error) {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(bodies[k]))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", sigs[k])
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("webhook answered %d", resp.StatusCode)
		}
		return time.Since(t0), nil
	}
	for k := range bodies {
		if _, err := post(fmt.Sprintf("warm-%d", k), k); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(time.Minute); written.Load() < pulls; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("warm-up: not every PR got its check run within a minute")
		}
	}
	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	w0 := written.Load()
	b.SetParallelism(16) // 32 senders on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(p *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for p.Next() {
			i := next.Add(1)
			d, err := post(fmt.Sprintf("bench-%d", i), int(i)%len(bodies))
			if err != nil {
				b.Error(err)
				return
			}
			local = append(local, d)
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	acked := time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for written.Load()-w0 < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	done := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/acked.Seconds(), "acks/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ack-p99-ms")
	b.ReportMetric(float64(written.Load()-w0)/done.Seconds(), "decided/s")
}

// serveForBench serves a guard in-process for a benchmark.
func serveForBench(b *testing.B, fake *githubtest.Server) (string, func()) {
	dir := b.TempDir()
	ready := make(chan string, 1)
	c := &serveConfig{
		Addr: "127.0.0.1:0", DB: filepath.Join(dir, "guard.db"), AppID: fake.AppID(), PrivateKey: fake.PrivateKeyPEM(),
		WebhookSecret: testSecret, GitHubURL: fake.URL(), PublicURL: "https://guard.example.com",
		Workers: 8, LogLevel: "warn", ready: ready,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := &syncBuffer{}
	go func() { done <- serve(ctx, c, stdio{in: strings.NewReader(""), out: io.Discard, err: log}) }()
	select {
	case addr := <-ready:
		return "http://" + addr, func() { cancel(); <-done }
	case err := <-done:
		b.Fatalf("guard did not start: %v\n%s", err, log)
	}
	return "", nil
}
