package guard

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/metrics"
	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/internal/webhook"
)

// Options wire a Guard.
type Options struct {
	Store  *audit.Store
	GitHub *gh.App
	// Policies returns the policy set in force (it may be reloaded).
	Policies func() *policy.Engine
	// Config returns the configuration in force.
	Config     func() *config.Config
	Now        func() time.Time
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
	PublicURL  string // base of details links, without a trailing slash
	LinkSecret []byte
}

// Guard processes deliveries. It is safe for concurrent use.
type Guard struct {
	o     Options
	locks keyedMutex
	kick  chan struct{} // wakes the scheduler
	// redo is the re-evaluation the scheduler is retrying, if one failed;
	// only the scheduler's goroutine uses it.
	redo *retry
}

// New returns a Guard.
func New(o Options) *Guard {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{o: o, kick: make(chan struct{}, 1)}
}

// handled lists the webhook events and actions the guard acts on (SPEC §6).
var handled = map[string][]string{
	"pull_request": {"opened", "reopened", "synchronize", "edited", "ready_for_review", "converted_to_draft",
		"labeled", "unlabeled", "auto_merge_enabled", "auto_merge_disabled", "enqueued", "dequeued", "closed"},
	"pull_request_review":       {"submitted", "edited", "dismissed"},
	"issue_comment":             {"created"},
	"check_run":                 {"rerequested", "requested_action"},
	"check_suite":               {"rerequested"},
	"merge_group":               {"checks_requested"},
	"installation":              {"created", "deleted"},
	"installation_repositories": {"added", "removed"},
}

// HandledEvents returns the events the guard acts on, with their actions.
func HandledEvents() map[string][]string {
	out := make(map[string][]string, len(handled))
	for e, a := range handled {
		out[e] = slices.Clone(a)
	}
	return out
}

// Interested reports whether the guard uses event/action; the intake stores
// only those deliveries.
func Interested(event, action string) bool {
	return slices.Contains(handled[event], action)
}

// Process handles one delivery and stores its records, marking it done, in
// one transaction. An error leaves the delivery to be retried.
func (g *Guard) Process(ctx context.Context, d webhook.Delivery) error {
	if d.Payload == nil {
		return fmt.Errorf("delivery %s: payload not available", d.ID)
	}
	ev, err := github.ParseWebHook(d.Event, d.Payload)
	if err != nil {
		// No retry can parse it either: close the delivery, say why once.
		webhook.Logger(ctx, g.o.Logger).Error("payload cannot be decoded; delivery dropped", "err", err)
		if _, err := g.o.Store.Complete(ctx, d.Seq); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		return nil
	}
	var recs []audit.Record
	switch e := ev.(type) {
	case *github.PullRequestEvent:
		recs, err = g.onPullRequest(ctx, d, e)
	case *github.PullRequestReviewEvent:
		recs, err = g.onPullRequestReview(ctx, d, e)
	case *github.IssueCommentEvent:
		recs, err = g.onIssueComment(ctx, d, e)
	case *github.CheckRunEvent:
		recs, err = g.onCheckRun(ctx, d, e)
	case *github.CheckSuiteEvent:
		recs, err = g.onCheckSuite(ctx, d, e)
	case *github.MergeGroupEvent:
		recs, err = g.onMergeGroup(ctx, d, e)
	case *github.InstallationEvent:
		recs, err = g.onInstallation(ctx, d, e)
	case *github.InstallationRepositoriesEvent:
		recs, err = g.onInstallationRepositories(ctx, d, e)
	}
	if err != nil {
		return err
	}
	if _, err := g.o.Store.Complete(ctx, d.Seq, recs...); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	for _, r := range recs {
		if r.Kind == "decision" {
			g.o.Metrics.Decision(r.Outcome)
		}
	}
	return nil
}

// keyedMutex serializes work per key; entries are dropped when unused.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
