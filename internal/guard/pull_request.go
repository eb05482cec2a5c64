package guard

import (
	"context"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/webhook"
)

func (g *Guard) onPullRequest(ctx context.Context, d webhook.Delivery, e *github.PullRequestEvent) ([]audit.Record, error) {
	switch e.GetAction() {
	case "opened", "reopened", "synchronize", "edited", "ready_for_review", "converted_to_draft",
		"labeled", "unlabeled", "auto_merge_enabled", "auto_merge_disabled", "enqueued", "dequeued":
		t, _ := targetOf(d, e)
		return g.evaluate(ctx, t)
	case "closed":
		return g.onClosed(ctx, d, e)
	default:
		return nil, nil
	}
}
