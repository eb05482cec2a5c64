package gh

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/pr"
)

func pathEscape(s string) string { return url.PathEscape(s) }

// Marker returns the hidden marker EnsureComment puts in a comment for key.
func Marker(key string) string { return "<!-- merge-guard:" + key + " -->" }

// EnsureComment posts body with a hidden marker <!-- merge-guard:KEY --> unless a comment with that marker exists (looks first, all pages).
// A POST that fails without a clear answer (5xx, lost connection) is
// retried only after looking again.
func (c *Client) EnsureComment(ctx context.Context, owner, repo string, number int, key, body string) (created bool, err error) {
	what := fmt.Sprintf("comment on %s/%s#%d", owner, repo, number)
	if key == "" || strings.Contains(key, "--") || strings.ContainsAny(key, ">\n") {
		return false, fmt.Errorf("%s: marker key %q must be non-empty without \"--\", \">\" or newlines", what, key)
	}
	marker := Marker(key)
	for attempt := 0; ; attempt++ {
		found, err := c.hasComment(ctx, owner, repo, number, marker)
		if err != nil {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		if found {
			return attempt > 0, nil
		}
		err = c.Comment(ctx, owner, repo, number, body+"\n\n"+marker)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrUnavailable) || attempt >= c.app.o.MaxRetries {
			return false, err
		}
		if err := c.app.tr.wait(ctx, "POST", "/repos/{owner}/{repo}/issues/{number}/comments", 0, attempt, c.app.tr.backoff(attempt), "create comment: unknown outcome"); err != nil {
			return false, err
		}
	}
}

func (c *Client) hasComment(ctx context.Context, owner, repo string, number int, marker string) (bool, error) {
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: perPage}}
	found := false
	err := pages(&opt.ListOptions, func() (int, *github.Response, error) {
		cs, resp, err := c.gh.Issues.ListComments(ctx, owner, repo, number, opt)
		for _, cm := range cs {
			found = found || strings.Contains(cm.GetBody(), marker)
		}
		if found && err == nil {
			return 0, &github.Response{}, nil // the last page asked for
		}
		return len(cs), resp, err
	})
	if err != nil {
		return false, wrap("list comments", err)
	}
	return found, nil
}

// Comment posts body on issue or pull request number. It is not retried
// after an unclear failure (it could post twice); use EnsureComment for
// comments that must appear once.
func (c *Client) Comment(ctx context.Context, owner, repo string, number int, body string) error {
	if _, _, err := c.gh.Issues.CreateComment(ctx, owner, repo, number, &github.IssueComment{Body: &body}); err != nil {
		return wrap(fmt.Sprintf("comment on %s/%s#%d", owner, repo, number), err)
	}
	return nil
}

// RequestReviewers asks users and teams (slugs) to review pull request
// number; asking again is harmless. Nothing to ask is a no-op.
func (c *Client) RequestReviewers(ctx context.Context, owner, repo string, number int, users, teams []string) error {
	if len(users) == 0 && len(teams) == 0 {
		return nil
	}
	_, _, err := c.gh.PullRequests.RequestReviewers(ctx, owner, repo, number, github.ReviewersRequest{Reviewers: users, TeamReviewers: teams})
	return wrap(fmt.Sprintf("request reviewers on %s/%s#%d", owner, repo, number), err)
}

// OpenPulls lists the open pull requests of owner/repo (all pages).
func (c *Client) OpenPulls(ctx context.Context, owner, repo string) ([]pr.PullRequest, error) {
	var out []pr.PullRequest
	opt := &github.PullRequestListOptions{State: "open", ListOptions: github.ListOptions{PerPage: perPage}}
	err := pages(&opt.ListOptions, func() (int, *github.Response, error) {
		ps, resp, err := c.gh.PullRequests.List(ctx, owner, repo, opt)
		for _, p := range ps {
			out = append(out, PullRequestFrom(p))
		}
		return len(ps), resp, err
	})
	if err != nil {
		return nil, wrap("list open pull requests of "+owner+"/"+repo, err)
	}
	return out, nil
}

// PullsForCommit returns the numbers of the pull requests that contain sha.
func (c *Client) PullsForCommit(ctx context.Context, owner, repo, sha string) ([]int, error) {
	var out []int
	opt := &github.ListOptions{PerPage: perPage}
	err := pages(opt, func() (int, *github.Response, error) {
		ps, resp, err := c.gh.PullRequests.ListPullRequestsWithCommit(ctx, owner, repo, sha, opt)
		for _, p := range ps {
			out = append(out, p.GetNumber())
		}
		return len(ps), resp, err
	})
	if err != nil {
		return nil, wrap("list pull requests of commit "+sha, err)
	}
	return out, nil
}

// CompareCommits returns the SHAs of the commits in head but not in base,
// oldest first (all pages).
func (c *Client) CompareCommits(ctx context.Context, owner, repo, base, head string) ([]string, error) {
	var out []string
	opt := &github.ListOptions{PerPage: perPage}
	for {
		cmp, resp, err := c.gh.Repositories.CompareCommits(ctx, owner, repo, base, head, opt)
		if err != nil {
			return nil, wrap("compare "+base+"..."+head, err)
		}
		for _, rc := range cmp.Commits {
			out = append(out, rc.GetSHA())
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// Repositories lists the repositories the installation can access.
func (c *Client) Repositories(ctx context.Context) ([]pr.Repository, error) {
	var out []pr.Repository
	opt := &github.ListOptions{PerPage: perPage}
	for {
		res, resp, err := c.gh.Apps.ListRepos(ctx, opt)
		if err != nil {
			return nil, wrap("list installation repositories", err)
		}
		for _, r := range res.Repositories {
			out = append(out, RepositoryFrom(r))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}
