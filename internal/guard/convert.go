package guard

import (
	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/pr"
)

// account converts a go-github user.
func account(u *github.User) pr.Account {
	if u == nil {
		return pr.Account{}
	}
	return pr.Account{Login: u.GetLogin(), Type: u.GetType()}
}

// pullRequest converts a pull request as carried by a webhook payload.
func pullRequest(p *github.PullRequest) *pr.PullRequest {
	if p == nil {
		return nil
	}
	out := &pr.PullRequest{
		Number:    p.GetNumber(),
		Title:     p.GetTitle(),
		State:     p.GetState(),
		Draft:     p.GetDraft(),
		Merged:    p.GetMerged(),
		Author:    account(p.GetUser()),
		HeadSHA:   p.GetHead().GetSHA(),
		HeadRef:   p.GetHead().GetRef(),
		HeadRepo:  p.GetHead().GetRepo().GetFullName(),
		BaseRef:   p.GetBase().GetRef(),
		BaseSHA:   p.GetBase().GetSHA(),
		CreatedAt: p.GetCreatedAt().Time,
		UpdatedAt: p.GetUpdatedAt().Time,
		Labels:    []string{},
	}
	for _, l := range p.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	if am := p.GetAutoMerge(); am != nil {
		out.AutoMerge = &pr.AutoMerge{EnabledBy: account(am.EnabledBy), MergeMethod: am.GetMergeMethod()}
	}
	return out
}

// repository converts a webhook repository.
func repository(r *github.Repository) pr.Repository {
	return pr.Repository{
		Owner:         r.GetOwner().GetLogin(),
		Name:          r.GetName(),
		FullName:      r.GetFullName(),
		DefaultBranch: r.GetDefaultBranch(),
		Private:       r.GetPrivate(),
	}
}
