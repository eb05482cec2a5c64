package main

import (
	"strings"
	"testing"
	"time"

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
