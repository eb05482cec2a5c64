package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// Two pushes by the agent in one second (updated_at has one-second grain):
// which head is the later is unknown, so neither is remembered as the
// push's; carol's approval of the first, from a page loaded before the
// second, does not clear them.
func TestTwoAgentPushesInOneSecond(t *testing.T) {
	h := newPushHarness(t, "", 71)
	h.commit('2', alice, nil) // written by alice, pushed by the agent
	h.head('2', time.Minute)
	h.event("synchronize", '2', agent, time.Minute)
	h.waitCheckOn(t, sha('2'), "action_required")
	h.commit('3', alice, nil) // the agent's second push, same second
	h.head('3', time.Minute)
	h.event("synchronize", '3', agent, time.Minute)
	h.waitCheckOn(t, sha('3'), "action_required")
	h.approve('2', '3', 2*time.Minute) // carol approves 2 after both pushes
	if run := h.decided(4, '3'); run.Conclusion != "action_required" {
		t.Fatalf("head 3, pushed by the agent and approved by nobody, is %q: %s", run.Conclusion, run.Title)
	}
}

// The agent's synchronize processed late while the PR happens to be closed
// is remembered: reopened, the PR is held.
func TestAgentPushSeenWhileClosedCounts(t *testing.T) {
	h := newPushHarness(t, "", 72)
	h.commit('2', alice, nil) // pushed by the agent at +1m
	h.head('2', time.Minute)
	h.event("labeled", '2', alice, 2*time.Minute) // processed before the agent's synchronize
	h.waitCheckOn(t, sha('2'), "action_required") // who pushed 2 is not known yet
	closed := func(state string, d time.Duration) {
		h.fake.AddPull(testRepo, pr.PullRequest{Number: h.n, Title: "change", Author: alice, HeadSHA: sha('2'), BaseRef: "main",
			BaseSHA: strings.Repeat("0", 40), UpdatedAt: h.t0.Add(d), State: state})
	}
	closed("closed", 3*time.Minute)
	h.deliver("pull_request", patchJSON(t, prEvent(t, "closed", h.n, alice, sha('2'), alice),
		map[string]any{"pull_request.updated_at": h.at(3 * time.Minute), "pull_request.state": "closed"}))
	h.event("synchronize", '2', agent, time.Minute) // the agent's push, delivered late
	h.decided(2, '2')
	st := openAudit(t, h.harness)
	idle(t, st)
	tr, _, _ := st.TrackedPR(context.Background(), testRepo, h.n)
	if tr.AgentPushedAt.IsZero() {
		t.Fatalf("the push seen while the PR was closed is not remembered: %+v", tr)
	}
	closed("open", 4*time.Minute)
	h.event("reopened", '2', alice, 4*time.Minute)
	if run := h.decided(3, '2'); run.Conclusion != "action_required" {
		t.Fatalf("reopened with the agent's unapproved push of 2: %q %s", run.Conclusion, run.Title)
	}
}

// The agent's synchronize arrives after alice's later push was decided;
// deciding the head again fails to publish (a 502 on the check run). The
// delivery's next attempt decides the head again, though the push is
// noted already: head 3 is held.
func TestLateAgentPushDecidedAgainAfterAFailure(t *testing.T) {
	h := newPushHarnessWith(t, "", 73, func(c *serveConfig) { c.reconcile = 200 * time.Millisecond })
	h.commit('2', alice, nil) // pushed by the agent at +1m
	h.commit('3', alice, nil) // pushed by alice at +2m
	h.head('3', 2*time.Minute)
	h.event("synchronize", '3', alice, 2*time.Minute)
	h.waitCheckOn(t, sha('3'), "success")

	h.fake.FailNext("PATCH", "/repos/{owner}/{repo}/check-runs/{id}", 0, 502, nil, "") // GitHub down for the PATCH, after retries
	late := patchJSON(t, prEvent(t, "synchronize", h.n, alice, sha('2'), agent), map[string]any{"pull_request.updated_at": h.at(time.Minute)})
	const id = "late-agent-push-1"
	postWebhook(t, h.base, "pull_request", id, late)
	st := openAudit(t, h.harness)
	waitFor(t, "the late synchronize to fail", func() bool { return h.deliveryState(id) == "failed" })
	h.fake.ClearFaults()
	postWebhook(t, h.base, "pull_request", id, late) // GitHub's redelivery (same GUID), or the scheduler's retry
	waitFor(t, "the redelivery to complete", func() bool { return h.deliveryState(id) == "done" })
	idle(t, st)
	runs := h.fake.CheckRuns(testRepo, sha('3'))
	if run := runs[len(runs)-1]; run.Conclusion != "action_required" {
		t.Fatalf("head 3 holds the agent's push of 2, which no human approved, yet is %q: %s", run.Conclusion, run.Title)
	}
}

// carol approves the agent's push, then requests changes: her verdict, as
// the policies read it, is no approval, so the push counts again.
func TestWithdrawnApprovalClearsNoPush(t *testing.T) {
	h := newPushHarness(t, "", 74)
	h.agentPushApproved('2')
	h.fake.AddReview(testRepo, h.n, pr.Review{User: carol, State: "CHANGES_REQUESTED", CommitID: sha('2'), SubmittedAt: h.t0.Add(3 * time.Minute)})
	h.deliver("pull_request_review", patchJSON(t, reviewEvent(t, h.n, alice, sha('2'), carol, sha('2')),
		map[string]any{"pull_request.updated_at": h.at(3 * time.Minute), "review.state": "changes_requested"}))
	if run := h.decided(4, '2'); run.Conclusion != "action_required" {
		t.Fatalf("carol withdrew her approval of the agent's push (changes requested), yet head 2 is %q: %s", run.Conclusion, run.Title)
	}
}

// The agent pushes 2, carol approves it; alice rebases (2 is gone). carol
// approves the rebased head after the push: that covers it, and alice's
// own push on top of it passes.
func TestRebasedAgentPushClearedByAnApprovalAfterIt(t *testing.T) {
	h := newPushHarness(t, "", 75)
	h.agentPushApproved('2')
	// alice rebases onto a newer main: 1' (x), 2' (y).
	h.commit('x', alice, []string{strings.Repeat("9", 40)})
	h.commit('y', alice, []string{sha('x')})
	h.fake.SetPullCommits(testRepo, h.n, sha('x'), sha('y'))
	h.head('y', 3*time.Minute)
	h.event("synchronize", 'y', alice, 3*time.Minute)
	h.decided(4, 'y')
	h.approve('y', 'y', 4*time.Minute) // carol approves the rebased head
	h.waitCheckOn(t, sha('y'), "success")
	h.commit('z', alice, []string{sha('y')})
	h.fake.SetPullCommits(testRepo, h.n, sha('x'), sha('y'), sha('z'))
	h.head('z', 5*time.Minute)
	h.event("synchronize", 'z', alice, 5*time.Minute)
	if run := h.decided(6, 'z'); run.Conclusion != "success" {
		t.Fatalf("carol approved after the agent's only push, yet alice's own push z is %q: %s\n%s", run.Conclusion, run.Title, run.Summary)
	}
}

// A push remembered from before schema 4 has no head: an approval of the
// PR's head after it covers it, and alice's own push on top passes.
func TestMigratedAgentPushClearedByAnApprovalAfterIt(t *testing.T) {
	h := newPushHarness(t, "", 77)
	raw, err := sql.Open("sqlite", h.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// What 0004_agent_pushes.sql leaves for a PR tracked as an agent's.
	if _, err := raw.Exec("UPDATE tracked_prs SET agent = 1, agent_pushed_at = ?, agent_pushed_head = '' WHERE number = ?",
		h.t0.Add(30*time.Second).UnixNano(), h.n); err != nil {
		t.Fatal(err)
	}
	h.approve('1', '1', time.Minute) // carol approves the head after it
	if run := h.decided(2, '1'); run.Conclusion != "success" {
		t.Fatalf("after carol's approval: %q", run.Conclusion)
	}
	h.push('2', alice, 2*time.Minute)
	if run := h.decided(3, '2'); run.Conclusion != "success" {
		t.Fatalf("carol approved after the remembered push, yet alice's own push is %q: %s", run.Conclusion, run.Title)
	}
}

// A synchronize whose processing failed is retried later; meanwhile any
// other event of the PR would be decided without knowing who pushed the
// head. It is held until the synchronize is processed: the push counts as
// an agent's.
func TestPushNotProcessedYetHolds(t *testing.T) {
	h := newPushHarness(t, "", 78)
	state := h.deliveryState
	h.commit('2', alice, nil)
	h.head('2', time.Minute)
	h.fake.FailNext("POST", "/repos/{owner}/{repo}/check-runs", 0, 502, nil, "")
	sync := patchJSON(t, prEvent(t, "synchronize", h.n, alice, sha('2'), agent), map[string]any{"pull_request.updated_at": h.at(time.Minute)})
	postWebhook(t, h.base, "pull_request", "agent-sync", sync)
	waitFor(t, "the synchronize to fail", func() bool { return state("agent-sync") == "failed" })
	h.fake.ClearFaults()
	h.event("edited", '2', agent, 2*time.Minute) // the agent retitles its work
	if run := h.waitCheckOn(t, sha('2'), "action_required"); !strings.Contains(run.Summary, "a push whose delivery failed is not processed yet") {
		t.Fatalf("held without saying why: %s", run.Summary)
	}
	postWebhook(t, h.base, "pull_request", "agent-sync", sync) // the retry (GitHub's redelivery, same GUID)
	waitFor(t, "the retried synchronize", func() bool { return state("agent-sync") == "done" })
	if run := h.waitCheckOn(t, sha('2'), "action_required"); !strings.Contains(run.Summary, "pushed to it") {
		t.Fatalf("after the retry: %s", run.Summary)
	}
}

// The same two pushes a second apart: the later head is remembered, and
// carol's approval of the first does not cover it.
func TestTwoAgentPushesASecondApart(t *testing.T) {
	h := newPushHarness(t, "", 79)
	h.push('2', agent, time.Minute)
	h.waitCheckOn(t, sha('2'), "action_required")
	h.push('3', agent, time.Minute+time.Second)
	h.waitCheckOn(t, sha('3'), "action_required")
	h.approve('2', '3', 2*time.Minute)
	if run := h.decided(4, '3'); run.Conclusion != "action_required" {
		t.Fatalf("control: %q", run.Conclusion)
	}
}

// A head whose synchronize the guard has not processed was pushed by
// someone it has not learned: held until a human approves it, whatever
// event decides it (the reconcile repairing a lost synchronize, the
// agent's own next event delivered first, a reopen after a push to the
// closed PR, for which GitHub sends no synchronize).
func TestHeadOfAnUnknownPusherHolds(t *testing.T) {
	t.Run("the reconcile, the synchronize lost", func(t *testing.T) {
		h := newPushHarnessWith(t, "", 91, func(c *serveConfig) { c.reconcile = 200 * time.Millisecond })
		h.commit('2', alice, nil)
		h.head('2', time.Minute)
		if run := h.waitCheckOn(t, sha('2'), "action_required"); !strings.Contains(run.Summary, "pushed by someone the guard has not learned") {
			t.Fatalf("held without saying why: %s", run.Summary)
		}
		h.approve('2', '2', 2*time.Minute)
		h.waitCheckOn(t, sha('2'), "success")
	})
	t.Run("the agent's next event first", func(t *testing.T) {
		h := newPushHarness(t, "", 92)
		h.commit('2', alice, nil)
		h.head('2', time.Minute)
		h.event("auto_merge_enabled", '2', agent, time.Minute)
		if run := h.decided(2, '2'); run.Conclusion != "action_required" {
			t.Fatalf("head 2, its synchronize not processed, is %q: %s", run.Conclusion, run.Title)
		}
		h.event("synchronize", '2', alice, time.Minute) // then its synchronize: alice pushed it
		if run := h.decided(3, '2'); run.Conclusion != "success" {
			t.Fatalf("after alice's synchronize: %q %s", run.Conclusion, run.Summary)
		}
	})
	t.Run("a reopen with a new head", func(t *testing.T) {
		h := newPushHarness(t, "", 93)
		h.commit('2', alice, nil)
		h.head('2', time.Minute)
		h.event("reopened", '2', agent, time.Minute)
		if run := h.decided(2, '2'); run.Conclusion != "action_required" {
			t.Fatalf("reopened on a head whose pusher is unknown: %q %s", run.Conclusion, run.Title)
		}
	})
}

// A human's approval of a head whose pusher is unknown makes it a human's
// PR again for good (not only for the evaluation of the review): a later
// event during an agents' freeze passes it.
func TestApprovedUnknownHeadIsKnown(t *testing.T) {
	now := time.Now().UTC()
	cfg := fmt.Sprintf("freezes:\n  - name: release-window\n    from: %q\n    to: %q\n", now.Add(-2*time.Hour).Format(time.RFC3339), now.Add(2*time.Hour).Format(time.RFC3339))
	h := newPushHarness(t, cfg, 191)
	h.commit('2', alice, nil)
	h.head('2', time.Minute)
	h.event("labeled", '2', alice, time.Minute) // the synchronize of 2 lost
	if run := h.decided(2, '2'); run.Conclusion != "failure" {
		t.Fatalf("an unknown pusher's head during an agents' freeze: %q", run.Conclusion)
	}
	h.approve('2', '2', 2*time.Minute)
	if run := h.decided(3, '2'); run.Conclusion != "success" {
		t.Fatalf("after carol's approval: %q %s", run.Conclusion, run.Summary)
	}
	h.head('2', 3*time.Minute)
	h.event("labeled", '2', alice, 3*time.Minute)
	if run := h.decided(4, '2'); run.Conclusion != "success" {
		t.Fatalf("a label after carol's approval of 2: %q %s", run.Conclusion, run.Summary)
	}
}

// A human's synchronize merely processed after another event of its head
// holds the PR quietly (no reviewers asked, no comment), and the
// synchronize then passes it.
func TestLateHumanSynchronizeHoldsQuietly(t *testing.T) {
	h := newPushHarness(t, "", 192)
	h.commit('2', alice, nil)
	h.head('2', time.Minute)
	h.event("labeled", '2', alice, time.Minute) // before alice's synchronize
	if run := h.decided(2, '2'); run.Conclusion != "action_required" {
		t.Fatalf("before the synchronize: %q", run.Conclusion)
	}
	h.event("synchronize", '2', alice, time.Minute)
	if run := h.decided(3, '2'); run.Conclusion != "success" {
		t.Fatalf("after alice's synchronize: %q %s", run.Conclusion, run.Summary)
	}
	if cs := h.fake.Comments(testRepo, h.n); len(cs) != 0 {
		t.Fatalf("comments on alice's PR: %+v", cs)
	}
	if users, teams := h.fake.RequestedReviewers(testRepo, h.n); len(users)+len(teams) != 0 {
		t.Fatalf("reviewers asked: %v %v", users, teams)
	}
}

// alice's synchronize processed late, when her PR is closed by then (the
// guard reads it afresh: a label of the same head came first), is learned:
// the reopened PR passes.
func TestHumanPushSeenWhileClosedIsKnown(t *testing.T) {
	h := newPushHarness(t, "", 94)
	h.commit('2', alice, nil)
	h.head('2', time.Minute)
	h.event("labeled", '2', alice, 2*time.Minute) // before alice's synchronize: held quietly
	h.decided(2, '2')
	h.fake.AddPull(testRepo, pr.PullRequest{Number: h.n, Title: "change", Author: alice, HeadSHA: sha('2'), BaseRef: "main",
		BaseSHA: strings.Repeat("0", 40), UpdatedAt: h.t0.Add(3 * time.Minute), State: "closed"})
	h.deliver("pull_request", patchJSON(t, prEvent(t, "closed", h.n, alice, sha('2'), alice),
		map[string]any{"pull_request.updated_at": h.at(3 * time.Minute), "pull_request.state": "closed"}))
	h.event("synchronize", '2', alice, time.Minute) // late
	st := openAudit(t, h.harness)
	waitFor(t, "the synchronize to be learned", func() bool {
		tr, _, _ := st.TrackedPR(context.Background(), testRepo, h.n)
		return tr.KnownHead == sha('2')
	})
	h.head('2', 4*time.Minute)
	h.event("reopened", '2', alice, 4*time.Minute)
	if run := h.decided(3, '2'); run.Conclusion != "success" {
		t.Fatalf("alice's reopened PR, her own push learned: %q %s", run.Conclusion, run.Summary)
	}
}
