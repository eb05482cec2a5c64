package gh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/pr"
)

// perPage is the page size of every list: GitHub's maximum.
const perPage = 100

// Facts returns lazily-fetching facts for one PR: each of PullRequest/
// Repository/Reviews/Commits/Files is fetched at most once per Facts value
// (all pages, per_page=100), errors included; known (e.g. from the webhook
// payload) is used instead of fetching the PR when non-nil. The repository
// comes with the PR when the PR is fetched. Files carry AddedLines parsed
// from the patch (new-file line numbers). Accounts carry Login and Type;
// Agent is left false (the caller classifies). Safe for concurrent use.
func (c *Client) Facts(owner, repo string, number int, known *pr.PullRequest) pr.Facts {
	f := &facts{c: c, owner: owner, repo: repo, number: number}
	if known != nil {
		p := *known
		f.pull = lazy[*pr.PullRequest]{done: true, v: &p}
	}
	return f
}

// lazy is one fact: fetched once, then served.
type lazy[T any] struct {
	mu   sync.Mutex
	done bool
	v    T
	err  error
}

func (l *lazy[T]) get(fetch func() (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.v, l.err = fetch()
		l.done = true
	}
	return l.v, l.err
}

type facts struct {
	c           *Client
	owner, repo string
	number      int

	pull    lazy[*pr.PullRequest]
	info    lazy[*pr.Repository]
	reviews lazy[[]pr.Review]
	commits lazy[[]pr.Commit]
	files   lazy[[]pr.File]
	fresh   lazy[[2]int] // commits and changed files, read when a list is at its cap

	mu       sync.Mutex
	fromPull *pr.Repository // the base repository of a fetched PR
}

var _ pr.Facts = (*facts)(nil)

func (f *facts) what() string { return fmt.Sprintf("%s/%s#%d", f.owner, f.repo, f.number) }

func (f *facts) PullRequest(ctx context.Context) (*pr.PullRequest, error) {
	p, err := f.pull.get(func() (*pr.PullRequest, error) {
		gp, _, err := f.c.gh.PullRequests.Get(ctx, f.owner, f.repo, f.number)
		if err != nil {
			return nil, wrap("get pull request "+f.what(), err)
		}
		p := PullRequestFrom(gp)
		if r := gp.GetBase().GetRepo(); r != nil && r.GetFullName() != "" {
			info := RepositoryFrom(r)
			f.mu.Lock()
			f.fromPull = &info
			f.mu.Unlock()
		}
		return &p, nil
	})
	if err != nil {
		return nil, err
	}
	cp := *p
	return &cp, nil
}

func (f *facts) Repository(ctx context.Context) (*pr.Repository, error) {
	r, err := f.info.get(func() (*pr.Repository, error) {
		f.mu.Lock()
		known := f.fromPull
		f.mu.Unlock()
		if known != nil {
			return known, nil
		}
		gr, _, err := f.c.gh.Repositories.Get(ctx, f.owner, f.repo)
		if err != nil {
			return nil, wrap("get repository "+f.owner+"/"+f.repo, err)
		}
		info := RepositoryFrom(gr)
		return &info, nil
	})
	if err != nil {
		return nil, err
	}
	cp := *r
	return &cp, nil
}

func (f *facts) Reviews(ctx context.Context) ([]pr.Review, error) {
	return cloned(f.reviews.get(func() ([]pr.Review, error) {
		var out []pr.Review
		opt := &github.ListOptions{PerPage: perPage}
		err := pages(opt, func() (int, *github.Response, error) {
			rs, resp, err := f.c.gh.PullRequests.ListReviews(ctx, f.owner, f.repo, f.number, opt)
			for _, r := range rs {
				out = append(out, reviewFrom(r))
			}
			return len(rs), resp, err
		})
		if err != nil {
			return nil, wrap("list reviews of "+f.what(), err)
		}
		return out, nil
	}))
}

// GitHub lists at most this many commits and files of a pull request.
const (
	MaxListedCommits = 250
	MaxListedFiles   = 3000
)

// ErrListCut is returned when GitHub's list of a pull request's commits or
// files stops at its cap before the pull request's count: the guard cannot
// see the rest.
var ErrListCut = errors.New("GitHub's list is cut short")

func (f *facts) Commits(ctx context.Context) ([]pr.Commit, error) {
	return cloned(f.commits.get(func() ([]pr.Commit, error) {
		return listCapped(ctx, f, "commits", MaxListedCommits, commitFrom, f.c.gh.PullRequests.ListCommits,
			"%s has %d commits and GitHub lists at most %d: the guard cannot see who made the others: %w")
	}))
}

func (f *facts) Files(ctx context.Context) ([]pr.File, error) {
	return cloned(f.files.get(func() ([]pr.File, error) {
		return listCapped(ctx, f, "files", MaxListedFiles, fileFrom, f.c.gh.PullRequests.ListFiles,
			"%s changes %d files and GitHub lists at most %d: the guard cannot check the others for skipped tests: %w")
	}))
}

// listCapped lists every page of a pull request's commits or files (what),
// of which GitHub lists at most limit: a list that long is checked against
// the PR's count, and refused with ErrListCut (cut, formatted with the PR,
// the count, limit and the error) when the count is higher.
func listCapped[G, T any](ctx context.Context, f *facts, what string, limit int, conv func(G) T,
	list func(context.Context, string, string, int, *github.ListOptions) ([]G, *github.Response, error), cut string) ([]T, error) {
	var out []T
	opt := &github.ListOptions{PerPage: perPage}
	err := pages(opt, func() (int, *github.Response, error) {
		items, resp, err := list(ctx, f.owner, f.repo, f.number, opt)
		for _, it := range items {
			out = append(out, conv(it))
		}
		return len(items), resp, err
	})
	if err != nil {
		return nil, wrap("list "+what+" of "+f.what(), err)
	}
	if len(out) < limit {
		return out, nil
	}
	commits, files, err := f.counts(ctx)
	if err != nil {
		return nil, err
	}
	n := commits
	if what == "files" {
		n = files
	}
	if n > len(out) {
		return nil, fmt.Errorf(cut, f.what(), n, limit, ErrListCut)
	}
	return out, nil
}

// counts reads the pull request's commit and changed-file counts from
// GitHub, once per Facts value: a list at its cap may be cut short. The
// PR the facts were given cannot tell: review payloads and lists of pull
// requests carry no counts, and a payload's are as of its event.
func (f *facts) counts(ctx context.Context) (commits, files int, err error) {
	c, err := f.fresh.get(func() ([2]int, error) {
		gp, _, err := f.c.gh.PullRequests.Get(ctx, f.owner, f.repo, f.number)
		if err != nil {
			return [2]int{}, wrap("get pull request "+f.what(), err)
		}
		return [2]int{gp.GetCommits(), gp.GetChangedFiles()}, nil
	})
	return c[0], c[1], err
}

// cloned returns a copy of the cached slice, so that callers may modify it.
func cloned[T any](v []T, err error) ([]T, error) { return slices.Clone(v), err }

// AccountFrom converts a go-github user (webhook payload or API answer).
func AccountFrom(u *github.User) pr.Account {
	if u == nil {
		return pr.Account{}
	}
	return pr.Account{Login: u.GetLogin(), Type: u.GetType()}
}

// RepositoryFrom converts a go-github repository.
func RepositoryFrom(r *github.Repository) pr.Repository {
	return pr.Repository{
		Owner: r.GetOwner().GetLogin(), Name: r.GetName(), FullName: r.GetFullName(),
		DefaultBranch: r.GetDefaultBranch(), Private: r.GetPrivate(),
	}
}

// PullRequestFrom converts a go-github pull request (webhook payload or API
// answer); Labels is never nil.
func PullRequestFrom(p *github.PullRequest) pr.PullRequest {
	out := pr.PullRequest{
		Number: p.GetNumber(), Title: p.GetTitle(), State: p.GetState(), Draft: p.GetDraft(),
		Merged: p.GetMerged() || p.MergedAt != nil, Author: AccountFrom(p.GetUser()),
		HeadSHA: p.GetHead().GetSHA(), HeadRef: p.GetHead().GetRef(), HeadRepo: p.GetHead().GetRepo().GetFullName(),
		BaseRef: p.GetBase().GetRef(), BaseSHA: p.GetBase().GetSHA(),
		CreatedAt: p.GetCreatedAt().Time, UpdatedAt: p.GetUpdatedAt().Time,
		Labels:      []string{},
		CommitCount: p.GetCommits(), ChangedFileCount: p.GetChangedFiles(),
	}
	for _, l := range p.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	if am := p.GetAutoMerge(); am != nil {
		out.AutoMerge = &pr.AutoMerge{EnabledBy: AccountFrom(am.GetEnabledBy()), MergeMethod: am.GetMergeMethod()}
	}
	return out
}

func reviewFrom(r *github.PullRequestReview) pr.Review {
	return pr.Review{
		ID: r.GetID(), User: AccountFrom(r.GetUser()), State: r.GetState(),
		CommitID: r.GetCommitID(), SubmittedAt: r.GetSubmittedAt().Time,
	}
}

func commitFrom(c *github.RepositoryCommit) pr.Commit {
	gc := c.GetCommit()
	parents := make([]string, 0, len(c.Parents))
	for _, p := range c.Parents {
		parents = append(parents, p.GetSHA())
	}
	return pr.Commit{
		Parents: parents,
		SHA:     c.GetSHA(), Message: gc.GetMessage(),
		Author: pr.Person{
			Name: gc.GetAuthor().GetName(), Email: gc.GetAuthor().GetEmail(),
			Date: gc.GetAuthor().GetDate().Time, Account: AccountFrom(c.GetAuthor()),
		},
		Committer: pr.Person{
			Name: gc.GetCommitter().GetName(), Email: gc.GetCommitter().GetEmail(),
			Date: gc.GetCommitter().GetDate().Time, Account: AccountFrom(c.GetCommitter()),
		},
	}
}

func fileFrom(f *github.CommitFile) pr.File {
	return pr.File{
		Filename: f.GetFilename(), Status: f.GetStatus(), Additions: f.GetAdditions(), Deletions: f.GetDeletions(),
		PreviousFilename: f.GetPreviousFilename(),
		Patch:            f.GetPatch(), AddedLines: pr.AddedLines(f.GetPatch()),
	}
}
