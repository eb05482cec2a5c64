package guard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/calendar"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/quarantine"
	"github.com/mergeguard/guard/internal/webhook"
)

// target is one pull request to evaluate and why.
type target struct {
	delivery     webhook.Delivery
	installation int64
	repo         pr.Repository
	number       int
	known        *pr.PullRequest // from the payload; nil: fetch it
	event        pr.Event
	fresh        bool // publish a new check run (check_run rerequested)
	// at is the time of the calendar the PR is judged by (business hours,
	// configured freezes): for a merge group, when the PR was queued; zero:
	// now. Declared (incident) freezes are those active now, whatever at.
	at time.Time
	// record: evaluate appends the record itself, with the tracked PR in
	// one transaction (Store.AppendTracked). For evaluations no inbox
	// delivery stands for (schedule, reconcile): a crash after publishing
	// must not leave the PR tracked as decided without a record, since
	// nothing would evaluate it again. Deliveries append theirs when they
	// complete; a crash before that redoes them.
	record bool

	// push is the head and time of this event's push (a synchronize, from
	// its payload); whether an agent made it is told by its sender.
	push *pushSeen

	// The guard's record of the PR, read once per evaluation.
	tracked     audit.TrackedPR
	seen        bool // tracked exists
	trackedRead bool // tracked and seen are set
}

// evaluation is what one evaluation found.
type evaluation struct {
	id       string
	input    *pr.Input
	decision pr.Decision
	err      error // gathering or policy failure: the decision is error
	took     time.Duration
	revision string
	// The event's sender is an agent (senderAgent), if that could be told
	// (senderKnown).
	senderAgent, senderKnown bool
}

// evaluate decides t's pull request, publishes the check run and returns the
// decision record. It returns an error only when nothing could be published.
func (g *Guard) evaluate(ctx context.Context, t target) ([]audit.Record, error) {
	cfg := g.o.Config()
	if !cfg.RepoIncluded(t.repo.FullName) {
		return nil, nil
	}
	defer g.locks.lock(t.repo.FullName + "#" + strconv.Itoa(t.number))()
	if t.push == nil {
		// Read before a fresh read of the PR may replace the payload's.
		t.push = pushOf(t, g.o.Now())
	}
	return g.evaluateLocked(ctx, cfg, t)
}

// Reasons of a PR held because who pushed is not known yet.
const (
	whyUnknownHead = "was pushed by someone the guard has not learned (its synchronize is not processed)"
	whyFailedPush  = "a push whose delivery failed is not processed yet"
)

// onlyUnknownPushers reports whether reasons are all of a push whose
// pusher is not known yet.
func onlyUnknownPushers(reasons []string) bool {
	for _, r := range reasons {
		if !strings.HasSuffix(r, whyUnknownHead) && !strings.HasPrefix(r, whyFailedPush) {
			return false
		}
	}
	return len(reasons) > 0
}

// headUnknown reports whether head, the PR's, was pushed by someone the
// guard has not learned: the PR is tracked with another known head, and
// t is not head's own synchronize.
func headUnknown(t target, seen bool, tracked audit.TrackedPR, head string) bool {
	return seen && tracked.KnownHead != "" && head != tracked.KnownHead && (t.push == nil || t.push.head != head)
}

// knownHead is the head whose pusher the evaluation of t learned: the head
// a synchronize pushed, the head of an opened PR (its author's), the head
// of a PR seen for the first time, or a head of unknown pusher that one of
// approvals (humanApprovals) approved after it was pushed (it is a human's
// PR again, SPEC §1); "" for none.
func knownHead(t target, seen bool, tracked audit.TrackedPR, in *pr.Input, approvals []pr.Review, decided bool) string {
	head := in.PullRequest.HeadSHA
	switch {
	case t.push != nil:
		return t.push.head
	case t.event.Action == "opened" && t.known != nil:
		return t.known.HeadSHA
	case !seen:
		return head
	case decided && headUnknown(t, seen, tracked, head):
		for _, a := range approvals {
			if a.CommitID == head && a.SubmittedAt.After(tracked.UpdatedAt) {
				return head
			}
		}
	}
	return ""
}

// pushOf returns the push t's event is (a synchronize): when, by the
// payload's updated_at (else now), and the head it pushed; nil for others.
func pushOf(t target, now time.Time) *pushSeen {
	if t.event.Action != "synchronize" || t.known == nil {
		return nil
	}
	at := t.known.UpdatedAt
	if at.IsZero() {
		at = now
	}
	return &pushSeen{at: at, head: t.known.HeadSHA}
}

// evaluateLocked is evaluate with the PR's lock held.
func (g *Guard) evaluateLocked(ctx context.Context, cfg *config.Config, t target) ([]audit.Record, error) {
	tracked, seen, err := g.o.Store.TrackedPR(ctx, t.repo.FullName, t.number)
	if err != nil {
		return nil, fmt.Errorf("read tracked PR: %w", err)
	}
	t.tracked, t.seen, t.trackedRead = tracked, seen, true
	if t.known != nil && seen && !t.known.UpdatedAt.IsZero() {
		switch {
		case t.known.HeadSHA == tracked.HeadSHA && tracked.UpdatedAt.After(t.known.UpdatedAt):
			// The payload shows the PR as it was before a state already
			// evaluated (a late or redelivered event on the same head:
			// base, labels or auto-merge may have changed since): read it
			// afresh rather than publish a decision on old facts over a
			// newer one.
			t.known = nil
		case t.known.HeadSHA != tracked.HeadSHA && t.known.UpdatedAt.Equal(tracked.UpdatedAt):
			// Another head in the same second (updated_at has no finer
			// grain; bots push that fast): which is newer only GitHub can
			// tell. Older (an earlier updated_at) is recorded, not
			// published, below.
			t.known = nil
		}
	}

	client := g.o.GitHub.Installation(t.installation)
	ev := g.decide(ctx, cfg, client, t)
	in := ev.input
	p := &in.PullRequest
	if p.HeadSHA == "" {
		return nil, fmt.Errorf("evaluate %s#%d: head SHA unknown: %w", t.repo.FullName, t.number, ev.err)
	}
	// An agent's push, or one whose sender could not be told (fail closed).
	var push pushSeen
	if t.push != nil && (!ev.senderKnown || ev.senderAgent) {
		push = *t.push
	}
	if p.State == "closed" {
		// A late push still counts if the PR is reopened; a human's is
		// learned.
		switch {
		case !push.at.IsZero():
			if err := g.o.Store.NoteAgentPush(ctx, t.repo.FullName, t.number, push.at, push.head); err != nil {
				return nil, err
			}
		case t.push != nil && t.push.head == p.HeadSHA:
			if err := g.o.Store.NoteKnownHead(ctx, t.repo.FullName, t.number, t.push.head); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	stale := seen && tracked.HeadSHA != p.HeadSHA && !p.UpdatedAt.IsZero() && tracked.UpdatedAt.After(p.UpdatedAt)

	rec := g.record(cfg, t, ev)
	if stale {
		rec.Reason = "not published: " + p.HeadSHA + " is no longer the head of the pull request; " + rec.Reason
		if t.record {
			if _, err := g.o.Store.Append(ctx, rec); err != nil {
				return nil, err
			}
		}
		if push.at.IsZero() {
			return []audit.Record{rec}, nil
		}
		// The push still happened, and the head published since may
		// include it: note it and decide the PR's head afresh (also when
		// processed again: a first pass may have noted it and failed to
		// publish).
		if err := g.o.Store.NoteAgentPush(ctx, t.repo.FullName, t.number, push.at, push.head); err != nil {
			return nil, err
		}
		now := t
		now.known, now.push, now.trackedRead = nil, nil, false
		more, err := g.evaluateLocked(ctx, cfg, now)
		if err != nil {
			return nil, err
		}
		return append([]audit.Record{rec}, more...), nil
	}

	run := g.checkRun(cfg, t.repo, in, ev)
	if seen && tracked.HeadSHA == p.HeadSHA && !t.fresh {
		run.ID = tracked.CheckRunID
	}
	id, err := client.PublishCheck(ctx, t.repo.Owner, t.repo.Name, run, t.fresh)
	if err != nil {
		return nil, fmt.Errorf("publish check run: %w", err)
	}
	rec.CheckRunID = id
	log := webhook.Logger(ctx, g.o.Logger).With("repo", t.repo.FullName, "pr", t.number, "sha", p.HeadSHA)
	log.Info("decided", "outcome", ev.decision.Outcome, "rules", ev.decision.Rules(), "agent_pr", in.AgentPR,
		"decision", ev.id, "check_run", id)
	// A PR held only because who pushed is not known yet (its synchronize
	// late or failed) is held quietly: no reviewers are asked, no comment
	// posted, for what is most often a human's push about to be learned.
	if ev.decision.Outcome == pr.Escalate && cfg.Mode != "advisory" && !onlyUnknownPushers(in.AgentReasons) {
		if err := g.escalate(ctx, cfg, client, t.repo, in, run.DetailsURL); err != nil {
			// The check run already holds the PR; a reviewer request GitHub
			// refuses must not stop the decision from being recorded.
			log.Warn("escalation incomplete", "err", err)
		}
	}
	if !seen || tracked.HeadSHA != p.HeadSHA || tracked.CheckRunID != id {
		if err := g.o.Store.SaveCheckRun(ctx, t.repo.FullName, p.HeadSHA, id, []int{t.number}); err != nil {
			return nil, fmt.Errorf("save check run: %w", err)
		}
	}
	approvals := humanApprovals(in)
	if seen && !tracked.AgentPushedAt.IsZero() && ev.err == nil {
		if h := reanchor(in, approvals, pushSeen{at: tracked.AgentPushedAt, head: tracked.AgentPushedHead}); h != "" {
			if err := g.o.Store.ReanchorAgentPush(ctx, t.repo.FullName, t.number, tracked.AgentPushedAt, h); err != nil {
				return nil, err
			}
		}
	}
	updated := p.UpdatedAt
	if seen && tracked.UpdatedAt.After(updated) {
		updated = tracked.UpdatedAt
	}
	track := audit.TrackedPR{
		Repo: t.repo.FullName, Number: t.number, Installation: t.installation,
		HeadSHA: p.HeadSHA, BaseRef: p.BaseRef, Author: p.Author.Login,
		// A decision that failed may not have classified the PR: the
		// earlier classification stands then.
		Agent: in.AgentPR || (ev.err != nil && seen && tracked.Agent), Open: true, Outcome: string(ev.decision.Outcome),
		TimeDependent: in.AgentPR || freezesEveryone(cfg), CheckRunID: id, UpdatedAt: updated,
		AgentPushedAt: push.at, AgentPushedHead: push.head, KnownHead: knownHead(t, seen, tracked, in, approvals, ev.err == nil),
	}
	if t.record {
		if _, err := g.o.Store.AppendTracked(ctx, track, rec); err != nil {
			return nil, err
		}
		return []audit.Record{rec}, nil
	}
	if err := g.o.Store.TrackPR(ctx, track); err != nil {
		return nil, fmt.Errorf("track pull request: %w", err)
	}
	return []audit.Record{rec}, nil
}

// freezesEveryone reports whether a configured freeze holds human PRs too,
// so that their checks change with time as well.
func freezesEveryone(cfg *config.Config) bool {
	for _, f := range cfg.Freezes {
		if f.AppliesTo == calendar.AppliesToEveryone {
			return true
		}
	}
	return false
}

// decide gathers the facts and asks the policies. Failures become an error
// decision (fail closed); the input holds whatever was gathered.
func (g *Guard) decide(ctx context.Context, cfg *config.Config, client *gh.Client, t target) evaluation {
	ev := evaluation{id: newID()}
	eng := g.o.Policies()
	ev.revision = revision(eng.Revision(), cfg.Digest)
	now := g.o.Now()
	facts := client.Facts(t.repo.Owner, t.repo.Name, t.number, t.known)
	// Whether the sender is an agent decides whether a push counts as an
	// agent's even when the rest cannot be decided (team lookups cached).
	cls := classifier{cfg: cfg, dir: client.Directory(), org: t.repo.Owner}
	if a, err := cls.agent(ctx, t.event.Sender); err == nil {
		ev.senderAgent, ev.senderKnown = a, true
	}
	in, err := buildInput(ctx, cfg, client.Directory(), facts, g.o.Store, t, now)
	ev.input = in
	if err == nil {
		start := time.Now()
		ev.decision, err = eng.Decide(ctx, in)
		ev.took = time.Since(start)
	}
	if err != nil {
		ev.err = err
		ev.decision = pr.Decision{Outcome: pr.Error, Reasons: []pr.Reason{{
			Rule: "guard_error", Outcome: pr.Error,
			Message: "Merge Guard could not decide: " + err.Error(),
		}}}
	}
	return ev
}

// State is what the input needs of the guard's own records.
type State interface {
	TrackedPR(ctx context.Context, repo string, number int) (audit.TrackedPR, bool, error)
	Overrides(ctx context.Context, repo string, number int) ([]pr.Override, error)
	ActiveFreezes(ctx context.Context, at time.Time) ([]audit.ManualFreeze, error)
	FailedPushes(ctx context.Context, key string, except int64) (int, time.Time, error)
}

var _ State = (*audit.Store)(nil)

// buildInput builds the policy input document from the facts.
func buildInput(ctx context.Context, cfg *config.Config, dir pr.Directory, facts pr.Facts, state State, t target, now time.Time) (*pr.Input, error) {
	in := &pr.Input{
		Version:         pr.InputVersion,
		Event:           t.event,
		Repository:      t.repo,
		Commits:         []pr.Commit{},
		Reviews:         []pr.Review{},
		Files:           []pr.File{},
		Overrides:       []pr.Override{},
		AgentReasons:    []string{},
		QuarantineFiles: cfg.QuarantineFiles,
	}
	if t.known != nil {
		in.PullRequest = *t.known
	}
	p, err := facts.PullRequest(ctx)
	if err != nil {
		return in, fmt.Errorf("read pull request: %w", err)
	}
	in.PullRequest = *p
	org := t.repo.Owner
	cls := classifier{cfg: cfg, dir: dir, org: org}

	if in.PullRequest.Author.Agent, err = cls.agent(ctx, p.Author); err != nil {
		return in, err
	}
	if in.PullRequest.Author.Agent {
		in.AgentReasons = append(in.AgentReasons, "author @"+p.Author.Login+" is an agent")
	}
	if in.Event.Sender.Agent, err = cls.agent(ctx, in.Event.Sender); err != nil {
		return in, err
	}
	// An agent's push or commit makes the PR an agent's until a human
	// approves after it (SPEC §1); the author's being an agent, always.
	var pushes []agentPush
	if t.push != nil && in.Event.Sender.Agent {
		pushes = append(pushes, agentPush{why: "agent @" + in.Event.Sender.Login + " pushed to it", pushSeen: *t.push})
	}
	if am := in.PullRequest.AutoMerge; am != nil {
		if am.EnabledBy.Agent, err = cls.agent(ctx, am.EnabledBy); err != nil {
			return in, err
		}
	}
	commits, err := facts.Commits(ctx)
	if err != nil {
		return in, fmt.Errorf("list commits: %w", err)
	}
	for _, c := range commits {
		for _, person := range []*pr.Person{&c.Author, &c.Committer} {
			if person.Account.Login == "" {
				continue
			}
			if person.Account.Agent, err = cls.agent(ctx, person.Account); err != nil {
				return in, err
			}
		}
		for _, person := range []pr.Person{c.Author, c.Committer} {
			if person.Account.Agent {
				pushes = append(pushes, agentPush{why: "commit " + short(c.SHA) + " by agent @" + person.Account.Login, commit: c.SHA})
			}
		}
		in.Commits = append(in.Commits, c)
	}
	tracked, ok := t.tracked, t.seen
	if !t.trackedRead {
		var err error
		if tracked, ok, err = state.TrackedPR(ctx, t.repo.FullName, t.number); err != nil {
			return in, fmt.Errorf("read tracked PR: %w", err)
		}
	}
	// Who pushed is known from a push's synchronize only. One whose
	// delivery failed (it is retried), or a head whose synchronize the
	// guard has not processed (lost, late, or pushed while the PR was
	// closed), counts as an agent's push until a human approves the head
	// after it: any other event would decide without it.
	if n, at, err := state.FailedPushes(ctx, t.repo.FullName+"#"+strconv.Itoa(t.number), t.delivery.Seq); err != nil {
		return in, err
	} else if n > 0 {
		pushes = append(pushes, agentPush{why: fmt.Sprintf("%s (%d; retried)", whyFailedPush, n), pushSeen: pushSeen{at: at}})
	}
	if headUnknown(t, ok, tracked, p.HeadSHA) {
		pushes = append(pushes, agentPush{why: "head " + short(p.HeadSHA) + " " + whyUnknownHead, pushSeen: pushSeen{at: tracked.UpdatedAt, head: p.HeadSHA}})
	}
	if ok && !tracked.AgentPushedAt.IsZero() {
		pushes = append(pushes, agentPush{why: "an agent pushed to it earlier", earlier: true,
			pushSeen: pushSeen{at: tracked.AgentPushedAt, head: tracked.AgentPushedHead}})
	}

	if in.PullRequest.Author.Agent || len(pushes) > 0 {
		reviews, err := facts.Reviews(ctx)
		if err != nil {
			return in, fmt.Errorf("list reviews: %w", err)
		}
		for _, r := range reviews {
			if r.User.Agent, err = cls.agent(ctx, r.User); err != nil {
				return in, err
			}
			if r.Approver, err = cls.approver(ctx, t.repo, r.User.Login); err != nil {
				return in, err
			}
			in.Reviews = append(in.Reviews, r)
		}
	}
	approvals := humanApprovals(in)
	for _, ap := range pushes {
		if ap.approvedBy(in, approvals) {
			continue
		}
		if ap.earlier && len(in.AgentReasons) > 0 {
			continue // said better by the reasons found now
		}
		if !slices.Contains(in.AgentReasons, ap.why) {
			in.AgentReasons = append(in.AgentReasons, ap.why)
		}
	}
	in.AgentPR = len(in.AgentReasons) > 0

	if in.AgentPR {
		files, err := facts.Files(ctx)
		if err != nil {
			return in, fmt.Errorf("list files: %w", err)
		}
		in.Files = append(in.Files, files...)
	}

	overrides, err := state.Overrides(ctx, t.repo.FullName, t.number)
	if err != nil {
		return in, fmt.Errorf("read overrides: %w", err)
	}
	in.Overrides = append(in.Overrides, overrides...)

	quarantine.Annotate(in)
	cal := now
	if !t.at.IsZero() {
		cal = t.at
	}
	in.Time, err = clockAt(ctx, cfg, state, t.repo, in.PullRequest.BaseRef, cal, now)
	return in, err
}

// clock computes the time facts for a base branch at now: the calendar's,
// plus the declared freezes that cover the branch.
func clock(ctx context.Context, cfg *config.Config, state State, repo pr.Repository, base string, now time.Time) (pr.Clock, error) {
	return clockAt(ctx, cfg, state, repo, base, now, now)
}

// clockAt is clock with the calendar read at cal (a merge group's PR: when
// it was queued) and the declared freezes active now: an incident freeze
// stops merges from the moment it is declared.
func clockAt(ctx context.Context, cfg *config.Config, state State, repo pr.Repository, base string, cal, now time.Time) (pr.Clock, error) {
	c := cfg.Calendar.Clock(cal, base)
	manual, err := state.ActiveFreezes(ctx, now)
	if err != nil {
		return c, fmt.Errorf("read freezes: %w", err)
	}
	for _, f := range manual {
		if !freezeCovers(f, repo, base) {
			continue
		}
		fr := pr.Freeze{
			Name: incidentName(f), Kind: "incident", AppliesTo: calendar.AppliesToAgents,
			From: f.From.UTC().Format(time.RFC3339), Reason: f.Reason, By: f.By,
		}
		if !f.Until.IsZero() {
			fr.Until = f.Until.UTC().Format(time.RFC3339)
			// Its end is a boundary too, when it comes first.
			if nb, err := time.Parse(time.RFC3339, c.NextBoundary); f.Until.After(now) && (c.NextBoundary == "" || err == nil && f.Until.Before(nb)) {
				c.NextBoundary = f.Until.UTC().Format(time.RFC3339)
			}
		}
		c.Freezes = append(c.Freezes, fr)
	}
	return c, nil
}

// incidentName is the stable name of a declared freeze, used by overrides.
func incidentName(f audit.ManualFreeze) string { return "incident-" + strconv.FormatInt(f.ID, 10) }

// freezeCovers reports whether a declared freeze applies to a repo's branch.
func freezeCovers(f audit.ManualFreeze, repo pr.Repository, base string) bool {
	switch f.Scope {
	case "org":
		if !strings.EqualFold(f.Target, repo.Owner) {
			return false
		}
	default:
		if !strings.EqualFold(f.Target, repo.FullName) {
			return false
		}
	}
	return f.Branch == "" || calendar.MatchBranch([]string{f.Branch}, base)
}

// record builds the audit record of an evaluation.
func (g *Guard) record(cfg *config.Config, t target, ev evaluation) audit.Record {
	in := ev.input
	details := map[string]any{
		"input":   redact(in, ev.decision),
		"result":  ev.decision,
		"eval_ns": ev.took.Nanoseconds(),
		"trigger": t.event,
	}
	if ev.err != nil {
		details["error"] = ev.err.Error()
	}
	raw, _ := json.Marshal(details)
	reason := summaryLine(cfg, in, ev)
	return audit.Record{
		ID:             ev.id,
		Time:           g.o.Now(),
		Kind:           "decision",
		Repository:     t.repo.FullName,
		PullRequest:    t.number,
		HeadSHA:        in.PullRequest.HeadSHA,
		Actor:          in.PullRequest.Author.Login,
		Agent:          in.AgentPR,
		Outcome:        string(ev.decision.Outcome),
		Rules:          ev.decision.Rules(),
		Reason:         reason,
		DeliveryID:     t.delivery.ID,
		PolicyRevision: ev.revision,
		Installation:   t.installation,
		BaseRef:        in.PullRequest.BaseRef,
		Details:        raw,
	}
}

// redactedFile is a changed file as the audit trail keeps it: the added lines
// a rule matched, and a digest of all of them; with what the policies read
// of it (test, quarantine_list, markers: a marker's text only when a rule
// matched its line), so that the decision can be replayed (guard eval
// --replay).
type redactedFile struct {
	Filename       string      `json:"filename"`
	Status         string      `json:"status"`
	Additions      int         `json:"additions"`
	Deletions      int         `json:"deletions"`
	AddedLines     []pr.Line   `json:"added_lines"`
	AddedDigest    string      `json:"added_lines_sha256"`
	AddedOmitted   int         `json:"added_lines_omitted"`
	Test           bool        `json:"test"`
	QuarantineList bool        `json:"quarantine_list"`
	Markers        []pr.Marker `json:"markers"`
}

// redact returns the input with patch text reduced to the matched lines.
func redact(in *pr.Input, d pr.Decision) any {
	matched := map[string]map[int]bool{}
	for _, r := range d.Reasons {
		for _, m := range r.Matches {
			if matched[m.File] == nil {
				matched[m.File] = map[int]bool{}
			}
			matched[m.File][m.Line] = true
		}
	}
	files := make([]redactedFile, 0, len(in.Files))
	for _, f := range in.Files {
		h := sha256.New()
		rf := redactedFile{Filename: f.Filename, Status: f.Status, Additions: f.Additions, Deletions: f.Deletions, AddedLines: []pr.Line{},
			Test: f.Test, QuarantineList: f.QuarantineList, Markers: make([]pr.Marker, 0, len(f.Markers))}
		for _, m := range f.Markers {
			if m.Line > 0 && !matched[f.Filename][m.Line] {
				m.Text = "" // an added line no rule matched: only its digest is kept
			}
			rf.Markers = append(rf.Markers, m)
		}
		for _, l := range f.AddedLines {
			fmt.Fprintf(h, "%d\x00%s\n", l.Number, l.Text)
			if matched[f.Filename][l.Number] {
				rf.AddedLines = append(rf.AddedLines, l)
			} else {
				rf.AddedOmitted++
			}
		}
		rf.AddedDigest = hex.EncodeToString(h.Sum(nil))
		files = append(files, rf)
	}
	type alias pr.Input
	return struct {
		*alias
		Files []redactedFile `json:"files"`
	}{(*alias)(in), files}
}

// revision is the policy revision recorded with a decision: the policy set
// and the configuration in force.
func revision(policies, cfg string) string {
	if len(cfg) > 12 {
		cfg = cfg[:12]
	}
	return policies + "+" + cfg
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// pushSeen is a push to a pull request: when, and the head it pushed
// ("": unknown, a push remembered from before the guard kept heads).
type pushSeen struct {
	at   time.Time
	head string
}

// agentPush is a reason to call a PR an agent's that a later human
// approval clears: an agent's commit, or a push by an agent.
type agentPush struct {
	why    string
	commit string // the agent's commit; "": a push
	pushSeen
	earlier bool // remembered from an earlier event
}

// approvedBy reports whether one of approvals (human approvals, see
// humanApprovals) covers ap: it approved a commit that is the agent's
// commit or has it among its ancestors in the PR; for a push, it was also
// submitted after the push, and it approved the pushed head or a commit
// that includes it (a push of unknown head: the PR's head itself). Which
// commits a commit includes is told by the parents GitHub lists, never by
// the list's order (by date: a cherry-picked or merged agent commit can
// sort before an approved one it is not part of).
func (ap agentPush) approvedBy(in *pr.Input, approvals []pr.Review) bool {
	for _, a := range approvals {
		switch {
		case ap.commit != "":
			if includes(in.Commits, a.CommitID, ap.commit) {
				return true
			}
		case !a.SubmittedAt.After(ap.at):
		case includes(in.Commits, a.CommitID, ap.head):
			return true
		}
	}
	return reanchor(in, approvals, ap.pushSeen) != ""
}

// reanchor returns, for a push whose head is unknown (remembered from
// before heads were kept, or two pushes in one second) or no longer in the
// PR (rebased, force-pushed), the PR's head when one of approvals approved
// it after the push: that approval covers the push, and the push can be
// remembered with it as its head, so that what is pushed on top of it is
// known to include it. "" otherwise.
func reanchor(in *pr.Input, approvals []pr.Review, push pushSeen) string {
	if slices.ContainsFunc(in.Commits, func(c pr.Commit) bool { return c.SHA == push.head }) {
		return ""
	}
	for _, a := range approvals {
		if a.SubmittedAt.After(push.at) && a.CommitID == in.PullRequest.HeadSHA {
			return a.CommitID
		}
	}
	return ""
}

// includes reports whether commit sha is top or one of top's ancestors
// among commits (the PR's: ancestors outside it are not followed). A top
// that is not among them includes nothing: the history was rewritten.
func includes(commits []pr.Commit, top, sha string) bool {
	parents := make(map[string][]string, len(commits))
	for _, c := range commits {
		parents[c.SHA] = c.Parents
	}
	if _, ok := parents[top]; !ok {
		return false
	}
	seen := map[string]bool{}
	for stack := []string{top}; len(stack) > 0; {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c == sha {
			return true
		}
		if !seen[c] {
			seen[c] = true
			stack = append(stack, parents[c]...)
		}
	}
	return false
}

// humanApprovals returns the human approvals of in's PR (SPEC §5, on
// whatever commit each was given): APPROVED reviews by an account of type
// User that is no agent, not the PR's author, neither author nor committer
// of any of its commits, and an approver. The policies judge approvals
// themselves; these only tell which of an agent's pushes and commits a
// human approved after them.
func humanApprovals(in *pr.Input) []pr.Review {
	made := map[string]bool{}
	for _, c := range in.Commits {
		for _, p := range []pr.Person{c.Author, c.Committer} {
			if p.Account.Login != "" {
				made[strings.ToLower(p.Account.Login)] = true
			}
		}
	}
	// A reviewer's verdict is their last review that approves, requests
	// changes or is dismissed (by submitted_at, then id), as the policies
	// read it: an approval withdrawn since counts for nothing.
	latest := map[string]pr.Review{}
	for _, r := range in.Reviews {
		if r.State != "APPROVED" && r.State != "CHANGES_REQUESTED" && r.State != "DISMISSED" {
			continue
		}
		login := strings.ToLower(r.User.Login)
		if l, ok := latest[login]; !ok || r.SubmittedAt.After(l.SubmittedAt) || (r.SubmittedAt.Equal(l.SubmittedAt) && r.ID >= l.ID) {
			latest[login] = r
		}
	}
	var out []pr.Review
	for _, r := range in.Reviews {
		login := strings.ToLower(r.User.Login)
		if r.State != "APPROVED" || latest[login].ID != r.ID || r.User.Type != "User" || r.User.Agent || !r.Approver ||
			login == "" || login == strings.ToLower(in.PullRequest.Author.Login) || made[login] {
			continue
		}
		out = append(out, r)
	}
	return out
}

// classifier decides who is an agent and who is an approver.
type classifier struct {
	cfg *config.Config
	dir pr.Directory
	org string
}

func (c classifier) agent(ctx context.Context, a pr.Account) (bool, error) {
	if a.Login == "" {
		return false, nil
	}
	agent, decided := c.cfg.StaticAgent(a.Login, a.Type)
	if decided {
		return agent, nil
	}
	for _, team := range c.cfg.Agents.Teams {
		org, slug := config.SplitTeam(team, c.org)
		ok, err := c.dir.IsTeamMember(ctx, org, slug, a.Login)
		if err != nil {
			return false, fmt.Errorf("agent team %s/%s: %w", org, slug, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// approver reports whether login may approve: anyone when no approvers are
// configured, else a listed user or an active member of a listed team.
func (c classifier) approver(ctx context.Context, repo pr.Repository, login string) (bool, error) {
	ap := c.cfg.Escalation.Approvers
	if len(ap.Users) == 0 && len(ap.Teams) == 0 {
		return true, nil
	}
	for _, u := range ap.Users {
		if strings.EqualFold(u, login) {
			return true, nil
		}
	}
	for _, team := range ap.Teams {
		org, slug := config.SplitTeam(team, repo.Owner)
		ok, err := c.dir.IsTeamMember(ctx, org, slug, login)
		if err != nil {
			return false, fmt.Errorf("approver team %s/%s: %w", org, slug, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// escalate asks the configured reviewers and leaves one explanatory comment
// per head SHA. Both are done at most once per SHA: the database remembers
// it, and the comment carries a hidden marker looked for before posting, so
// a crash in between cannot double it.
func (g *Guard) escalate(ctx context.Context, cfg *config.Config, client *gh.Client, repo pr.Repository, in *pr.Input, link string) error {
	p := in.PullRequest
	key := "escalated:" + repo.FullName + "#" + strconv.Itoa(p.Number) + "@" + p.HeadSHA
	if _, done, err := g.o.Store.State(ctx, key); err != nil || done {
		return err
	}
	rv := cfg.Escalation.Reviewers
	var users, teams []string
	for _, u := range rv.Users {
		if !strings.EqualFold(u, p.Author.Login) {
			users = append(users, u)
		}
	}
	for _, t := range rv.Teams {
		org, slug := config.SplitTeam(t, repo.Owner)
		if strings.EqualFold(org, repo.Owner) {
			teams = append(teams, slug)
		}
	}
	var reviewErr error
	if len(users)+len(teams) > 0 {
		// A refused request (say, a reviewer who is not a collaborator) must
		// not keep the explanatory comment from being posted.
		if err := client.RequestReviewers(ctx, repo.Owner, repo.Name, p.Number, users, teams); err != nil {
			reviewErr = fmt.Errorf("request reviewers: %w", err)
		}
	}
	body := fmt.Sprintf("**merge-guard is holding %s for a human.** %s.\n\n"+
		"To let it through: an approving review on %s from a human who neither wrote nor committed to it, "+
		"or the comment `/guard approve <reason>`.\nWho may: %s.\n\n[Details](%s)",
		short(p.HeadSHA), strings.Join(in.AgentReasons, "; "), short(p.HeadSHA), whoMay(cfg, repo), link)
	if _, err := client.EnsureComment(ctx, repo.Owner, repo.Name, p.Number, "escalation-"+p.HeadSHA, body); err != nil {
		return errors.Join(reviewErr, fmt.Errorf("escalation comment: %w", err))
	}
	if err := g.o.Store.SetState(ctx, key, g.o.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return reviewErr
}
