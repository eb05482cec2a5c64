package guard

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/command"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// onCheckRun handles re-runs and the Approve/Override buttons of the
// merge-guard check run. Runs are mapped back to pull requests through the
// guard's own records, never the payload's pull_requests (empty for forks).
func (g *Guard) onCheckRun(ctx context.Context, d webhook.Delivery, e *github.CheckRunEvent) ([]audit.Record, error) {
	run := e.GetCheckRun()
	cfg := g.o.Config()
	if run.GetName() != cfg.CheckName {
		return nil, nil
	}
	repo := repository(e.GetRepo())
	switch e.GetAction() {
	case "rerequested":
		return g.reevaluateSHA(ctx, d, e.GetInstallation().GetID(), repo, run.GetHeadSHA(), true)
	case "requested_action":
		var kind command.Kind
		switch e.GetRequestedAction().Identifier {
		case "approve":
			kind = command.Approve
		case "override":
			kind = command.Override
		default:
			return nil, nil
		}
		prs, err := g.o.Store.PRsForSHA(ctx, repo.FullName, run.GetHeadSHA())
		if err != nil {
			return nil, fmt.Errorf("map check run to pull requests: %w", err)
		}
		client := g.o.GitHub.Installation(e.GetInstallation().GetID())
		var recs []audit.Record
		for _, n := range prs {
			q := request{
				delivery: d, installation: e.GetInstallation().GetID(), repo: repo, number: n,
				actor: account(e.GetSender()), cmd: command.Command{Kind: kind, Reason: "check-run button"},
				headSHA: run.GetHeadSHA(), source: "check-run button",
			}
			r, _, err := g.approveOrOverride(ctx, q, client)
			if err != nil {
				return nil, err
			}
			recs = append(recs, r...)
		}
		return recs, nil
	}
	return nil, nil
}

// onCheckSuite re-evaluates the pull requests of a re-requested suite.
func (g *Guard) onCheckSuite(ctx context.Context, d webhook.Delivery, e *github.CheckSuiteEvent) ([]audit.Record, error) {
	switch e.GetAction() {
	case "rerequested":
		return g.reevaluateSHA(ctx, d, e.GetInstallation().GetID(), repository(e.GetRepo()), e.GetCheckSuite().GetHeadSHA(), true)
	}
	return nil, nil
}

// reevaluateSHA evaluates every pull request the guard has recorded for a
// head SHA; fresh publishes a new check run as GitHub expects on a re-run.
func (g *Guard) reevaluateSHA(ctx context.Context, d webhook.Delivery, inst int64, repo pr.Repository, sha string, fresh bool) ([]audit.Record, error) {
	prs, err := g.o.Store.PRsForSHA(ctx, repo.FullName, sha)
	if err != nil {
		return nil, fmt.Errorf("map %s to pull requests: %w", short(sha), err)
	}
	var recs []audit.Record
	for _, n := range prs {
		r, err := g.evaluate(ctx, target{
			delivery: d, installation: inst, repo: repo, number: n, fresh: fresh,
			event: pr.Event{Name: d.Event, Action: "rerequested"},
		})
		if err != nil {
			return nil, err
		}
		recs = append(recs, r...)
	}
	return recs, nil
}
