package guard

import (
	"context"
	"encoding/csv"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
)

// The schedule's freeze records: an occurrence of a configured freeze is
// recorded when it starts and when it ends (early, when a new
// configuration drops it), once each; ticks in between record nothing.
func TestRecordFreezes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC) // a Friday, in the weekly window
	st, err := audit.Open(ctx, ":memory:", audit.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	withFreeze, err := config.Parse("guard.yaml", []byte("timezone: UTC\nfreezes:\n  - name: friday-deploys@ops\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n    branches: [main]\n"))
	if err != nil {
		t.Fatal(err)
	}
	without, err := config.Parse("guard.yaml", []byte("timezone: UTC\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := withFreeze
	g := New(Options{Store: st, Config: func() *config.Config { return cfg }, Now: func() time.Time { return now }})
	tick := func() {
		t.Helper()
		if err := g.recordFreezes(ctx, cfg, now); err != nil {
			t.Fatal(err)
		}
	}
	records := func() int {
		t.Helper()
		res, err := st.Verify(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return res.Records
	}
	last := func() audit.Record {
		t.Helper()
		var b strings.Builder
		if _, _, err := st.Export(ctx, now.Add(-30*24*time.Hour), now.Add(time.Hour), "csv", &b); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		f := rows[len(rows)-1]
		return audit.Record{Kind: f[1], Actor: f[5], Outcome: f[7], Reason: f[9]}
	}

	tick()
	if n := records(); n != 1 {
		t.Fatalf("%d records after the first tick, want the start", n)
	}
	if r := last(); r.Actor != "schedule" || r.Outcome != "started" ||
		!strings.Contains(r.Reason, "friday-deploys@ops (weekly freeze of agents' PRs on main") ||
		!strings.Contains(r.Reason, "2026-03-06T16:00:00Z to 2026-03-09T08:00:00Z") {
		t.Fatalf("start record %+v", r)
	}
	now = now.Add(time.Hour)
	tick()
	if n := records(); n != 1 {
		t.Fatalf("%d records after a tick inside the window, want 1", n)
	}

	cfg = without // a new guard.yaml drops the freeze
	tick()
	if r := last(); records() != 2 || r.Outcome != "ended" || !strings.Contains(r.Reason, "ended early: the configuration no longer has it") {
		t.Fatalf("%d records, last %+v; want the early end", records(), r)
	}

	cfg = withFreeze
	tick() // back: the same occurrence starts again
	now = time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)
	tick()
	if r := last(); records() != 4 || r.Outcome != "ended" || !strings.HasSuffix(r.Reason, ") ended") || !strings.HasPrefix(r.Reason, "friday-deploys@ops (weekly freeze of agents' PRs on main, 2026-03-06T16:00:00Z to 2026-03-09T08:00:00Z)") {
		t.Fatalf("%d records, last %+v; want its end", records(), r)
	}

	// A state that cannot be read is started over: what is in effect is
	// recorded again rather than never.
	now = time.Date(2026, 3, 13, 16, 30, 0, 0, time.UTC)
	if err := st.SetState(ctx, stateFreezes, "{not json"); err != nil {
		t.Fatal(err)
	}
	tick()
	if r := last(); records() != 5 || r.Outcome != "started" || !strings.Contains(r.Reason, "2026-03-13T16:00:00Z") {
		t.Fatalf("%d records, last %+v", records(), r)
	}
}

// Two guards on one database (an overlapping restart) record a freeze's
// start once: the second finds the state moved on and writes nothing.
func TestRecordFreezesTwoGuardsOneDatabase(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC)
	cfg, err := config.Parse("guard.yaml", []byte("timezone: UTC\nfreezes:\n  - name: friday-deploys\n    weekly: {from: \"fri 16:00\", to: \"mon 08:00\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		path := filepath.Join(t.TempDir(), "guard.db")
		var guards []*Guard
		var stores []*audit.Store
		for range 2 {
			s, err := audit.Open(ctx, path, audit.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			stores = append(stores, s)
			guards = append(guards, New(Options{Store: s, Config: func() *config.Config { return cfg }, Now: func() time.Time { return now }}))
		}
		var wg sync.WaitGroup
		for _, g := range guards {
			wg.Go(func() {
				if err := g.recordFreezes(ctx, cfg, now); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		res, err := stores[0].Verify(ctx, "")
		if err != nil || res.Records != 1 {
			t.Fatalf("Verify = %+v, %v; want the start recorded once", res, err)
		}
		for _, s := range stores {
			s.Close()
		}
	}
}

// A declared freeze that starts and runs out between two ticks (or while
// the guard is down) was never in effect at a tick; its end is recorded
// all the same, once. One seen in effect is recorded once, not twice.
func TestRecordFreezesRanOutUnseen(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	now := t0
	st, err := audit.Open(ctx, ":memory:", audit.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, err := config.Parse("guard.yaml", []byte("timezone: UTC\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := New(Options{Store: st, Config: func() *config.Config { return cfg }, Now: func() time.Time { return now }})
	tick := func(at time.Time) {
		t.Helper()
		now = at
		if err := g.recordFreezes(ctx, cfg, now); err != nil {
			t.Fatal(err)
		}
	}
	ended := func() []string {
		t.Helper()
		var b strings.Builder
		if _, _, err := st.Export(ctx, t0.Add(-time.Hour), t0.Add(48*time.Hour), "csv", &b); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows[1:] {
			if r[5] == "schedule" && r[7] == "ended" {
				out = append(out, r[9])
			}
		}
		return out
	}
	declare := func(from, until time.Time, reason string) audit.ManualFreeze {
		t.Helper()
		f, err := st.StartFreeze(ctx, audit.ManualFreeze{Scope: audit.ScopeRepo, Target: "octo-org/shop", Reason: reason,
			By: "oncall", From: from, Until: until})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	tick(t0) // nothing in effect: the state starts, from now
	brief := declare(t0.Add(time.Minute), t0.Add(2*time.Minute), "INC-7 failover drill")
	tick(t0.Add(time.Hour)) // it began and ran out since the last tick
	if e := ended(); len(e) != 1 || !strings.HasPrefix(e[0], incidentName(brief)+" ran out at 2026-03-04T10:02:00Z") || !strings.Contains(e[0], "INC-7") {
		t.Fatalf("schedule's end records %q, want the brief freeze's", e)
	}
	tick(t0.Add(2 * time.Hour))
	if e := ended(); len(e) != 1 {
		t.Fatalf("a later tick recorded it again: %q", e)
	}

	// Seen in effect at a tick, then ran out: recorded once.
	seen := declare(t0.Add(2*time.Hour), t0.Add(4*time.Hour), "INC-8")
	tick(t0.Add(3 * time.Hour))
	tick(t0.Add(5 * time.Hour))
	if e := ended(); len(e) != 2 || !strings.HasPrefix(e[1], incidentName(seen)+" ran out") {
		t.Fatalf("schedule's end records %q, want INC-8's once", e)
	}

	// Ended by hand between ticks: that act is its record, not the schedule's.
	declare(t0.Add(5*time.Hour), t0.Add(6*time.Hour), "INC-9")
	now = t0.Add(5*time.Hour + time.Minute)
	if n, err := st.EndFreezes(ctx, audit.ScopeRepo, "octo-org/shop", "mona"); err != nil || n != 1 {
		t.Fatalf("EndFreezes = %d, %v", n, err)
	}
	tick(t0.Add(7 * time.Hour))
	if e := ended(); len(e) != 2 {
		t.Fatalf("schedule's end records %q, want none for the freeze ended by hand", e)
	}
}
