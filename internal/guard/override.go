package guard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/command"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// request is a human's approve/override/freeze request, from a comment or
// a check-run button.
type request struct {
	delivery     webhook.Delivery
	installation int64
	repo         pr.Repository
	number       int // 0: not on a pull request
	actor        pr.Account
	cmd          command.Command
	at           time.Time // when the human asked (comment created_at)
	headSHA      string    // check-run button: the run's head SHA
	source       string    // "comment" or "check-run button"
	commentID    int64     // the comment's id, 0 for a button
}

// refusal is a request the guard said no to, with the reason.
type refusal struct{ why string }

func (r refusal) Error() string { return r.why }

// mayAct decides whether actor may approve, override or freeze in repo:
// never a bot or an agent; a configured approver (active team member or
// listed user); or, when no approvers are configured, a user with maintain
// or admin permission on the repository.
func mayAct(ctx context.Context, cfg *config.Config, dir pr.Directory, repo pr.Repository, actor pr.Account) error {
	if actor.Type == "Bot" || strings.HasSuffix(actor.Login, "[bot]") {
		return refusal{"@" + actor.Login + " is a bot; only a human may do this"}
	}
	cls := classifier{cfg: cfg, dir: dir, org: repo.Owner}
	agent, err := cls.agent(ctx, actor)
	if err != nil {
		return err
	}
	if agent {
		return refusal{"@" + actor.Login + " is an agent; only a human may do this"}
	}
	ap := cfg.Escalation.Approvers
	if len(ap.Users) > 0 || len(ap.Teams) > 0 {
		ok, err := cls.approver(ctx, repo, actor.Login)
		if err != nil {
			return err
		}
		if !ok {
			return refusal{"@" + actor.Login + " is not an approver (approvers: " + whoMay(cfg, repo) + ")"}
		}
		return nil
	}
	perm, err := dir.Permission(ctx, repo.Owner, repo.Name, actor.Login)
	if err != nil {
		return fmt.Errorf("permission of @%s: %w", actor.Login, err)
	}
	if perm != "admin" && perm != "maintain" {
		return refusal{"@" + actor.Login + " has " + perm + " permission; approving needs maintain or admin on " + repo.FullName}
	}
	return nil
}

// overrideRecord is the audit record of a granted or refused request.
func (g *Guard) overrideRecord(q request, outcome, reason string, rules []string, head string) audit.Record {
	return audit.Record{
		Time: g.o.Now(), Kind: "override", Repository: q.repo.FullName, PullRequest: q.number,
		HeadSHA: head, Actor: q.actor.Login, Outcome: outcome, Rules: rules, Reason: reason,
		DeliveryID: q.delivery.ID, Installation: q.installation,
	}
}

// approveOrOverride applies /guard approve or /guard override to the PR's
// current head, re-evaluates it and returns the records. A refusal is
// replied to and recorded.
func (g *Guard) approveOrOverride(ctx context.Context, q request, client *gh.Client) ([]audit.Record, string, error) {
	cfg := g.o.Config()
	facts := client.Facts(q.repo.Owner, q.repo.Name, q.number, nil)
	p, err := facts.PullRequest(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("read pull request: %w", err)
	}
	refuse := func(why string) ([]audit.Record, string, error) {
		reason := string(q.cmd.Kind) + " refused: " + why
		if q.source != "" && q.source != "comment" {
			reason = q.source + ": " + reason
		}
		rec := g.overrideRecord(q, "refused", reason, []string{string(q.cmd.Kind)}, p.HeadSHA)
		return []audit.Record{rec}, "Refused: " + why + ".", nil
	}
	if p.State != "open" {
		return refuse("the pull request is not open")
	}
	if err := mayAct(ctx, cfg, client.Directory(), q.repo, q.actor); err != nil {
		if r, ok := err.(refusal); ok {
			return refuse(r.why)
		}
		return nil, "", err
	}
	last, found, err := g.o.Store.LastDecision(ctx, q.repo.FullName, q.number)
	if err != nil {
		return nil, "", fmt.Errorf("read last decision: %w", err)
	}
	tracked, seen, err := g.o.Store.TrackedPR(ctx, q.repo.FullName, q.number)
	if err != nil {
		return nil, "", fmt.Errorf("read tracked PR: %w", err)
	}
	// An agent PR by its last decision or by the guard's record of it (an
	// agent's push counts until a human approves after it); a last decision
	// that is an error did not classify the PR, so it says nothing.
	agentPR := (found && last.Agent) || (seen && tracked.Agent)
	if strings.EqualFold(p.Author.Login, q.actor.Login) {
		switch {
		case agentPR:
			return refuse("@" + q.actor.Login + " is the author of this agent pull request")
		case !found || last.Outcome == string(pr.Error):
			return refuse("the guard has not classified this pull request yet (its last decision is an error), so its author cannot approve it; try again once its check run shows a decision")
		}
	}
	switch {
	case q.headSHA != "" && q.headSHA != p.HeadSHA:
		return refuse("the button was on " + short(q.headSHA) + ", but the head is now " + short(p.HeadSHA))
	case q.headSHA == "" && !q.at.IsZero():
		moved, err := headMovedSince(ctx, facts, p.HeadSHA, q.at)
		if err != nil {
			return nil, "", err
		}
		if !moved {
			// Commit dates are written by whoever pushed; the guard's own
			// records say when it first saw this head.
			seen, err := g.headSeenBy(ctx, q.repo.FullName, q.number, p.HeadSHA, q.at)
			if err != nil {
				return nil, "", err
			}
			moved = !seen
		}
		if moved {
			recs, text, _ := refuse("the head moved to " + short(p.HeadSHA) + " after the comment; look at the new commits and ask again")
			// Decide on the new head now, so that the check shows it and
			// the next request about it is not refused again.
			more, err := g.evaluate(ctx, target{
				delivery: q.delivery, installation: q.installation, repo: q.repo, number: q.number,
				event: pr.Event{Name: q.delivery.Event, Action: string(q.cmd.Kind), Sender: q.actor},
			})
			if err != nil {
				return nil, "", err
			}
			return append(recs, more...), text, nil
		}
	}
	o := pr.Override{
		Kind: string(q.cmd.Kind), Actor: q.actor.Login, Reason: q.cmd.Reason,
		HeadSHA: p.HeadSHA, BaseRef: p.BaseRef, Rules: []string{}, Freezes: []string{}, At: g.o.Now(),
	}
	if q.cmd.Kind == command.Override {
		// The block reasons active now, decided afresh: the last recorded
		// decision may lag behind a freeze that has just begun.
		ev := g.decide(ctx, cfg, client, target{
			delivery: q.delivery, installation: q.installation, repo: q.repo, number: q.number,
			event: pr.Event{Name: q.delivery.Event, Action: string(q.cmd.Kind), Sender: q.actor},
		})
		if ev.err != nil {
			return nil, "", fmt.Errorf("decide before override: %w", ev.err)
		}
		if ev.input.PullRequest.HeadSHA == p.HeadSHA {
			for _, r := range ev.decision.Reasons {
				if r.Outcome != pr.Block {
					continue
				}
				if !slices.Contains(o.Rules, r.Rule) {
					o.Rules = append(o.Rules, r.Rule)
				}
				if r.Freeze != "" && !slices.Contains(o.Freezes, r.Freeze) {
					o.Freezes = append(o.Freezes, r.Freeze)
				}
			}
		}
		if len(o.Rules) == 0 {
			return refuse("nothing blocks " + short(p.HeadSHA) + " now, so there is nothing to override")
		}
	}
	if err := g.o.Store.AddOverride(ctx, q.repo.FullName, q.number, o); err != nil {
		return nil, "", fmt.Errorf("record override: %w", err)
	}
	reason := q.cmd.Reason
	if q.source != "" && q.source != "comment" && reason != q.source {
		reason = q.source + ": " + reason
	}
	granted := g.overrideRecord(q, "granted", reason, append([]string{string(q.cmd.Kind)}, o.Rules...), p.HeadSHA)
	recs, err := g.evaluate(ctx, target{
		delivery: q.delivery, installation: q.installation, repo: q.repo, number: q.number,
		event: pr.Event{Name: q.delivery.Event, Action: string(q.cmd.Kind), Sender: q.actor},
	})
	if err != nil {
		return nil, "", err
	}
	what := "Approved"
	if q.cmd.Kind == command.Override {
		what = "Override of " + strings.Join(append(o.Rules, o.Freezes...), ", ") + " granted"
	}
	return append([]audit.Record{granted}, recs...), what + " for " + short(p.HeadSHA) + " by @" + q.actor.Login + ".", nil
}

// clockSkew is how far GitHub's timestamps (whole seconds) and the guard's
// clock may disagree when comparing a comment's created_at with the guard's
// records. It is also a window: a head the guard first decided on within it
// after the comment counts as seen, so an agent that pushed (with a
// backdated commit) right after a human's approval could have it bind to
// its new head. One second covers the truncation; a human reads the check
// run for longer than any NTP-kept clocks disagree.
const clockSkew = time.Second

// headSeenBy reports whether the guard had decided on head for the pull
// request by at (give or take clockSkew): a human's comment can only be
// about a head the guard had already shown them.
func (g *Guard) headSeenBy(ctx context.Context, repo string, number int, head string, at time.Time) (bool, error) {
	history, err := g.o.Store.PRHistory(ctx, repo, number, 0)
	if err != nil {
		return false, fmt.Errorf("read history: %w", err)
	}
	for _, r := range history {
		if r.Kind == audit.KindDecision && r.HeadSHA == head && !r.Time.After(at.Add(clockSkew)) {
			return true, nil
		}
	}
	return false, nil
}

// headMovedSince reports whether head was committed after at, which means
// the human asked about an older head.
func headMovedSince(ctx context.Context, facts pr.Facts, head string, at time.Time) (bool, error) {
	commits, err := facts.Commits(ctx)
	if err != nil {
		return false, fmt.Errorf("list commits: %w", err)
	}
	for _, c := range commits {
		if c.SHA == head {
			return c.Committer.Date.After(at), nil
		}
	}
	return false, nil
}
