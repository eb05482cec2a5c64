package guard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/calendar"
	"github.com/mergeguard/guard/internal/config"
)

// stateFreezes holds the freezes in effect at the last tick, as the trail
// has them: a JSON object from a freeze's key (config:NAME@START for an
// occurrence of a configured freeze, incident-N for a declared one) to its
// end (RFC 3339; "" for none), and under keyThrough the time up to which
// declared freezes that ran out are recorded.
const stateFreezes = "scheduler.freezes_in_effect"

// keyThrough is stateFreezes' key for the time (RFC 3339, nanoseconds) of
// the last tick that recorded something. A guard before it reads no
// freeze by that name.
const keyThrough = "through"

// recordFreezes appends the freeze records the schedule owns (SPEC §7,
// actor "schedule"): an occurrence of a configured freeze starting and
// ending (also when a new configuration drops it), and a declared freeze
// running out (`--for`, `/guard freeze 2h`). A freeze declared or ended by
// someone is recorded by that act, with who. The records and the freezes
// now in effect are stored in one transaction: each is written once.
func (g *Guard) recordFreezes(ctx context.Context, cfg *config.Config, now time.Time) error {
	prev := map[string]string{}
	v, ok, err := g.o.Store.State(ctx, stateFreezes)
	if err != nil {
		return err
	}
	if ok && v != "" && json.Unmarshal([]byte(v), &prev) != nil {
		prev = map[string]string{} // unreadable: what is in effect is recorded again
	}
	// Declared freezes that ran out since through are recorded below, also
	// those never seen in effect. With none yet (a first start, or a state
	// written before it was kept), from now: what ran out before is not
	// known to be unrecorded.
	through, err := time.Parse(time.RFC3339Nano, prev[keyThrough])
	kept := err == nil
	if !kept {
		through = now
	}
	delete(prev, keyThrough)
	cur := map[string]string{}
	var recs []audit.Record
	for _, a := range cfg.Calendar.Active(now) {
		k := "config:" + a.Window.Name + "@" + a.Start.UTC().Format(time.RFC3339)
		cur[k] = a.End.UTC().Format(time.RFC3339)
		if _, was := prev[k]; !was {
			recs = append(recs, configFreezeRecord(now, a, "started", "started"))
		}
	}
	declared, err := g.o.Store.ActiveFreezes(ctx, now)
	if err != nil {
		return err
	}
	for _, f := range declared {
		until := ""
		if !f.Until.IsZero() {
			until = f.Until.UTC().Format(time.RFC3339)
		}
		cur[incidentName(f)] = until
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		if _, still := cur[k]; still {
			continue
		}
		if rest, ok := strings.CutPrefix(k, "config:"); ok {
			i := strings.LastIndexByte(rest, '@') // a name may hold '@'; the start cannot
			if i < 0 {
				continue
			}
			name, start := rest[:i], rest[i+1:]
			from, _ := time.Parse(time.RFC3339, start)
			end, _ := time.Parse(time.RFC3339, prev[k])
			why := "ended"
			if now.Before(end) {
				why = "ended early: the configuration no longer has it"
			}
			w := calendar.Window{Name: name}
			for _, cw := range cfg.Calendar.Windows {
				if cw.Name == name {
					w = cw
				}
			}
			recs = append(recs, configFreezeRecord(now, calendar.Active{Window: w, Start: from, End: end}, "ended", why))
			continue
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(k, "incident-"), 10, 64)
		if err != nil {
			continue
		}
		f, ok, err := g.o.Store.Freeze(ctx, id)
		if err != nil {
			return err
		}
		if ok && f.EndedAt.IsZero() && !f.Until.IsZero() && !now.Before(f.Until) {
			recs = append(recs, ranOutRecord(f, now))
		}
	}
	// Those that started and ran out between two ticks, or while the guard
	// was down, were never in effect at a tick: their end is recorded too.
	unseen, err := g.o.Store.FreezesRanOut(ctx, through, now)
	if err != nil {
		return err
	}
	for _, f := range unseen {
		if _, seen := prev[incidentName(f)]; !seen {
			recs = append(recs, ranOutRecord(f, now))
		}
	}
	if len(recs) == 0 && maps.Equal(prev, cur) && kept {
		return nil // through stays: the next tick looks from it again
	}
	cur[keyThrough] = now.UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	if err := g.o.Store.AppendWithState(ctx, stateFreezes, v, string(b), recs...); errors.Is(err, audit.ErrStateChanged) {
		return nil // recorded by another guard on this database; the next tick looks again
	} else if err != nil {
		return fmt.Errorf("record freezes: %w", err)
	}
	for _, r := range recs {
		g.o.Logger.Info("freeze "+r.Outcome, "reason", r.Reason)
	}
	return nil
}

// ranOutRecord is the trail record of a declared freeze that ran out.
func ranOutRecord(f audit.ManualFreeze, at time.Time) audit.Record {
	rec := audit.FreezeRecord(f, at, "schedule", "ended")
	rec.Reason = fmt.Sprintf("%s ran out at %s: %s", incidentName(f), f.Until.UTC().Format(time.RFC3339), rec.Reason)
	return rec
}

func appliesTo(w calendar.Window) string {
	if w.AppliesTo == calendar.AppliesToEveryone {
		return "everyone's"
	}
	return "agents'"
}

// configFreezeRecord is the trail record of an occurrence of a configured
// freeze starting or ending; it covers every repository the guard acts on.
// Its reason says which freeze, for whom, on which branches and when it
// holds (the export has no details column), then what happened.
func configFreezeRecord(at time.Time, a calendar.Active, outcome, what string) audit.Record {
	branches := "every branch"
	if len(a.Window.Branches) > 0 {
		branches = strings.Join(a.Window.Branches, ", ")
	}
	reason := fmt.Sprintf("%s (%s freeze of %s PRs on %s, %s to %s) %s", a.Window.Name, a.Window.Kind(), appliesTo(a.Window),
		branches, a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339), what)
	details, _ := json.Marshal(map[string]any{ // plain values: cannot fail
		"name": a.Window.Name, "kind": a.Window.Kind(), "applies_to": cmp.Or(a.Window.AppliesTo, calendar.AppliesToAgents),
		"branches": a.Window.Branches,
		"from":     a.Start.UTC().Format(time.RFC3339), "until": a.End.UTC().Format(time.RFC3339),
	})
	return audit.Record{Time: at, Kind: audit.KindFreeze, Actor: "schedule", Outcome: outcome,
		Rules: []string{"merge_freeze"}, Reason: reason, BaseRef: strings.Join(a.Window.Branches, ","), Details: details}
}
