package guard

import (
	"context"
	"strconv"
	"strings"
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
		if a := e.GetAction(); a == "enqueued" || a == "dequeued" {
			// A merge group holding it is judged by the calendar of when it
			// was queued (SPEC §6); the delivery's receipt is when.
			if err := g.markQueue(ctx, t.repo.FullName, t.number, queueMark{At: d.ReceivedAt, Queued: a == "enqueued"}); err != nil {
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

// queueMark is the last enqueued or dequeued event of a pull request, kept
// in the state table as "q TIME" or "d TIME".
type queueMark struct {
	At     time.Time
	Queued bool
}

func (m queueMark) String() string {
	verb := "d "
	if m.Queued {
		verb = "q "
	}
	return verb + m.At.UTC().Format(time.RFC3339Nano)
}

func parseQueueMark(v string) (queueMark, bool) {
	verb, at, ok := strings.Cut(v, " ")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || verb != "q" && verb != "d" {
		return queueMark{}, false
	}
	return queueMark{At: t, Queued: verb == "q"}, true
}

// markQueue notes m unless a later event is noted already: an enqueued
// event processed late (out of order, or retried after a failure) must not
// put back a PR that left the queue since. A PR's events are processed one
// at a time (one dispatcher key), so the read and the write do not race.
func (g *Guard) markQueue(ctx context.Context, repo string, number int, m queueMark) error {
	key := queuedKey(repo, number)
	v, ok, err := g.o.Store.State(ctx, key)
	if err != nil {
		return err
	}
	if old, valid := parseQueueMark(v); ok && valid && old.At.After(m.At) {
		return nil
	}
	return g.o.Store.SetState(ctx, key, m.String())
}

// maxQueueWait bounds how long ago a queue time is believed: a PR in a
// merge queue for longer (its dequeued event lost) is judged as of now.
const maxQueueWait = 24 * time.Hour

// queuedSince is when the PR noted by v entered the merge queue; zero when
// it is not queued, or was queued longer than maxQueueWait before now or
// after now.
func queuedSince(v string, now time.Time) time.Time {
	m, ok := parseQueueMark(v)
	if !ok || !m.Queued || m.At.After(now) || now.Sub(m.At) > maxQueueWait {
		return time.Time{}
	}
	return m.At
}
