package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
)

// TestAgentPushesCountUntilAHumanApproves: a PR counts as an agent's when
// an agent pushed to it or committed to it since the last human approval
// (SPEC §1). A human's PR an agent pushed to is held; once a human
// approves, the human's own later pushes do not need another approval; a
// new push by the agent, or an agent's commit after the approved one, does.
func TestAgentPushesCountUntilAHumanApproves(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	const n = 60
	t0 := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	person := func(a pr.Account) pr.Person {
		return pr.Person{Name: a.Login, Email: a.Login + "@example.com", Account: a, Date: t0}
	}
	push := func(head string, by, author pr.Account, when time.Duration) {
		t.Helper()
		fake.AddCommit(testRepo, n, pr.Commit{SHA: head, Message: "change", Author: person(author), Committer: person(author)})
		fake.AddPull(testRepo, pr.PullRequest{Number: n, Title: "change", Author: alice, HeadSHA: head, BaseRef: "main",
			BaseSHA: strings.Repeat("0", 40), UpdatedAt: t0.Add(when)})
		h.deliver("pull_request", patchJSON(t, prEvent(t, "synchronize", n, alice, head, by),
			map[string]any{"pull_request.updated_at": at(when)}))
	}

	addPull(fake, n, alice, sha('1'))
	h.deliver("pull_request", patchJSON(t, prEvent(t, "opened", n, alice, sha('1'), alice), map[string]any{"pull_request.updated_at": at(0)}))
	h.waitCheckOn(t, sha('1'), "success")

	// An agent pushes a commit alice wrote (a rebase bot): held.
	push(sha('2'), agent, alice, time.Minute)
	if run := h.waitCheckOn(t, sha('2'), "action_required"); !strings.Contains(run.Summary+run.Text, "pushed to it") {
		t.Fatalf("held without saying an agent pushed: %s\n%s", run.Summary, run.Text)
	}
	// carol approves it.
	fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: sha('2'), SubmittedAt: t0.Add(2 * time.Minute)})
	h.deliver("pull_request_review", reviewEvent(t, n, alice, sha('2'), carol, sha('2')))
	h.waitCheckOn(t, sha('2'), "success")

	// alice pushes her own commit: the agent's push was before the
	// approval, so it is a human's PR again.
	push(sha('3'), alice, alice, 3*time.Minute)
	if run := h.waitCheckOn(t, sha('3'), "success"); !strings.Contains(run.Title, "Not agent-authored") {
		t.Fatalf("alice's push after the approval: %+v", run)
	}

	// The agent pushes again: held, carol's approval came before it.
	push(sha('4'), agent, alice, 4*time.Minute)
	h.waitCheckOn(t, sha('4'), "action_required")

	// carol approves; then an agent's own commit lands after the approved
	// one, pushed by alice: held, the approval does not cover it.
	fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: sha('4'), SubmittedAt: t0.Add(5 * time.Minute)})
	h.deliver("pull_request_review", reviewEvent(t, n, alice, sha('4'), carol, sha('4')))
	h.waitCheckOn(t, sha('4'), "success")
	push(sha('5'), alice, agent, 6*time.Minute)
	if run := h.waitCheckOn(t, sha('5'), "action_required"); !strings.Contains(run.Summary+run.Text, "commit 5555555 by agent") {
		t.Fatalf("held without naming the agent's commit: %s\n%s", run.Summary, run.Text)
	}
}

// pushHarness is a guard with alice's PR #n at sha 1 decided success, the
// PR's times counted from t0 (an hour ago).
type pushHarness struct {
	*harness
	t  *testing.T
	n  int
	t0 time.Time
}

func newPushHarness(t *testing.T, cfg string, n int, pre ...func(*githubtest.Server)) *pushHarness {
	return newPushHarnessWith(t, cfg, n, nil, pre...)
}

// newPushHarnessWith is newPushHarness with a hook that changes the
// server config.
func newPushHarnessWith(t *testing.T, cfg string, n int, edit func(*serveConfig), pre ...func(*githubtest.Server)) *pushHarness {
	fake := newFake(t)
	for _, f := range pre {
		f(fake)
	}
	h := &pushHarness{harness: startGuardWith(t, fake, cfg, edit), t: t, n: n, t0: time.Now().UTC().Truncate(time.Second).Add(-time.Hour)}
	h.head('1', 0)
	h.commit('1', alice, nil)
	h.event("opened", '1', alice, 0)
	h.waitCheckOn(t, sha('1'), "success")
	return h
}

func (h *pushHarness) at(d time.Duration) string { return h.t0.Add(d).Format(time.RFC3339) }

// commit adds a commit by author to the PR (parents nil: on the previous).
func (h *pushHarness) commit(c byte, author pr.Account, parents []string) {
	p := pr.Person{Name: author.Login, Email: author.Login + "@example.com", Account: author, Date: h.t0}
	h.fake.AddCommit(testRepo, h.n, pr.Commit{SHA: sha(c), Message: "change", Author: p, Committer: p, Parents: parents})
}

// head moves the PR's head to c, updated d after t0.
func (h *pushHarness) head(c byte, d time.Duration) {
	h.fake.AddPull(testRepo, pr.PullRequest{Number: h.n, Title: "change", Author: alice, HeadSHA: sha(c), BaseRef: "main",
		BaseSHA: strings.Repeat("0", 40), UpdatedAt: h.t0.Add(d)})
}

// event delivers a pull_request event on head c sent by sender.
func (h *pushHarness) event(action string, c byte, sender pr.Account, d time.Duration) {
	h.deliver("pull_request", patchJSON(h.t, prEvent(h.t, action, h.n, alice, sha(c), sender), map[string]any{"pull_request.updated_at": h.at(d)}))
}

// approve adds carol's approval of c, submitted d after t0, and delivers
// it (the PR's head being head).
func (h *pushHarness) approve(c, head byte, d time.Duration) {
	h.fake.AddReview(testRepo, h.n, pr.Review{User: carol, State: "APPROVED", CommitID: sha(c), SubmittedAt: h.t0.Add(d)})
	h.deliver("pull_request_review", patchJSON(h.t, reviewEvent(h.t, h.n, alice, sha(head), carol, sha(c)), map[string]any{"pull_request.updated_at": h.at(d)}))
}

// push has by push c, a commit alice wrote on top of the last, d after t0.
func (h *pushHarness) push(c byte, by pr.Account, d time.Duration) {
	h.commit(c, alice, nil)
	h.head(c, d)
	h.event("synchronize", c, by, d)
}

// agentPushApproved has the agent push c (a commit alice wrote) and carol
// approve it: held, then passed.
func (h *pushHarness) agentPushApproved(c byte) {
	h.t.Helper()
	h.push(c, agent, time.Minute)
	h.waitCheckOn(h.t, sha(c), "action_required")
	h.approve(c, c, 2*time.Minute)
	h.waitCheckOn(h.t, sha(c), "success")
}

// deliveryState returns the inbox state of delivery id, read through a
// connection of its own.
func (h *pushHarness) deliveryState(id string) string {
	h.t.Helper()
	raw, err := sql.Open("sqlite", h.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		h.t.Fatal(err)
	}
	defer raw.Close()
	var s string
	raw.QueryRow("SELECT state FROM deliveries WHERE id = ?", id).Scan(&s)
	return s
}

// decided waits until the PR has k decision records and returns the
// conclusion of the last check run on head c.
func (h *pushHarness) decided(k int, c byte) githubtest.CheckRun {
	h.t.Helper()
	st := openAudit(h.t, h.harness)
	waitFor(h.t, fmt.Sprintf("%d decisions", k), func() bool { return len(records(h.t, st, h.n, kind("decision", ""))) >= k })
	runs := h.fake.CheckRuns(testRepo, sha(c))
	if len(runs) == 0 {
		h.t.Fatalf("no check run on %s", sha(c)[:7])
	}
	return runs[len(runs)-1]
}

// An approval given after an agent's push, but of an older commit, does
// not clear the push: the pushed head is remembered with it.
func TestAgentPushNotClearedByApprovalOfAnOlderCommit(t *testing.T) {
	h := newPushHarness(t, "", 61)
	h.commit('2', alice, nil) // written by alice, pushed by the agent
	h.head('2', time.Minute)
	h.event("synchronize", '2', agent, time.Minute)
	h.waitCheckOn(t, sha('2'), "action_required")
	h.approve('1', '2', 2*time.Minute) // carol approves 1, a page loaded before the push
	if run := h.decided(3, '2'); run.Conclusion != "action_required" {
		t.Fatalf("the agent's push of 2, which no human approved, is now %q (%s)", run.Conclusion, run.Title)
	}
}

// The agent's synchronize processed after alice's later push (out of
// order, or retried): the push is remembered and the PR's head decided
// again at once.
func TestLateAgentPushHoldsTheNewerHead(t *testing.T) {
	h := newPushHarness(t, "", 62)
	h.commit('2', alice, nil)
	h.push('3', alice, 2*time.Minute)
	h.waitCheckOn(t, sha('3'), "success")
	h.event("synchronize", '2', agent, time.Minute) // the agent's earlier push
	if run := h.decided(4, '3'); run.Conclusion != "action_required" || !strings.Contains(run.Summary, "an agent pushed to it earlier") {
		t.Fatalf("head 3 after the guard learned the agent pushed 2: %q %s", run.Conclusion, run.Summary)
	}
}

// The agent's synchronize processed after carol's approval of what it
// pushed: the push's time is the payload's, not the PR's as re-read (the
// review's), so the approval still counts for alice's next push.
func TestLateAgentPushKeepsItsTime(t *testing.T) {
	h := newPushHarness(t, "", 63)
	h.commit('2', alice, nil)
	h.head('2', 2*time.Minute)
	h.approve('2', '2', 2*time.Minute)
	h.waitCheckOn(t, sha('2'), "success")
	h.event("synchronize", '2', agent, time.Minute)
	h.decided(3, '2')
	h.push('3', alice, 3*time.Minute)
	if run := h.decided(4, '3'); run.Conclusion != "success" {
		t.Fatalf("carol approved after the agent's push, yet alice's push is %q: %s", run.Conclusion, run.Title)
	}
}

// A push whose sender cannot be classified (the agents team cannot be
// read) fails closed: it counts as an agent's until a human approves.
func TestPushBySenderNotClassifiedCounts(t *testing.T) {
	const n = 64
	dev := pr.Account{Login: "dev-agent", Type: "User"}
	h := newPushHarness(t, "agents:\n  teams: [automation]\n  all_bots: true\n", n, func(fake *githubtest.Server) {
		fake.AddTeam("octo-org", "automation")
		fake.AddTeamMember("octo-org", "automation", "dev-agent", "active")
	})
	h.commit('2', alice, nil)
	h.head('2', time.Minute)
	h.fake.FailNext("GET", "/orgs/octo-org/teams/automation/memberships/dev-agent", 20, 502, nil, "")
	h.event("synchronize", '2', dev, time.Minute)
	h.waitCheckOn(t, sha('2'), "failure")
	h.fake.ClearFaults()
	h.event("labeled", '2', alice, time.Minute)
	if run := h.decided(3, '2'); run.Conclusion != "action_required" {
		t.Fatalf("after an error decision on a push by @dev-agent: %q %s", run.Conclusion, run.Title)
	}
}

// carol approves alice's 2; alice then merges an agent's commit a from a
// branch of its own. GitHub lists commits by date (1, a, 2, 4), so a sorts
// before the approved 2, but 2 does not include it: held.
func TestMergedAgentCommitNotCoveredByAnEarlierApproval(t *testing.T) {
	h := newPushHarness(t, "", 65)
	h.commit('a', agent, []string{strings.Repeat("0", 40)})
	h.commit('2', alice, []string{sha('1')})
	h.commit('4', alice, []string{sha('2'), sha('a')})
	h.fake.AddReview(testRepo, h.n, pr.Review{User: carol, State: "APPROVED", CommitID: sha('2'), SubmittedAt: h.t0.Add(2 * time.Minute)})
	h.head('4', 3*time.Minute)
	h.event("synchronize", '4', alice, 3*time.Minute)
	if run := h.decided(2, '4'); run.Conclusion != "action_required" || !strings.Contains(run.Summary, "commit aaaaaaa by agent") {
		t.Fatalf("head 4 holds the agent's commit a, which no human approved: %q %s", run.Conclusion, run.Summary)
	}
}
