package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
)

// faultConfig asks for a reviewer on escalation, so that the escalation
// writes (requested reviewers, the comment) meet faults too.
const faultConfig = `
escalation:
  reviewers: {users: [carol]}
`

// decisionsByDelivery reads the audit trail and returns the decision records
// by delivery id, in trail order; "_pos" is a record's position in the
// trail.
func decisionsByDelivery(t *testing.T, db string) map[string][]map[string]any {
	t.Helper()
	code, out, errOut := runGuard(t, "audit", "export", "--db", db, "--format", "jsonl",
		"--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("audit export exited %d: %s", code, errOut)
	}
	got := map[string][]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for pos := 0; sc.Scan(); pos++ {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		r["_pos"] = pos
		if r["kind"] == "decision" {
			id := fmt.Sprint(r["delivery_id"])
			got[id] = append(got[id], r)
		}
	}
	return got
}

// faultPR is a pull request of the fault tests and the conclusion it must
// end with.
type faultPR struct {
	n      int
	author pr.Account
	head   string
	want   string
}

// seedFaultPRs adds human, unapproved agent and approved agent PRs.
func seedFaultPRs(fake *githubtest.Server, first, each int) []faultPR {
	fake.SetPermission(testRepo, carol.Login, "write") // the escalation reviewer
	var out []faultPR
	for i := range 3 * each {
		p := faultPR{n: first + i, head: fmt.Sprintf("%040x", first+i)}
		switch i % 3 {
		case 0:
			p.author, p.want = alice, "success"
		case 1:
			p.author, p.want = agent, "action_required"
		case 2:
			p.author, p.want = agent, "success"
		}
		addPull(fake, p.n, p.author, p.head)
		fake.AddFile(testRepo, p.n, pr.File{Filename: "main.go", Status: "modified", Additions: 1, Patch: "@@ -1,1 +1,2 @@\n package main\n+// change"})
		if i%3 == 2 {
			fake.AddReview(testRepo, p.n, pr.Review{User: carol, State: "APPROVED", CommitID: p.head})
		}
		out = append(out, p)
	}
	return out
}

var secondaryLimit = http.Header{"Retry-After": {"1"}}

// scriptFaults makes GitHub fail the routes the guard uses: 500s and 403
// secondary rate limits (Retry-After: 1), and answers lost after GitHub
// created a check run or a comment. No route fails more often than the
// client retries (gh.DefaultMaxRetries), so every call succeeds in the end.
func scriptFaults(fake *githubtest.Server) int {
	n := 0
	fail := func(method, route string, times, status int, h http.Header) {
		fake.FailNext(method, route, times, status, h, "")
		n += times
	}
	for _, route := range []string{
		"/repos/{owner}/{repo}/pulls/{number}/commits",
		"/repos/{owner}/{repo}/pulls/{number}/reviews",
		"/repos/{owner}/{repo}/pulls/{number}/files",
		"/repos/{owner}/{repo}/commits/{ref}/check-runs",
		"/repos/{owner}/{repo}/issues/{number}/comments",
	} {
		fail("GET", route, 2, http.StatusInternalServerError, nil)
		fail("GET", route, 1, http.StatusForbidden, secondaryLimit)
	}
	fail("PATCH", "/repos/{owner}/{repo}/check-runs/{id}", 2, http.StatusInternalServerError, nil)
	fail("PATCH", "/repos/{owner}/{repo}/check-runs/{id}", 2, http.StatusForbidden, secondaryLimit)
	fail("POST", "/repos/{owner}/{repo}/check-runs", 1, http.StatusInternalServerError, nil)
	fail("POST", "/repos/{owner}/{repo}/check-runs", 1, http.StatusForbidden, secondaryLimit)
	fail("POST", "/repos/{owner}/{repo}/issues/{number}/comments", 1, http.StatusBadGateway, nil)
	fail("POST", "/repos/{owner}/{repo}/issues/{number}/comments", 1, http.StatusForbidden, secondaryLimit)
	fail("POST", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers", 2, http.StatusInternalServerError, nil)
	fail("POST", "/app/installations/{id}/access_tokens", 1, http.StatusInternalServerError, nil)
	fake.FailAfterNext("POST", "/repos/{owner}/{repo}/check-runs", 1, http.StatusBadGateway)
	fake.FailAfterNext("POST", "/repos/{owner}/{repo}/issues/{number}/comments", 1, 0)
	return n + 2
}

// failedCalls counts the calls GitHub answered with a fault status (or not
// at all).
func failedCalls(fake *githubtest.Server) int {
	n := 0
	for _, c := range fake.Calls() {
		switch c.Status {
		case 0, http.StatusInternalServerError, http.StatusBadGateway, http.StatusForbidden:
			n++
		}
	}
	return n
}

// TestFaults: GitHub answers 500s, 403 secondary rate limits and loses
// answers for a while, then recovers. Every delivery ends with the right
// check run, no SHA gets a second run, escalations comment once, and the
// audit trail holds exactly one decision per delivery.
func TestFaults(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, faultConfig) // retry waits are a hundredth of GitHub's
	prs := seedFaultPRs(fake, 100, 4)

	var ids []string
	deliverAll := func(action string) {
		for _, p := range prs {
			id := fmt.Sprintf("fault-%s-%d", action, p.n)
			ids = append(ids, id)
			if code := postWebhook(t, h.base, "pull_request", id, prEvent(t, action, p.n, p.author, p.head, p.author)); code != http.StatusAccepted {
				t.Fatalf("%s: webhook answered %d", id, code)
			}
		}
	}
	settled := func(prev map[int]string) map[int]string {
		ext := map[int]string{}
		for _, p := range prs {
			waitFor(t, fmt.Sprintf("PR %d to conclude %s", p.n, p.want), func() bool {
				runs := fake.CheckRuns(testRepo, p.head)
				if len(runs) == 0 {
					return false
				}
				last := runs[len(runs)-1]
				ext[p.n] = last.ExternalID
				return last.ExternalID != prev[p.n] && last.Conclusion == p.want
			})
		}
		return ext
	}

	recorded := func() {
		waitFor(t, "every delivery to be recorded", func() bool {
			return len(decisionsByDelivery(t, h.db)) == len(ids)
		})
	}
	// Creation path: tokens, lookups, POSTs, escalation comments. A run
	// may be on GitHub before its delivery is done (a lost answer is
	// followed by a lookup and a PATCH): wait for the records too.
	scripted := scriptFaults(fake)
	deliverAll("opened")
	ext := settled(nil)
	recorded()
	fake.ClearFaults()
	// Update path: PATCHes of the stored runs.
	scripted += scriptFaults(fake)
	deliverAll("labeled")
	settled(ext)
	recorded()
	fake.ClearFaults()

	n := failedCalls(fake)
	if n < scripted/2 {
		t.Fatalf("only %d of %d scripted faults reached the guard: the test did not test much", n, scripted)
	}
	t.Logf("%d of %d scripted faults reached the guard and were retried away", n, scripted)
	for _, p := range prs {
		runs := fake.CheckRuns(testRepo, p.head)
		if len(runs) != 1 {
			t.Errorf("PR %d: %d check runs on %s, want exactly one: %+v", p.n, len(runs), p.head[:7], runs)
		}
		wantComments := 0
		if p.want == "action_required" {
			wantComments = 1
		}
		if c := fake.Comments(testRepo, p.n); len(c) != wantComments {
			t.Errorf("PR %d: %d comments, want %d", p.n, len(c), wantComments)
		}
	}
	decisions := decisionsByDelivery(t, h.db)
	for _, id := range ids {
		recs := decisions[id]
		if len(recs) != 1 {
			t.Errorf("delivery %s: %d decision records, want exactly one", id, len(recs))
			continue
		}
		if o := recs[0]["outcome"]; o == "error" {
			t.Errorf("delivery %s: decided %v although every fault was retried away", id, o)
		}
	}
}

// TestGitHubOutage: GitHub refuses everything until it comes back. The
// deliveries taken meanwhile fail (nothing is published, nothing decided);
// GitHub's redelivery of each then ends with the right check run and one
// decision, and a second redelivery changes nothing.
func TestGitHubOutage(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, faultConfig)
	prs := seedFaultPRs(fake, 200, 2)

	fake.FailNext("", "", 0, http.StatusServiceUnavailable, nil, "")
	bodies := map[string][]byte{}
	var ids []string
	for _, p := range prs {
		id := fmt.Sprintf("outage-%d", p.n)
		ids = append(ids, id)
		bodies[id] = prEvent(t, "opened", p.n, p.author, p.head, p.author)
		if code := postWebhook(t, h.base, "pull_request", id, bodies[id]); code != http.StatusAccepted {
			t.Fatalf("%s: webhook answered %d", id, code)
		}
	}
	waitFor(t, "every delivery to fail", func() bool {
		log := h.log.String()
		for _, id := range ids {
			if !strings.Contains(log, "delivery="+id) || !strings.Contains(log, "delivery failed") {
				return false
			}
		}
		return strings.Count(log, "msg=\"delivery failed\"") >= len(ids)
	})
	fake.ClearFaults()
	for _, p := range prs {
		if runs := fake.CheckRuns(testRepo, p.head); len(runs) != 0 {
			t.Fatalf("PR %d: a check run appeared while GitHub refused everything: %+v", p.n, runs)
		}
	}
	if d := decisionsByDelivery(t, h.db); len(d) != 0 {
		t.Fatalf("decisions recorded while GitHub refused everything: %v", d)
	}

	for _, id := range ids { // GitHub redelivers the failed deliveries
		if code := postWebhook(t, h.base, "pull_request", id, bodies[id]); code != http.StatusAccepted {
			t.Fatalf("redelivery of failed %s answered %d, want 202", id, code)
		}
	}
	for _, p := range prs {
		h.waitCheck(p.head, p.want)
	}
	waitFor(t, "every redelivery to be recorded", func() bool {
		return len(decisionsByDelivery(t, h.db)) == len(ids)
	})
	for _, id := range ids { // and once more: already processed
		if code := postWebhook(t, h.base, "pull_request", id, bodies[id]); code != http.StatusOK {
			t.Fatalf("second redelivery of %s answered %d, want 200 (not processed again)", id, code)
		}
	}
	decisions := decisionsByDelivery(t, h.db)
	for _, id := range ids {
		if n := len(decisions[id]); n != 1 {
			t.Errorf("delivery %s: %d decision records, want exactly one", id, n)
		}
	}
	for _, p := range prs {
		if runs := fake.CheckRuns(testRepo, p.head); len(runs) != 1 {
			t.Errorf("PR %d: %d check runs, want one", p.n, len(runs))
		}
	}
}

// TestBackPressure: with a slow GitHub the inbox grows while intake keeps
// acknowledging; nothing is dropped, and each PR's deliveries are decided
// in the order they arrived.
func TestBackPressure(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	prs := seedFaultPRs(fake, 300, 2)
	for _, p := range prs { // first sight, at full speed
		h.deliver("pull_request", prEvent(t, "opened", p.n, p.author, p.head, p.author))
	}
	for _, p := range prs {
		h.waitCheck(p.head, p.want)
	}

	// Every GitHub answer now takes a second: a delivery costs at least
	// three of them (facts answered 304, the PATCH), and deliveries of one
	// PR run one after the other, so no PR's five can be through before
	// fifteen seconds; the acknowledgements must not wait for them.
	fake.SetLatency(time.Second)
	const perPR = 5
	order := map[int][]string{}
	var acks []time.Duration
	for round := range perPR {
		for _, p := range prs {
			id := fmt.Sprintf("slow-%d-%d", p.n, round)
			order[p.n] = append(order[p.n], id)
			start := time.Now()
			if code := postWebhook(t, h.base, "pull_request", id, prEvent(t, "labeled", p.n, p.author, p.head, p.author)); code != http.StatusAccepted {
				t.Fatalf("%s: webhook answered %d while GitHub was slow", id, code)
			}
			acks = append(acks, time.Since(start))
		}
	}
	queued := queueDepth(t, h)
	slices.Sort(acks)
	t.Logf("%d deliveries acknowledged while GitHub was slow: ack p50 %s, max %s; queue depth after the last ack: %d",
		len(acks), acks[len(acks)/2], acks[len(acks)-1], queued)
	if queued == 0 {
		t.Fatalf("the queue was empty after the last acknowledgement: intake waited for processing")
	}

	fake.SetLatency(0) // GitHub recovers; calls already waiting finish their second
	waitFor(t, "the queue to drain", func() bool { return queueDepth(t, h) == 0 })
	decisions := decisionsByDelivery(t, h.db)
	for _, p := range prs {
		var seqs []int
		for _, id := range order[p.n] {
			recs := decisions[id]
			if len(recs) != 1 {
				t.Fatalf("delivery %s: %d decision records, want exactly one (nothing dropped, nothing doubled)", id, len(recs))
			}
			seqs = append(seqs, recs[0]["_pos"].(int))
		}
		if !slices.IsSorted(seqs) {
			t.Errorf("PR %d: decisions out of delivery order: trail positions %v for %v", p.n, seqs, order[p.n])
		}
	}
}

// queueDepth reads guard_queue_depth from /metrics.
func queueDepth(t *testing.T, h *harness) int {
	t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "guard_queue_depth "); ok {
			var d float64
			fmt.Sscan(v, &d)
			return int(d)
		}
	}
	t.Fatal("no guard_queue_depth in /metrics")
	return 0
}

// TestShutdownDuringAnOutage: a guard told to stop while a delivery waits
// on a GitHub that does not answer stops within its shutdown grace instead
// of the call's whole retry budget, leaves the delivery pending (neither
// failed nor decided), and the next start decides it.
func TestShutdownDuringAnOutage(t *testing.T) {
	fake := newFake(t)
	const grace = 300 * time.Millisecond
	h := startGuardWith(t, fake, faultConfig, func(c *serveConfig) { c.shutdownGrace = grace })
	p := seedFaultPRs(fake, 300, 1)[0]
	fake.SetLatency(time.Hour) // GitHub hangs
	if code := postWebhook(t, h.base, "pull_request", "hang-1", prEvent(t, "opened", p.n, p.author, p.head, p.author)); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	time.Sleep(200 * time.Millisecond) // a worker takes it and calls GitHub
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stopping took %s with a delivery waiting on GitHub; want about the %s grace", took, grace)
	}
	if strings.Contains(h.log.String(), `msg="delivery failed"`) {
		t.Fatalf("the delivery cut short by the shutdown was recorded as failed:\n%s", h.log)
	}
	st, err := audit.Open(context.Background(), h.db)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := st.Pending(context.Background(), 0, 0)
	st.Close()
	if err != nil || len(pending) != 1 || pending[0].ID != "hang-1" {
		t.Fatalf("pending after the shutdown: %+v, %v; want hang-1", pending, err)
	}

	fake.SetLatency(0)
	startGuardWith(t, fake, faultConfig, func(c *serveConfig) { c.DB = h.db })
	h.waitCheck(p.head, p.want)
	waitFor(t, "the delivery to be recorded once", func() bool {
		return len(decisionsByDelivery(t, h.db)["hang-1"]) == 1
	})
}

// TestFailedDeliveriesAreRetried: GitHub does not redeliver a delivery it
// got a 2xx for, so one whose processing failed in an outage is retried by
// the guard itself once its pause is over (here: a review dismissed while
// GitHub's API was down must not leave the PR green), and recorded once.
func TestFailedDeliveriesAreRetried(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	h.clock.Set(time.Now())
	addPull(fake, 70, agent, sha('7'))
	fake.AddReview(testRepo, 70, pr.Review{User: carol, State: "APPROVED", CommitID: sha('7'),
		SubmittedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Second)})
	h.deliver("pull_request", prEvent(t, "opened", 70, agent, sha('7'), agent))
	h.waitCheckOn(t, sha('7'), "success")

	// carol's approval is dismissed while GitHub's API answers 503.
	fake.AddReview(testRepo, 70, pr.Review{User: carol, State: "DISMISSED", CommitID: sha('7')})
	fake.FailNext("", "", 0, http.StatusServiceUnavailable, nil, "")
	body := payload(t, "pull_request_review.submitted", map[string]any{
		"action": "dismissed", "pull_request.number": 70, "pull_request.user.login": agent.Login, "pull_request.user.type": "Bot",
		"pull_request.head.sha": sha('7'), "pull_request.base.ref": "main", "pull_request.state": "open",
		"pull_request.updated_at": time.Now().UTC().Format(time.RFC3339),
		"review.user.login":       "carol", "review.user.type": "User", "review.state": "dismissed", "review.commit_id": sha('7'),
		"sender.login": "carol", "sender.type": "User",
	})
	if code := postWebhook(t, h.base, "pull_request_review", "dismissed-in-outage", body); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	waitFor(t, "the delivery to fail", func() bool { return strings.Contains(h.log.String(), "delivery failed") })

	// Not retried before its pause is over (a minute after the failure),
	// even with GitHub back.
	fake.ClearFaults()
	time.Sleep(300 * time.Millisecond) // several scheduler ticks
	if strings.Contains(h.log.String(), "retrying a delivery that failed") {
		t.Fatal("retried before the pause was over")
	}
	h.clock.Set(time.Now().Add(61 * time.Second))
	h.waitCheckOn(t, sha('7'), "action_required")
	waitFor(t, "the retried delivery to be recorded", func() bool {
		return len(decisionsByDelivery(t, h.db)["dismissed-in-outage"]) == 1
	})
	if n := strings.Count(h.log.String(), "retrying a delivery that failed"); n != 1 {
		t.Fatalf("retried %d times, want once", n)
	}
	if code := postWebhook(t, h.base, "pull_request_review", "dismissed-in-outage", body); code != http.StatusOK {
		t.Fatalf("a redelivery after the retry answered %d, want 200 (done)", code)
	}
	if n := len(decisionsByDelivery(t, h.db)["dismissed-in-outage"]); n != 1 {
		t.Fatalf("%d decision records for the delivery, want one", n)
	}
}
