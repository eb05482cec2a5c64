package guard

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// scanOpenPulls repairs what lost webhooks left behind. It lists the open
// pull requests of every installed repository (conditional requests: a list
// that did not change answers 304 and costs no rate limit) and evaluates
// each one the guard has no current check run for: never seen (an `opened`
// that never arrived, or a PR older than the installation), head moved (a
// lost `synchronize`), no run recorded, or an error decision. Tracked PRs
// that are no longer open stop being watched. Evaluations are paced.
func (g *Guard) scanOpenPulls(ctx context.Context, pace time.Duration) error {
	cfg := g.o.Config()
	var installs []*github.Installation
	opts := &github.ListOptions{PerPage: 100}
	for {
		is, resp, err := g.o.GitHub.Client().Apps.ListInstallations(ctx, opts)
		if err != nil {
			return fmt.Errorf("list installations: %w", err)
		}
		installs = append(installs, is...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	watched, err := g.o.Store.OpenWatchedPRs(ctx)
	if err != nil {
		return err
	}
	evaluated := 0
	for _, inst := range installs {
		if inst.SuspendedAt != nil {
			continue
		}
		client := g.o.GitHub.Installation(inst.GetID())
		repos, err := client.Repositories(ctx)
		if err != nil {
			return fmt.Errorf("installation %d: %w", inst.GetID(), err)
		}
		for _, repo := range repos {
			if !cfg.RepoIncluded(repo.FullName) {
				continue
			}
			pulls, err := client.OpenPulls(ctx, repo.Owner, repo.Name)
			if err != nil {
				return fmt.Errorf("open pull requests of %s: %w", repo.FullName, err)
			}
			open := map[int]bool{}
			for i := range pulls {
				p := pulls[i]
				open[p.Number] = true
				tracked, ok, err := g.o.Store.TrackedPR(ctx, repo.FullName, p.Number)
				if err != nil {
					return err
				}
				if ok && tracked.Open && tracked.HeadSHA == p.HeadSHA && tracked.CheckRunID != 0 && tracked.Outcome != string(pr.Error) {
					continue
				}
				if evaluated > 0 && pace > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(pace):
					}
				}
				evaluated++
				d := webhook.Delivery{ID: "reconcile:" + newID(), Event: "schedule"}
				// The record is appended by evaluate, with the tracked PR.
				if _, err := g.evaluate(ctx, target{
					delivery: d, installation: inst.GetID(), repo: repo, number: p.Number, known: &p,
					event: pr.Event{Name: "schedule", Action: "reconcile"}, record: true,
				}); err != nil {
					g.o.Logger.Error("reconcile evaluation failed", "repo", repo.FullName, "pr", p.Number, "err", err)
				}
			}
			for _, w := range watched {
				if w.Repo == repo.FullName && !open[w.Number] {
					w.Open, w.KnownHead = false, "" // keep the stored known head
					if err := g.o.Store.TrackPR(ctx, w); err != nil {
						return err
					}
				}
			}
		}
	}
	if evaluated > 0 {
		g.o.Logger.Info("reconcile evaluated pull requests without a current check run", "count", evaluated)
	}
	return nil
}
