package guard

import (
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// Which approvals clear an agent's push or commit: a human approval (SPEC
// §5) of a commit that includes it, by the parents GitHub lists, and for a
// push one submitted after it.
func TestAgentPushApprovedBy(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	alice := pr.Account{Login: "alice", Type: "User"}
	carol := pr.Account{Login: "carol", Type: "User"}
	bot := pr.Account{Login: "helper[bot]", Type: "Bot", Agent: true}
	commit := func(sha string, by pr.Account, parents ...string) pr.Commit {
		return pr.Commit{SHA: sha, Author: pr.Person{Account: by}, Committer: pr.Person{Account: by}, Parents: parents}
	}
	approve := func(by pr.Account, sha string, at time.Duration) pr.Review {
		return pr.Review{User: by, State: "APPROVED", CommitID: sha, SubmittedAt: t0.Add(at), Approver: true}
	}
	// base ← c1 (the agent's) ← c2 ← c3 (head)
	line := []pr.Commit{commit("c1", bot, "base"), commit("c2", alice, "c1"), commit("c3", alice, "c2")}
	// GitHub lists by date: the agent's older commit cA, cherry-picked (or
	// merged, by m) after carol approved c2, sorts before c2.
	picked := []pr.Commit{commit("c1", alice, "base"), commit("cA", bot, "elsewhere"), commit("c2", alice, "c1"), commit("m", alice, "c2", "cA")}
	agentCommit := func(sha string) agentPush { return agentPush{commit: sha} }
	pushed := func(head string) agentPush { return agentPush{pushSeen: pushSeen{at: t0.Add(time.Minute), head: head}} }
	for _, tt := range []struct {
		name    string
		commits []pr.Commit
		reviews []pr.Review
		push    agentPush
		want    bool
	}{
		{"an approval of a commit on top covers an agent's commit", line, []pr.Review{approve(carol, "c2", 0)}, agentCommit("c1"), true},
		{"an approval of that commit covers it", line, []pr.Review{approve(carol, "c1", 0)}, agentCommit("c1"), true},
		{"one of an earlier commit does not", append([]pr.Commit{commit("c0", alice, "base")}, commit("c1", bot, "c0")), []pr.Review{approve(carol, "c0", 0)}, agentCommit("c1"), false},
		{"a cherry-picked agent commit listed before the approved one is not covered", picked, []pr.Review{approve(carol, "c2", 0)}, agentCommit("cA"), false},
		{"a merge commit approved covers the merged agent commit", picked, []pr.Review{approve(carol, "m", 0)}, agentCommit("cA"), true},
		{"an approval after a push of a commit on top clears it", line, []pr.Review{approve(carol, "c3", 2*time.Minute)}, pushed("c2"), true},
		{"an approval of the pushed head clears it", line, []pr.Review{approve(carol, "c2", 2*time.Minute)}, pushed("c2"), true},
		{"one before the push does not", line, []pr.Review{approve(carol, "c3", 0)}, pushed("c2"), false},
		{"nor one in the same second", line, []pr.Review{approve(carol, "c3", time.Minute)}, pushed("c2"), false},
		{"nor one after it of an older commit", line, []pr.Review{approve(carol, "c1", 2*time.Minute)}, pushed("c2"), false},
		{"any approval that covers it counts", line, []pr.Review{approve(carol, "c1", 2*time.Minute), approve(pr.Account{Login: "dave", Type: "User"}, "c3", 3*time.Minute)}, pushed("c2"), true},
		{"a push of unknown head: an approval of the PR's head after it", line, []pr.Review{approve(carol, "c3", 2*time.Minute)}, pushed(""), true},
		{"a push of unknown head: not one of an older commit", line, []pr.Review{approve(carol, "c2", 2*time.Minute)}, pushed(""), false},
		{"an approved commit no longer in the PR covers nothing", line, []pr.Review{approve(carol, "gone", 2*time.Minute)}, pushed("c2"), false},
		{"a pushed head no longer in the PR (rebased): an approval of the PR's head after it", line, []pr.Review{approve(carol, "c3", 2*time.Minute)}, pushed("gone"), true},
		{"a pushed head no longer in the PR: not one of an older commit", line, []pr.Review{approve(carol, "c2", 2*time.Minute)}, pushed("gone"), false},
		{"an approval withdrawn by a later request for changes is none", line, []pr.Review{approve(carol, "c3", 2*time.Minute),
			{ID: 9, User: carol, State: "CHANGES_REQUESTED", CommitID: "c3", SubmittedAt: t0.Add(3 * time.Minute), Approver: true}}, pushed("c2"), false},
		{"an approval given again after a request for changes counts", line, []pr.Review{
			{ID: 9, User: carol, State: "CHANGES_REQUESTED", CommitID: "c3", SubmittedAt: t0.Add(2 * time.Minute), Approver: true}, approve(carol, "c3", 3*time.Minute)}, pushed("c2"), true},
		{"the author's approval is none", line, []pr.Review{approve(alice, "c3", 2*time.Minute)}, pushed("c2"), false},
		{"a committer's approval is none", append(line, commit("c4", carol, "c3")), []pr.Review{approve(carol, "c4", 2*time.Minute)}, pushed("c2"), false},
		{"a bot's approval is none", line, []pr.Review{approve(pr.Account{Login: "ok-bot", Type: "Bot"}, "c3", 2*time.Minute)}, pushed("c2"), false},
		{"an agent's approval is none", line, []pr.Review{approve(pr.Account{Login: "agent-user", Type: "User", Agent: true}, "c3", 2*time.Minute)}, pushed("c2"), false},
		{"a non-approver's approval is none", line, []pr.Review{{User: carol, State: "APPROVED", CommitID: "c3", SubmittedAt: t0.Add(2 * time.Minute)}}, pushed("c2"), false},
		{"a dismissed approval is none", line, []pr.Review{{User: carol, State: "DISMISSED", CommitID: "c3", SubmittedAt: t0.Add(2 * time.Minute), Approver: true}}, pushed("c2"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := &pr.Input{PullRequest: pr.PullRequest{Author: alice, HeadSHA: tt.commits[len(tt.commits)-1].SHA}, Commits: tt.commits, Reviews: tt.reviews}
			if got := tt.push.approvedBy(in, humanApprovals(in)); got != tt.want {
				t.Fatalf("approved = %v, want %v", got, tt.want)
			}
		})
	}
}
