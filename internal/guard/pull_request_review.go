package guard

import (
	"context"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/webhook"
)

func (g *Guard) onPullRequestReview(ctx context.Context, d webhook.Delivery, e *github.PullRequestReviewEvent) ([]audit.Record, error) {
	switch e.GetAction() {
	case "submitted", "edited", "dismissed":
		t, _ := targetOf(d, e)
		return g.evaluate(ctx, t)
	default:
		return nil, nil
	}
}
