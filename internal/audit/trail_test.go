package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAppend(t *testing.T) {
	ctx := context.Background()
	c := newClock(t0)
	s := mustOpen(t, WithClock(c.Now))
	out, err := s.Append(ctx,
		Record{Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: 1, Actor: "alice"},
		Record{ID: "dec-2", Time: t0.In(time.FixedZone("X", 3600)), Kind: KindDecision, Outcome: "block",
			Repository: "o/r", PullRequest: 1, Rules: []string{"merge_freeze", "incident_freeze"}, Agent: true,
			Details: json.RawMessage(`{"input":{},"result":{"outcome":"block"}}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the store sets seq, id, time and the chain", func(t *testing.T) {
		a, b := out[0], out[1]
		if a.Seq != 1 || b.Seq != 2 || a.ID == "" || len(a.ID) != 32 || !a.Time.Equal(t0) || a.PrevHash != "" ||
			len(a.Hash) != 64 || b.PrevHash != a.Hash || b.Time.Location() != time.UTC {
			t.Fatalf("Append returned %+v", out)
		}
	})
	t.Run("Record returns what Append stored", func(t *testing.T) {
		got, err := s.Record(ctx, "dec-2")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(out[1]) {
			t.Fatalf("Record = %+v\nwant     %+v", got, out[1])
		}
	})
	t.Run("Record of an unknown id is ErrNotFound", func(t *testing.T) {
		if _, err := s.Record(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Record = %v", err)
		}
	})
	t.Run("a duplicate id is refused", func(t *testing.T) {
		_, err := s.Append(ctx, Record{ID: "dec-2", Kind: KindDecision, Outcome: "allow"})
		if err == nil || !strings.Contains(err.Error(), "already in the trail") {
			t.Fatalf("Append duplicate = %v", err)
		}
	})
	for _, bad := range []struct {
		name string
		rec  Record
	}{
		{"an unknown kind", Record{Kind: "vote", Outcome: "allow"}},
		{"an empty outcome", Record{Kind: KindDecision}},
		{"a rule id with a semicolon", Record{Kind: KindDecision, Outcome: "block", Rules: []string{"a;b"}}},
		{"an empty rule id", Record{Kind: KindDecision, Outcome: "block", Rules: []string{""}}},
		{"details that are not JSON", Record{Kind: KindDecision, Outcome: "allow", Details: json.RawMessage("{")}},
		{"a negative PR number", Record{Kind: KindDecision, Outcome: "allow", PullRequest: -1}},
	} {
		t.Run("refuses "+bad.name, func(t *testing.T) {
			if _, err := s.Append(ctx, bad.rec); err == nil {
				t.Fatalf("Append(%+v) succeeded", bad.rec)
			}
			if res, _ := s.Verify(ctx, ""); res.Records != 2 {
				t.Fatalf("a refused append changed the trail: %d records", res.Records)
			}
		})
	}
	t.Run("invalid UTF-8 is stored as U+FFFD and still verifies", func(t *testing.T) {
		out, err := s.Append(ctx, Record{Kind: KindOverride, Outcome: "refused", Reason: "bad \xff byte"})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Reason != "bad \uFFFD byte" {
			t.Fatalf("reason = %q", out[0].Reason)
		}
		if _, err := s.Verify(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the database refuses UPDATE and DELETE of records", func(t *testing.T) {
		for _, q := range []string{"UPDATE records SET outcome = 'allow'", "DELETE FROM records"} {
			if _, err := s.w.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("%s = %v, want append-only error", q, err)
			}
		}
	})
}

func TestPRHistoryAndLastDecision(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	if _, ok, err := s.LastDecision(ctx, "o/r", 1); err != nil || ok {
		t.Fatalf("LastDecision on empty trail = %v, %v", ok, err)
	}
	recs := []Record{
		{ID: "1", Kind: KindDecision, Outcome: "escalate", Repository: "o/r", PullRequest: 1, CheckRunID: 7},
		{ID: "2", Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: 2, CheckRunID: 8},
		{ID: "3", Kind: KindOverride, Outcome: "granted", Repository: "o/r", PullRequest: 1},
		{ID: "4", Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: 1, CheckRunID: 7},
		{ID: "5", Kind: KindMerge, Outcome: "merged", Repository: "o/r", PullRequest: 1},
		{ID: "6", Kind: KindDecision, Outcome: "block", Repository: "o/other", PullRequest: 1, CheckRunID: 9},
		// Recorded, not published: its head was no longer the PR's.
		{ID: "7", Kind: KindDecision, Outcome: "escalate", Repository: "o/r", PullRequest: 1},
	}
	if _, err := s.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	ids := func(rs []Record) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name  string
		repo  string
		num   int
		limit int
		want  string
	}{
		{"all kinds of one PR, newest first", "o/r", 1, 0, "7,5,4,3,1"},
		{"limited", "o/r", 1, 2, "7,5"},
		{"another repository", "o/other", 1, 10, "6"},
		{"a PR without records", "o/r", 9, 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.PRHistory(ctx, tc.repo, tc.num, tc.limit)
			if err != nil || ids(got) != tc.want {
				t.Fatalf("PRHistory = %s, %v; want %s", ids(got), err, tc.want)
			}
		})
	}
	t.Run("LastDecision skips other kinds and what was not published", func(t *testing.T) {
		r, ok, err := s.LastDecision(ctx, "o/r", 1)
		if err != nil || !ok || r.ID != "4" {
			t.Fatalf("LastDecision = %s, %v, %v; want 4", r.ID, ok, err)
		}
	})
}
