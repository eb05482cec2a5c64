package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

func TestFreezes(t *testing.T) {
	ctx := context.Background()
	c := newClock(t0)
	s := mustOpen(t, WithClock(c.Now))
	v0, _ := s.FreezeVersion(ctx)
	repo, err := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "incident 42", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	org, err := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeOrg, Target: "o", Branch: "release/*", Reason: "release",
		By: "bob", Until: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(fs []ManualFreeze) []int64 {
		var out []int64
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	t.Run("start sets id and from, and bumps the version", func(t *testing.T) {
		if repo.ID == 0 || org.ID == repo.ID || !repo.From.Equal(t0) {
			t.Fatalf("started %+v and %+v", repo, org)
		}
		if v, _ := s.FreezeVersion(ctx); v != v0+2 {
			t.Fatalf("FreezeVersion = %d, want %d", v, v0+2)
		}
	})
	t.Run("both are active now", func(t *testing.T) {
		fs, err := s.ActiveFreezes(ctx, t0)
		if err != nil || !slices.Equal(ids(fs), []int64{repo.ID, org.ID}) {
			t.Fatalf("ActiveFreezes = %v, %v", ids(fs), err)
		}
		if fs[1].Branch != "release/*" || !fs[1].Until.Equal(t0.Add(2*time.Hour)) || fs[1].By != "bob" {
			t.Fatalf("org freeze read back as %+v", fs[1])
		}
	})
	t.Run("a freeze with Until runs out by itself", func(t *testing.T) {
		fs, _ := s.ActiveFreezes(ctx, t0.Add(2*time.Hour))
		if !slices.Equal(ids(fs), []int64{repo.ID}) {
			t.Fatalf("ActiveFreezes at until = %v", ids(fs))
		}
	})
	t.Run("nothing is active before From", func(t *testing.T) {
		if fs, _ := s.ActiveFreezes(ctx, t0.Add(-time.Second)); len(fs) != 0 {
			t.Fatalf("ActiveFreezes before = %v", ids(fs))
		}
	})
	t.Run("end ends only that scope and target, in any case", func(t *testing.T) {
		c.Set(t0.Add(time.Hour))
		n, err := s.EndFreezes(ctx, ScopeRepo, "O/R", "carol") // GitHub's names ignore case
		if err != nil || n != 1 {
			t.Fatalf("EndFreezes = %d, %v", n, err)
		}
		fs, _ := s.ActiveFreezes(ctx, t0.Add(time.Hour))
		if !slices.Equal(ids(fs), []int64{org.ID}) {
			t.Fatalf("ActiveFreezes after end = %v", ids(fs))
		}
		if fs, _ := s.ActiveFreezes(ctx, t0.Add(30*time.Minute)); len(fs) != 2 {
			t.Fatalf("the ended freeze should still show as active in the past, got %v", ids(fs))
		}
		if v, _ := s.FreezeVersion(ctx); v != v0+3 {
			t.Fatalf("FreezeVersion = %d, want %d", v, v0+3)
		}
	})
	t.Run("ending again ends nothing and keeps the version", func(t *testing.T) {
		n, err := s.EndFreezes(ctx, ScopeRepo, "o/r", "carol")
		if err != nil || n != 0 {
			t.Fatalf("EndFreezes = %d, %v", n, err)
		}
		if v, _ := s.FreezeVersion(ctx); v != v0+3 {
			t.Fatalf("FreezeVersion = %d, want %d", v, v0+3)
		}
	})
	t.Run("start and end are in the trail", func(t *testing.T) {
		res, err := s.Verify(ctx, "")
		if err != nil || res.Records != 3 {
			t.Fatalf("Verify = %+v, %v; want 3 freeze records", res, err)
		}
	})
	for _, bad := range []struct {
		name string
		f    ManualFreeze
	}{
		{"an unknown scope", ManualFreeze{Scope: "team", Target: "o"}},
		{"a repo target without owner", ManualFreeze{Scope: ScopeRepo, Target: "r"}},
		{"a repo target with two slashes", ManualFreeze{Scope: ScopeRepo, Target: "o/r/x"}},
		{"an org target with a slash", ManualFreeze{Scope: ScopeOrg, Target: "o/r"}},
		{"an empty org", ManualFreeze{Scope: ScopeOrg}},
		{"a repo target with spaces", ManualFreeze{Scope: ScopeRepo, Target: "a b/c d"}},
		{"a repo target with an empty name", ManualFreeze{Scope: ScopeRepo, Target: "o/"}},
		{"a repo target of ..", ManualFreeze{Scope: ScopeRepo, Target: "o/.."}},
		{"an org with a colon", ManualFreeze{Scope: ScopeOrg, Target: "o:x"}},
		{"until before from", ManualFreeze{Scope: ScopeOrg, Target: "o", From: t0, Until: t0.Add(-time.Minute)}},
	} {
		t.Run("refuses "+bad.name, func(t *testing.T) {
			if _, err := s.StartFreeze(ctx, bad.f); err == nil {
				t.Fatalf("StartFreeze(%+v) succeeded", bad.f)
			}
		})
	}
	t.Run("EndFreezes refuses a bad scope", func(t *testing.T) {
		if _, err := s.EndFreezes(ctx, "team", "x", "a"); err == nil {
			t.Fatal("EndFreezes(team) succeeded")
		}
	})
}

func TestFreezeRecords(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	if _, err := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "db down", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeOrg, Target: "o", Reason: "release", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndFreezes(ctx, ScopeOrg, "o", "carol"); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for seq := 1; seq <= 3; seq++ {
		var kind, repo, actor, outcome, reason string
		if err := s.r.QueryRow("SELECT kind, repository, actor, outcome, reason FROM records WHERE seq = ?", seq).
			Scan(&kind, &repo, &actor, &outcome, &reason); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, fmt.Sprintf("%s|%s|%s|%s|%s", kind, repo, actor, outcome, reason))
	}
	want := []string{"freeze|o/r|alice|started|db down", "freeze||bob|started|org o: release", "freeze||carol|ended|org o: release"}
	if !slices.Equal(rows, want) {
		t.Fatalf("records = %q\nwant %q", rows, want)
	}
}

func TestCheckRunsAndPRs(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	if _, ok, err := s.CheckRunFor(ctx, "o/r", "abc"); ok || err != nil {
		t.Fatalf("CheckRunFor unknown = %v, %v", ok, err)
	}
	if err := s.SaveCheckRun(ctx, "o/r", "abc", 11, []int{3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckRun(ctx, "o/r", "abc", 12, []int{5, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.TrackPR(ctx, TrackedPR{Repo: "o/r", Number: 9, HeadSHA: "abc", Open: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.TrackPR(ctx, TrackedPR{Repo: "o/other", Number: 4, HeadSHA: "abc", Open: true}); err != nil {
		t.Fatal(err)
	}
	t.Run("the latest check run id wins", func(t *testing.T) {
		if id, ok, err := s.CheckRunFor(ctx, "o/r", "abc"); id != 12 || !ok || err != nil {
			t.Fatalf("CheckRunFor = %d, %v, %v", id, ok, err)
		}
	})
	t.Run("PRs come from check runs and tracked heads of that repository", func(t *testing.T) {
		got, err := s.PRsForSHA(ctx, "o/r", "abc")
		if err != nil || !slices.Equal(got, []int{3, 5, 9}) {
			t.Fatalf("PRsForSHA = %v, %v", got, err)
		}
	})
	t.Run("an unknown SHA maps to no PRs", func(t *testing.T) {
		if got, err := s.PRsForSHA(ctx, "o/r", "zzz"); err != nil || len(got) != 0 {
			t.Fatalf("PRsForSHA = %v, %v", got, err)
		}
	})
	t.Run("SaveCheckRun refuses an empty SHA", func(t *testing.T) {
		if err := s.SaveCheckRun(ctx, "o/r", "", 1, nil); err == nil {
			t.Fatal("SaveCheckRun with empty SHA succeeded")
		}
	})
}

func TestOnce(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for _, tc := range []struct {
		name string
		call func() (bool, error)
		want bool
	}{
		{"first use of a comment", func() (bool, error) { return s.ClaimComment(ctx, 77, "d1") }, true},
		{"the same delivery again (after a failure)", func() (bool, error) { return s.ClaimComment(ctx, 77, "d1") }, true},
		{"another delivery of the same comment", func() (bool, error) { return s.ClaimComment(ctx, 77, "d2") }, false},
		{"another comment", func() (bool, error) { return s.ClaimComment(ctx, 78, "d2") }, true},
		{"first mark of a key", func() (bool, error) { return s.MarkOnce(ctx, "escalate:o/r#1:abc") }, true},
		{"second mark of the key", func() (bool, error) { return s.MarkOnce(ctx, "escalate:o/r#1:abc") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if err != nil || got != tc.want {
				t.Fatalf("= %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	t.Run("an empty key is refused", func(t *testing.T) {
		if _, err := s.MarkOnce(ctx, ""); err == nil {
			t.Fatal("MarkOnce(\"\") succeeded")
		}
		if _, err := s.ClaimComment(ctx, 79, ""); err == nil {
			t.Fatal("ClaimComment without a delivery id succeeded")
		}
	})
	t.Run("a comment used before deliveries were noted stays used", func(t *testing.T) {
		exec(t, s.w, "INSERT INTO used_comments (comment_id, used_at) VALUES (80, 0)")
		if mine, err := s.ClaimComment(ctx, 80, "d3"); err != nil || mine {
			t.Fatalf("= %v, %v; want false", mine, err)
		}
	})
}

func TestOverrides(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	a := pr.Override{Kind: "approve", Actor: "alice", Reason: "looked at it", HeadSHA: "abc", BaseRef: "main", At: t0}
	b := pr.Override{Kind: "override", Actor: "bob", Reason: "hotfix", HeadSHA: "abc", BaseRef: "main",
		Rules: []string{"merge_freeze"}, Freezes: []string{"friday-deploys"}, At: t0.Add(time.Minute)}
	again := a
	again.At = t0.Add(time.Hour) // a command processed again after a failure
	for _, o := range []pr.Override{a, b, again} {
		if err := s.AddOverride(ctx, "o/r", 1, o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Overrides(ctx, "o/r", 1)
	if err != nil {
		t.Fatal(err)
	}
	a.Rules, a.Freezes = []string{}, []string{}
	if fmt.Sprint(got) != fmt.Sprint([]pr.Override{a, b}) {
		t.Fatalf("Overrides = %+v", got)
	}
	if got, _ := s.Overrides(ctx, "o/r", 2); len(got) != 0 {
		t.Fatalf("another PR has overrides %+v", got)
	}
	if err := s.AddOverride(ctx, "o/r", 1, pr.Override{Kind: "approve"}); err == nil {
		t.Fatal("AddOverride without actor succeeded")
	}
}

// AppendTracked stores the records and the tracked PR together, or neither.
func TestAppendTracked(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	p := TrackedPR{Repo: "o/r", Number: 1, HeadSHA: "abc", Open: true, Outcome: "allow", CheckRunID: 7}
	rec := Record{Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: 1, HeadSHA: "abc"}
	out, err := s.AppendTracked(ctx, p, rec)
	if err != nil || len(out) != 1 || out[0].Seq != 1 {
		t.Fatalf("AppendTracked = %+v, %v", out, err)
	}
	if got, ok, _ := s.TrackedPR(ctx, "o/r", 1); !ok || got.CheckRunID != 7 {
		t.Fatalf("tracked %+v, %v", got, ok)
	}

	// A record the trail refuses: the PR stays as it was, nothing is appended.
	p2 := p
	p2.HeadSHA, p2.CheckRunID = "def", 8
	if _, err := s.AppendTracked(ctx, p2, Record{Kind: KindDecision}); err == nil {
		t.Fatal("AppendTracked of a record without outcome succeeded")
	}
	// A tracked PR the store refuses: the record is not appended either.
	if _, err := s.AppendTracked(ctx, TrackedPR{Repo: "o/r"}, rec); err == nil {
		t.Fatal("AppendTracked of a PR without number succeeded")
	}
	if got, _, _ := s.TrackedPR(ctx, "o/r", 1); got.HeadSHA != "abc" || got.CheckRunID != 7 {
		t.Fatalf("after refusals tracked %+v", got)
	}
	if h, err := s.PRHistory(ctx, "o/r", 1, 10); err != nil || len(h) != 1 {
		t.Fatalf("%d records after refusals (%v), want 1", len(h), err)
	}
}

func TestTrackedPRs(t *testing.T) {
	ctx := context.Background()
	c := newClock(t0)
	s := mustOpen(t, WithClock(c.Now))
	p := TrackedPR{Repo: "o/r", Number: 1, Installation: 5, HeadSHA: "abc", BaseRef: "main", Author: "bot[bot]",
		Agent: true, Open: true, Outcome: "escalate", TimeDependent: true, CheckRunID: 99}
	for _, q := range []TrackedPR{p, {Repo: "o/r", Number: 2, Open: true}, {Repo: "a/b", Number: 3, Agent: true, Open: true}} {
		if err := s.TrackPR(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("reads back what was tracked", func(t *testing.T) {
		got, ok, err := s.TrackedPR(ctx, "o/r", 1)
		p.UpdatedAt = t0
		if err != nil || !ok || got != p {
			t.Fatalf("TrackedPR = %+v, %v, %v", got, ok, err)
		}
	})
	t.Run("an untracked PR is not found", func(t *testing.T) {
		if _, ok, err := s.TrackedPR(ctx, "o/r", 7); ok || err != nil {
			t.Fatalf("TrackedPR = %v, %v", ok, err)
		}
	})
	t.Run("open agent PRs only, by repository and number", func(t *testing.T) {
		got, err := s.OpenWatchedPRs(ctx)
		if err != nil || len(got) != 2 || got[0].Repo != "a/b" || got[1].Number != 1 {
			t.Fatalf("OpenWatchedPRs = %+v, %v", got, err)
		}
	})
	t.Run("an upsert replaces, a closed PR drops out", func(t *testing.T) {
		c.Add(time.Minute)
		p.Open, p.HeadSHA, p.UpdatedAt = false, "def", time.Time{}
		if err := s.TrackPR(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, _, _ := s.TrackedPR(ctx, "o/r", 1)
		if got.Open || got.HeadSHA != "def" || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("after upsert %+v", got)
		}
		if open, _ := s.OpenWatchedPRs(ctx); len(open) != 1 {
			t.Fatalf("OpenWatchedPRs = %+v", open)
		}
	})
	t.Run("refuses a PR without repository or number", func(t *testing.T) {
		if err := s.TrackPR(ctx, TrackedPR{Number: 1}); err == nil {
			t.Fatal("TrackPR without repo succeeded")
		}
		if err := s.TrackPR(ctx, TrackedPR{Repo: "o/r"}); err == nil {
			t.Fatal("TrackPR without number succeeded")
		}
	})
}

func TestState(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	if _, ok, err := s.State(ctx, "reconcile"); ok || err != nil {
		t.Fatalf("State unknown = %v, %v", ok, err)
	}
	for _, v := range []string{"1", "2"} {
		if err := s.SetState(ctx, "reconcile", v); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := s.State(ctx, "reconcile"); v != "2" || !ok || err != nil {
		t.Fatalf("State = %q, %v, %v", v, ok, err)
	}
	if err := s.SetState(ctx, "", "x"); err == nil {
		t.Fatal("SetState with empty key succeeded")
	}
}

// A freeze declared by a command processed twice (its delivery retried)
// is declared once.
func TestStartFreezeOnce(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	f := ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "INC-7", By: "mona", Source: "comment:5551"}
	first, err := s.StartFreeze(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.FreezeVersion(ctx)
	f.From = t0.Add(time.Minute) // the retry runs later
	again, err := s.StartFreeze(ctx, f)
	if err != nil || again.ID != first.ID || !again.From.Equal(first.From) || again.Source != f.Source {
		t.Fatalf("second StartFreeze = %+v, %v; want the first, %+v", again, err, first)
	}
	if fs, _ := s.ActiveFreezes(ctx, first.From); len(fs) != 1 {
		t.Fatalf("%d active freezes, want 1", len(fs))
	}
	if v2, _ := s.FreezeVersion(ctx); v2 != v {
		t.Fatalf("freeze version moved from %d to %d", v, v2)
	}
	if res, err := s.Verify(ctx, ""); err != nil || res.Records != 1 {
		t.Fatalf("Verify = %+v, %v; want one started record", res, err)
	}
	other := f
	other.Source = "comment:5552"
	if g, err := s.StartFreeze(ctx, other); err != nil || g.ID == first.ID {
		t.Fatalf("another comment's freeze = %+v, %v", g, err)
	}
}

func TestStatesWithPrefix(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for k, v := range map[string]string{"queued:o/r#1": "a", "queued:o/r#12": "b", "queued:o/r2#1": "c", "queued:o/r$": "d", "queued:o/q#1": "e"} {
		if err := s.SetState(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.StatesWithPrefix(ctx, "queued:o/r#")
	if err != nil || fmt.Sprint(got) != "map[queued:o/r#1:a queued:o/r#12:b]" {
		t.Fatalf("StatesWithPrefix = %v, %v", got, err)
	}
	if _, err := s.StatesWithPrefix(ctx, ""); err == nil {
		t.Fatal("an empty prefix was accepted")
	}
}

// EndFreezesFrom ends only the freezes that began by then.
func TestEndFreezesFrom(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, WithClock(newClock(t0.Add(2*time.Hour)).Now))
	a, _ := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "a", From: t0})
	b, _ := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "b", From: t0.Add(time.Hour)})
	if n, err := s.EndFreezesFrom(ctx, ScopeRepo, "o/r", "x", t0.Add(30*time.Minute)); err != nil || n != 1 {
		t.Fatalf("EndFreezesFrom = %d, %v; want 1", n, err)
	}
	fs, _ := s.ActiveFreezes(ctx, t0.Add(2*time.Hour))
	if len(fs) != 1 || fs[0].ID != b.ID {
		t.Fatalf("active %+v; want only %d (a was %d)", fs, b.ID, a.ID)
	}
	if n, _ := s.EndFreezesFrom(ctx, ScopeRepo, "o/r", "x", t0.Add(time.Hour)); n != 1 {
		t.Fatalf("a freeze from exactly then was not ended")
	}
}

func TestAppendWithState(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	rec := Record{Kind: KindFreeze, Actor: "schedule", Outcome: "started", Reason: "x"}
	if err := s.AppendWithState(ctx, "k", "", "one", rec); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendWithState(ctx, "k", "", "two", rec); !errors.Is(err, ErrStateChanged) {
		t.Fatalf("moving from a state that is gone = %v, want ErrStateChanged", err)
	}
	if v, _, _ := s.State(ctx, "k"); v != "one" {
		t.Fatalf("state %q after the refused move", v)
	}
	if res, _ := s.Verify(ctx, ""); res.Records != 1 {
		t.Fatalf("%d records, want the first only", res.Records)
	}
	if err := s.AppendWithState(ctx, "k", "one", "two"); err != nil {
		t.Fatal(err)
	}
}

// When an agent last pushed is kept across TrackPR calls that do not know
// it (the later time wins, zero changes nothing) and NoteAgentPush.
func TestAgentPushedAt(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	t1 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	p := TrackedPR{Repo: "o/r", Number: 7, HeadSHA: "a", Open: true, AgentPushedAt: t1, AgentPushedHead: "a"}
	if err := s.TrackPR(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.AgentPushedAt, p.AgentPushedHead, p.HeadSHA, p.KnownHead = time.Time{}, "", "b", "b" // an event that saw no push
	if err := s.TrackPR(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.KnownHead = "" // a write-back that learned nothing keeps the known head
	if err := s.TrackPR(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.TrackedPR(ctx, "o/r", 7)
	if err != nil || !got.AgentPushedAt.Equal(t1) || got.AgentPushedHead != "a" || got.HeadSHA != "b" || got.KnownHead != "b" {
		t.Fatalf("%+v, %v; want the push at %v kept", got, err, t1)
	}
	if err := s.NoteAgentPush(ctx, "o/r", 7, t1.Add(-time.Hour), "old"); err != nil { // older: kept the later
		t.Fatal(err)
	}
	if err := s.NoteAgentPush(ctx, "o/r", 8, t1, "x"); err != nil { // untracked: nothing
		t.Fatal(err)
	}
	if got, _, _ = s.TrackedPR(ctx, "o/r", 7); !got.AgentPushedAt.Equal(t1) || got.AgentPushedHead != "a" {
		t.Fatalf("after an older note: %v %q", got.AgentPushedAt, got.AgentPushedHead)
	}
	if err := s.NoteAgentPush(ctx, "o/r", 7, t1.Add(time.Hour), "c"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = s.TrackedPR(ctx, "o/r", 7); !got.AgentPushedAt.Equal(t1.Add(time.Hour)) || got.AgentPushedHead != "c" {
		t.Fatalf("after a later note: %v %q", got.AgentPushedAt, got.AgentPushedHead)
	}
	if _, ok, _ := s.TrackedPR(ctx, "o/r", 8); ok {
		t.Fatal("NoteAgentPush tracked an unknown PR")
	}
	// Another head in the same second: which is later is unknown.
	if err := s.NoteAgentPush(ctx, "o/r", 7, t1.Add(time.Hour), "d"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = s.TrackedPR(ctx, "o/r", 7); got.AgentPushedHead != "" {
		t.Fatalf("two heads in one second: head %q, want none", got.AgentPushedHead)
	}
	// Re-anchored to an approved commit, for that push only.
	if err := s.ReanchorAgentPush(ctx, "o/r", 7, t1, "x"); err != nil { // an older push: nothing
		t.Fatal(err)
	}
	if err := s.ReanchorAgentPush(ctx, "o/r", 7, t1.Add(time.Hour), "e"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = s.TrackedPR(ctx, "o/r", 7); got.AgentPushedHead != "e" || !got.AgentPushedAt.Equal(t1.Add(time.Hour)) {
		t.Fatalf("re-anchored: %v %q, want e", got.AgentPushedAt, got.AgentPushedHead)
	}
}

// Schema 4 gives the agent PRs tracked before it (whose flag never
// cleared) their last event's time as an agent's push: only an approval
// after it clears them.
func TestMigrateAgentPushes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "guard.db")
	db := rawDB(t, path)
	for _, f := range []string{"0001_init.sql", "0002_payload_last.sql", "0003_retries.sql"} {
		b, err := migrationFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exec(t, db, string(b))
	}
	exec(t, db, "PRAGMA user_version = 3")
	ins := `INSERT INTO tracked_prs (repo, number, installation, head_sha, base_ref, author, agent, open, outcome, time_dependent, check_run_id, updated_at)
		VALUES ('o/r', ?, 1, 'h', 'main', 'alice', ?, 1, 'allow', 0, 0, ?)`
	exec(t, db, ins, 1, 1, 5000)
	exec(t, db, ins, 2, 0, 6000)
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	agent, _, err := s.TrackedPR(ctx, "o/r", 1)
	human, _, err2 := s.TrackedPR(ctx, "o/r", 2)
	if err != nil || err2 != nil || !agent.AgentPushedAt.Equal(time.Unix(0, 5000).UTC()) || !human.AgentPushedAt.IsZero() ||
		agent.KnownHead != "h" || human.KnownHead != "h" {
		t.Fatalf("agent PR pushed at %v (%v), human PR at %v (%v)", agent.AgentPushedAt, err, human.AgentPushedAt, err2)
	}
}
