package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/go-github/v62/github"
)

// redeliverWindow is how far back failed deliveries are redelivered; GitHub
// keeps deliveries for a few days and allows redelivery within them.
const redeliverWindow = 72 * time.Hour

// redeliverMaxPages bounds how many pages (of 100 deliveries) one pass
// reads. GitHub lists deliveries newest first, so a pass normally stops at
// the first page that reaches past redeliverWindow; the bound (50,000
// deliveries) only guards against a listing that never gets there (a
// cursor that does not move on, an app far busier than any seen), and a
// warning names it when it is hit. A variable for tests.
var redeliverMaxPages = 500

// RedeliverFailed asks GitHub to redeliver the app's webhook deliveries
// that failed (GitHub never redelivers by itself) and that no later attempt
// delivered. Each delivery GUID is redelivered at most once by this guard:
// the database remembers it. It returns how many it asked for.
func (g *Guard) RedeliverFailed(ctx context.Context) (int, error) {
	client := g.o.GitHub.Client()
	now := g.o.Now()
	type attempt struct {
		id int64
		ok bool
	}
	latest := map[string]attempt{} // GUID -> newest attempt
	var order []string
	// Deliveries up to the newest one a completed pass examined were
	// examined then (an attempt never changes; a new one gets a new, higher
	// id): a pass reads only what came since, not the whole window again.
	var through, newest int64
	if v, ok, err := g.o.Store.State(ctx, stateRedeliverThrough); err != nil {
		return 0, err
	} else if ok {
		through, _ = strconv.ParseInt(v, 10, 64)
	}
	opts := &github.ListCursorOptions{PerPage: 100}
	// Page until the deliveries are older than the window: a fixed number
	// of pages would, on a busy app, silently skip failed deliveries older
	// than the newest few thousand but still redeliverable.
	read := 0
	for page := 0; ; page++ {
		if page == redeliverMaxPages {
			g.o.Logger.Warn("stopped listing webhook deliveries at the safety bound before reaching the redelivery window's start; older failed deliveries are not redelivered",
				"max_pages", redeliverMaxPages, "deliveries_read", read, "window", redeliverWindow.String())
			break
		}
		ds, resp, err := client.Apps.ListHookDeliveries(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list hook deliveries: %w", err)
		}
		read += len(ds)
		old := false
		for _, d := range ds {
			newest = max(newest, d.GetID())
			if now.Sub(d.GetDeliveredAt().Time) > redeliverWindow || d.GetID() <= through {
				old = true
				continue
			}
			guid := d.GetGUID()
			ok := d.GetStatusCode() >= 200 && d.GetStatusCode() < 300
			prev, seen := latest[guid]
			if !seen {
				order = append(order, guid)
				latest[guid] = attempt{id: d.GetID(), ok: ok}
				continue
			}
			// Newest first: keep the first attempt seen, but any success wins.
			latest[guid] = attempt{id: prev.id, ok: prev.ok || ok}
		}
		if old || resp.Cursor == "" {
			break
		}
		opts.Cursor = resp.Cursor
	}
	asked := 0
	for _, guid := range order {
		a := latest[guid]
		if a.ok {
			continue
		}
		key := "redelivered:" + guid
		if _, done, err := g.o.Store.State(ctx, key); err != nil {
			return asked, err
		} else if done {
			continue
		}
		if _, _, err := client.Apps.RedeliverHookDelivery(ctx, a.id); err != nil && !isAccepted(err) {
			return asked, fmt.Errorf("redeliver %s: %w", guid, err)
		}
		if err := g.o.Store.SetState(ctx, key, now.UTC().Format(time.RFC3339)); err != nil {
			return asked, err
		}
		asked++
	}
	if newest > through {
		if err := g.o.Store.SetState(ctx, stateRedeliverThrough, strconv.FormatInt(newest, 10)); err != nil {
			return asked, err
		}
	}
	return asked, nil
}

// stateRedeliverThrough holds the id of the newest hook delivery a
// completed redelivery pass examined.
const stateRedeliverThrough = "redeliver.through"

// RunRedelivery calls RedeliverFailed at once (deliveries that failed
// while the guard was down), then every interval until ctx is done.
func (g *Guard) RunRedelivery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		n, err := g.RedeliverFailed(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			g.o.Logger.Error("redelivering failed webhooks; retrying later", "err", err)
		case n > 0:
			g.o.Logger.Info("asked GitHub to redeliver failed webhooks", "count", n)
		}
	}
}

// isAccepted reports go-github's error for a 202 Accepted answer, which is
// how GitHub acknowledges a redelivery.
func isAccepted(err error) bool {
	var acc *github.AcceptedError
	return errors.As(err, &acc)
}
