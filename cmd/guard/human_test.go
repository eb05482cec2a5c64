package main

// End-to-end tests of what humans and GitHub do around a pull request
// (SPEC §4 details page, §5 comment commands and buttons, §6 triggers):
// escalation, /guard commands, check_run and check_suite re-runs, time,
// merge queues, merges, installations and the details page, all against
// the fake GitHub through the real handler, workers and scheduler.

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/guard"
	"github.com/mergeguard/guard/internal/pr"
)

var (
	mona  = pr.Account{Login: "mona", Type: "User"}          // maintain
	walt  = pr.Account{Login: "walt", Type: "User"}          // write only
	erin  = pr.Account{Login: "erin", Type: "User"}          // release-managers team
	relAg = pr.Account{Login: "release-agent", Type: "User"} // an agent by configuration
)

// patchJSON sets dotted paths in a JSON object, parents before children.
func patchJSON(t *testing.T, raw []byte, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		setPath(m, k, set[k])
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// commentEvent is an issue_comment.created payload: user comments body on
// issue or pull request n (onPR), created at (zero: now). extra overrides
// any field (sender, performed_via_github_app, ...).
func commentEvent(t *testing.T, n int, onPR bool, id int64, user pr.Account, body string, at time.Time, extra map[string]any) []byte {
	t.Helper()
	if at.IsZero() {
		at = time.Now()
	}
	set := map[string]any{
		"issue.number":       n,
		"comment.id":         id,
		"comment.user":       map[string]any{"login": user.Login, "type": user.Type, "id": 1000 + len(user.Login)},
		"comment.body":       body,
		"comment.created_at": at.UTC().Format(time.RFC3339),
		"comment.updated_at": at.UTC().Format(time.RFC3339),
		"sender":             map[string]any{"login": user.Login, "type": user.Type, "id": 1000 + len(user.Login)},
	}
	if onPR {
		set["issue.pull_request"] = map[string]any{"url": fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", testRepo, n)}
	}
	for k, v := range extra {
		set[k] = v
	}
	return patchJSON(t, payload(t, "issue_comment.created", nil), set)
}

// commentIDs hands out comment ids unique within a test.
type commentIDs struct{ next int64 }

func (c *commentIDs) id() int64 { c.next++; return 7_000_000 + c.next }

// openAudit opens the guard's database beside the running guard (WAL: one
// writer, many readers), closed when the test ends.
func openAudit(t *testing.T, h *harness) *audit.Store {
	t.Helper()
	st, err := audit.Open(context.Background(), h.db)
	if err != nil {
		t.Fatalf("open audit store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// idle waits until every accepted delivery has been processed.
func idle(t *testing.T, st *audit.Store) {
	t.Helper()
	waitFor(t, "every delivery to be processed", func() bool {
		p, err := st.Pending(context.Background(), 0, 0)
		return err == nil && len(p) == 0
	})
}

// records returns the trail records of PR n, oldest first, that match.
func records(t *testing.T, st *audit.Store, n int, match func(audit.Record) bool) []audit.Record {
	t.Helper()
	hist, err := st.PRHistory(context.Background(), testRepo, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for i := len(hist) - 1; i >= 0; i-- {
		if match == nil || match(hist[i]) {
			out = append(out, hist[i])
		}
	}
	return out
}

// waitRecord waits for a record of PR n that matches and returns it.
func waitRecord(t *testing.T, st *audit.Store, n int, what string, match func(audit.Record) bool) audit.Record {
	t.Helper()
	var got []audit.Record
	waitFor(t, what, func() bool {
		got = records(t, st, n, match)
		return len(got) > 0
	})
	return got[len(got)-1]
}

func kind(k, outcome string) func(audit.Record) bool {
	return func(r audit.Record) bool { return r.Kind == k && (outcome == "" || r.Outcome == outcome) }
}

// waitComment waits for a comment on n that contains every part.
func waitComment(t *testing.T, fake *githubtest.Server, n int, parts ...string) githubtest.Comment {
	t.Helper()
	var found githubtest.Comment
	waitFor(t, fmt.Sprintf("a comment on #%d saying %q", n, parts), func() bool {
		for _, c := range fake.Comments(testRepo, n) {
			if containsAll(c.Body, parts...) {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func escalationComments(fake *githubtest.Server, n int) []githubtest.Comment {
	var out []githubtest.Comment
	for _, c := range fake.Comments(testRepo, n) {
		if strings.Contains(c.Body, "merge-guard:escalation-") {
			out = append(out, c)
		}
	}
	return out
}

// lastRun returns the newest merge-guard run on sha.
func lastRun(t *testing.T, fake *githubtest.Server, sha string) githubtest.CheckRun {
	t.Helper()
	runs := fake.CheckRuns(testRepo, sha)
	if len(runs) == 0 {
		t.Fatalf("no check run on %s", sha[:7])
	}
	return runs[len(runs)-1]
}

// addAgentPush seeds PR n authored by author whose head commit was written
// by an agent: an agent PR whatever its author.
func addAgentPush(fake *githubtest.Server, n int, author pr.Account, head string) {
	fake.AddPull(testRepo, pr.PullRequest{Number: n, Title: "pushed to by an agent", Author: author, HeadSHA: head, BaseRef: "main", BaseSHA: sha('0')})
	by := pr.Person{Name: "agent", Email: "agent@example.com", Account: agent, Date: time.Now().Add(-time.Hour)}
	fake.AddCommit(testRepo, n, pr.Commit{SHA: head, Message: "agent change", Author: by, Committer: by})
}

// TestEscalation: an escalated PR asks the configured reviewers and gets one
// explanatory comment per head SHA (SPEC §6).
func TestEscalation(t *testing.T) {
	fake := newFake(t)
	fake.SetPermission(testRepo, "dave", "write")
	fake.AddTeamMember("octo-org", "release-managers", "erin", "active")
	h := startGuard(t, fake, "escalation:\n  reviewers: {teams: [release-managers], users: [dave]}\n")
	st := openAudit(t, h)

	addPull(fake, 1, agent, sha('a'))
	h.deliver("pull_request", prEvent(t, "opened", 1, agent, sha('a'), agent))
	run := h.waitCheckOn(t, sha('a'), "action_required")

	t.Run("reviewers from escalation.reviewers are requested", func(t *testing.T) {
		waitFor(t, "reviewers to be requested", func() bool {
			users, teams := fake.RequestedReviewers(testRepo, 1)
			return slices.Contains(users, "dave") && slices.Contains(teams, "release-managers")
		})
	})
	t.Run("one comment explains what a human must do and links the details", func(t *testing.T) {
		c := waitComment(t, fake, 1, "merge-guard:escalation-"+sha('a'))
		if !containsAll(c.Body, "/guard approve", sha('a')[:7], run.DetailsURL) {
			t.Fatalf("escalation comment does not say what to do or link the details:\n%s", c.Body)
		}
		if c.User != fake.AppSlug()+"[bot]" {
			t.Fatalf("comment by %q, want the app's bot", c.User)
		}
	})
	t.Run("a second event on the same head adds no comment", func(t *testing.T) {
		h.deliver("pull_request", prEvent(t, "labeled", 1, agent, sha('a'), agent))
		// At least 2: the scheduler may re-evaluate once more at start.
		waitFor(t, "the second decision", func() bool { return len(records(t, st, 1, kind("decision", ""))) >= 2 })
		idle(t, st)
		if got := escalationComments(fake, 1); len(got) != 1 {
			t.Fatalf("%d escalation comments for one head, want 1", len(got))
		}
		if runs := fake.CheckRuns(testRepo, sha('a')); len(runs) != 1 {
			t.Fatalf("%d check runs on one head, want 1 updated in place", len(runs))
		}
	})
	t.Run("a new head SHA gets a new comment", func(t *testing.T) {
		fake.AddPull(testRepo, pr.PullRequest{Number: 1, Title: "change 1", Author: agent, HeadSHA: sha('b'), BaseRef: "main", BaseSHA: sha('0')})
		fake.AddCommit(testRepo, 1, pr.Commit{SHA: sha('b'), Message: "more",
			Author:    pr.Person{Name: "agent", Account: agent, Date: time.Now()},
			Committer: pr.Person{Name: "agent", Account: agent, Date: time.Now()}})
		h.deliver("pull_request", prEvent(t, "synchronize", 1, agent, sha('b'), agent))
		h.waitCheckOn(t, sha('b'), "action_required")
		waitComment(t, fake, 1, "merge-guard:escalation-"+sha('b'))
		idle(t, st)
		if got := escalationComments(fake, 1); len(got) != 2 {
			t.Fatalf("%d escalation comments for two heads, want 2", len(got))
		}
	})
}

// TestCommentCommands: /guard approve, override, freeze, unfreeze and
// status, with no approvers configured (maintain or admin may act).
func TestCommentCommands(t *testing.T) {
	fake := newFake(t)
	fake.SetPermission(testRepo, "mona", "maintain")
	fake.SetPermission(testRepo, "walt", "write")
	fake.SetPermission(testRepo, "release-agent", "admin")
	h := startGuard(t, fake, "agents:\n  logins: [release-agent]\n")
	st := openAudit(t, h)
	ids := &commentIDs{}
	next := 100

	// escalated opens an agent PR and waits until it is held.
	escalated := func(t *testing.T) (int, string) {
		t.Helper()
		next++
		n, head := next, fmt.Sprintf("%040x", next)
		addPull(fake, n, agent, head)
		h.deliver("pull_request", prEvent(t, "opened", n, agent, head, agent))
		h.waitCheckOn(t, head, "action_required")
		waitRecord(t, st, n, "the first decision", kind("decision", "escalate"))
		return n, head
	}

	t.Run("approve by a maintainer clears escalate, audited with who and why", func(t *testing.T) {
		n, head := escalated(t)
		before := lastRun(t, fake, head)
		h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard approve read every line of the diff", time.Time{}, nil))
		run := h.waitCheckOn(t, head, "success")
		if run.ID != before.ID {
			t.Fatalf("approval created run %d, want run %d updated", run.ID, before.ID)
		}
		rec := waitRecord(t, st, n, "the granted override", kind("override", "granted"))
		if rec.Actor != "mona" || rec.Reason != "read every line of the diff" || rec.HeadSHA != head || !slices.Contains(rec.Rules, "approve") {
			t.Fatalf("override record %+v", rec)
		}
		waitComment(t, fake, n, "@mona", "Approved", head[:7])
	})

	t.Run("an approval whose publishing failed is finished when GitHub redelivers it", func(t *testing.T) {
		n, head := escalated(t)
		fake.FailNext("PATCH", "/repos/{owner}/{repo}/check-runs/{id}", 0, http.StatusInternalServerError, nil, "")
		body := commentEvent(t, n, true, ids.id(), mona, "/guard approve checked the retry logic", time.Time{}, nil)
		id := fmt.Sprintf("approve-redelivered-%d", n)
		failed := strings.Count(h.log.String(), "delivery failed")
		if code := postWebhook(t, h.base, "issue_comment", id, body); code != http.StatusAccepted {
			t.Fatalf("comment answered %d", code)
		}
		waitFor(t, "the delivery to fail", func() bool { return strings.Count(h.log.String(), "delivery failed") > failed })
		fake.ClearFaults()
		if code := postWebhook(t, h.base, "issue_comment", id, body); code != http.StatusAccepted {
			t.Fatalf("redelivery answered %d, want 202", code)
		}
		h.waitCheckOn(t, head, "success")
		rec := waitRecord(t, st, n, "the granted override", kind("override", "granted"))
		if rec.Actor != "mona" || rec.HeadSHA != head {
			t.Fatalf("override record %+v", rec)
		}
		waitComment(t, fake, n, "@mona", "Approved", head[:7])
		if os, err := st.Overrides(context.Background(), testRepo, n); err != nil || len(os) != 1 {
			t.Fatalf("overrides %+v, %v; want one", os, err)
		}
		// A second delivery of the same comment (another id) gives nothing.
		if code := postWebhook(t, h.base, "issue_comment", id+"-again", body); code != http.StatusAccepted {
			t.Fatalf("another delivery answered %d", code)
		}
		time.Sleep(200 * time.Millisecond)
		if os, _ := st.Overrides(context.Background(), testRepo, n); len(os) != 1 {
			t.Fatalf("overrides %+v after another delivery of the comment", os)
		}
		if recs := records(t, st, n, kind("override", "granted")); len(recs) != 1 {
			t.Fatalf("%d granted-override records, want 1", len(recs))
		}
	})

	refusals := []struct {
		name  string
		user  pr.Account
		extra map[string]any
		why   string
	}{
		{"a bot", other, nil, "is a bot"},
		{"an agent (even with admin)", relAg, nil, "is an agent"},
		{"a user with write permission only", walt, nil, "write permission"},
		{"a comment sent by someone else than its author", mona,
			map[string]any{"sender": map[string]any{"login": "walt", "type": "User", "id": 77}}, "sent by @walt"},
		{"a comment made through a GitHub App", mona,
			map[string]any{"comment.performed_via_github_app": map[string]any{"id": 99, "slug": "other-app", "name": "Other"}}, "GitHub App"},
	}
	for _, tt := range refusals {
		t.Run("approve refused for "+tt.name, func(t *testing.T) {
			n, head := escalated(t)
			before := lastRun(t, fake, head)
			h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), tt.user, "/guard approve trust me", time.Time{}, tt.extra))
			waitComment(t, fake, n, "Refused", tt.why)
			rec := waitRecord(t, st, n, "the refusal", kind("override", "refused"))
			if !strings.Contains(rec.Reason, tt.why) || !strings.Contains(rec.Reason, "approve refused") {
				t.Fatalf("refusal record reason %q does not say %q", rec.Reason, tt.why)
			}
			idle(t, st)
			after := lastRun(t, fake, head)
			if after.Conclusion != "action_required" || after.ID != before.ID || after.Updates != before.Updates {
				t.Fatalf("check changed by a refused approval: %+v -> %+v", before, after)
			}
			if got := records(t, st, n, kind("override", "granted")); len(got) != 0 {
				t.Fatalf("granted overrides after a refusal: %+v", got)
			}
		})
	}

	t.Run("approve refused for the author of an agent PR", func(t *testing.T) {
		next++
		n, head := next, fmt.Sprintf("%040x", next)
		addAgentPush(fake, n, mona, head)
		h.deliver("pull_request", prEvent(t, "opened", n, mona, head, mona))
		h.waitCheckOn(t, head, "action_required")
		waitRecord(t, st, n, "the first decision", kind("decision", "escalate"))
		h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard approve my own PR", time.Time{}, nil))
		waitComment(t, fake, n, "Refused", "is the author")
		waitRecord(t, st, n, "the refusal", kind("override", "refused"))
		idle(t, st)
		if c := lastRun(t, fake, head).Conclusion; c != "action_required" {
			t.Fatalf("conclusion %s after the author's own approval", c)
		}
	})

	t.Run("approve refused for the author while the PR is not classified", func(t *testing.T) {
		next++
		n, head := next, fmt.Sprintf("%040x", next)
		addAgentPush(fake, n, mona, head)
		// The commits cannot be read: the decision is an error (fails
		// closed), and nobody knows yet that an agent pushed.
		fake.FailNext("GET", fmt.Sprintf("/repos/%s/pulls/%d/commits", testRepo, n), 0, http.StatusInternalServerError, nil, "")
		defer fake.ClearFaults()
		h.deliver("pull_request", prEvent(t, "opened", n, mona, head, mona))
		h.waitCheckOn(t, head, "failure")
		waitRecord(t, st, n, "the error decision", kind("decision", "error"))
		h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard approve my own PR", time.Time{}, nil))
		waitComment(t, fake, n, "Refused", "not classified")
		waitRecord(t, st, n, "the refusal", kind("override", "refused"))
		if os, err := st.Overrides(context.Background(), testRepo, n); err != nil || len(os) != 0 {
			t.Fatalf("overrides %+v, %v; want none", os, err)
		}
	})

	t.Run("approve refused for a head an agent pushed seconds after the comment", func(t *testing.T) {
		n, _ := escalated(t)
		at := time.Now().UTC().Truncate(time.Second)
		defer h.clock.Set(time.Time{})
		newHead := fmt.Sprintf("%040x", 0xeee000+n)
		by := pr.Person{Name: "agent", Account: agent, Date: at.Add(-2 * time.Hour)} // backdated
		fake.AddPull(testRepo, pr.PullRequest{Number: n, Title: "moved", Author: agent, HeadSHA: newHead, BaseRef: "main", BaseSHA: sha('0')})
		fake.AddCommit(testRepo, n, pr.Commit{SHA: newHead, Message: "sneaky", Author: by, Committer: by})
		h.clock.Set(at.Add(3 * time.Second)) // the guard decides on it 3 s after the comment
		h.deliver("pull_request", prEvent(t, "synchronize", n, agent, newHead, agent))
		h.waitCheckOn(t, newHead, "action_required")
		h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard approve looked at it", at, nil))
		waitComment(t, fake, n, "Refused", "head moved")
		if c := lastRun(t, fake, newHead).Conclusion; c != "action_required" {
			t.Fatalf("conclusion %s after an approval of the head before", c)
		}
	})

	moved := []struct {
		name       string
		commitDate time.Time
		commentAt  time.Duration // relative to now
	}{
		{"a head pushed after the comment", time.Now(), -time.Minute},
		{"a head pushed after the comment with a backdated commit", time.Now().Add(-2 * time.Hour), 0},
	}
	for _, tt := range moved {
		t.Run("approve refused for "+tt.name, func(t *testing.T) {
			n, head := escalated(t)
			newHead := fmt.Sprintf("%040x", 0xfff000+n)
			fake.AddPull(testRepo, pr.PullRequest{Number: n, Title: "moved", Author: agent, HeadSHA: newHead, BaseRef: "main", BaseSHA: sha('0')})
			by := pr.Person{Name: "agent", Account: agent, Date: tt.commitDate}
			fake.AddCommit(testRepo, n, pr.Commit{SHA: newHead, Message: "sneaky", Author: by, Committer: by})
			at := time.Now().Add(tt.commentAt)
			h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard approve looked at it", at, nil))
			waitComment(t, fake, n, "Refused", "head moved")
			waitRecord(t, st, n, "the refusal", kind("override", "refused"))
			idle(t, st)
			if got := records(t, st, n, kind("override", "granted")); len(got) != 0 {
				t.Fatalf("approval granted for a head the human had not seen: %+v", got)
			}
			if c := lastRun(t, fake, newHead).Conclusion; c != "action_required" {
				t.Fatalf("new head's conclusion %s, want action_required", c)
			}
			if c := lastRun(t, fake, head).Conclusion; c != "action_required" {
				t.Fatalf("old head's conclusion %s, want action_required", c)
			}
		})
	}

	t.Run("a comment id redelivered under a new delivery id acts once", func(t *testing.T) {
		n, head := escalated(t)
		body := commentEvent(t, n, true, ids.id(), mona, "/guard approve once is enough", time.Time{}, nil)
		h.deliver("issue_comment", body)
		h.waitCheckOn(t, head, "success")
		waitRecord(t, st, n, "the granted override", kind("override", "granted"))
		h.deliver("issue_comment", body)
		idle(t, st)
		if got := records(t, st, n, kind("override", "")); len(got) != 1 {
			t.Fatalf("%d override records for one comment, want 1", len(got))
		}
		replies := 0
		for _, c := range fake.Comments(testRepo, n) {
			if strings.Contains(c.Body, "Approved") {
				replies++
			}
		}
		if replies != 1 {
			t.Fatalf("%d replies to one comment, want 1", replies)
		}
	})

	t.Run("freeze, override, status and unfreeze", func(t *testing.T) {
		// Two approved agent PRs, green.
		var heads []string
		var nums []int
		for range 2 {
			next++
			n, head := next, fmt.Sprintf("%040x", next)
			addPull(fake, n, agent, head)
			fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: head})
			h.deliver("pull_request", prEvent(t, "opened", n, agent, head, agent))
			h.waitCheckOn(t, head, "success")
			nums, heads = append(nums, n), append(heads, head)
		}
		fake.AddIssue(testRepo, 900)

		h.deliver("issue_comment", commentEvent(t, 900, false, ids.id(), walt, "/guard freeze 2h not mine to call", time.Time{}, nil))
		waitComment(t, fake, 900, "@walt", "Refused", "write permission")

		h.deliver("issue_comment", commentEvent(t, 900, false, ids.id(), mona, "/guard freeze 2h INC-42 payments down", time.Time{}, nil))
		waitComment(t, fake, 900, "@mona", "Incident freeze", "declared")
		for _, head := range heads {
			run := h.waitCheckOn(t, head, "failure")
			if !strings.Contains(run.Summary, "INC-42") || !strings.Contains(run.Summary, "/guard override") {
				t.Fatalf("blocked run does not name the incident or the way out:\n%s", run.Summary)
			}
		}

		h.deliver("issue_comment", commentEvent(t, 900, false, ids.id(), alice, "/guard status", time.Time{}, nil))
		waitComment(t, fake, 900, "@alice", "Active freezes", "incident-", "INC-42")

		h.deliver("issue_comment", commentEvent(t, nums[0], true, ids.id(), mona, "/guard override hotfix must ship", time.Time{}, nil))
		h.waitCheckOn(t, heads[0], "success")
		rec := waitRecord(t, st, nums[0], "the granted override", kind("override", "granted"))
		if rec.Actor != "mona" || !slices.Contains(rec.Rules, "incident_freeze") || rec.Reason != "hotfix must ship" {
			t.Fatalf("override record %+v", rec)
		}
		idle(t, st)
		if c := lastRun(t, fake, heads[1]).Conclusion; c != "failure" {
			t.Fatalf("an override of #%d let #%d through: %s", nums[0], nums[1], c)
		}

		h.deliver("issue_comment", commentEvent(t, nums[1], true, ids.id(), walt, "/guard status", time.Time{}, nil))
		waitComment(t, fake, nums[1], "@walt", "Last decision", "block")

		h.deliver("issue_comment", commentEvent(t, 900, false, ids.id(), mona, "/guard unfreeze", time.Time{}, nil))
		waitComment(t, fake, 900, "@mona", "ended")
		h.waitCheckOn(t, heads[1], "success")

		var buf bytes.Buffer
		if _, _, err := st.Export(context.Background(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "csv", &buf); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{",freeze,", ",mona,", ",started,", ",ended,"} {
			if !strings.Contains(buf.String(), want) {
				t.Fatalf("export lacks %q:\n%s", want, buf.String())
			}
		}
	})

	t.Run("a freeze command processed again declares one freeze and replies once", func(t *testing.T) {
		fake.AddIssue(testRepo, 901)
		// GitHub stores the reply but the guard hears a 422: the delivery
		// fails after the freeze was declared, and GitHub redelivers it.
		fake.FailAfterNext("POST", "/repos/{owner}/{repo}/issues/{number}/comments", 1, http.StatusUnprocessableEntity)
		id := ids.id()
		body := commentEvent(t, 901, false, id, mona, "/guard freeze 2h INC-77 retried", time.Time{}, nil)
		if code := postWebhook(t, h.base, "issue_comment", "freeze-retried", body); code != http.StatusAccepted {
			t.Fatalf("webhook answered %d", code)
		}
		waitFor(t, "the delivery to fail", func() bool {
			return strings.Contains(h.log.String(), "delivery=freeze-retried") && strings.Contains(h.log.String(), "reply to /guard command")
		})
		if code := postWebhook(t, h.base, "issue_comment", "freeze-retried", body); code != http.StatusAccepted {
			t.Fatalf("redelivery answered %d", code)
		}
		idle(t, st)
		ctx := context.Background()
		t.Cleanup(func() { st.EndFreezes(ctx, audit.ScopeRepo, testRepo, "test") })
		fs, err := st.ActiveFreezes(ctx, time.Now())
		if err != nil || len(fs) != 1 || fs[0].Reason != "INC-77 retried" {
			t.Fatalf("active freezes %+v, %v; want the one declared", fs, err)
		}
		var buf bytes.Buffer
		if _, _, err := st.Export(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "csv", &buf); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.Contains(line, ",freeze,") && strings.Contains(line, "INC-77 retried") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d freeze records of the command, want one (started):\n%s", n, buf.String())
		}
		replies := 0
		for _, c := range fake.Comments(testRepo, 901) {
			if strings.Contains(c.Body, fmt.Sprintf("merge-guard:reply-%d", id)) {
				replies++
			}
		}
		if replies != 1 {
			t.Fatalf("%d replies to the command, want one", replies)
		}
	})

	t.Run("override with nothing blocking is refused", func(t *testing.T) {
		n, head := escalated(t)
		h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard override just because", time.Time{}, nil))
		waitComment(t, fake, n, "Refused", "nothing blocks")
		idle(t, st)
		if c := lastRun(t, fake, head).Conclusion; c != "action_required" {
			t.Fatalf("conclusion %s", c)
		}
	})

	t.Run("a malformed command gets the usage", func(t *testing.T) {
		n, _ := escalated(t)
		h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), mona, "/guard approve", time.Time{}, nil))
		waitComment(t, fake, n, "@mona", "needs a reason")
	})
}

// TestApproverTeams: with escalation.approvers set, only active members of
// its teams (or its users) may approve; permission does not matter.
func TestApproverTeams(t *testing.T) {
	fake := newFake(t)
	fake.AddTeamMember("octo-org", "release-managers", "erin", "active")
	fake.AddTeamMember("octo-org", "release-managers", "paula", "pending")
	fake.SetPermission(testRepo, "mona", "admin")
	h := startGuard(t, fake, "escalation:\n  approvers: {teams: [release-managers]}\n")
	st := openAudit(t, h)
	ids := &commentIDs{}

	cases := []struct {
		name string
		who  pr.Account
		want string
	}{
		{"an active team member approves", erin, "success"},
		{"a pending member is refused", pr.Account{Login: "paula", Type: "User"}, "action_required"},
		{"an admin outside the team is refused", mona, "action_required"},
	}
	for i, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			n, head := 200+i, sha(byte('a'+i))
			addPull(fake, n, agent, head)
			h.deliver("pull_request", prEvent(t, "opened", n, agent, head, agent))
			h.waitCheckOn(t, head, "action_required")
			waitRecord(t, st, n, "the first decision", kind("decision", ""))
			h.deliver("issue_comment", commentEvent(t, n, true, ids.id(), tt.who, "/guard approve reviewed", time.Time{}, nil))
			if tt.want == "success" {
				h.waitCheckOn(t, head, "success")
				waitRecord(t, st, n, "the grant", kind("override", "granted"))
				return
			}
			waitComment(t, fake, n, "Refused", "not an approver", "@octo-org/release-managers")
			idle(t, st)
			if c := lastRun(t, fake, head).Conclusion; c != tt.want {
				t.Fatalf("conclusion %s, want %s", c, tt.want)
			}
		})
	}
}

// checkRunEvent is a check_run payload for our run on head, with an empty
// pull_requests list (as for forks).
func checkRunEvent(t *testing.T, action string, run githubtest.CheckRun, sender pr.Account, identifier string) []byte {
	set := map[string]any{
		"action":                              action,
		"check_run.id":                        run.ID,
		"check_run.name":                      run.Name,
		"check_run.head_sha":                  run.HeadSHA,
		"check_run.external_id":               run.ExternalID,
		"check_run.pull_requests":             []any{},
		"check_run.check_suite.pull_requests": []any{},
		"check_run.check_suite.head_sha":      run.HeadSHA,
		"sender":                              map[string]any{"login": sender.Login, "type": sender.Type, "id": 4242},
	}
	// GitHub's old example payload dates the app "2018-04-25 20:42:10",
	// which go-github cannot parse; GitHub sends RFC 3339 today.
	for _, app := range []string{"check_run.app", "check_run.check_suite.app"} {
		set[app+".created_at"] = "2018-04-25T20:42:10Z"
		set[app+".updated_at"] = "2018-04-25T20:42:10Z"
	}
	if identifier != "" {
		set["requested_action"] = map[string]any{"identifier": identifier}
	}
	return patchJSON(t, payload(t, "check_run."+action, nil), set)
}

// TestCheckRunEvents: re-runs create a fresh run; the approve and override
// buttons pass the same checks as comments; check_suite re-runs re-evaluate.
// Runs are mapped to PRs through the guard's own records.
func TestCheckRunEvents(t *testing.T) {
	fake := newFake(t)
	fake.SetPermission(testRepo, "mona", "maintain")
	fake.SetPermission(testRepo, "walt", "write")
	h := startGuard(t, fake, "")
	st := openAudit(t, h)

	open := func(t *testing.T, n int, head string) githubtest.CheckRun {
		t.Helper()
		addPull(fake, n, agent, head)
		h.deliver("pull_request", prEvent(t, "opened", n, agent, head, agent))
		run := h.waitCheckOn(t, head, "action_required")
		waitRecord(t, st, n, "the first decision", kind("decision", ""))
		return run
	}

	t.Run("rerequested creates a fresh run", func(t *testing.T) {
		run := open(t, 1, sha('1'))
		h.deliver("check_run", checkRunEvent(t, "rerequested", run, mona, ""))
		waitFor(t, "a second run", func() bool { return len(fake.CheckRuns(testRepo, sha('1'))) == 2 })
		fresh := lastRun(t, fake, sha('1'))
		if fresh.ID == run.ID || fresh.Conclusion != "action_required" {
			t.Fatalf("fresh run %+v", fresh)
		}
		// Later decisions update the fresh run, not the old one.
		fake.AddReview(testRepo, 1, pr.Review{User: carol, State: "APPROVED", CommitID: sha('1')})
		h.deliver("pull_request_review", reviewEvent(t, 1, agent, sha('1'), carol, sha('1')))
		if got := h.waitCheckOn(t, sha('1'), "success"); got.ID != fresh.ID {
			t.Fatalf("decision went to run %d, want the fresh run %d", got.ID, fresh.ID)
		}
	})

	t.Run("the approve button of a maintainer clears escalate", func(t *testing.T) {
		run := open(t, 2, sha('2'))
		h.deliver("check_run", checkRunEvent(t, "requested_action", run, mona, "approve"))
		h.waitCheckOn(t, sha('2'), "success")
		rec := waitRecord(t, st, 2, "the granted override", kind("override", "granted"))
		if rec.Actor != "mona" || rec.Reason != "check-run button" {
			t.Fatalf("override record %+v, want actor mona and reason %q", rec, "check-run button")
		}
		waitComment(t, fake, 2, "@mona", "check-run button", "Approved")
	})

	buttons := []struct {
		name   string
		sender pr.Account
		why    string
	}{
		{"a writer", walt, "write permission"},
		{"a bot", other, "is a bot"},
	}
	for i, tt := range buttons {
		t.Run("the approve button is refused for "+tt.name, func(t *testing.T) {
			n, head := 3+i, sha(byte('3'+i))
			run := open(t, n, head)
			h.deliver("check_run", checkRunEvent(t, "requested_action", run, tt.sender, "approve"))
			rec := waitRecord(t, st, n, "the refusal", kind("override", "refused"))
			if !containsAll(rec.Reason, "check-run button", tt.why) {
				t.Fatalf("refusal reason %q", rec.Reason)
			}
			waitComment(t, fake, n, "Refused", tt.why)
			idle(t, st)
			if c := lastRun(t, fake, head).Conclusion; c != "action_required" {
				t.Fatalf("conclusion %s after a refused button", c)
			}
		})
	}

	t.Run("the button of an old head is refused", func(t *testing.T) {
		run := open(t, 6, sha('6'))
		fake.AddPull(testRepo, pr.PullRequest{Number: 6, Title: "moved", Author: agent, HeadSHA: sha('7'), BaseRef: "main", BaseSHA: sha('0')})
		fake.AddCommit(testRepo, 6, pr.Commit{SHA: sha('7'), Message: "more", Author: pr.Person{Account: agent}, Committer: pr.Person{Account: agent}})
		h.deliver("check_run", checkRunEvent(t, "requested_action", run, mona, "approve"))
		rec := waitRecord(t, st, 6, "the refusal", kind("override", "refused"))
		if !strings.Contains(rec.Reason, "head is now") {
			t.Fatalf("refusal reason %q", rec.Reason)
		}
	})

	t.Run("the override button clears a freeze for that head", func(t *testing.T) {
		n, head := 8, sha('8')
		addPull(fake, n, agent, head)
		fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: head})
		h.deliver("pull_request", prEvent(t, "opened", n, agent, head, agent))
		h.waitCheckOn(t, head, "success")
		ctx := context.Background()
		f, err := st.StartFreeze(ctx, audit.ManualFreeze{Scope: audit.ScopeRepo, Target: testRepo, Reason: "INC-9", By: "oncall"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.EndFreezes(ctx, audit.ScopeRepo, testRepo, "test") })
		run := h.waitCheckOn(t, head, "failure")
		h.deliver("check_run", checkRunEvent(t, "requested_action", run, mona, "override"))
		h.waitCheckOn(t, head, "success")
		rec := waitRecord(t, st, n, "the granted override", kind("override", "granted"))
		if !slices.Contains(rec.Rules, "incident_freeze") || rec.Reason != "check-run button" {
			t.Fatalf("override record %+v (freeze %d)", rec, f.ID)
		}
		if _, err := st.EndFreezes(ctx, audit.ScopeRepo, testRepo, "test"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("check_suite rerequested re-evaluates", func(t *testing.T) {
		run := open(t, 9, sha('9'))
		fake.AddReview(testRepo, 9, pr.Review{User: carol, State: "APPROVED", CommitID: sha('9')})
		body := patchJSON(t, payload(t, "check_suite.rerequested", nil), map[string]any{
			"check_suite.head_sha":      run.HeadSHA,
			"check_suite.pull_requests": []any{},
		})
		h.deliver("check_suite", body)
		h.waitCheckOn(t, sha('9'), "success")
	})

	t.Run("a run of another app or name is ignored", func(t *testing.T) {
		run := open(t, 10, sha('c'))
		other := run
		other.Name = "ci"
		h.deliver("check_run", checkRunEvent(t, "rerequested", other, mona, ""))
		idle(t, st)
		if runs := fake.CheckRuns(testRepo, sha('c')); len(runs) != 1 {
			t.Fatalf("%d runs after a re-run of another check", len(runs))
		}
	})
}

// TestTimeFreezes: freezes begin and end with no webhook: the scheduler
// notices the calendar boundary or the declared freeze.
func TestTimeFreezes(t *testing.T) {
	t.Run("a scheduled window begins and ends while an approved PR sits green", func(t *testing.T) {
		fake := newFake(t)
		h, from, to := guardWithWindow(t, fake, "")
		addPull(fake, 1, agent, sha('1'))
		fake.AddReview(testRepo, 1, pr.Review{User: carol, State: "APPROVED", CommitID: sha('1')})
		h.deliver("pull_request", prEvent(t, "opened", 1, agent, sha('1'), agent))
		green := h.waitCheckOn(t, sha('1'), "success")

		h.clock.Set(from.Add(time.Minute))
		run := h.waitCheckOn(t, sha('1'), "failure")
		if run.ID != green.ID || !strings.Contains(run.Title+run.Summary, "release-window") {
			t.Fatalf("blocked run %+v does not name the freeze or is not the same run", run)
		}
		h.clock.Set(to.Add(time.Minute))
		h.waitCheckOn(t, sha('1'), "success")

		// The trail has the window's start and end, by the schedule, once
		// each (SPEC §7), with when it held.
		st := openAudit(t, h)
		var recs []map[string]string
		waitFor(t, "the window's freeze records", func() bool {
			recs = freezeRecords(t, st)
			return len(recs) == 2
		})
		time.Sleep(200 * time.Millisecond) // more ticks record nothing more
		if recs = freezeRecords(t, st); len(recs) != 2 {
			t.Fatalf("%d freeze records, want 2: %+v", len(recs), recs)
		}
		for i, want := range []string{"started", "ended"} {
			r := recs[i]
			if r["actor"] != "schedule" || r["outcome"] != want || r["rules"] != "merge_freeze" || !strings.Contains(r["reason"], "release-window") ||
				!strings.Contains(r["reason"], from.Format(time.RFC3339)) || !strings.Contains(r["reason"], to.Format(time.RFC3339)) {
				t.Fatalf("record %d: %v, want %s by schedule naming the window and when it held", i, r, want)
			}
		}
	})

	t.Run("a declared freeze that runs out is recorded as ended by the schedule", func(t *testing.T) {
		fake := newFake(t)
		h := startGuard(t, fake, "")
		t0 := time.Now().UTC()
		h.clock.Set(t0)
		st := openAudit(t, h)
		f, err := st.StartFreeze(context.Background(), audit.ManualFreeze{Scope: audit.ScopeRepo, Target: testRepo,
			Reason: "INC-12 for an hour", By: "oncall", From: t0, Until: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if recs := freezeRecords(t, st); len(recs) != 1 || recs[0]["actor"] != "oncall" {
			t.Fatalf("before it ran out: %+v, want only its start by oncall", recs)
		}
		h.clock.Set(t0.Add(time.Hour + time.Second))
		var recs []map[string]string
		waitFor(t, "the end of the freeze to be recorded", func() bool {
			recs = freezeRecords(t, st)
			return len(recs) == 2
		})
		if r := recs[1]; r["actor"] != "schedule" || r["outcome"] != "ended" || r["repository"] != testRepo ||
			!strings.Contains(r["reason"], fmt.Sprintf("incident-%d ran out", f.ID)) || !strings.Contains(r["reason"], "INC-12") {
			t.Fatalf("end record %v", r)
		}
		// One ended by hand is recorded by who ended it, not again. (An org
		// freeze: this test's store is on the real clock, by which the
		// repository's freeze has not run out.)
		g, err := st.StartFreeze(context.Background(), audit.ManualFreeze{Scope: audit.ScopeOrg, Target: "octo-org",
			Reason: "INC-13", By: "oncall", Until: t0.Add(3 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := st.EndFreezes(context.Background(), audit.ScopeOrg, "octo-org", "mona"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		recs = freezeRecords(t, st)
		if len(recs) != 4 || recs[3]["actor"] != "mona" || recs[3]["outcome"] != "ended" {
			t.Fatalf("freeze %d ended by hand: records %+v", g.ID, recs)
		}
	})

	t.Run("a freeze for everyone turns a human PR red and back without a webhook", func(t *testing.T) {
		fake := newFake(t)
		t0 := time.Now().UTC().Truncate(time.Second)
		from, to := t0.Add(5*time.Minute), t0.Add(10*time.Minute)
		cfg := fmt.Sprintf("freezes:\n  - name: year-end\n    from: %q\n    to: %q\n    applies_to: everyone\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
		h := startGuard(t, fake, cfg)
		h.clock.Set(t0)
		addPull(fake, 3, alice, sha('3'))
		h.deliver("pull_request", prEvent(t, "opened", 3, alice, sha('3'), alice))
		h.waitCheckOn(t, sha('3'), "success")
		h.clock.Set(from.Add(time.Minute))
		if run := h.waitCheckOn(t, sha('3'), "failure"); !strings.Contains(run.Title, "year-end") {
			t.Fatalf("title %q does not name the freeze", run.Title)
		}
		h.clock.Set(to.Add(time.Minute))
		h.waitCheckOn(t, sha('3'), "success")
	})

	t.Run("a freeze declared by the CLI is noticed without a webhook", func(t *testing.T) {
		fake := newFake(t)
		h := startGuard(t, fake, "")
		addPull(fake, 2, agent, sha('2'))
		fake.AddReview(testRepo, 2, pr.Review{User: carol, State: "APPROVED", CommitID: sha('2')})
		h.deliver("pull_request", prEvent(t, "opened", 2, agent, sha('2'), agent))
		h.waitCheckOn(t, sha('2'), "success")

		var out, errb bytes.Buffer
		s := stdio{in: strings.NewReader(""), out: &out, err: &errb}
		if code := run(context.Background(), []string{"freeze", "start", "--reason", "INC-7 database down", "--repo", testRepo, "--db", h.db}, s); code != 0 {
			t.Fatalf("freeze start exit %d: %s", code, errb.String())
		}
		blocked := h.waitCheckOn(t, sha('2'), "failure")
		if !strings.Contains(blocked.Summary, "INC-7") {
			t.Fatalf("blocked run does not name the incident:\n%s", blocked.Summary)
		}
		if code := run(context.Background(), []string{"freeze", "end", "--repo", testRepo, "--db", h.db}, s); code != 0 {
			t.Fatalf("freeze end exit %d: %s", code, errb.String())
		}
		h.waitCheckOn(t, sha('2'), "success")
	})
}

// mergeGroupEvent is a merge_group checks_requested payload. Its head ref
// names no PR, so the group is mapped from its commits alone.
func mergeGroupEvent(t *testing.T, base, head string) []byte {
	return patchJSON(t, payload(t, "merge_group.checks_requested", nil), map[string]any{
		"merge_group.head_sha": head,
		"merge_group.base_sha": base,
		"merge_group.base_ref": "refs/heads/main",
		"merge_group.head_ref": "refs/heads/gh-readonly-queue/main/group-" + base[:8],
	})
}

// TestMergeQueue: every merge group gets the check, with the most severe
// outcome of its PRs, and failure when it cannot be mapped.
func TestMergeQueue(t *testing.T) {
	fake := newFake(t)
	fake.SetPermission(testRepo, "mona", "maintain")
	h := startGuard(t, fake, "")
	st := openAudit(t, h)
	base := sha('0')
	fake.AddGraphCommit(testRepo, pr.Commit{SHA: base, Message: "main"})

	// A human PR and an approved agent PR, each queued in its own group.
	addPull(fake, 1, alice, sha('1'))
	h.deliver("pull_request", prEvent(t, "opened", 1, alice, sha('1'), alice))
	h.waitCheckOn(t, sha('1'), "success")
	addPull(fake, 2, agent, sha('2'))
	fake.AddReview(testRepo, 2, pr.Review{User: carol, State: "APPROVED", CommitID: sha('2')})
	h.deliver("pull_request", prEvent(t, "opened", 2, agent, sha('2'), agent))
	h.waitCheckOn(t, sha('2'), "success")
	groupOf := func(head string, prHeads ...string) string {
		fake.AddGraphCommit(testRepo, pr.Commit{SHA: head, Message: "merge group"}, append([]string{base}, prHeads...)...)
		return head
	}

	t.Run("human PRs outside a freeze pass", func(t *testing.T) {
		g := groupOf(sha('a'), sha('1'))
		h.deliver("merge_group", mergeGroupEvent(t, base, g))
		run := h.waitCheckOn(t, g, "success")
		if !strings.Contains(run.Summary, "#1") {
			t.Fatalf("group summary does not list its PRs:\n%s", run.Summary)
		}
	})
	t.Run("a squashed group is mapped through the PR its ref names", func(t *testing.T) {
		g := groupOf(sha('d')) // a commit GitHub associates with no PR
		body := patchJSON(t, mergeGroupEvent(t, base, g), map[string]any{
			"merge_group.head_ref": "refs/heads/gh-readonly-queue/main/pr-2-" + base[:8],
		})
		h.deliver("merge_group", body)
		if run := h.waitCheckOn(t, g, "success"); !strings.Contains(run.Summary, "#2") {
			t.Fatalf("group summary does not list PR #2:\n%s", run.Summary)
		}
	})
	t.Run("a squashed group holds the PRs queued ahead of the one its ref names", func(t *testing.T) {
		addPull(fake, 5, agent, sha('5')) // an agent PR nobody approved, queued first
		h.deliver("pull_request", prEvent(t, "opened", 5, agent, sha('5'), agent))
		h.waitCheckOn(t, sha('5'), "action_required")
		h.deliver("pull_request", prEvent(t, "enqueued", 5, agent, sha('5'), mona))
		h.deliver("pull_request", prEvent(t, "enqueued", 2, agent, sha('2'), mona))
		idle(t, st)
		g := groupOf(sha('9')) // squashed: a commit GitHub associates with no PR
		body := patchJSON(t, mergeGroupEvent(t, base, g), map[string]any{
			"merge_group.head_ref": "refs/heads/gh-readonly-queue/main/pr-2-" + base[:8],
		})
		h.deliver("merge_group", body)
		run := h.waitCheckOn(t, g, "action_required")
		if !containsAll(run.Summary, "#2: allow", "#5: escalate") {
			t.Fatalf("group summary does not hold #5, queued ahead of #2:\n%s", run.Summary)
		}
		for _, n := range []int{5, 2} {
			h.deliver("pull_request", prEvent(t, "dequeued", n, agent, sha(byte('0'+n)), mona))
		}
		idle(t, st)
	})
	t.Run("a group that cannot be mapped fails", func(t *testing.T) {
		g := groupOf(sha('b'))
		h.deliver("merge_group", mergeGroupEvent(t, base, g))
		run := h.waitCheckOn(t, g, "failure")
		if !strings.Contains(run.Summary+run.Text, "could not map") {
			t.Fatalf("failure does not say why:\n%s\n%s", run.Summary, run.Text)
		}
	})
	t.Run("a group of more commits than the guard looks up fails", func(t *testing.T) {
		parent := base
		for i := 1; i <= 101; i++ {
			c := fmt.Sprintf("%040x", 0xabc000+i)
			fake.AddGraphCommit(testRepo, pr.Commit{SHA: c, Message: "queued"}, parent)
			parent = c
		}
		h.deliver("merge_group", mergeGroupEvent(t, base, parent))
		run := h.waitCheckOn(t, parent, "failure")
		if !strings.Contains(run.Summary+run.Text, "101 commits") {
			t.Fatalf("failure does not say why:\n%s\n%s", run.Summary, run.Text)
		}
	})
	t.Run("during a freeze a group with an agent PR fails", func(t *testing.T) {
		ctx := context.Background()
		if _, err := st.StartFreeze(ctx, audit.ManualFreeze{Scope: audit.ScopeRepo, Target: testRepo, Reason: "INC-3", By: "oncall"}); err != nil {
			t.Fatal(err)
		}
		defer st.EndFreezes(ctx, audit.ScopeRepo, testRepo, "test")
		g := groupOf(sha('c'), sha('1'), sha('2'))
		h.deliver("merge_group", mergeGroupEvent(t, base, g))
		run := h.waitCheckOn(t, g, "failure")
		if !containsAll(run.Summary, "#1", "#2") {
			t.Fatalf("group summary does not list its PRs:\n%s", run.Summary)
		}
		// Its Details link shows the group's decision and its PRs.
		link, err := url.Parse(run.DetailsURL)
		if err != nil || !strings.HasPrefix(run.DetailsURL, "https://guard.example.com/decisions/"+run.ExternalID) {
			t.Fatalf("group run's details URL %q", run.DetailsURL)
		}
		var code int
		var page string
		waitFor(t, "the group's decision to be recorded", func() bool { // just after the run is published
			code, _, page = fetch(t, h.base+link.RequestURI())
			return code == http.StatusOK
		})
		if !containsAll(page, "Merge group", "gh-readonly-queue/main", "/pull/1\"", "/pull/2\"", "incident_freeze", "#2: ") ||
			strings.Contains(page, "History of this pull request") {
			t.Fatalf("group details page: %d\n%s", code, page)
		}
		// A re-run of the group's check is evaluated again, as a fresh run.
		if _, err := st.EndFreezes(ctx, audit.ScopeRepo, testRepo, "test"); err != nil {
			t.Fatal(err)
		}
		h.deliver("check_run", checkRunEvent(t, "rerequested", run, mona, ""))
		fresh := h.waitCheckOn(t, g, "success")
		if fresh.ID == run.ID {
			t.Fatalf("re-run updated run %d in place, want a fresh run", run.ID)
		}
	})
}

// TestMergesAudited: merges are recorded, and a merge over a decision that
// was not allow is a bypass.
func TestMergesAudited(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	st := openAudit(t, h)
	closed := func(n int, author pr.Account, head string) []byte {
		return patchJSON(t, payload(t, "pull_request.closed", nil), map[string]any{
			"number":                 n,
			"pull_request.number":    n,
			"pull_request.user":      map[string]any{"login": author.Login, "type": author.Type, "id": 5},
			"pull_request.head.sha":  head,
			"pull_request.base.ref":  "main",
			"pull_request.merged":    true,
			"pull_request.merged_by": map[string]any{"login": "mona", "type": "User", "id": 6},
			"pull_request.merged_at": time.Now().UTC().Format(time.RFC3339),
			"pull_request.state":     "closed",
			"sender":                 map[string]any{"login": "mona", "type": "User", "id": 6},
		})
	}
	cases := []struct {
		name   string
		author pr.Account
		want   string // decision conclusion, merge outcome
		merge  string
	}{
		{"a human PR's merge is recorded", alice, "success", "merged"},
		{"an escalated agent PR merged anyway is a bypass", agent, "action_required", "bypass"},
	}
	for i, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			n, head := 1+i, sha(byte('1'+i))
			addPull(fake, n, tt.author, head)
			h.deliver("pull_request", prEvent(t, "opened", n, tt.author, head, tt.author))
			h.waitCheckOn(t, head, tt.want)
			waitRecord(t, st, n, "the decision", kind("decision", ""))
			h.deliver("pull_request", closed(n, tt.author, head))
			rec := waitRecord(t, st, n, "the merge record", kind("merge", ""))
			if rec.Outcome != tt.merge || rec.Actor != "mona" || rec.HeadSHA != head {
				t.Fatalf("merge record %+v, want outcome %s by mona", rec, tt.merge)
			}
			tracked, ok, err := st.TrackedPR(context.Background(), testRepo, n)
			if err != nil || !ok || tracked.Open {
				t.Fatalf("tracked PR after the merge: %+v %v %v", tracked, ok, err)
			}
		})
	}
}

// TestInstallationBackfill: a new installation, or repositories added to
// one, is recorded and its open PRs get their check.
func TestInstallationBackfill(t *testing.T) {
	fake := newFake(t)
	fake.AddRepo(testInst, "octo-org/gadgets")
	h := startGuard(t, fake, "")
	st := openAudit(t, h)

	addPull(fake, 1, alice, sha('1'))
	addPull(fake, 2, agent, sha('2'))
	inst := map[string]any{"id": testInst, "account": map[string]any{"login": "octo-org", "type": "Organization", "id": 9}}
	h.deliver("installation", patchJSON(t, payload(t, "installation.created", nil), map[string]any{
		"installation": inst,
		"repositories": []any{map[string]any{"id": 1, "name": "widgets", "full_name": testRepo, "private": false}},
		"sender":       map[string]any{"login": "octo-admin", "type": "User", "id": 3},
	}))
	h.waitCheckOn(t, sha('1'), "success")
	h.waitCheckOn(t, sha('2'), "action_required")

	fake.AddPull("octo-org/gadgets", pr.PullRequest{Number: 5, Title: "gadget", Author: agent, HeadSHA: sha('5'), BaseRef: "main", BaseSHA: sha('0')})
	fake.AddCommit("octo-org/gadgets", 5, pr.Commit{SHA: sha('5'), Message: "x", Author: pr.Person{Account: agent}, Committer: pr.Person{Account: agent}})
	h.deliver("installation_repositories", patchJSON(t, payload(t, "installation_repositories.added", nil), map[string]any{
		"installation":       inst,
		"repositories_added": []any{map[string]any{"id": 2, "name": "gadgets", "full_name": "octo-org/gadgets", "private": false}},
		"sender":             map[string]any{"login": "octo-admin", "type": "User", "id": 3},
	}))
	waitFor(t, "the added repository's PR to be checked", func() bool {
		runs := fake.CheckRuns("octo-org/gadgets", sha('5'))
		return len(runs) == 1 && runs[0].Conclusion == "action_required"
	})
	idle(t, st)

	var buf bytes.Buffer
	if _, _, err := st.Export(context.Background(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "jsonl", &buf); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r["kind"] == "installation" {
			if r["actor"] != "octo-admin" {
				t.Fatalf("installation record by %v, want octo-admin", r["actor"])
			}
			kinds = append(kinds, r["outcome"].(string))
		}
	}
	if !slices.Equal(kinds, []string{"created", "repositories_added"}) {
		t.Fatalf("installation records %v", kinds)
	}
}

// fetch GETs u and returns the status, headers and body.
func fetch(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// byID finds the element with that id in an HTML tree.
func byID(n *html.Node, id string) *html.Node {
	if n.Type == html.ElementNode {
		for _, a := range n.Attr {
			if a.Key == "id" && a.Val == id {
				return n
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := byID(c, id); f != nil {
			return f
		}
	}
	return nil
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// TestDecisionPage: the Details link opens the decision page; anything but
// a valid, unexpired signature for that decision and repository is a 404.
func TestDecisionPage(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	addPull(fake, 1, agent, sha('1'))
	h.deliver("pull_request", prEvent(t, "opened", 1, agent, sha('1'), agent))
	run := h.waitCheckOn(t, sha('1'), "action_required")
	// The run is published before its decision is stored with the delivery.
	waitRecord(t, openAudit(t, h), 1, "the decision", kind("decision", "escalate"))

	link, err := url.Parse(run.DetailsURL)
	if err != nil {
		t.Fatal(err)
	}
	local := h.base + link.RequestURI()
	id := strings.TrimPrefix(link.Path, "/decisions/")

	t.Run("the signed link shows outcome, reasons, what to do, who may and history", func(t *testing.T) {
		code, hdr, body := fetch(t, local)
		if code != http.StatusOK {
			t.Fatalf("GET details: %d\n%s", code, body)
		}
		if hdr.Get("Referrer-Policy") != "no-referrer" || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("headers %v", hdr)
		}
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"outcome": "escalate",
			"reasons": "agent_self_merge",
			"need":    "/guard approve",
			"who":     "maintain or admin",
			"history": "decision",
		}
		for elem, s := range want {
			n := byID(doc, elem)
			if n == nil {
				t.Fatalf("no element #%s in the page", elem)
			}
			if !strings.Contains(text(n), s) {
				t.Fatalf("#%s says %q, want it to mention %q", elem, text(n), s)
			}
		}
		if strings.Contains(body, testSecret) {
			t.Fatal("the page shows the webhook secret")
		}
	})

	secret, err := hkdf.Key(sha256.New, []byte(testSecret), nil, "merge-guard details links", 32)
	if err != nil {
		t.Fatal(err)
	}
	q := link.Query()
	bad := []struct {
		name string
		url  string
	}{
		{"a missing signature", h.base + "/decisions/" + id + "?exp=" + q.Get("exp")},
		{"a forged signature", h.base + "/decisions/" + id + "?exp=" + q.Get("exp") + "&sig=" + strings.Repeat("0", 64)},
		{"a signature for another repository", guard.DecisionLink(h.base, secret, id, "octo-org/other", time.Now())},
		{"another decision's id", h.base + "/decisions/" + strings.Repeat("f", len(id)) + "?" + link.RawQuery},
		{"a later expiry than signed", h.base + "/decisions/" + id + "?exp=" + fmt.Sprint(time.Now().Add(80*24*time.Hour).Unix()) + "&sig=" + q.Get("sig")},
	}
	for _, tt := range bad {
		t.Run("404 for "+tt.name, func(t *testing.T) {
			if code, _, _ := fetch(t, tt.url); code != http.StatusNotFound {
				t.Fatalf("GET %s: %d, want 404", tt.url, code)
			}
		})
	}
	t.Run("a link signed with the derived link secret opens", func(t *testing.T) {
		if code, _, _ := fetch(t, guard.DecisionLink(h.base, secret, id, testRepo, time.Now())); code != http.StatusOK {
			t.Fatalf("GET: %d, want 200", code)
		}
	})
	t.Run("404 once the link has expired (91 days)", func(t *testing.T) {
		h.clock.Set(time.Now().Add(91 * 24 * time.Hour))
		defer h.clock.Set(time.Time{})
		if code, _, _ := fetch(t, local); code != http.StatusNotFound {
			t.Fatalf("GET expired link: %d, want 404", code)
		}
	})
}

// freezeRecords returns the trail's freeze records as exported, oldest
// first.
func freezeRecords(t *testing.T, st *audit.Store) []map[string]string {
	t.Helper()
	var out []map[string]string
	var buf bytes.Buffer
	if _, _, err := st.Export(context.Background(), time.Unix(0, 0), time.Now().Add(1000*time.Hour), "jsonl", &buf); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if line == "" || json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		if r["kind"] == "freeze" {
			m := map[string]string{}
			for k, v := range r {
				m[k] = fmt.Sprint(v)
			}
			out = append(out, m)
		}
	}
	return out
}

// TestDetailsLinkSurvivesARestart: without --link-secret the key is derived
// from the webhook secret, so a check run's Details link still opens after
// the guard restarts; another webhook secret is another key.
func TestDetailsLinkSurvivesARestart(t *testing.T) {
	fake := newFake(t)
	h := startGuard(t, fake, "")
	addPull(fake, 3, agent, sha('3'))
	h.deliver("pull_request", prEvent(t, "opened", 3, agent, sha('3'), agent))
	run := h.waitCheckOn(t, sha('3'), "action_required")
	link, err := url.Parse(run.DetailsURL)
	if err != nil {
		t.Fatal(err)
	}
	waitRecord(t, openAudit(t, h), 3, "the decision", kind("decision", "escalate")) // recorded just after publishing
	h.stop()

	again := startGuardWith(t, fake, "", func(c *serveConfig) { c.DB = h.db })
	if code, _, body := fetch(t, again.base+link.RequestURI()); code != http.StatusOK || !strings.Contains(body, "escalate") {
		t.Fatalf("the link after a restart: %d\n%s", code, body)
	}
	again.stop()
	rotated := startGuardWith(t, fake, "", func(c *serveConfig) { c.DB = h.db; c.WebhookSecret = "another secret" })
	if code, _, _ := fetch(t, rotated.base+link.RequestURI()); code != http.StatusNotFound {
		t.Fatalf("the link under another webhook secret: %d, want 404", code)
	}
}

// TestCommandsActAsOfTheirComment: a command processed late (its delivery
// retried after GitHub was down) acts as of when it was written: an
// unfreeze ends no freeze declared after it, and "/guard freeze 2h" lasts
// two hours from the comment.
func TestCommandsActAsOfTheirComment(t *testing.T) {
	fake := newFake(t)
	fake.SetPermission(testRepo, "mona", "maintain")
	h := startGuard(t, fake, "")
	st := openAudit(t, h)
	ids := &commentIDs{}
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	h.clock.Set(t0)
	fake.AddIssue(testRepo, 950)
	h.deliver("issue_comment", commentEvent(t, 950, false, ids.id(), mona, "/guard freeze INC-1 db down", t0.Add(-3*time.Minute), nil))
	waitComment(t, fake, 950, "@mona", "incident-1", "declared")

	// The unfreeze fails: GitHub answers 503 to everything.
	fake.FailNext("", "", 0, http.StatusServiceUnavailable, nil, "")
	body := commentEvent(t, 950, false, ids.id(), mona, "/guard unfreeze", t0.Add(-2*time.Minute), nil)
	if code := postWebhook(t, h.base, "issue_comment", "unfreeze-in-outage", body); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	waitFor(t, "the delivery to fail", func() bool { return strings.Contains(h.log.String(), "delivery failed") })
	fake.ClearFaults()
	// Meanwhile INC-1 is ended from the CLI, and INC-2 declared.
	if _, err := st.EndFreezes(ctx, "repo", testRepo, "oncall"); err != nil {
		t.Fatal(err)
	}
	h.deliver("issue_comment", commentEvent(t, 950, false, ids.id(), mona, "/guard freeze INC-2 payments down", t0.Add(-time.Minute), nil))
	waitComment(t, fake, 950, "@mona", "incident-2", "declared")

	h.clock.Set(t0.Add(61 * time.Second)) // the unfreeze's retry is due
	waitFor(t, "the retry", func() bool { return strings.Contains(h.log.String(), "retrying a delivery that failed") })
	idle(t, st)
	waitComment(t, fake, 950, "@mona", "There is no declared freeze")
	if fs, _ := st.ActiveFreezes(ctx, time.Now()); len(fs) != 1 || fs[0].Reason != "INC-2 payments down" {
		t.Fatalf("active freezes after the retried unfreeze: %+v; want INC-2, declared after it", fs)
	}
	if _, err := st.EndFreezes(ctx, "repo", testRepo, "test"); err != nil {
		t.Fatal(err)
	}

	// A "2h" freeze acted on three hours after its comment has run out.
	h.deliver("issue_comment", commentEvent(t, 950, false, ids.id(), mona, "/guard freeze 2h INC-3", t0.Add(-3*time.Hour), nil))
	waitComment(t, fake, 950, "@mona", "incident-3", "which has passed")
	if fs, _ := st.ActiveFreezes(ctx, time.Now()); len(fs) != 0 {
		t.Fatalf("a freeze whose two hours passed is active: %+v", fs)
	}
}

// TestMergeQueueTimes: a PR in a merge group is judged by the calendar of
// when it was queued (a PR queued before a configured freeze merges during
// it), but by the incident freezes declared now; an enqueued event
// processed after the PR's dequeued one does not put it back.
func TestMergeQueueTimes(t *testing.T) {
	fake := newFake(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	h := startGuard(t, fake, fmt.Sprintf("freezes:\n  - name: release-window\n    from: %q\n    to: %q\n",
		t0.Add(time.Minute).Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339)))
	h.clock.Set(t0)
	st := openAudit(t, h)
	ctx := context.Background()
	base := sha('0')
	fake.AddGraphCommit(testRepo, pr.Commit{SHA: base, Message: "main"})
	for _, n := range []int{2, 5} { // approved agent PRs
		addPull(fake, n, agent, sha(byte('0'+n)))
		fake.AddReview(testRepo, n, pr.Review{User: carol, State: "APPROVED", CommitID: sha(byte('0' + n))})
		h.deliver("pull_request", prEvent(t, "opened", n, agent, sha(byte('0'+n)), agent))
		h.waitCheckOn(t, sha(byte('0'+n)), "success")
	}
	group := func(g string, last int) githubtest.CheckRun {
		t.Helper()
		fake.AddGraphCommit(testRepo, pr.Commit{SHA: g, Message: "merge group"}, base)
		h.deliver("merge_group", patchJSON(t, mergeGroupEvent(t, base, g), map[string]any{
			"merge_group.head_ref": fmt.Sprintf("refs/heads/gh-readonly-queue/main/pr-%d-%s", last, base[:8]),
		}))
		waitFor(t, "the group's run", func() bool { return len(fake.CheckRuns(testRepo, g)) > 0 })
		return lastRun(t, fake, g)
	}

	h.deliver("pull_request", prEvent(t, "enqueued", 2, agent, sha('2'), mona)) // before the window
	idle(t, st)
	h.clock.Set(t0.Add(2 * time.Minute)) // inside it
	if run := group(sha('a'), 2); run.Conclusion != "success" || !strings.Contains(run.Summary, "#2: allow (as of its queueing") {
		t.Fatalf("a PR queued before the window: %s\n%s", run.Conclusion, run.Summary)
	}

	if _, err := st.StartFreeze(ctx, audit.ManualFreeze{Scope: audit.ScopeRepo, Target: testRepo, Reason: "INC-4", By: "oncall"}); err != nil {
		t.Fatal(err)
	}
	if run := group(sha('b'), 2); run.Conclusion != "failure" || !strings.Contains(run.Summary, "#2: block") {
		t.Fatalf("an incident declared after the PR was queued: %s\n%s", run.Conclusion, run.Summary)
	}
	if _, err := st.EndFreezes(ctx, audit.ScopeRepo, testRepo, "test"); err != nil {
		t.Fatal(err)
	}

	// #5's enqueued event is processed after its dequeued one (out of
	// order, or retried): #5 is not in #2's group.
	dequeued := prEvent(t, "dequeued", 5, agent, sha('5'), mona)
	enqueued := prEvent(t, "enqueued", 5, agent, sha('5'), mona)
	h.clock.Set(t0.Add(3 * time.Minute))
	postWebhook(t, h.base, "pull_request", "dequeued-5", dequeued)
	idle(t, st)
	h.clock.Set(t0.Add(-30 * time.Second)) // received before it (and before #2 was queued), as a retried delivery was
	postWebhook(t, h.base, "pull_request", "enqueued-5", enqueued)
	idle(t, st)
	h.clock.Set(t0.Add(4 * time.Minute))
	v, _, _ := st.State(ctx, "queued:"+testRepo+"#5")
	if !strings.HasPrefix(v, "d ") {
		t.Fatalf("queue mark of #5 %q, want dequeued", v)
	}
	if run := group(sha('c'), 2); strings.Contains(run.Summary, "#5") {
		t.Fatalf("#5, dequeued, is in #2's group:\n%s", run.Summary)
	}
}
