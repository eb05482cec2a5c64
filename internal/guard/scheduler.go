package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// State keys of the scheduler, kept in the database so that a restart
// neither misses a boundary nor repeats work.
const (
	stateBoundary  = "scheduler.next_boundary"
	stateReconcile = "scheduler.last_reconcile"
	stateFreezeVer = "scheduler.freeze_version"
	// stateConfig holds the digest of the configuration the open PRs were
	// last re-evaluated under: a new guard.yaml (a freeze added, business
	// hours moved) re-evaluates them at once, not at the old next boundary.
	stateConfig = "scheduler.config_digest"
	// stateRecheck holds the highest delivery seq that was pending when a
	// boundary passed: those deliveries may publish a decision made before
	// it, so the open agent PRs are looked at again once they are done.
	stateRecheck = "scheduler.recheck_after_seq"
)

// SchedulerOptions tune the time-driven work.
type SchedulerOptions struct {
	Tick      time.Duration // how often Tick runs; default 5s
	Reconcile time.Duration // repair interval; default 10m, negative: never (tests)
	Pace      time.Duration // pause between re-evaluations (secondary rate limits); default 200ms
	ExportDir string        // weekly exports; "" disables them
	// Retry is given each failed delivery whose pause is over, set back to
	// pending (audit.Store.RetryFailed), to be processed again; nil: failed
	// deliveries are not retried.
	Retry func(audit.Delivery)
}

// FreezesChanged tells the scheduler that a freeze started or ended in this
// process, so the next Tick re-evaluates at once.
func (g *Guard) FreezesChanged() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// RunScheduler runs Tick until ctx is done: re-evaluation at calendar
// boundaries and on freeze changes (also those declared by `guard freeze`
// in another process), the periodic reconcile, and the weekly export.
func (g *Guard) RunScheduler(ctx context.Context, o SchedulerOptions) {
	if o.Tick <= 0 {
		o.Tick = 5 * time.Second
	}
	t := time.NewTicker(o.Tick)
	defer t.Stop()
	for {
		if err := g.Tick(ctx, o); err != nil && ctx.Err() == nil {
			g.o.Logger.Error("scheduled work failed; retrying on the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		}
	}
}

// Tick does the scheduled work that is due at g's now. Tests call it after
// moving their clock.
func (g *Guard) Tick(ctx context.Context, o SchedulerOptions) (err error) {
	if o.Reconcile == 0 {
		o.Reconcile = 10 * time.Minute
	}
	if o.Pace < 0 {
		o.Pace = 0
	}
	now := g.o.Now()
	cfg := g.o.Config()
	due := false
	why := ""

	// Retries and the schedule's freeze records come after the rest of the
	// tick, whatever becomes of them: a failure there must not hold up a
	// freeze's enforcement.
	defer func() {
		err = errors.Join(err, g.retryFailed(ctx, o), g.recordFreezes(ctx, cfg, now))
	}()

	// Calendar boundaries: due when the stored next boundary has passed (also
	// one that passed while the guard was down).
	boundaryState, ok, err := g.o.Store.State(ctx, stateBoundary)
	if err != nil {
		return err
	}
	if ok && boundaryState != "" {
		b, err := time.Parse(time.RFC3339Nano, boundaryState)
		if err == nil && !now.Before(b) {
			due, why = true, "calendar boundary "+b.Format(time.RFC3339)
		}
	} else {
		due, why = true, "first start"
	}
	// Freezes declared or ended anywhere (CLI, comment, expiry).
	ver, err := g.o.Store.FreezeVersion(ctx)
	if err != nil {
		return err
	}
	verStr := fmt.Sprint(ver)
	if v, ok, err := g.o.Store.State(ctx, stateFreezeVer); err != nil {
		return err
	} else if !ok || v != verStr {
		due, why = true, "freezes changed"
	}
	everyone := false // re-evaluate every open PR, not only the watched ones
	if v, ok, err := g.o.Store.State(ctx, stateConfig); err != nil {
		return err
	} else if !ok || v != cfg.Digest {
		if ok {
			due, why = true, "configuration changed"
		} else if !due {
			// A store from before the digest was kept: note it from now on.
			if err := g.o.Store.SetState(ctx, stateConfig, cfg.Digest); err != nil {
				return err
			}
		}
		// A freeze that now holds humans too reaches PRs nobody watched.
		everyone = ok && freezesEveryone(cfg)
	}
	// A re-evaluation that fails (GitHub down) is tried again at the next
	// tick, for the PRs it did not finish; meanwhile the reconcile and the
	// weekly export still run.
	var failed error
	if due {
		// Deliveries in flight now may have decided before the boundary and
		// publish after this re-evaluation: remember them (before it starts).
		_, last, inFlight, err := g.o.Store.PendingRange(ctx)
		if err != nil {
			return err
		}
		// What the PRs are re-evaluated for: the state that made it due and
		// the next boundary from now. A retry goes on with the PRs the last
		// try did not finish while that is the same; once a boundary has
		// passed (or a freeze, the configuration changed) every PR again.
		next, err := nextBoundary(ctx, g.o.Store, cfg.Calendar.NextBoundary(now), now)
		if err != nil {
			return err // stored, a boundary that skips a freeze's end would hold its PRs past it
		}
		gen := fmt.Sprint(boundaryState, "|", verStr, "|", cfg.Digest, "|", everyone, "|", next.UnixNano())
		if g.redo == nil || g.redo.gen != gen {
			g.redo = &retry{gen: gen, done: map[string]bool{}, failed: map[string]bool{}}
		}
		failed = g.reevaluateOpen(ctx, why, o.Pace, everyone, g.redo)
		if failed == nil {
			g.redo = nil
			if inFlight {
				if err := g.o.Store.SetState(ctx, stateRecheck, strconv.FormatInt(last, 10)); err != nil {
					return err
				}
			}
			if err := g.o.Store.SetState(ctx, stateFreezeVer, verStr); err != nil {
				return err
			}
			if err := g.o.Store.SetState(ctx, stateConfig, cfg.Digest); err != nil {
				return err
			}
			// next as computed above: a freeze declared meanwhile changed
			// the freeze version, so the next tick is due again anyway.
			if err := g.o.Store.SetState(ctx, stateBoundary, next.UTC().Format(time.RFC3339Nano)); err != nil {
				return err
			}
		}
	}

	if !due {
		if err := g.recheck(ctx, o.Pace); err != nil {
			return err
		}
	}

	// Reconcile: repair missing, failed or stale check runs.
	last := time.Time{}
	if v, ok, err := g.o.Store.State(ctx, stateReconcile); err != nil {
		return err
	} else if ok {
		last, _ = time.Parse(time.RFC3339Nano, v)
	}
	if o.Reconcile > 0 && now.Sub(last) >= o.Reconcile {
		if err := g.scanOpenPulls(ctx, o.Pace); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		if err := g.o.Store.SetState(ctx, stateReconcile, now.UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
	}

	if o.ExportDir != "" {
		written, err := g.o.Store.ExportWeeks(ctx, o.ExportDir, cfg.Location, now)
		if err != nil {
			return fmt.Errorf("weekly export: %w", err)
		}
		for _, f := range written {
			g.o.Logger.Info("weekly audit export written", "file", f)
		}
	}
	return failed
}

// retryFailed hands the failed deliveries whose pause is over to o.Retry.
func (g *Guard) retryFailed(ctx context.Context, o SchedulerOptions) error {
	if o.Retry == nil {
		return nil
	}
	ds, err := g.o.Store.RetryFailed(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		g.o.Logger.Info("retrying a delivery that failed", "delivery", d.ID, "event", d.Event,
			"attempts", d.Attempts, "received_at", d.ReceivedAt.UTC().Format(time.RFC3339))
		o.Retry(d)
	}
	return nil
}

// recheck re-evaluates the open agent PRs once the deliveries that were in
// flight when the last boundary passed are all done.
func (g *Guard) recheck(ctx context.Context, pace time.Duration) error {
	v, ok, err := g.o.Store.State(ctx, stateRecheck)
	if err != nil || !ok || v == "" {
		return err
	}
	mark, err := strconv.ParseInt(v, 10, 64)
	if err == nil {
		first, _, inFlight, err := g.o.Store.PendingRange(ctx)
		if err != nil {
			return err
		}
		if inFlight && first <= mark {
			return nil // still in flight
		}
		if err := g.reevaluateOpen(ctx, "deliveries in flight at the boundary are done", pace, false, nil); err != nil {
			return err
		}
	}
	return g.o.Store.SetState(ctx, stateRecheck, "")
}

// nextBoundary is the earlier of the calendar's next boundary cal (none:
// a day from now) and the end of any declared freeze with a duration.
func nextBoundary(ctx context.Context, state State, cal, now time.Time) (time.Time, error) {
	next := cal
	if next.IsZero() {
		next = now.Add(24 * time.Hour)
	}
	fs, err := state.ActiveFreezes(ctx, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("next boundary: %w", err)
	}
	for _, f := range fs {
		if !f.Until.IsZero() && f.Until.After(now) && f.Until.Before(next) {
			next = f.Until
		}
	}
	return next, nil
}

// retry is a re-evaluation being retried: gen names what it is for, done
// holds the PRs (repo#number) it has finished, failed those that failed.
type retry struct {
	gen    string
	done   map[string]bool
	failed map[string]bool
}

// maxFailuresInARow ends a re-evaluation pass: after that many PRs failed
// one after the other (GitHub down, or rate limiting), the rest wait for
// the next tick instead of failing too, each with its own retries. A pass
// in an outage costs a few calls, not one evaluation per open PR.
const maxFailuresInARow = 3

// reevaluateOpen re-evaluates the open watched PRs (all: every open
// tracked PR), blocks first, so that a freeze reaches GitHub before
// anything is let through, pacing the calls. A PR GitHub no longer shows
// the app (repository removed from the installation, or deleted) stops
// being tracked instead of failing every tick. After maxFailuresInARow
// failures in a row the pass ends with the first error. With r (a retry),
// the PRs it has done are skipped and those that failed before go last (so
// that a few PRs that always fail cannot keep the others from being
// re-evaluated); r notes what this pass does and fails.
func (g *Guard) reevaluateOpen(ctx context.Context, why string, pace time.Duration, all bool, r *retry) error {
	var done, failedBefore map[string]bool // nil without r
	if r != nil {
		done, failedBefore = r.done, r.failed
	}
	list := g.o.Store.OpenWatchedPRs
	if all {
		list = g.o.Store.OpenTrackedPRs
	}
	prs, err := list(ctx)
	if err != nil {
		return fmt.Errorf("list open pull requests: %w", err)
	}
	type item struct {
		p      audit.TrackedPR
		sev    int
		failed bool // before, in this retry
	}
	var items []item
	now := g.o.Now()
	cfg := g.o.Config()
	for _, p := range prs {
		if !p.TimeDependent && !all || done[prKey(p)] {
			continue
		}
		owner, name, _ := strings.Cut(p.Repo, "/")
		c, err := clock(ctx, cfg, g.o.Store, pr.Repository{Owner: owner, Name: name, FullName: p.Repo}, p.BaseRef, now)
		sev := 0
		if err == nil && len(c.Freezes) > 0 {
			sev = 2 // likely block: publish first
		}
		items = append(items, item{p, sev, failedBefore[prKey(p)]})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if a.failed != b.failed {
			if b.failed {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.sev, a.sev)
	})
	if len(items) > 0 {
		g.o.Logger.Info("re-evaluating open agent pull requests", "why", why, "count", len(items))
	}
	var firstErr error
	inARow := 0 // failures
	for i, it := range items {
		if i > 0 && pace > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pace):
			}
		}
		owner, name, _ := strings.Cut(it.p.Repo, "/")
		d := webhook.Delivery{ID: "schedule:" + newID(), Event: "schedule"}
		// The record is appended by evaluate, with the tracked PR.
		recs, err := g.evaluate(ctx, target{
			delivery: d, installation: it.p.Installation,
			repo:   pr.Repository{Owner: owner, Name: name, FullName: it.p.Repo},
			number: it.p.Number,
			event:  pr.Event{Name: "schedule", Action: why},
			record: true,
		})
		gone := errors.Is(err, gh.ErrNotFound)
		if gone {
			g.o.Logger.Warn("pull request no longer visible to the app; no longer tracked", "repo", it.p.Repo, "pr", it.p.Number, "err", err)
		}
		if gone || err == nil && len(recs) == 0 {
			// Closed since (or gone): stop tracking it as open.
			it.p.Open, it.p.KnownHead = false, "" // keep the stored known head
			err = g.o.Store.TrackPR(ctx, it.p)
		}
		if err != nil {
			g.o.Logger.Error("scheduled re-evaluation failed", "repo", it.p.Repo, "pr", it.p.Number, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			if r != nil {
				r.failed[prKey(it.p)] = true
			}
			if inARow++; inARow >= maxFailuresInARow && i+1 < len(items) {
				g.o.Logger.Warn("re-evaluation paused after failures in a row; the rest at the next tick",
					"failures", inARow, "left", len(items)-i-1)
				return firstErr
			}
			continue
		}
		inARow = 0
		if r != nil {
			r.done[prKey(it.p)] = true
		}
	}
	return firstErr
}

// prKey names a tracked PR in a retry's done set.
func prKey(p audit.TrackedPR) string { return p.Repo + "#" + strconv.Itoa(p.Number) }
