package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
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
			h.publishedAfter(p.head, "")
			calls := fake.Calls()
			t.Logf("%s pushed a new head: %d calls that cost, %d answered 304:%s", p.author.Login, len(calls), len(fake.FreeCalls()), costly(calls))
		}
	})

	t.Run("team memberships are asked once, not per event", func(t *testing.T) {
		// Every event above classified its author, sender, committers and
		// reviewers against the automation team, and reviewers against the
		// approvers' team: the directory answered from its cache.
		fake.ResetCalls()
		h.deliver("pull_request", prEvent(t, "labeled", 2, agent, sha('2'), alice))
		ext[sha('2')] = h.publishedAfter(sha('2'), ext[sha('2')])
		if n := fake.CallCount("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"); n != 0 {
			t.Fatalf("%d team membership calls in steady state", n)
		}
	})
}
