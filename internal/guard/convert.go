package guard

import (
	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/pr"
)

// The payload conversions are the GitHub client's, so that a PR read from a
// webhook and one fetched from the API look the same to the policies.

func account(u *github.User) pr.Account { return gh.AccountFrom(u) }

func repository(r *github.Repository) pr.Repository { return gh.RepositoryFrom(r) }

// pullRequest converts a payload's pull request; nil stays nil.
func pullRequest(p *github.PullRequest) *pr.PullRequest {
	if p == nil {
		return nil
	}
	out := gh.PullRequestFrom(p)
	return &out
}
