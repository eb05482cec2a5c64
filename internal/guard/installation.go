package guard

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// onInstallation records installation changes and backfills the open pull
// requests of newly installed repositories.
func (g *Guard) onInstallation(ctx context.Context, d webhook.Delivery, e *github.InstallationEvent) ([]audit.Record, error) {
	switch e.GetAction() {
	case "created", "deleted":
	default:
		return nil, nil
	}
	inst := e.GetInstallation().GetID()
	var repos []pr.Repository
	for _, r := range e.Repositories {
		repos = append(repos, pr.Repository{FullName: r.GetFullName(), Name: r.GetName(), Owner: e.GetInstallation().GetAccount().GetLogin()})
	}
	rec := g.installationRecord(d, inst, e.GetSender().GetLogin(), e.GetAction(), repos)
	if e.GetAction() == "deleted" {
		return []audit.Record{rec}, nil
	}
	recs, err := g.backfill(ctx, d, inst, repos)
	return append([]audit.Record{rec}, recs...), err
}

// onInstallationRepositories handles repositories added to or removed from
// an installation.
func (g *Guard) onInstallationRepositories(ctx context.Context, d webhook.Delivery, e *github.InstallationRepositoriesEvent) ([]audit.Record, error) {
	inst := e.GetInstallation().GetID()
	owner := e.GetInstallation().GetAccount().GetLogin()
	var list []*github.Repository
	var action string
	switch e.GetAction() {
	case "added":
		list, action = e.RepositoriesAdded, "repositories_added"
	case "removed":
		list, action = e.RepositoriesRemoved, "repositories_removed"
	default:
		return nil, nil
	}
	var repos []pr.Repository
	for _, r := range list {
		repos = append(repos, pr.Repository{FullName: r.GetFullName(), Name: r.GetName(), Owner: owner})
	}
	rec := g.installationRecord(d, inst, e.GetSender().GetLogin(), action, repos)
	if action == "repositories_removed" {
		return []audit.Record{rec}, nil
	}
	recs, err := g.backfill(ctx, d, inst, repos)
	return append([]audit.Record{rec}, recs...), err
}

func (g *Guard) installationRecord(d webhook.Delivery, inst int64, actor, outcome string, repos []pr.Repository) audit.Record {
	names := ""
	for i, r := range repos {
		if i > 0 {
			names += ", "
		}
		names += r.FullName
	}
	return audit.Record{
		Time: g.o.Now(), Kind: "installation", Actor: actor, Outcome: outcome,
		Reason: fmt.Sprintf("installation %d: %s", inst, names), DeliveryID: d.ID, Installation: inst,
	}
}

// backfill evaluates the open pull requests of repos, so that PRs opened
// before the app was installed get their check run.
func (g *Guard) backfill(ctx context.Context, d webhook.Delivery, inst int64, repos []pr.Repository) ([]audit.Record, error) {
	cfg := g.o.Config()
	client := g.o.GitHub.Installation(inst)
	var recs []audit.Record
	for _, repo := range repos {
		if !cfg.RepoIncluded(repo.FullName) {
			continue
		}
		pulls, err := client.OpenPulls(ctx, repo.Owner, repo.Name)
		if err != nil {
			return recs, fmt.Errorf("list open pull requests of %s: %w", repo.FullName, err)
		}
		for i := range pulls {
			p := pulls[i]
			r, err := g.evaluate(ctx, target{
				delivery: d, installation: inst, repo: repo, number: p.Number, known: &p,
				event: pr.Event{Name: d.Event, Action: "backfill"},
			})
			if err != nil {
				return recs, err
			}
			recs = append(recs, r...)
		}
	}
	return recs, nil
}
