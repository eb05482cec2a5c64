package guard

import (
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// Which approval clears an agent's push: the latest human approval as
// SPEC §5 defines one, and only for what it covers.
func TestAgentPushApprovedBy(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	alice := pr.Account{Login: "alice", Type: "User"}
	carol := pr.Account{Login: "carol", Type: "User"}
	bot := pr.Account{Login: "helper[bot]", Type: "Bot", Agent: true}
	commit := func(sha string, by pr.Account) pr.Commit {
		return pr.Commit{SHA: sha, Author: pr.Person{Account: by}, Committer: pr.Person{Account: by}}
	}
	approve := func(by pr.Account, sha string, at time.Duration) pr.Review {
		return pr.Review{User: by, State: "APPROVED", CommitID: sha, SubmittedAt: t0.Add(at), Approver: true}
	}
	commits := []pr.Commit{commit("c1", bot), commit("c2", alice), commit("c3", alice)}
	agentCommit := agentPush{why: "commit c1 by agent", commit: 1}
	pushed := agentPush{why: "pushed", at: t0.Add(time.Minute)}
	pushedC2 := agentPush{why: "pushed c2", at: t0.Add(time.Minute), head: "c2"}
	for _, tt := range []struct {
		name    string
		commits []pr.Commit
		reviews []pr.Review
		push    agentPush
		want    bool
	}{
		{"an approval of a later commit covers an agent's commit", commits, []pr.Review{approve(carol, "c2", 0)}, agentCommit, true},
		{"an approval of that commit covers it", commits, []pr.Review{approve(carol, "c1", 0)}, agentCommit, true},
		{"nor an earlier one's", append([]pr.Commit{commit("c0", alice)}, commits...), []pr.Review{approve(carol, "c0", 0)}, agentPush{commit: 2}, false},
		{"an approval after a push clears it", commits, []pr.Review{approve(carol, "c3", 2*time.Minute)}, pushed, true},
		{"one before it does not", commits, []pr.Review{approve(carol, "c3", 0)}, pushed, false},
		{"nor one in the same second", commits, []pr.Review{approve(carol, "c3", time.Minute)}, pushed, false},
		{"the latest approval counts", commits, []pr.Review{approve(carol, "c3", 2*time.Minute), approve(pr.Account{Login: "dave", Type: "User"}, "c3", 0)}, pushed, true},
		{"an approval of a commit before the pushed head does not clear the push", commits, []pr.Review{approve(carol, "c1", 2*time.Minute)}, pushedC2, false},
		{"one of the pushed head does", commits, []pr.Review{approve(carol, "c2", 2*time.Minute)}, pushedC2, true},
		{"an approved commit no longer in the PR clears nothing", commits, []pr.Review{approve(carol, "gone", 2*time.Minute)}, pushed, false},
		{"the author's approval is none", commits, []pr.Review{approve(alice, "c3", 2*time.Minute)}, pushed, false},
		{"a committer's approval is none", append(commits, commit("c4", carol)), []pr.Review{approve(carol, "c3", 2*time.Minute)}, pushed, false},
		{"a bot's approval is none", commits, []pr.Review{approve(pr.Account{Login: "ok-bot", Type: "Bot"}, "c3", 2*time.Minute)}, pushed, false},
		{"an agent's approval is none", commits, []pr.Review{approve(pr.Account{Login: "agent-user", Type: "User", Agent: true}, "c3", 2*time.Minute)}, pushed, false},
		{"a non-approver's approval is none", commits, []pr.Review{{User: carol, State: "APPROVED", CommitID: "c3", SubmittedAt: t0.Add(2 * time.Minute)}}, pushed, false},
		{"a comment is no approval", commits, []pr.Review{{User: carol, State: "COMMENTED", CommitID: "c3", SubmittedAt: t0.Add(2 * time.Minute), Approver: true}}, pushed, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := &pr.Input{PullRequest: pr.PullRequest{Author: alice}, Commits: tt.commits, Reviews: tt.reviews}
			approval, at := lastHumanApproval(in)
			got := approval != nil && tt.push.approvedBy(in.Commits, *approval, at)
			if got != tt.want {
				t.Fatalf("approved = %v (approval %+v at %d), want %v", got, approval, at, tt.want)
			}
		})
	}
}
