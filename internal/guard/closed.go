package guard

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/webhook"
)

// onClosed records an observed merge; a merge whose last decision was not
// allow is a bypass (an admin merged over the guard, or the check is not
// required). A close without merge stops tracking the PR.
func (g *Guard) onClosed(ctx context.Context, d webhook.Delivery, e *github.PullRequestEvent) ([]audit.Record, error) {
	p := e.GetPullRequest()
	repo := e.GetRepo().GetFullName()
	if !g.o.Config().RepoIncluded(repo) {
		return nil, nil
	}
	defer g.locks.lock(fmt.Sprintf("%s#%d", repo, e.GetNumber()))()
	tracked, ok, err := g.o.Store.TrackedPR(ctx, repo, e.GetNumber())
	if err != nil {
		return nil, fmt.Errorf("read tracked PR: %w", err)
	}
	if ok {
		tracked.Open, tracked.KnownHead = false, "" // keep the stored known head
		if err := g.o.Store.TrackPR(ctx, tracked); err != nil {
			return nil, fmt.Errorf("track pull request: %w", err)
		}
	}
	if !p.GetMerged() {
		return nil, nil
	}
	last, found, err := g.o.Store.LastDecision(ctx, repo, e.GetNumber())
	if err != nil {
		return nil, fmt.Errorf("read last decision: %w", err)
	}
	outcome, reason := "merged", "merged with an allow decision"
	switch {
	case !found:
		outcome, reason = "bypass", "merged with no merge-guard decision on record"
	case last.Outcome != "allow":
		outcome, reason = "bypass", fmt.Sprintf("merged while the last decision (%s, %s) was %s", last.ID, short(last.HeadSHA), last.Outcome)
	case last.HeadSHA != p.GetHead().GetSHA():
		outcome, reason = "bypass", fmt.Sprintf("merged head %s, but the allow decision was for %s", short(p.GetHead().GetSHA()), short(last.HeadSHA))
	}
	return []audit.Record{{
		Time:         g.o.Now(),
		Kind:         "merge",
		Repository:   repo,
		PullRequest:  e.GetNumber(),
		HeadSHA:      p.GetHead().GetSHA(),
		Actor:        p.GetMergedBy().GetLogin(),
		Agent:        last.Agent,
		Outcome:      outcome,
		Rules:        last.Rules,
		Reason:       reason,
		DeliveryID:   d.ID,
		BaseRef:      p.GetBase().GetRef(),
		Installation: e.GetInstallation().GetID(),
	}}, nil
}
