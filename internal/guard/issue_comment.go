package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/command"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/webhook"
)

// onIssueComment runs /guard commands. Each comment id is used once (a
// redelivery under a new delivery id acts no more). A command counts only
// when the comment was created by its own author (sender == comment user)
// and not through a GitHub App (performed_via_github_app); otherwise it is
// refused with a reply saying why and audited, like any refusal.
func (g *Guard) onIssueComment(ctx context.Context, d webhook.Delivery, e *github.IssueCommentEvent) ([]audit.Record, error) {
	switch e.GetAction() {
	case "created":
	default:
		return nil, nil
	}
	c := e.GetComment()
	cmd, perr := command.Parse(c.GetBody())
	if errors.Is(perr, command.ErrNotCommand) {
		return nil, nil
	}
	repo := repository(e.GetRepo())
	if !g.o.Config().RepoIncluded(repo.FullName) {
		return nil, nil
	}
	// Each comment gives its command once; the delivery that claimed it
	// may be processed again after a failure and then finishes the work.
	mine, err := g.o.Store.ClaimComment(ctx, c.GetID(), d.ID)
	if err != nil {
		return nil, fmt.Errorf("mark comment used: %w", err)
	}
	if !mine {
		return nil, nil
	}
	client := g.o.GitHub.Installation(e.GetInstallation().GetID())
	number := e.GetIssue().GetNumber()
	reply := func(text string) error {
		// Marked with the comment's id: a command processed again (its
		// delivery retried after a failure) replies once.
		body := "@" + c.GetUser().GetLogin() + " " + text
		if _, err := client.EnsureComment(ctx, repo.Owner, repo.Name, number, fmt.Sprintf("reply-%d", c.GetID()), body); err != nil {
			return fmt.Errorf("reply to /guard command: %w", err)
		}
		return nil
	}
	q := request{
		delivery: d, installation: e.GetInstallation().GetID(), repo: repo, number: number,
		actor: account(c.GetUser()), cmd: cmd, at: c.GetCreatedAt().Time, source: "comment",
		commentID: c.GetID(),
	}
	if why := unauthentic(e, d.Payload); why != "" {
		q.actor = account(e.GetSender())
		verb := "command"
		if perr == nil {
			verb = string(cmd.Kind)
		}
		rec := g.overrideRecord(q, "refused", verb+" refused: "+why, []string{verb}, "")
		return []audit.Record{rec}, reply("Refused: " + why + ".")
	}
	if perr != nil {
		return nil, reply(perr.Error())
	}
	var recs []audit.Record
	var text string
	switch cmd.Kind {
	case command.Approve, command.Override:
		if !e.GetIssue().IsPullRequest() {
			return nil, reply("`/guard " + string(cmd.Kind) + "` works on pull requests only.")
		}
		recs, text, err = g.approveOrOverride(ctx, q, client)
	case command.Freeze, command.Unfreeze:
		recs, text, err = g.freezeCommand(ctx, q, client)
	case command.Status:
		text, err = g.status(ctx, q, e.GetIssue().IsPullRequest())
	}
	if err != nil {
		return nil, err
	}
	return recs, reply(text)
}

// unauthentic says why a comment cannot carry a command, or "" when it can:
// its sender must be its author, and it must not come through an app.
func unauthentic(e *github.IssueCommentEvent, payload []byte) string {
	user, sender := e.GetComment().GetUser().GetLogin(), e.GetSender().GetLogin()
	if !strings.EqualFold(user, sender) {
		return "the comment is by @" + user + " but was sent by @" + sender + "; only a comment's own author may give a command"
	}
	if viaApp(payload) {
		return "the comment was made through a GitHub App; only a human's own comment may give a command"
	}
	return ""
}

// viaApp reports whether the comment was made through a GitHub App
// (comment.performed_via_github_app), which go-github does not decode.
func viaApp(payload []byte) bool {
	var p struct {
		Comment struct {
			App json.RawMessage `json:"performed_via_github_app"`
		} `json:"comment"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return true
	}
	return len(p.Comment.App) > 0 && string(p.Comment.App) != "null"
}

// freezeCommand declares or ends the repository's incident freeze.
func (g *Guard) freezeCommand(ctx context.Context, q request, client *gh.Client) ([]audit.Record, string, error) {
	cfg := g.o.Config()
	if err := mayAct(ctx, cfg, client.Directory(), q.repo, q.actor); err != nil {
		var r refusal
		if !errors.As(err, &r) {
			return nil, "", err
		}
		// A refused command is an override record (SPEC §7: freeze records
		// only start or end freezes).
		rec := g.overrideRecord(q, "refused", string(q.cmd.Kind)+" refused: "+r.why, []string{string(q.cmd.Kind)}, "")
		return []audit.Record{rec}, "Refused: " + r.why + ".", nil
	}
	now := g.o.Now()
	if q.cmd.Kind == command.Unfreeze {
		// Only freezes declared before the comment: processed again later
		// (its delivery retried), it must not end one declared since.
		n, err := g.o.Store.EndFreezesFrom(ctx, "repo", q.repo.FullName, q.actor.Login, commandTime(q.at, now))
		if err != nil {
			return nil, "", fmt.Errorf("end freeze: %w", err)
		}
		if n == 0 {
			return nil, "There is no declared freeze on " + q.repo.FullName + ".", nil
		}
		g.FreezesChanged()
		return nil, "Freeze of " + q.repo.FullName + " ended.", nil
	}
	// One freeze per comment, also when its delivery is processed again,
	// from the comment's time: "2h" is two hours from when it was said.
	from := commandTime(q.at, now)
	f := audit.ManualFreeze{Scope: "repo", Target: q.repo.FullName, Reason: q.cmd.Reason, By: q.actor.Login, From: from,
		Source: fmt.Sprintf("comment:%d", q.commentID)}
	until := "until `/guard unfreeze`"
	if q.cmd.Duration > 0 {
		f.Until = from.Add(q.cmd.Duration)
		until = "until " + f.Until.In(cfg.Location).Format("Mon 2 Jan 15:04 MST")
	}
	f, err := g.o.Store.StartFreeze(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("start freeze: %w", err)
	}
	if !f.Until.IsZero() { // as declared the first time
		until = "until " + f.Until.In(cfg.Location).Format("Mon 2 Jan 15:04 MST")
		if !f.Until.After(now) {
			// The command waited (GitHub down) for longer than it asked.
			g.FreezesChanged()
			return nil, fmt.Sprintf("Incident freeze `%s` of %s was declared %s, which has passed by the time the guard could act on the comment: it blocks nothing now.", incidentName(f), q.repo.FullName, until), nil
		}
	}
	g.FreezesChanged()
	return nil, fmt.Sprintf("Incident freeze `%s` of %s declared %s: agent pull requests are blocked.", incidentName(f), q.repo.FullName, until), nil
}

// status replies with the active freezes and the PR's last decision.
func (g *Guard) status(ctx context.Context, q request, isPR bool) (string, error) {
	cfg := g.o.Config()
	now := g.o.Now()
	var b strings.Builder
	branch := q.repo.DefaultBranch
	if isPR {
		if last, ok, err := g.o.Store.LastDecision(ctx, q.repo.FullName, q.number); err != nil {
			return "", err
		} else if ok {
			fmt.Fprintf(&b, "Last decision for %s: **%s**", short(last.HeadSHA), last.Outcome)
			if len(last.Rules) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(last.Rules, ", "))
			}
			fmt.Fprintf(&b, " at %s.\n", last.Time.In(cfg.Location).Format("Mon 2 Jan 15:04 MST"))
			branch = last.BaseRef
		} else {
			b.WriteString("No decision recorded for this pull request yet.\n")
		}
	}
	c, err := clock(ctx, cfg, g.o.Store, q.repo, branch, now)
	if err != nil {
		return "", err
	}
	if len(c.Freezes) == 0 {
		fmt.Fprintf(&b, "No freeze is active on `%s`.", branch)
	} else {
		fmt.Fprintf(&b, "Active freezes on `%s`:\n", branch)
		for _, f := range c.Freezes {
			until := "until ended"
			if f.Until != "" {
				until = "until " + localTime(f.Until, c.Timezone)
			}
			fmt.Fprintf(&b, "- `%s` (%s, applies to %s) %s", f.Name, f.Kind, f.AppliesTo, until)
			if f.Reason != "" {
				fmt.Fprintf(&b, ": %s", f.Reason)
			}
			b.WriteString("\n")
		}
	}
	bh := "outside"
	if c.BusinessHours {
		bh = "inside"
	}
	fmt.Fprintf(&b, "\nNow is %s business hours (%s).", bh, now.In(cfg.Location).Format("Mon 15:04 MST"))
	return b.String(), nil
}

// commandTime is when a command was given: the comment's created_at, or now
// when that is unknown or ahead of now (clock skew).
func commandTime(at, now time.Time) time.Time {
	if at.IsZero() || at.After(now) {
		return now
	}
	return at
}
