package guard

import (
	"context"
	"fmt"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/command"
	"github.com/mergeguard/guard/internal/gh"
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
		inst := e.GetInstallation().GetID()
		client := g.o.GitHub.Installation(inst)
		prs, err := g.prsForSHA(ctx, client, repo, run.GetHeadSHA())
		if err != nil {
			return nil, err
		}
		var recs []audit.Record
		for _, n := range prs {
			q := request{
				delivery: d, installation: inst, repo: repo, number: n,
				actor: account(e.GetSender()), cmd: command.Command{Kind: kind, Reason: buttonSource},
				headSHA: run.GetHeadSHA(), source: buttonSource,
			}
			r, text, err := g.approveOrOverride(ctx, q, client)
			if err != nil {
				return nil, err
			}
			// The button has no reply of its own: say on the PR what came of
			// it, once per click (the delivery) even if processed again.
			body := "@" + q.actor.Login + " (" + buttonSource + ") " + text
			if _, err := client.EnsureComment(ctx, repo.Owner, repo.Name, n, "action-"+d.ID, body); err != nil {
				return nil, fmt.Errorf("reply to check-run button: %w", err)
			}
			recs = append(recs, r...)
		}
		return recs, nil
	}
	return nil, nil
}

// buttonSource is the reason recorded for a check-run button (SPEC §5).
const buttonSource = "check-run button"

// prsForSHA maps a head SHA to pull requests: the guard's own records
// first, and when it has none (a database restored from before the PR, a
// run of another install), GitHub's commits/{sha}/pulls. Never the
// payload's pull_requests, which is empty for forks.
func (g *Guard) prsForSHA(ctx context.Context, client *gh.Client, repo pr.Repository, sha string) ([]int, error) {
	prs, err := g.o.Store.PRsForSHA(ctx, repo.FullName, sha)
	if err != nil {
		return nil, fmt.Errorf("map %s to pull requests: %w", short(sha), err)
	}
	if len(prs) > 0 {
		return prs, nil
	}
	prs, err = client.PullsForCommit(ctx, repo.Owner, repo.Name, sha)
	if err != nil {
		return nil, fmt.Errorf("map %s to pull requests: %w", short(sha), err)
	}
	return prs, nil
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
	if grp, ok, err := g.mergeGroupFor(ctx, repo.FullName, sha); err != nil {
		return nil, err
	} else if ok {
		return g.evaluateGroup(ctx, d, repo, grp, fresh)
	}
	client := g.o.GitHub.Installation(inst)
	prs, err := g.prsForSHA(ctx, client, repo, sha)
	if err != nil {
		return nil, err
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
