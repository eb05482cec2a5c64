package guard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/pr"
)

// conclusion maps an outcome to a check-run conclusion. neutral is never
// used: GitHub counts it as passing.
func conclusion(o pr.Outcome) string {
	switch o {
	case pr.Allow:
		return "success"
	case pr.Escalate:
		return "action_required"
	default:
		return "failure"
	}
}

// checkRun renders the merge-guard check run of an evaluation.
func (g *Guard) checkRun(cfg *config.Config, repo pr.Repository, in *pr.Input, ev evaluation) gh.CheckRun {
	d := ev.decision
	run := gh.CheckRun{
		Name:       cfg.CheckName,
		HeadSHA:    in.PullRequest.HeadSHA,
		ExternalID: ev.id,
		Status:     "completed",
		Conclusion: conclusion(d.Outcome),
		Title:      title(in, d),
		Summary:    summary(cfg, repo, in, d),
		Text:       details(in, d, ev),
		DetailsURL: DecisionLink(g.o.PublicURL, g.o.LinkSecret, ev.id, repo.FullName, g.o.Now()),
	}
	switch d.Outcome {
	case pr.Escalate:
		run.Actions = []gh.Action{{Label: "Approve", Description: "Approve this head (approvers only)", Identifier: "approve"}}
	case pr.Block:
		run.Actions = []gh.Action{{Label: "Override", Description: "Override the blocks on this head", Identifier: "override"}}
	}
	if cfg.Mode == "advisory" && d.Outcome != pr.Allow {
		run.Conclusion = "success"
		run.Title = "Advisory: enforce mode would " + verb(d.Outcome) + ": " + run.Title
		run.Actions = nil
	}
	return run
}

func verb(o pr.Outcome) string {
	switch o {
	case pr.Escalate:
		return "hold this for a human"
	case pr.Block:
		return "block this"
	default:
		return "fail this (the guard could not decide)"
	}
}

// title is the one line a tired human reads first (GitHub caps it at 255).
func title(in *pr.Input, d pr.Decision) string {
	var t string
	switch d.Outcome {
	case pr.Allow:
		switch {
		case !in.AgentPR:
			t = "Not agent-authored"
		default:
			t = firstMessage(d, pr.Allow)
			if t == string(pr.Allow) {
				t = "Agent PR: every rule passes"
			}
		}
	case pr.Escalate:
		t = "Held for a human: " + firstMessage(d, pr.Escalate)
	case pr.Block:
		t = "Blocked: " + blockTitle(in, d)
	default:
		t = "Merge Guard could not decide (failing closed)"
	}
	if len(t) > 255 {
		t = t[:252] + "..."
	}
	return t
}

// blockTitle names the freezes that block and when the last of them ends
// (a policy's message names one freeze and its own end, which is not when
// the pull request can merge when freezes overlap), and the first block
// reason bound to no freeze; without freezes, the first block reason.
func blockTitle(in *pr.Input, d pr.Decision) string {
	var names []string
	var other string
	byHand := false
	var last time.Time
	lastText := ""
	for _, r := range d.Reasons {
		if r.Outcome != pr.Block {
			continue
		}
		if r.Freeze == "" {
			if other == "" {
				other = r.Message
			}
			continue
		}
		if q := strconv.Quote(r.Freeze); !slices.Contains(names, q) {
			names = append(names, q)
		}
		if r.Until == "" {
			byHand = true
			continue
		}
		if t, err := time.Parse(time.RFC3339, r.Until); err == nil && t.After(last) {
			last, lastText = t, r.Until
		} else if err != nil && lastText == "" {
			lastText = r.Until
		}
	}
	if len(names) == 0 {
		return firstMessage(d, pr.Block)
	}
	var b strings.Builder
	if len(names) == 1 {
		b.WriteString("freeze " + names[0])
	} else {
		b.WriteString("freezes " + strings.Join(names, ", "))
	}
	switch {
	case byHand:
		b.WriteString(" until ended by hand")
	case lastText != "":
		b.WriteString(" until " + localTime(lastText, in.Time.Timezone))
		if len(names) > 1 {
			b.WriteString(" (the last to end)")
		}
	}
	if other != "" {
		b.WriteString("; " + other)
	}
	return b.String()
}

func firstMessage(d pr.Decision, o pr.Outcome) string {
	for _, r := range d.Reasons {
		if r.Outcome == o {
			return r.Message
		}
	}
	return string(o)
}

// whoMay says who may approve or override.
func whoMay(cfg *config.Config, repo pr.Repository) string {
	var who []string
	for _, t := range cfg.Escalation.Approvers.Teams {
		org, slug := config.SplitTeam(t, repo.Owner)
		who = append(who, "@"+org+"/"+slug)
	}
	for _, u := range cfg.Escalation.Approvers.Users {
		who = append(who, "@"+u)
	}
	if len(who) == 0 {
		return "a human with maintain or admin permission on " + repo.FullName
	}
	return strings.Join(who, ", ")
}

// summary says what happened and what a human must do.
func summary(cfg *config.Config, repo pr.Repository, in *pr.Input, d pr.Decision) string {
	var b strings.Builder
	switch d.Outcome {
	case pr.Allow:
		if !in.AgentPR {
			fmt.Fprintf(&b, "@%s is not an agent and no agent pushed to this pull request.\n", in.PullRequest.Author.Login)
		} else {
			fmt.Fprintf(&b, "Agent pull request (%s); every rule passes.\n", strings.Join(in.AgentReasons, "; "))
		}
	case pr.Escalate:
		fmt.Fprintf(&b, "**A human must look at this.** %s\n\n", strings.Join(in.AgentReasons, "; "))
		fmt.Fprintf(&b, "**What is needed:** an approving review on %s from a human who did not write or commit to it, "+
			"or the comment `/guard approve <reason>`.\n\n**Who may:** %s.\n", short(in.PullRequest.HeadSHA), whoMay(cfg, repo))
	case pr.Block:
		b.WriteString("**Merging is blocked.**\n\n")
		for _, r := range d.Reasons {
			if r.Outcome != pr.Block {
				continue
			}
			fmt.Fprintf(&b, "- %s", r.Message)
			if r.Until != "" {
				fmt.Fprintf(&b, " (until %s)", localTime(r.Until, in.Time.Timezone))
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\n**To override:** comment `/guard override <reason>` (%s).\n", whoMay(cfg, repo))
	default:
		fmt.Fprintf(&b, "The guard could not reach a decision, so it fails closed. %s\n\n"+
			"It retries on the next event or within 10 minutes; re-run the check to retry now.\n", firstMessage(d, pr.Error))
	}
	s := b.String()
	if len(s) > 65000 {
		s = s[:65000]
	}
	return s
}

// details lists every reason.
func details(in *pr.Input, d pr.Decision, ev evaluation) string {
	var b strings.Builder
	b.WriteString("| rule | outcome | message |\n|---|---|---|\n")
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Rule, r.Outcome, strings.ReplaceAll(r.Message, "|", "\\|"))
	}
	if len(d.Reasons) == 0 {
		b.WriteString("| – | allow | no rule applies |\n")
	}
	fmt.Fprintf(&b, "\nDecision `%s`, policy revision `%s`, evaluated at %s.\n", ev.id, ev.revision, in.Time.Now)
	s := b.String()
	if len(s) > 65000 {
		s = s[:65000]
	}
	return s
}

// localTime renders an RFC 3339 instant in zone, for humans.
func localTime(rfc3339, zone string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	if loc, err := time.LoadLocation(zone); err == nil {
		t = t.In(loc)
	}
	return t.Format("Mon 2 Jan 15:04 MST")
}

// summaryLine is the audit record's reason: the first reason's message.
func summaryLine(cfg *config.Config, in *pr.Input, ev evaluation) string {
	if ev.err != nil {
		return ev.err.Error()
	}
	if len(ev.decision.Reasons) > 0 {
		return ev.decision.Reasons[0].Message
	}
	return title(in, ev.decision)
}
