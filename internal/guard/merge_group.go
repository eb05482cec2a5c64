package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// maxGroupCommits bounds the commits of a merge group looked up for PRs
// (one call each); a larger group fails.
const maxGroupCommits = 100

// onMergeGroup posts the merge-guard check on a merge group's head SHA, for
// human PRs too (a queue whose required check never reports stalls). The
// group's PRs are found from base_sha...head_sha (commits -> pulls); each is
// evaluated with its own approvals and overrides and the calendar now, at
// queue time; the group gets the most severe outcome, and failure when it
// cannot be mapped.
func (g *Guard) onMergeGroup(ctx context.Context, d webhook.Delivery, e *github.MergeGroupEvent) ([]audit.Record, error) {
	if e.GetAction() != "checks_requested" {
		return nil, nil
	}
	repo := repository(e.GetRepo())
	if !g.o.Config().RepoIncluded(repo.FullName) {
		return nil, nil
	}
	mg := e.GetMergeGroup()
	grp := mergeGroup{
		Installation: e.GetInstallation().GetID(), HeadSHA: mg.GetHeadSHA(), HeadRef: mg.GetHeadRef(),
		BaseSHA: mg.GetBaseSHA(), BaseRef: strings.TrimPrefix(mg.GetBaseRef(), "refs/heads/"),
		Sender: account(e.GetSender()),
	}
	if grp.HeadSHA == "" {
		return nil, fmt.Errorf("merge group without head SHA")
	}
	// Remembered so that a re-run of the group's check (check_run
	// rerequested carries no group) can evaluate it again.
	raw, _ := json.Marshal(grp) // plain values: cannot fail
	if err := g.o.Store.SetState(ctx, mergeGroupKey(repo.FullName, grp.HeadSHA), string(raw)); err != nil {
		return nil, fmt.Errorf("remember merge group: %w", err)
	}
	return g.evaluateGroup(ctx, d, repo, grp, false)
}

// mergeGroup is what the guard keeps of a merge group.
type mergeGroup struct {
	Installation int64      `json:"installation"`
	HeadSHA      string     `json:"head_sha"`
	HeadRef      string     `json:"head_ref"`
	BaseSHA      string     `json:"base_sha"`
	BaseRef      string     `json:"base_ref"` // without refs/heads/
	Sender       pr.Account `json:"sender"`
}

func mergeGroupKey(repo, head string) string { return "merge_group:" + repo + "@" + head }

// mergeGroupFor returns the merge group the guard saw with that head SHA.
func (g *Guard) mergeGroupFor(ctx context.Context, repo, head string) (mergeGroup, bool, error) {
	v, ok, err := g.o.Store.State(ctx, mergeGroupKey(repo, head))
	if err != nil || !ok {
		return mergeGroup{}, false, err
	}
	var grp mergeGroup
	if err := json.Unmarshal([]byte(v), &grp); err != nil {
		return mergeGroup{}, false, fmt.Errorf("merge group %s@%s: %w", repo, short(head), err)
	}
	return grp, true, nil
}

// evaluateGroup decides a merge group and publishes its check run (a new
// one when fresh).
func (g *Guard) evaluateGroup(ctx context.Context, d webhook.Delivery, repo pr.Repository, grp mergeGroup, fresh bool) ([]audit.Record, error) {
	cfg := g.o.Config()
	inst := grp.Installation
	client := g.o.GitHub.Installation(inst)
	head, base := grp.HeadSHA, grp.BaseRef
	id := newID()

	numbers, mapErr := groupPulls(ctx, client, repo, grp.BaseSHA, head)
	now := g.o.Now()
	queue, err := g.queueOf(ctx, repo.FullName, now)
	if err != nil {
		return nil, err
	}
	if n, ok := queuedPull(grp.HeadRef); ok && mapErr == nil {
		// The PR that entered the queue last is named by the group's ref,
		// even when its commits were squashed into one GitHub cannot map;
		// so are, by their enqueued events, those queued before it on the
		// same base and still queued (squashed ones too).
		ahead, err := g.queuedAhead(ctx, repo.FullName, queue, n, base)
		if err != nil {
			return nil, err
		}
		for _, m := range append(ahead, n) {
			if !slices.Contains(numbers, m) {
				numbers = append(numbers, m)
			}
		}
		slices.Sort(numbers)
	}
	outcome := pr.Allow
	var reasons []pr.Reason
	var lines []string
	agent := false
	for _, n := range numbers {
		at := queue[n]
		ev := g.decide(ctx, cfg, client, target{
			delivery: d, installation: inst, repo: repo, number: n, at: at,
			event: pr.Event{Name: "merge_group", Action: "checks_requested", Sender: grp.Sender},
		})
		// The group is judged against its own base branch, whatever the PR says.
		if ev.input.PullRequest.BaseRef != "" && ev.input.PullRequest.BaseRef != base {
			ev.err = fmt.Errorf("pull request #%d targets %s, not the queue's %s", n, ev.input.PullRequest.BaseRef, base)
			ev.decision = pr.Decision{Outcome: pr.Error, Reasons: []pr.Reason{{Rule: "guard_error", Outcome: pr.Error, Message: ev.err.Error()}}}
		}
		agent = agent || ev.input.AgentPR
		outcome = pr.Worst(outcome, ev.decision.Outcome)
		for _, r := range ev.decision.Reasons {
			r.Message = "#" + strconv.Itoa(n) + ": " + r.Message
			reasons = append(reasons, r)
		}
		line := fmt.Sprintf("- #%d: %s", n, ev.decision.Outcome)
		if !at.IsZero() {
			line += " (as of its queueing, " + at.In(cfg.Location).Format("Mon 2 Jan 15:04 MST") + ")"
		}
		lines = append(lines, line)
	}
	if mapErr != nil || len(numbers) == 0 {
		msg := "could not map the merge group to its pull requests"
		if mapErr != nil {
			msg += ": " + mapErr.Error()
		}
		outcome = pr.Error
		reasons = append(reasons, pr.Reason{Rule: "guard_error", Outcome: pr.Error, Message: msg})
	}
	dec := pr.Decision{Outcome: outcome, Reasons: reasons}
	in := &pr.Input{PullRequest: pr.PullRequest{HeadSHA: head, BaseRef: base}, AgentPR: agent,
		Time: pr.Clock{Now: g.o.Now().UTC().Format(time.RFC3339)}}
	run := gh.CheckRun{
		Name: cfg.CheckName, HeadSHA: head, ExternalID: id, Status: "completed",
		DetailsURL: DecisionLink(g.o.PublicURL, g.o.LinkSecret, id, repo.FullName, g.o.Now()),
		Conclusion: conclusion(outcome),
		Title:      "Merge group: " + title(in, dec),
		Summary:    "Pull requests in this merge group:\n" + strings.Join(lines, "\n") + "\n",
		Text:       details(in, dec, evaluation{id: id, revision: revision(g.o.Policies().Revision(), cfg.Digest)}),
	}
	if outcome == pr.Allow {
		run.Title = "Merge group: every pull request passes"
	}
	if cfg.Mode == "advisory" && outcome != pr.Allow {
		run.Conclusion = "success"
		run.Title = "Advisory: enforce mode would " + verb(outcome) + ": " + run.Title
	}
	runID, err := client.PublishCheck(ctx, repo.Owner, repo.Name, run, fresh)
	if err != nil {
		return nil, fmt.Errorf("publish merge group check run: %w", err)
	}
	rules := dec.Rules()
	reason := fmt.Sprintf("merge group %s of PRs %v", grp.HeadRef, numbers)
	if len(reasons) > 0 {
		reason += ": " + reasons[0].Message
	}
	// The details page shows the group's reasons and its pull requests.
	raw, _ := json.Marshal(map[string]any{"result": dec, "merge_group": grp.HeadRef, "pull_requests": numbers})
	return []audit.Record{{
		ID: id, Time: g.o.Now(), Kind: "decision", Repository: repo.FullName, HeadSHA: head,
		Actor: grp.Sender.Login, Agent: agent, Outcome: string(outcome), Rules: rules, Reason: reason,
		DeliveryID: d.ID, PolicyRevision: revision(g.o.Policies().Revision(), cfg.Digest),
		Installation: inst, CheckRunID: runID, BaseRef: base, Details: raw,
	}}, nil
}

// queueOf returns when each pull request of repo now in the merge queue
// entered it, by their queue marks (queuedSince).
func (g *Guard) queueOf(ctx context.Context, repo string, now time.Time) (map[int]time.Time, error) {
	prefix := strings.TrimSuffix(queuedKey(repo, 0), "0")
	marks, err := g.o.Store.StatesWithPrefix(ctx, prefix)
	if err != nil {
		return nil, err
	}
	queue := map[int]time.Time{}
	for k, v := range marks {
		n, err := strconv.Atoi(strings.TrimPrefix(k, prefix))
		if at := queuedSince(v, now); err == nil && !at.IsZero() {
			queue[n] = at
		}
	}
	return queue, nil
}

// queuedAhead returns the pull requests of queue that are open, target
// base and were queued before pull request last: the PRs of the group
// GitHub built for last. Nothing when last's queue time is unknown.
func (g *Guard) queuedAhead(ctx context.Context, repo string, queue map[int]time.Time, last int, base string) ([]int, error) {
	lastAt, ok := queue[last]
	if !ok {
		return nil, nil
	}
	var out []int
	for n, at := range queue {
		if n == last || at.After(lastAt) {
			continue
		}
		p, ok, err := g.o.Store.TrackedPR(ctx, repo, n)
		if err != nil {
			return nil, err
		}
		if ok && p.Open && p.BaseRef == base {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// groupPulls finds the pull requests of a merge group from its commits.
func groupPulls(ctx context.Context, client *gh.Client, repo pr.Repository, baseSHA, headSHA string) ([]int, error) {
	shas, err := client.CompareCommits(ctx, repo.Owner, repo.Name, baseSHA, headSHA)
	if err != nil {
		return nil, fmt.Errorf("compare %s...%s: %w", short(baseSHA), short(headSHA), err)
	}
	if len(shas) > maxGroupCommits {
		// Looking up only some would let a PR of the group go unseen:
		// fail closed.
		return nil, fmt.Errorf("the merge group has %d commits; the guard looks up the pull requests of at most %d, so it cannot tell which ones the group holds", len(shas), maxGroupCommits)
	}
	var numbers []int
	for _, sha := range shas {
		ns, err := client.PullsForCommit(ctx, repo.Owner, repo.Name, sha)
		if err != nil {
			return nil, fmt.Errorf("pull requests of %s: %w", short(sha), err)
		}
		for _, n := range ns {
			if !slices.Contains(numbers, n) {
				numbers = append(numbers, n)
			}
		}
	}
	slices.Sort(numbers)
	return numbers, nil
}

// queuedPull reads the pull request number from a merge group's head ref,
// refs/heads/gh-readonly-queue/<base>/pr-<number>-<sha>.
func queuedPull(headRef string) (int, bool) {
	i := strings.LastIndex(headRef, "/pr-")
	if i < 0 || !strings.Contains(headRef, "gh-readonly-queue/") {
		return 0, false
	}
	rest := headRef[i+len("/pr-"):]
	j := strings.IndexByte(rest, '-')
	if j <= 0 {
		return 0, false
	}
	n, err := strconv.Atoi(rest[:j])
	return n, err == nil && n > 0
}
