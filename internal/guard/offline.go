package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// OfflineFacts are what `guard eval --facts FILE` supplies in place of the
// GitHub API and the guard's database. Every field is optional.
type OfflineFacts struct {
	// PullRequest replaces the payload's pull request (needed for events
	// whose payload carries none, such as issue_comment).
	PullRequest *pr.PullRequest `json:"pull_request"`
	Reviews     []pr.Review     `json:"reviews"`
	Commits     []pr.Commit     `json:"commits"`
	Files       []OfflineFile   `json:"files"`
	Overrides   []pr.Override   `json:"overrides"`
	// Teams maps "org/team" to its active members.
	Teams map[string][]string `json:"teams"`
	// Permissions maps a login to its permission on the repository.
	Permissions map[string]string `json:"permissions"`
	// Freezes are declared (incident) freezes.
	Freezes []OfflineFreeze `json:"freezes"`
	// AgentPushed says an agent pushed to the PR earlier (a synchronize by
	// an agent that the guard saw).
	AgentPushed bool `json:"agent_pushed"`
}

// OfflineFile is a changed file with its unified diff.
type OfflineFile struct {
	Filename  string `json:"filename"`
	Status    string `json:"status"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Patch     string `json:"patch"`
	// PreviousFilename is the path of a renamed file before the rename.
	PreviousFilename string `json:"previous_filename"`
}

// OfflineFreeze is a declared freeze.
type OfflineFreeze struct {
	ID     int64     `json:"id"`
	Scope  string    `json:"scope"` // repo (default) or org
	Target string    `json:"target"`
	Branch string    `json:"branch"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
}

// ParseOfflineFacts decodes a facts file, refusing unknown fields.
func ParseOfflineFacts(data []byte) (OfflineFacts, error) {
	var f OfflineFacts
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("facts: %w", err)
	}
	return f, nil
}

// Offline evaluates a webhook payload with static facts and no GitHub
// access: the decision `serve` would reach for the same facts at now.
func Offline(ctx context.Context, cfg *config.Config, eng *policy.Engine, event string, payload []byte, facts OfflineFacts, now time.Time) (*pr.Input, pr.Decision, error) {
	ev, err := github.ParseWebHook(event, payload)
	if err != nil {
		return nil, pr.Decision{}, fmt.Errorf("parse %s payload: %w", event, err)
	}
	t, ok := targetOf(webhook.Delivery{Event: event}, ev)
	if !ok {
		return nil, pr.Decision{}, fmt.Errorf("a %s event does not name a pull request eval can decide offline (merge groups and check runs are mapped to their PRs through GitHub and the guard's records): pass the pull_request, pull_request_review or issue_comment payload of the PR", event)
	}
	if facts.PullRequest != nil {
		t.known = facts.PullRequest
	}
	if t.known == nil {
		return nil, pr.Decision{}, fmt.Errorf("the %s payload carries no pull request: supply \"pull_request\" in --facts", event)
	}
	t.push = pushOf(t, now)
	st := &offline{f: facts, pr: t.known, now: now}
	in, err := buildInput(ctx, cfg, st, st, st, t, now)
	if err != nil {
		return in, pr.Decision{}, err
	}
	d, err := eng.Decide(ctx, in)
	return in, d, err
}

// targetOf returns the pull request an event is about.
func targetOf(d webhook.Delivery, ev any) (target, bool) {
	switch e := ev.(type) {
	case *github.PullRequestEvent:
		return target{
			delivery: d, installation: e.GetInstallation().GetID(), repo: repository(e.GetRepo()),
			number: e.GetNumber(), known: pullRequest(e.GetPullRequest()),
			event: pr.Event{Name: "pull_request", Action: e.GetAction(), Sender: account(e.GetSender())},
		}, true
	case *github.PullRequestReviewEvent:
		return target{
			delivery: d, installation: e.GetInstallation().GetID(), repo: repository(e.GetRepo()),
			number: e.GetPullRequest().GetNumber(), known: pullRequest(e.GetPullRequest()),
			event: pr.Event{Name: "pull_request_review", Action: e.GetAction(), Sender: account(e.GetSender())},
		}, true
	case *github.IssueCommentEvent:
		if !e.GetIssue().IsPullRequest() {
			return target{}, false
		}
		return target{
			delivery: d, installation: e.GetInstallation().GetID(), repo: repository(e.GetRepo()),
			number: e.GetIssue().GetNumber(),
			event:  pr.Event{Name: "issue_comment", Action: e.GetAction(), Sender: account(e.GetSender())},
		}, true
	}
	return target{}, false
}

// offline serves OfflineFacts as facts, directory and state.
type offline struct {
	f   OfflineFacts
	now time.Time // of the evaluation
	pr  *pr.PullRequest
}

func (o *offline) PullRequest(ctx context.Context) (*pr.PullRequest, error) { return o.pr, nil }
func (o *offline) Repository(ctx context.Context) (*pr.Repository, error) {
	return &pr.Repository{}, nil
}
func (o *offline) Reviews(ctx context.Context) ([]pr.Review, error) { return o.f.Reviews, nil }
func (o *offline) Commits(ctx context.Context) ([]pr.Commit, error) { return o.f.Commits, nil }
func (o *offline) Files(ctx context.Context) ([]pr.File, error) {
	out := make([]pr.File, 0, len(o.f.Files))
	for _, f := range o.f.Files {
		out = append(out, pr.File{Filename: f.Filename, Status: f.Status, Additions: f.Additions,
			Deletions: f.Deletions, Patch: f.Patch, AddedLines: pr.AddedLines(f.Patch), PreviousFilename: f.PreviousFilename})
	}
	return out, nil
}
func (o *offline) IsTeamMember(ctx context.Context, org, team, login string) (bool, error) {
	for _, m := range o.f.Teams[org+"/"+team] {
		if strings.EqualFold(m, login) {
			return true, nil
		}
	}
	return false, nil
}
func (o *offline) Permission(ctx context.Context, owner, repo, login string) (string, error) {
	if p, ok := o.f.Permissions[login]; ok {
		return p, nil
	}
	return "none", nil
}
func (o *offline) TrackedPR(ctx context.Context, repo string, number int) (audit.TrackedPR, bool, error) {
	// agent_pushed: an agent pushed after every review the facts list
	// (its head unknown).
	var at time.Time
	if o.f.AgentPushed {
		at = o.now
	}
	return audit.TrackedPR{Repo: repo, Number: number, Agent: o.f.AgentPushed, AgentPushedAt: at}, o.f.AgentPushed, nil
}
func (o *offline) FailedPushes(ctx context.Context, key string, except int64) (int, time.Time, error) {
	return 0, time.Time{}, nil
}
func (o *offline) Overrides(ctx context.Context, repo string, number int) ([]pr.Override, error) {
	return o.f.Overrides, nil
}
func (o *offline) ActiveFreezes(ctx context.Context, at time.Time) ([]audit.ManualFreeze, error) {
	var out []audit.ManualFreeze
	for _, f := range o.f.Freezes {
		if (!f.From.IsZero() && at.Before(f.From)) || (!f.Until.IsZero() && !at.Before(f.Until)) {
			continue
		}
		scope := f.Scope
		if scope == "" {
			scope = "repo"
		}
		out = append(out, audit.ManualFreeze{ID: f.ID, Scope: scope, Target: f.Target, Branch: f.Branch,
			Reason: f.Reason, By: f.By, From: f.From, Until: f.Until})
	}
	return out, nil
}
