package guard

import (
	"context"
	"strconv"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/webhook"
)

func (g *Guard) onPullRequest(ctx context.Context, d webhook.Delivery, e *github.PullRequestEvent) ([]audit.Record, error) {
	switch e.GetAction() {
	case "opened", "reopened", "synchronize", "edited", "ready_for_review", "converted_to_draft",
		"labeled", "unlabeled", "auto_merge_enabled", "auto_merge_disabled", "enqueued", "dequeued":
		t, _ := targetOf(d, e)
		switch e.GetAction() {
		case "enqueued":
			// A merge group holding it is judged by the calendar of now
			// (SPEC §6: at queue time); the delivery's receipt is when.
			if err := g.o.Store.SetState(ctx, queuedKey(t.repo.FullName, t.number), d.ReceivedAt.UTC().Format(time.RFC3339Nano)); err != nil {
				return nil, err
			}
		case "dequeued":
			if err := g.o.Store.SetState(ctx, queuedKey(t.repo.FullName, t.number), ""); err != nil {
				return nil, err
			}
		}
		return g.evaluate(ctx, t)
	case "closed":
		return g.onClosed(ctx, d, e)
	default:
		return nil, nil
	}
}

func queuedKey(repo string, number int) string { return "queued:" + repo + "#" + strconv.Itoa(number) }

// maxQueueWait bounds how long ago a queue time is believed: a PR in a
// merge queue for longer (its dequeued event lost) is judged as of now.
const maxQueueWait = 24 * time.Hour

// queuedAt is when pull request number entered the merge queue, as its
// enqueued event said; zero when unknown, left, or longer ago than
// maxQueueWait or in now's future.
func (g *Guard) queuedAt(ctx context.Context, repo string, number int, now time.Time) (time.Time, error) {
	v, ok, err := g.o.Store.State(ctx, queuedKey(repo, number))
	if err != nil || !ok || v == "" {
		return time.Time{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || at.After(now) || now.Sub(at) > maxQueueWait {
		return time.Time{}, nil
	}
	return at, nil
}
