package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// selfCheckInputs is how many sample inputs Compile decides with both
// evaluators before it trusts the plan interpreter with a policy set.
const selfCheckInputs = 64

// selfCheck decides sample inputs with the plan interpreter (plan) and
// with topdown (top) and returns the first on which they differ: a decision,
// or whether there is one. Compile keeps topdown for a policy set on which
// they differ, so that the interpreter never decides where it might be
// wrong. The samples are the same for every policy set (a fixed seed).
func selfCheck(plan, top func(*pr.Input) (pr.Decision, error)) error {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range selfCheckInputs {
		in := randomInput(r)
		dp, errp := plan(in)
		dt, errt := top(in)
		if (errp == nil) != (errt == nil) || !reflect.DeepEqual(dp, dt) {
			return fmt.Errorf("on sample input %d the plan decides %+v (error %v) and topdown %+v (error %v)", i, dp, errp, dt, errt)
		}
	}
	return nil
}

// selfCheckEngine runs selfCheck on e's two evaluators.
func selfCheckEngine(ctx context.Context, e *Engine) error {
	return selfCheck(
		func(in *pr.Input) (pr.Decision, error) { return e.decidePlan(ctx, in) },
		func(in *pr.Input) (pr.Decision, error) { return e.decideTopdown(ctx, in) },
	)
}

const sampleHead = "1111111111111111111111111111111111111111"

// sampleBase is an agent PR at 14:00 on a Tuesday in New York.
func sampleBase() *pr.Input {
	at := time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC)
	agent := pr.Account{Login: "coder[bot]", Type: "Bot", Agent: true}
	return &pr.Input{
		Version:    pr.InputVersion,
		Event:      pr.Event{Name: "pull_request", Action: "synchronize", Sender: agent},
		Repository: pr.Repository{Owner: "acme", Name: "shop", FullName: "acme/shop", DefaultBranch: "main"},
		PullRequest: pr.PullRequest{
			Number: 7, State: "open", Author: agent, HeadSHA: sampleHead, BaseRef: "main",
			CreatedAt: at.Add(-time.Hour), UpdatedAt: at,
		},
		AgentPR:      true,
		AgentReasons: []string{"author @coder[bot] is an agent"},
		Commits: []pr.Commit{{SHA: sampleHead,
			Author:    pr.Person{Name: "coder", Account: agent, Date: at},
			Committer: pr.Person{Name: "GitHub", Account: pr.Account{Login: "web-flow", Type: "User"}, Date: at},
		}},
		Time: pr.Clock{
			Now: "2026-03-03T19:00:00Z", Local: "2026-03-03T14:00:00-05:00", Timezone: "America/New_York",
			Weekday: "tue", BusinessHours: true,
		},
	}
}

// randomInput is an annotated input drawn from r: agent and human PRs,
// reviews of every state by humans, bots, agents, the author and
// committers, on the head and on other commits, with equal, missing and
// ordered times; overrides that match and do not; freezes of every kind,
// with good, bad and no ends; markers and labels; zones that exist and one
// that does not. Every branch of the embedded policies is reachable.
func randomInput(r *rand.Rand) *pr.Input {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	logins := []string{"alice", "bob", "carol", "coder[bot]", "Alice", "dependabot[bot]", "ci-agent"}
	account := func() pr.Account {
		l := pick(logins...)
		t := "User"
		if strings.HasSuffix(l, "[bot]") || r.IntN(6) == 0 {
			t = "Bot"
		}
		return pr.Account{Login: l, Type: t, Agent: l == "coder[bot]" || l == "ci-agent" || r.IntN(8) == 0}
	}
	shas := []string{sampleHead, "0000000111111122222223333333444444455555", "abc", ""}
	in := sampleBase()
	in.AgentPR = r.IntN(4) != 0
	if !in.AgentPR {
		in.AgentReasons = nil
	} else if r.IntN(3) == 0 {
		in.AgentReasons = append(in.AgentReasons, "pushed by @ci-agent")
	}
	in.PullRequest.Author = account()
	in.PullRequest.HeadSHA = pick(sampleHead, sampleHead, "", "short")
	in.PullRequest.BaseRef = pick("main", "release/1.2", "")
	if r.IntN(3) == 0 {
		in.PullRequest.Labels = []string{pick("quarantine", "Quarantine", "bug", "QUARANTINE")}
	}
	if r.IntN(4) == 0 {
		in.PullRequest.AutoMerge = &pr.AutoMerge{EnabledBy: account(), MergeMethod: "squash"}
	}
	in.Commits = nil
	for range r.IntN(4) {
		in.Commits = append(in.Commits, pr.Commit{SHA: pick(shas...),
			Author:    pr.Person{Name: "x", Account: account()},
			Committer: pr.Person{Name: "y", Account: pr.Account{Login: pick("web-flow", "bob", "")}},
		})
	}
	at := time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC)
	for i := range r.IntN(6) {
		rv := pr.Review{ID: int64(r.IntN(4)), User: account(), State: pick("APPROVED", "APPROVED", "CHANGES_REQUESTED", "DISMISSED", "COMMENTED", "PENDING"),
			CommitID: pick(shas...), Approver: r.IntN(4) != 0}
		switch r.IntN(3) {
		case 0:
			rv.SubmittedAt = at.Add(time.Duration(i) * time.Minute)
		case 1:
			rv.SubmittedAt = at
		}
		in.Reviews = append(in.Reviews, rv)
	}
	for range r.IntN(4) {
		o := pr.Override{Kind: pick("approve", "override", "bogus"), Actor: pick(logins...), Reason: pick("ok", "", "hotfix %s"),
			HeadSHA: pick(sampleHead, sampleHead, "other"), BaseRef: pick("main", "release/1.2", ""), At: at}
		if r.IntN(2) == 0 {
			o.Rules = []string{pick("merge_freeze", "incident_freeze", "agent_self_merge")}
		}
		if r.IntN(2) == 0 {
			o.Freezes = []string{pick("friday-deploys", "INC-1", "")}
		}
		in.Overrides = append(in.Overrides, o)
	}
	in.Time.BusinessHours = r.IntN(2) == 0
	in.Time.Holiday = r.IntN(5) == 0
	in.Time.Timezone = pick("America/New_York", "Asia/Kolkata", "", "Mars/Base")
	in.Time.Weekday = pick("tue", "sat", "")
	for range r.IntN(3) {
		in.Time.Freezes = append(in.Time.Freezes, pr.Freeze{
			Name: pick("friday-deploys", "INC-1", "", `say "hi"`), Kind: pick("weekly", "window", "incident", "other"),
			AppliesTo: pick("agents", "everyone", ""), Until: pick("2026-03-09T08:00:00-04:00", "", "soon"),
			Reason: pick("", "db failover"), By: pick("", "schedule", "carol"),
		})
	}
	in.QuarantineFiles = []string{".github/quarantine.yml"}
	for i := range r.IntN(5) {
		f := pr.File{Filename: fmt.Sprintf("pkg/f%d_test.go", r.IntN(3)), Status: pick("added", "modified", "odd"), Additions: 3, Markers: []pr.Marker{}}
		for range r.IntN(3) {
			f.Markers = append(f.Markers, pr.Marker{Line: r.IntN(4), Text: strings.Repeat("t.Skip() ", r.IntN(40)), Kind: "go:t.Skip"})
		}
		if len(f.Markers) > 0 {
			in.MarkedFiles = append(in.MarkedFiles, i)
		}
		in.Files = append(in.Files, f)
	}
	return in
}
