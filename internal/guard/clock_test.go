package guard

import (
	"context"
	"errors"
	"strings"
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
func (f freezesOnly) FailedPushes(context.Context, string, int64) (int, time.Time, error) {
	return 0, time.Time{}, nil
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

// failingFreezes is a State whose freezes cannot be read.
type failingFreezes struct{ freezesOnly }

func (failingFreezes) ActiveFreezes(context.Context, time.Time) ([]audit.ManualFreeze, error) {
	return nil, errors.New("database is locked")
}

// The scheduler's next boundary is the calendar's or a declared freeze's
// end, whichever comes first; when the freezes cannot be read it is an
// error, not the calendar's boundary (stored, that would skip the freeze's
// end and hold its PRs until the calendar's next change).
func TestSchedulerNextBoundary(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	cal := now.Add(8 * time.Hour)
	for _, tt := range []struct {
		name  string
		cal   time.Time
		state State
		want  time.Time
	}{
		{"no freezes", cal, freezesOnly{}, cal},
		{"no calendar boundary: a day", time.Time{}, freezesOnly{}, now.Add(24 * time.Hour)},
		{"a freeze ends first", cal, freezesOnly{{ID: 1, From: now.Add(-time.Hour), Until: now.Add(time.Hour)}}, now.Add(time.Hour)},
		{"a freeze ends later", cal, freezesOnly{{ID: 1, From: now.Add(-time.Hour), Until: cal.Add(time.Hour)}}, cal},
		{"an open-ended freeze", cal, freezesOnly{{ID: 1, From: now.Add(-time.Hour)}}, cal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nextBoundary(ctx, tt.state, tt.cal, now)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("nextBoundary = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	t.Run("freezes unreadable", func(t *testing.T) {
		got, err := nextBoundary(ctx, failingFreezes{}, cal, now)
		if err == nil || !strings.Contains(err.Error(), "database is locked") {
			t.Fatalf("nextBoundary = %v, %v; want the store's error", got, err)
		}
	})
}
