package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mergeguard/guard/internal/config"
)

// configuredTeam is one team named in the configuration, as the guard
// resolves it for repositories of one installation, with every key that
// names it.
type configuredTeam struct {
	org, slug string
	keys      []string
}

// teamsFor lists the configured teams the guard looks up for repositories
// owned by account, in the order the configuration names them, each once.
// A bare "slug" belongs to account (config.SplitTeam). Reviewer teams of
// another organisation are left out: the guard asks only teams of the
// repository's owner to review, so it never looks them up.
func teamsFor(cfg *config.Config, account string) []configuredTeam {
	var out []configuredTeam
	add := func(key, team string) {
		org, slug := config.SplitTeam(team, account)
		for i := range out {
			if strings.EqualFold(out[i].org, org) && strings.EqualFold(out[i].slug, slug) {
				if !slices.Contains(out[i].keys, key) {
					out[i].keys = append(out[i].keys, key)
				}
				return
			}
		}
		out = append(out, configuredTeam{org: org, slug: slug, keys: []string{key}})
	}
	for _, t := range cfg.Agents.Teams {
		add("agents.teams", t)
	}
	for _, t := range cfg.Escalation.Approvers.Teams {
		add("escalation.approvers.teams", t)
	}
	for _, t := range cfg.Escalation.Reviewers.Teams {
		if org, _ := config.SplitTeam(t, account); strings.EqualFold(org, account) {
			add("escalation.reviewers.teams", t)
		}
	}
	return out
}

// teamFindings checks that every configured team exists for the
// repositories of installation ii: the guard fails closed on a pull request
// that needs a team it cannot find (agent classification, approvals), and
// GitHub refuses a review request for one. All teams present is one OK
// finding; no configured team is no finding.
func teamFindings(ctx context.Context, g GitHub, ii InstallationInfo, cfg *config.Config) []Finding {
	teams := teamsFor(cfg, ii.Account)
	if len(teams) == 0 {
		return nil
	}
	var out []Finding
	var found []string
	for _, t := range teams {
		name := t.org + "/" + t.slug
		keys := strings.Join(t.keys, ", ")
		err := g.Team(ctx, ii.ID, t.org, t.slug)
		var ae *APIError
		switch {
		case err == nil:
			found = append(found, name)
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			out = append(out, Finding{
				Status: StatusProblem,
				Message: fmt.Sprintf("%s: team %q does not exist (or the app cannot see it: members: read permission); "+
					"the guard fails closed on pull requests that need it", keys, name),
				Fix: fmt.Sprintf("check the team slug in the configuration (the last part of https://github.com/orgs/%s/teams/SLUG; "+
					"a bare slug means the repository's organisation, %s), and that the app has members: read on %s%s",
					t.org, ii.Account, ii.Account, at(ii.HTMLURL)),
			})
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			out = append(out, Finding{
				Status:  StatusUnknown,
				Message: fmt.Sprintf("%s: cannot tell whether team %q exists: GitHub refused to show it (403 %s)", keys, name, ae.Message),
				Fix: "grant the app members: read (app settings → Permissions & events) and accept it on the installation" + at(ii.HTMLURL) +
					", then run guard doctor again",
			})
		default:
			out = append(out, Finding{
				Status:  StatusUnknown,
				Message: fmt.Sprintf("%s: cannot tell whether team %q exists: %v", keys, name, err),
				Fix:     "run guard doctor again; if it persists, check GitHub's status and --github-url",
			})
		}
	}
	if len(found) == len(teams) {
		return []Finding{{Status: StatusOK, Message: "teams: every configured team exists (" + strings.Join(found, ", ") + ")"}}
	}
	return out
}
