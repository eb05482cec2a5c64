package guard

import (
	"context"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/pr"
)

// freezesOnly is a State with declared freezes and nothing else.
type freezesOnly []audit.ManualFreeze

func (f freezesOnly) TrackedPR(context.Context, string, int) (audit.TrackedPR, bool, error) {
	return audit.TrackedPR{}, false, nil
}
func (f freezesOnly) Overrides(context.Context, string, int) ([]pr.Override, error) { return nil, nil }
func (f freezesOnly) ActiveFreezes(context.Context, time.Time) ([]audit.ManualFreeze, error) {
	return f, nil
}

// The input's next_boundary is the end of a declared freeze when that comes
// before the calendar's next change, as the scheduler sees it.
func TestClockNextBoundaryIncludesDeclaredFreezeEnds(t *testing.T) {
	cfg, err := config.Parse("guard.yaml", []byte("timezone: UTC\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC) // a Tuesday, business hours until 18:00
	repo := pr.Repository{Owner: "o", Name: "r", FullName: "o/r"}
	cal := cfg.Calendar.Clock(now, "main").NextBoundary
	for _, tt := range []struct {
		name  string
		until time.Time
		want  string
	}{
		{"ends before the calendar's boundary", now.Add(30 * time.Minute), "2026-03-03T10:30:00Z"},
		{"ends after it", now.Add(48 * time.Hour), cal},
		{"open-ended", time.Time{}, cal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := freezesOnly{{ID: 1, Scope: audit.ScopeRepo, Target: "o/r", From: now.Add(-time.Minute), Until: tt.until}}
			c, err := clock(context.Background(), cfg, st, repo, "main", now)
			if err != nil {
				t.Fatal(err)
			}
			if c.NextBoundary != tt.want || len(c.Freezes) != 1 {
				t.Fatalf("next_boundary %q (%d freezes), want %q", c.NextBoundary, len(c.Freezes), tt.want)
			}
		})
	}
}
