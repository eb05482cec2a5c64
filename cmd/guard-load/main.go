// Command guard-load proves Merge Guard under load (SPEC §8). It starts an
// in-process fake GitHub (internal/githubtest) with configurable latency,
// seeds repositories with human and agent pull requests (commits, files,
// reviews), runs the real `guard serve` binary as a child process against
// it, and replays signed deliveries built from testdata/webhooks.
//
// Phases:
//
//  1. warm-up: one "opened" per pull request, until every one has its check
//     run (first sight is not steady state);
//  2. decision latency and API economy: deliveries one at a time on
//     steady-state pull requests, each timed from the POST to the moment the
//     fake GitHub stores the check run, with the GitHub calls it cost
//     (human and agent PRs apart);
//  3. throughput: closed-loop (-conns senders, no pause) or open-loop
//     (-rate deliveries/s, latency measured from the scheduled send time) for
//     -duration, then the queue drains (at most -drain).
//
// It reports acknowledgements/s, p50/p99/max acknowledgement latency,
// delivery-to-check-run latency, GitHub calls per event, the queue depth
// over time (guard_queue_depth from /metrics) and the guard's peak RSS
// (VmHWM). Everything runs on loopback and is bounded in count (-max) and
// time. Exit status 1 when a target is missed and -strict is set.
//
// With -floor null or -floor fsync it measures, with the same senders and
// deliveries, a receiver of its own instead of the guard (floor.go): what
// the machine allows any webhook receiver, to compare the guard with in the
// same minutes.
//
//	go build -o /tmp/guard ./cmd/guard && go run ./cmd/guard-load -guard /tmp/guard
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// options are the flags.
type options struct {
	guard      string
	webhooks   string
	repos      int
	prs        int
	agentShare float64
	latency    time.Duration
	workers    int
	conns      int
	rate       float64
	duration   time.Duration
	max        int
	samples    int
	drain      time.Duration
	strict     bool
	keep       bool
	floor      string
}

const (
	org     = "load-org"
	inst    = int64(7)
	secret  = "load-webhook-secret"
	checkNm = "merge-guard"
)

func main() {
	if mode := os.Getenv(receiverEnv); mode != "" {
		if err := runReceiver(mode); err != nil {
			fmt.Fprintln(os.Stderr, "guard-load receiver:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "guard-load:", err)
		os.Exit(1)
	}
}

func parse(args []string) (*options, error) {
	fs := flag.NewFlagSet("guard-load", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.guard, "guard", "", "path of the built guard binary (go build -o /tmp/guard ./cmd/guard); required")
	fs.StringVar(&o.webhooks, "webhooks", "testdata/webhooks", "`dir` of the example webhook payloads")
	fs.IntVar(&o.repos, "repos", 10, "repositories to seed")
	fs.IntVar(&o.prs, "prs", 20, "pull requests per repository")
	fs.Float64Var(&o.agentShare, "agent-share", 0.5, "share of pull requests written by an agent (0..1)")
	fs.DurationVar(&o.latency, "latency", 0, "latency of every fake GitHub answer")
	fs.IntVar(&o.workers, "workers", 8, "guard serve --workers")
	fs.IntVar(&o.conns, "conns", 32, "concurrent senders (connections)")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop target deliveries/s (0: closed loop, as fast as -conns senders go)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "length of the throughput phase")
	fs.IntVar(&o.max, "max", 400000, "most deliveries sent in the throughput phase")
	fs.IntVar(&o.samples, "samples", 300, "deliveries timed one at a time for delivery-to-check-run latency")
	fs.DurationVar(&o.drain, "drain", 5*time.Minute, "longest wait for the queue to drain after the throughput phase")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a SPEC §8 target is missed")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (database, guard log)")
	fs.StringVar(&o.floor, "floor", "", "instead of the guard, measure a receiver that only checks the signature and answers 202 (`null`), or also writes each delivery with a group fdatasync first (fsync): the machine's floor, with the same senders")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case o.floor != "" && o.floor != "null" && o.floor != "fsync":
		return nil, fmt.Errorf("-floor %q: want null or fsync", o.floor)
	case o.guard == "" && o.floor == "":
		return nil, errors.New("-guard is required: go build -o /tmp/guard ./cmd/guard, then -guard /tmp/guard")
	case o.repos < 1 || o.prs < 1:
		return nil, errors.New("-repos and -prs must be at least 1")
	case o.agentShare < 0 || o.agentShare > 1:
		return nil, errors.New("-agent-share must be between 0 and 1")
	case o.conns < 1 || o.conns > 1024:
		return nil, errors.New("-conns must be between 1 and 1024")
	case o.duration <= 0 || o.duration > 30*time.Minute:
		return nil, errors.New("-duration must be between 0 and 30m")
	case o.max < 1 || o.max > 5_000_000:
		return nil, errors.New("-max must be between 1 and 5000000")
	case o.rate < 0 || o.rate > 100000:
		return nil, errors.New("-rate must be between 0 and 100000")
	}
	if _, err := os.Stat(filepath.Join(o.webhooks, "pull_request.opened.json")); err != nil {
		return nil, fmt.Errorf("-webhooks %s: %w (run from the repository root or pass -webhooks)", o.webhooks, err)
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "guard-load-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "# keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	fake := githubtest.Start()
	defer fake.Close()
	fake.SetLatency(o.latency)
	// One budget for the whole run: GitHub's primary limit is per hour and
	// per installation; the fake's 5,000 would end a load test early.
	fake.SetRateLimit(1<<30, 1<<30, time.Now().Add(24*time.Hour))
	w := newWorld(o)
	if err := w.seed(fake); err != nil {
		return err
	}
	hook := newHook()
	fake.OnCheckRun(hook.observe)

	g, err := startGuard(ctx, o, fake, dir)
	if err != nil {
		return err
	}
	defer g.stop()
	bodies, err := w.bodies(o.webhooks)
	if err != nil {
		return err
	}
	s := &sender{base: g.base, client: newClient(o.conns)}
	r := &report{o: o}
	if o.floor != "" {
		if err := r.throughput(ctx, s, hook, fake, g, bodies); err != nil {
			return fmt.Errorf("throughput phase: %w; receiver log: %s", err, g.logPath)
		}
		r.printFloor(out)
		return nil
	}

	// 1. Warm-up: every PR gets its first decision.
	start := time.Now()
	for _, p := range w.pulls {
		if code, err := s.post(ctx, "pull_request", p.opened); err != nil || code != http.StatusAccepted {
			return fmt.Errorf("warm-up delivery: status %d: %w", code, err)
		}
	}
	if err := waitPublished(ctx, hook, w.pulls, 2*time.Minute); err != nil {
		return fmt.Errorf("warm-up: %w; guard log: %s", err, g.logPath)
	}
	// Let the tail of the warm-up (and the guard's start-up reconcile)
	// finish, so that the calls counted next are the events' own.
	if err := quiesce(ctx, g, hook, time.Minute); err != nil {
		return fmt.Errorf("warm-up: %w; guard log: %s", err, g.logPath)
	}
	fmt.Fprintf(out, "# warm-up: %d pull requests decided in %s\n", len(w.pulls), time.Since(start).Round(time.Millisecond))

	// 2. One at a time: delivery -> check run, and calls per event.
	if err := r.sequential(ctx, s, hook, fake, w, bodies); err != nil {
		return fmt.Errorf("sequential phase: %w; guard log: %s", err, g.logPath)
	}

	// 3. Throughput.
	if err := r.throughput(ctx, s, hook, fake, g, bodies); err != nil {
		return fmt.Errorf("throughput phase: %w; guard log: %s", err, g.logPath)
	}
	r.rss = max(r.rss, g.peakRSS())
	missed := r.print(out)
	if missed && o.strict {
		return errors.New("a SPEC §8 target was missed")
	}
	return nil
}

// ---- the seeded world ----

type pull struct {
	repo   string
	number int
	author pr.Account
	agent  bool
	head   string
	opened []byte
}

type world struct {
	o     *options
	pulls []*pull
	rnd   *rand.Rand
	// updated is every pull request's updated_at, in the fake and in the
	// payloads alike, as GitHub sends it: a payload older than the pull
	// request the guard last read is one it must read afresh (a late
	// event), which costs a (conditional) call.
	updated time.Time
}

func newWorld(o *options) *world {
	return &world{o: o, rnd: rand.New(rand.NewPCG(1, 2)), updated: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
}

var (
	agentAccount = pr.Account{Login: "load-agent[bot]", Type: "Bot"}
	reviewer     = pr.Account{Login: "rita", Type: "User"}
)

func shaOf(repo, n int, salt string) string {
	return fmt.Sprintf("%040x", uint64(repo)<<40|uint64(n)<<8|uint64(len(salt)))
}

// seed adds the installation, repositories and pull requests to the fake.
func (w *world) seed(fake *githubtest.Server) error {
	fake.AddInstallation(inst, org)
	agents := int(float64(w.o.prs) * w.o.agentShare)
	for ri := range w.o.repos {
		repo := fmt.Sprintf("%s/repo-%d", org, ri)
		fake.AddRepo(inst, repo)
		for n := 1; n <= w.o.prs; n++ {
			p := &pull{repo: repo, number: n, head: shaOf(ri, n, "head"), agent: n <= agents}
			p.author = pr.Account{Login: fmt.Sprintf("dev-%d", n%17), Type: "User"}
			if p.agent {
				p.author = agentAccount
			}
			fake.AddPull(repo, pr.PullRequest{Number: n, Title: fmt.Sprintf("change %d", n), Author: p.author,
				HeadSHA: p.head, BaseRef: "main", BaseSHA: strings.Repeat("0", 40), CreatedAt: w.updated, UpdatedAt: w.updated})
			when := time.Now().Add(-2 * time.Hour)
			for c := range 2 {
				person := pr.Person{Name: p.author.Login, Email: p.author.Login + "@example.com", Account: p.author, Date: when}
				s := p.head
				if c == 0 {
					s = shaOf(ri, n, "first")
				}
				fake.AddCommit(repo, n, pr.Commit{SHA: s, Message: "change", Author: person, Committer: person})
			}
			fake.AddFile(repo, n, pr.File{Filename: "internal/widget/widget.go", Status: "modified", Additions: 3, Deletions: 1,
				Patch: "@@ -10,3 +10,5 @@ func Widget() {\n \tx := 1\n-\ty := 2\n+\ty := 3\n+\tz := 4\n+\t_ = z\n \treturn"})
			fake.AddFile(repo, n, pr.File{Filename: "internal/widget/widget_test.go", Status: "modified", Additions: 2,
				Patch: "@@ -5,2 +5,4 @@ func TestWidget(t *testing.T) {\n \tw := Widget()\n+\tif w == nil {\n+\t\tt.Fatal(\"nil\")\n \t}"})
			state := "COMMENTED"
			if p.agent && n%2 == 0 {
				state = "APPROVED" // half the agent PRs are approved by a human
			}
			fake.AddReview(repo, n, pr.Review{User: reviewer, State: state, CommitID: p.head})
			w.pulls = append(w.pulls, p)
		}
	}
	return nil
}

// delivery is one prepared, signed webhook.
type delivery struct {
	event string
	body  []byte
	sig   string
	p     *pull
}

// bodies builds the steady-state deliveries (labeled, edited by a human,
// review submitted) of every pull request, and each one's "opened".
func (w *world) bodies(dir string) ([]delivery, error) {
	load := func(name string) (map[string]any, error) {
		raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(raw, &m)
	}
	var out []delivery
	for _, p := range w.pulls {
		owner, name, _ := strings.Cut(p.repo, "/")
		common := map[string]any{
			"installation":                     map[string]any{"id": inst, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNw=="},
			"repository.full_name":             p.repo,
			"repository.name":                  name,
			"repository.owner.login":           owner,
			"repository.owner.type":            "Organization",
			"repository.default_branch":        "main",
			"pull_request.number":              p.number,
			"pull_request.user.login":          p.author.Login,
			"pull_request.user.type":           p.author.Type,
			"pull_request.head.sha":            p.head,
			"pull_request.head.ref":            fmt.Sprintf("pr-%d", p.number),
			"pull_request.base.ref":            "main",
			"pull_request.state":               "open",
			"pull_request.draft":               false,
			"pull_request.updated_at":          w.updated.Format(time.RFC3339),
			"pull_request.auto_merge":          nil,
			"pull_request.head.repo.full_name": p.repo,
			"pull_request.base.repo.full_name": p.repo,
		}
		build := func(fixture string, set map[string]any) ([]byte, error) {
			m, err := load(fixture)
			if err != nil {
				return nil, err
			}
			for k, v := range common {
				setPath(m, k, v)
			}
			for k, v := range set {
				setPath(m, k, v)
			}
			return json.Marshal(m)
		}
		author := map[string]any{"sender.login": p.author.Login, "sender.type": p.author.Type}
		human := map[string]any{"sender.login": reviewer.Login, "sender.type": "User"}
		var err error
		if p.opened, err = build("pull_request.opened", merge(author, map[string]any{"action": "opened", "number": p.number})); err != nil {
			return nil, err
		}
		for _, d := range []struct {
			event, fixture string
			set            map[string]any
		}{
			{"pull_request", "pull_request.labeled", merge(author, map[string]any{"action": "labeled", "number": p.number})},
			{"pull_request", "pull_request.opened", merge(human, map[string]any{"action": "edited", "number": p.number})},
			{"pull_request_review", "pull_request_review.submitted", merge(human, map[string]any{
				"review.user.login": reviewer.Login, "review.user.type": "User", "review.state": "commented", "review.commit_id": p.head,
			})},
		} {
			b, err := build(d.fixture, d.set)
			if err != nil {
				return nil, err
			}
			out = append(out, delivery{event: d.event, body: b, sig: webhook.Sign([]byte(secret), b), p: p})
		}
	}
	w.rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// ---- the check-run hook ----

// hook learns from the fake when check runs are written.
type hook struct {
	mu      sync.Mutex
	waiters map[string]chan time.Time // repo@sha -> one waiter
	pending map[string][]time.Time    // repo@sha -> send times (throughput phase)
	seen    map[string]bool
	lat     []time.Duration // delivery -> check run under load
	writes  atomic.Int64
}

func newHook() *hook {
	return &hook{waiters: map[string]chan time.Time{}, pending: map[string][]time.Time{}, seen: map[string]bool{}}
}

func key(repo, sha string) string { return repo + "@" + sha }

func (h *hook) observe(repo string, run githubtest.CheckRun) {
	now := time.Now()
	if run.Name != checkNm || run.Status != "completed" {
		return
	}
	h.writes.Add(1)
	k := key(repo, run.HeadSHA)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[k] = true
	if c, ok := h.waiters[k]; ok {
		delete(h.waiters, k)
		c <- now
	}
	if q := h.pending[k]; len(q) > 0 {
		h.lat = append(h.lat, now.Sub(q[0]))
		h.pending[k] = q[1:]
	}
}

// wait returns a channel told when the next run on repo@sha is written.
func (h *hook) wait(repo, sha string) <-chan time.Time {
	c := make(chan time.Time, 1)
	h.mu.Lock()
	h.waiters[key(repo, sha)] = c
	h.mu.Unlock()
	return c
}

func (h *hook) sent(repo, sha string, at time.Time) {
	h.mu.Lock()
	k := key(repo, sha)
	h.pending[k] = append(h.pending[k], at)
	h.mu.Unlock()
}

func waitPublished(ctx context.Context, h *hook, pulls []*pull, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		h.mu.Lock()
		missing := 0
		for _, p := range pulls {
			if !h.seen[key(p.repo, p.head)] {
				missing++
			}
		}
		h.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pull requests have no check run after %s", missing, len(pulls), limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// quiesce waits until the guard's queue is empty and no check run has been
// written for 300 ms.
func quiesce(ctx context.Context, g *guardProc, h *hook, limit time.Duration) error {
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	last, since := h.writes.Load(), time.Now()
	for {
		if n := h.writes.Load(); n != last {
			last, since = n, time.Now()
		}
		if depth, err := g.queueDepth(c); err == nil && depth == 0 && time.Since(since) >= 300*time.Millisecond {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the guard did not settle within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ---- the guard child process ----

type guardProc struct {
	cmd     *exec.Cmd
	base    string
	logPath string
	done    chan error
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startGuard(ctx context.Context, o *options, fake *githubtest.Server, dir string) (*guardProc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "guard.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.guard, "serve", "--workers", strconv.Itoa(o.workers))
	if o.floor != "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self)
		cmd.Env = append(cmd.Environ(), receiverEnv+"="+o.floor, "GUARD_LOAD_DIR="+dir)
	}
	cmd.Dir = dir // no guard.yaml there: built-in defaults
	cmd.Env = append(cmd.Environ(),
		"GUARD_ADDR="+addr,
		"GUARD_DB="+filepath.Join(dir, "guard.db"),
		"GUARD_APP_ID="+strconv.FormatInt(fake.AppID(), 10),
		"GUARD_PRIVATE_KEY="+string(fake.PrivateKeyPEM()),
		"GUARD_WEBHOOK_SECRET="+secret,
		"GUARD_GITHUB_URL="+fake.URL(),
		"GUARD_PUBLIC_URL=https://guard.example.com",
		"GUARD_LOG_LEVEL=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startChild(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	g := &guardProc{cmd: cmd, base: "http://" + addr, logPath: logPath, done: make(chan error, 1)}
	go func() { g.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(g.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		select {
		case err := <-g.done:
			return nil, fmt.Errorf("guard exited at start: %v; log: %s", err, logPath)
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("guard not ready after 30s; log: %s", logPath)
		}
	}
}

// peakRSS is the guard's VmHWM in bytes (0 if unknown).
func (g *guardProc) peakRSS() int64 {
	return procStatus(g.cmd.Process.Pid, "VmHWM:")
}

func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (g *guardProc) stop() {
	if g.cmd.ProcessState != nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// queueDepth scrapes guard_queue_depth from /metrics.
func (g *guardProc) queueDepth(c *http.Client) (int, error) {
	resp, err := c.Get(g.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "guard_queue_depth "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, errors.New("no guard_queue_depth in /metrics")
}

// ackBuckets scrapes the cumulative buckets of guard_webhook_ack_seconds
// (upper bound in seconds -> count): the guard's own view of an
// acknowledgement, from its handler's start to the reply, without the
// network and the load tool's scheduling.
func (g *guardProc) ackBuckets(c *http.Client) (map[float64]float64, error) {
	resp, err := c.Get(g.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `guard_webhook_ack_seconds_bucket{le="`)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, err = math.Inf(1), nil
		}
		n, err2 := strconv.ParseFloat(strings.TrimSpace(count), 64)
		if err == nil && err2 == nil {
			out[bound] = n
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no guard_webhook_ack_seconds in /metrics")
	}
	return out, nil
}

// bucketQuantile is the upper bound of the first bucket holding quantile q
// of the acknowledgements counted between two scrapes.
func bucketQuantile(before, after map[float64]float64, q float64) float64 {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	total := after[math.Inf(1)] - before[math.Inf(1)]
	for _, b := range bounds {
		if total > 0 && after[b]-before[b] >= q*total {
			return b
		}
	}
	return math.Inf(1)
}

// machineCPU are the machine's CPU time counters (/proc/stat, all CPUs).
type machineCPU struct{ total, idle, steal float64 }

func readMachineCPU() machineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var m machineCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i < 8 {
			m.total += n
		}
		switch i {
		case 3:
			m.idle = n
		case 7:
			m.steal = n
		}
	}
	return m
}

// since returns the shares of CPU time stolen and idle since m0: on a
// shared VM, time stolen by the hypervisor is time neither the guard nor
// the load tool got, and it shows in every latency.
func (m machineCPU) since(m0 machineCPU) (steal, idle float64) {
	total := m.total - m0.total
	if total <= 0 {
		return 0, 0
	}
	return (m.steal - m0.steal) / total, (m.idle - m0.idle) / total
}

// cpuTime is the user+system CPU time a process has used (pid 0: this one).
func cpuTime(pid int) time.Duration {
	p := "/proc/self/stat"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// ---- sending ----

type sender struct {
	base   string
	client *http.Client
}

// deliveryID returns a new X-GitHub-Delivery GUID shaped like GitHub's: a
// time-based (version 1) UUID, e.g. 72d3162e-cc78-11e3-81ab-4c9367dc0958.
// Its first field is the clock's low 32 bits, so ids sent within the ~7
// minutes that field takes to wrap sort in the order they were sent: the
// inbox's index on them grows at one end, as it does with GitHub's.
// (Random version-4 ids would land each on a leaf of its own, a few more
// pages per commit.)
func deliveryID() string { return uuid.Must(uuid.NewUUID()).String() }

func newClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 2
	tr.MaxIdleConnsPerHost = conns * 2
	tr.MaxConnsPerHost = conns * 2
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (s *sender) post(ctx context.Context, event string, body []byte) (int, error) {
	return s.send(ctx, delivery{event: event, body: body, sig: webhook.Sign([]byte(secret), body)})
}

func (s *sender) send(ctx context.Context, d delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/webhook", bytes.NewReader(d.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", d.event)
	req.Header.Set("X-GitHub-Delivery", deliveryID())
	req.Header.Set("X-Hub-Signature-256", d.sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// conn is one keep-alive HTTP/1.1 connection of the throughput phase, each
// sender its own: it writes a delivery's request itself and reads the reply
// with net/http's parser. It costs a fraction of http.Client's CPU per
// request, and the load tool shares the 2 cores with the guard it measures
// (GitHub's senders are not on the guard's machine).
type conn struct {
	s    *sender
	addr string // host:port of s.base
	c    net.Conn
	br   *bufio.Reader
	buf  []byte
}

func (s *sender) conn() *conn {
	return &conn{s: s, addr: strings.TrimPrefix(s.base, "http://")}
}

// send posts d and returns the status; after an error the next send dials
// again.
func (c *conn) send(d delivery) (int, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, err
		}
		c.c, c.br = nc, bufio.NewReaderSize(nc, 4096)
	}
	b := append(c.buf[:0], "POST /webhook HTTP/1.1\r\nHost: "...)
	b = append(b, c.addr...)
	b = append(b, "\r\nContent-Type: application/json\r\nX-GitHub-Event: "...)
	b = append(b, d.event...)
	b = append(b, "\r\nX-GitHub-Delivery: "...)
	b = append(b, deliveryID()...)
	b = append(b, "\r\nX-Hub-Signature-256: "...)
	b = append(b, d.sig...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(d.body)), 10)
	b = append(b, "\r\n\r\n"...)
	c.buf = b
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	bufs := net.Buffers{b, d.body}
	if _, err := bufs.WriteTo(c.c); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// ---- measuring ----

type sample struct {
	at    time.Duration // since the phase started
	depth int
	rss   int64
	acks  int64
	wrote int64
	steal float64 // share of the machine's CPU stolen since the previous sample
	inP99 float64 // the guard's own ack p99 since the previous sample (bucket bound, seconds)
}

type report struct {
	o *options

	decide      []time.Duration // one at a time: delivery -> check run
	callsHuman  []int
	callsAgent  []int
	freeHuman   []int
	freeAgent   []int
	acks        []time.Duration
	ackSecs     []int32         // second of the phase each ack was due in, parallel to acks
	late        []time.Duration // open loop: due moment -> the send began (a free connection, this process's CPU)
	steal, idle float64         // shares of the machine's CPU time while sending (/proc/stat)
	serverP50   float64         // seconds, bucket bounds of guard_webhook_ack_seconds
	serverP99   float64
	ackErrors   int64
	sent        int64
	elapsed     time.Duration
	loaded      []time.Duration // delivery -> check run under load
	series      []sample
	drained     time.Duration
	drainedOK   bool
	callsLoad   int64
	decidedLoad int64
	rss         int64
	guardCPU    time.Duration // during the sending part of the throughput phase
	toolCPU     time.Duration // this process: senders and fake GitHub
}

func (r *report) sequential(ctx context.Context, s *sender, h *hook, fake *githubtest.Server, w *world, ds []delivery) error {
	for i := range min(r.o.samples, len(ds)) {
		d := ds[i]
		fake.ResetCalls()
		c := h.wait(d.p.repo, d.p.head)
		start := time.Now()
		code, err := s.send(ctx, d)
		if err != nil || code != http.StatusAccepted {
			return fmt.Errorf("delivery answered %d: %v", code, err)
		}
		select {
		case at := <-c:
			r.decide = append(r.decide, at.Sub(start))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no check run on %s@%s 30s after the delivery", d.p.repo, d.p.head[:7])
		case <-ctx.Done():
			return ctx.Err()
		}
		// The check run is written before the decision is recorded: let
		// the worker finish so the next delivery's calls are its own.
		time.Sleep(2 * time.Millisecond)
		calls, free := len(fake.Calls()), len(fake.FreeCalls())
		if d.p.agent {
			r.callsAgent, r.freeAgent = append(r.callsAgent, calls), append(r.freeAgent, free)
		} else {
			r.callsHuman, r.freeHuman = append(r.callsHuman, calls), append(r.freeHuman, free)
		}
	}
	return nil
}

func (r *report) throughput(ctx context.Context, s *sender, h *hook, fake *githubtest.Server, g *guardProc, ds []delivery) error {
	fake.ResetCalls()
	writes0 := h.writes.Load()
	phase, cancel := context.WithTimeout(ctx, r.o.duration)
	defer cancel()
	start := time.Now()
	var (
		next    atomic.Int64
		ackMu   sync.Mutex
		errs    atomic.Int64
		acked   atomic.Int64
		calls   atomic.Int64
		wg      sync.WaitGroup
		ticks   chan time.Time
		scraper = &http.Client{Timeout: 5 * time.Second}
	)
	r.acks = make([]time.Duration, 0, min(r.o.max, 1<<20))
	serverBefore, _ := g.ackBuckets(scraper)
	guardCPU0, toolCPU0 := cpuTime(g.cmd.Process.Pid), cpuTime(0)
	machine0 := readMachineCPU()
	if r.o.rate > 0 {
		// Open loop: sends are scheduled at a fixed rate and timed from
		// their scheduled moment, so a slow guard cannot hide its queueing.
		ticks = make(chan time.Time, 1<<16)
		go func() {
			defer close(ticks)
			interval := time.Duration(float64(time.Second) / r.o.rate)
			for i := 0; i < r.o.max; i++ {
				at := start.Add(time.Duration(i) * interval)
				if d := time.Until(at); d > 0 {
					select {
					case <-phase.Done():
						return
					case <-time.After(d):
					}
				}
				if phase.Err() != nil {
					return
				}
				ticks <- at
			}
		}()
	}
	for range r.o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.conn()
			defer c.close()
			local := make([]time.Duration, 0, 4096)
			secs := make([]int32, 0, 4096)
			var late []time.Duration
			defer func() {
				ackMu.Lock()
				r.acks = append(r.acks, local...)
				r.ackSecs = append(r.ackSecs, secs...)
				r.late = append(r.late, late...)
				ackMu.Unlock()
			}()
			for phase.Err() == nil {
				at := time.Now()
				if ticks != nil {
					var ok bool
					if at, ok = <-ticks; !ok {
						return
					}
				}
				i := next.Add(1) - 1
				if i >= int64(r.o.max) {
					return
				}
				d := ds[i%int64(len(ds))]
				if ticks != nil {
					late = append(late, time.Since(at))
				}
				h.sent(d.p.repo, d.p.head, at)
				code, err := c.send(d)
				if err != nil || code != http.StatusAccepted {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(at))
				secs = append(secs, int32(at.Sub(start)/time.Second))
				acked.Add(1)
			}
		}()
	}
	// Sample queue depth, RSS and progress every second; bound the fake's
	// call log while counting it.
	lastCPU := readMachineCPU()
	lastBuckets := serverBefore
	sampleOnce := func() {
		calls.Add(int64(len(fake.Calls())))
		fake.ResetCalls()
		depth, _ := g.queueDepth(scraper)
		cpu := readMachineCPU()
		steal, _ := cpu.since(lastCPU)
		lastCPU = cpu
		var inP99 float64
		if b, err := g.ackBuckets(scraper); err == nil && lastBuckets != nil {
			inP99 = bucketQuantile(lastBuckets, b, .99)
			lastBuckets = b
		}
		r.series = append(r.series, sample{at: time.Since(start), depth: depth, rss: procStatus(g.cmd.Process.Pid, "VmRSS:"),
			acks: acked.Load(), wrote: h.writes.Load() - writes0, steal: steal, inP99: inP99})
	}
	stopSampling := make(chan struct{})
	samplingDone := make(chan struct{})
	go func() {
		defer close(samplingDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				sampleOnce()
			}
		}
	}()
	wg.Wait()
	r.elapsed = time.Since(start)
	if after, err := g.ackBuckets(scraper); err == nil && serverBefore != nil {
		r.serverP50, r.serverP99 = bucketQuantile(serverBefore, after, .5), bucketQuantile(serverBefore, after, .99)
	}
	r.guardCPU, r.toolCPU = cpuTime(g.cmd.Process.Pid)-guardCPU0, cpuTime(0)-toolCPU0
	r.steal, r.idle = readMachineCPU().since(machine0)
	r.sent = next.Load()
	if r.sent > int64(r.o.max) {
		r.sent = int64(r.o.max)
	}
	r.ackErrors = errs.Load()

	// Drain.
	drainStart := time.Now()
	for time.Since(drainStart) < r.o.drain && ctx.Err() == nil {
		depth, err := g.queueDepth(scraper)
		if err == nil && depth == 0 {
			r.drainedOK = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.drained = time.Since(drainStart)
	close(stopSampling)
	<-samplingDone
	sampleOnce()
	r.callsLoad = calls.Load()
	r.decidedLoad = h.writes.Load() - writes0
	h.mu.Lock()
	r.loaded = slices.Clone(h.lat)
	h.mu.Unlock()
	return ctx.Err()
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func mean(n []int) float64 {
	if len(n) == 0 {
		return 0
	}
	t := 0
	for _, v := range n {
		t += v
	}
	return float64(t) / float64(len(n))
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms" }

// printFloor writes what a -floor run measured: the receiver's
// acknowledgements, by the second too.
func (r *report) printFloor(out io.Writer) {
	what := "checks the signature and answers 202"
	if r.o.floor == "fsync" {
		what = "checks the signature, writes the delivery (S2) with a group fdatasync and answers 202"
	}
	fmt.Fprintf(out, "# floor (-floor %s): a receiver that %s, nothing else; %s, %s\n",
		r.o.floor, what, r.mode(), r.o.duration)
	fmt.Fprintf(out, "acknowledgements: %d in %s = %.0f/s (%d errors)\n",
		len(r.acks), r.window().Round(time.Millisecond), float64(len(r.acks))/r.window().Seconds(), r.ackErrors)
	fmt.Fprintf(out, "CPU while sending: receiver %.2f cores, load tool %.2f cores; machine idle %.0f%%, stolen by the hypervisor %.0f%%\n",
		r.guardCPU.Seconds()/r.elapsed.Seconds(), r.toolCPU.Seconds()/r.elapsed.Seconds(), r.idle*100, r.steal*100)
	fmt.Fprintf(out, "ack latency: p50 %s  p99 %s  p99.9 %s  max %s\n",
		ms(pct(r.acks, .5)), ms(pct(r.acks, .99)), ms(pct(r.acks, .999)), ms(pct(r.acks, 1)))
	r.printLate(out)
	bySec := r.bySecond()
	fmt.Fprintln(out, "\n  t(s)  acked   ack-p50  ack-p99  stolen")
	for _, s := range r.series {
		fmt.Fprintf(out, "  %4.0f  %7d  %s  %5.0f%%\n", s.at.Seconds(), s.acks, latCells(bySec[int(s.at.Seconds()+.5)]), s.steal*100)
	}
}

// mode names how the throughput phase sent.
func (r *report) mode() string {
	if r.o.rate > 0 {
		return fmt.Sprintf("open loop at %.0f/s, %d connections", r.o.rate, r.o.conns)
	}
	return fmt.Sprintf("closed loop, %d connections", r.o.conns)
}

// window is what the throughput phase's rate is over. A closed loop's is
// the time until its last answer; an open loop's the time its deliveries
// were due in (the last answer comes a few ms after the phase, which
// would make 3,000/s read 2,999).
func (r *report) window() time.Duration {
	if r.o.rate > 0 {
		return r.o.duration
	}
	return r.elapsed
}

func (r *report) printLate(out io.Writer) {
	if len(r.late) > 0 {
		fmt.Fprintf(out, "sends began after their due moment by: p50 %s  p99 %s  max %s (waiting for a free connection or for this process's CPU; part of the ack latency)\n",
			ms(pct(r.late, .5)), ms(pct(r.late, .99)), ms(pct(r.late, 1)))
	}
}

// bySecond groups the ack latencies by the second of the phase each
// delivery was due in (t-1 .. t).
func (r *report) bySecond() map[int][]time.Duration {
	bySec := map[int][]time.Duration{}
	for i, d := range r.acks {
		bySec[int(r.ackSecs[i])+1] = append(bySec[int(r.ackSecs[i])+1], d)
	}
	return bySec
}

// latCells is the p50 and p99 columns of one second's acks.
func latCells(ds []time.Duration) string {
	if len(ds) == 0 {
		return "       -        -"
	}
	return fmt.Sprintf("%8s %8s", strconv.FormatFloat(float64(pct(ds, .5))/1e6, 'f', 1, 64), strconv.FormatFloat(float64(pct(ds, .99))/1e6, 'f', 1, 64))
}

// print writes the report and returns whether a target was missed.
func (r *report) print(out io.Writer) bool {
	o := r.o
	missed := false
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		missed = true
		return "MISSED"
	}
	fmt.Fprintf(out, "# setup: %d repos x %d PRs (%.0f%% agent), fake GitHub latency %s, guard --workers %d, %s, %s\n",
		o.repos, o.prs, o.agentShare*100, o.latency, o.workers, r.mode(), o.duration)

	fmt.Fprintf(out, "\ndelivery -> check run, one at a time (%d deliveries): p50 %s  p99 %s  max %s   [target p50 <= 10 ms with latency 0: %s]\n",
		len(r.decide), ms(pct(r.decide, .5)), ms(pct(r.decide, .99)), ms(pct(r.decide, 1)),
		verdict(o.latency > 0 || pct(r.decide, .5) <= 10*time.Millisecond))
	fmt.Fprintf(out, "GitHub calls per event (steady state): human PR %.2f (max %d) + %.2f free 304s [target <= 1: %s]; agent PR %.2f (max %d) + %.2f free 304s [target <= 4: %s]\n",
		mean(r.callsHuman), slices.Max(append([]int{0}, r.callsHuman...)), mean(r.freeHuman),
		verdict(slices.Max(append([]int{0}, r.callsHuman...)) <= 1),
		mean(r.callsAgent), slices.Max(append([]int{0}, r.callsAgent...)), mean(r.freeAgent),
		verdict(slices.Max(append([]int{0}, r.callsAgent...)) <= 4))

	acked := len(r.acks)
	window := r.window()
	rate := float64(acked) / window.Seconds()
	fmt.Fprintf(out, "\nacknowledgements: %d in %s = %.0f/s (%d errors)   [target >= 3000/s: %s]\n",
		acked, window.Round(time.Millisecond), rate, r.ackErrors, verdict(math.Round(rate) >= 3000 && r.ackErrors == 0))
	fmt.Fprintf(out, "CPU while sending: guard %.2f cores, load tool (senders + fake GitHub) %.2f cores; machine idle %.0f%%, stolen by the hypervisor %.0f%%\n",
		r.guardCPU.Seconds()/r.elapsed.Seconds(), r.toolCPU.Seconds()/r.elapsed.Seconds(), r.idle*100, r.steal*100)
	fmt.Fprintf(out, "ack latency: p50 %s  p99 %s  p99.9 %s  max %s   [target p99 <= 15 ms: %s]\n",
		ms(pct(r.acks, .5)), ms(pct(r.acks, .99)), ms(pct(r.acks, .999)), ms(pct(r.acks, 1)), verdict(pct(r.acks, .99) <= 15*time.Millisecond))
	r.printLate(out)
	if r.serverP99 > 0 {
		fmt.Fprintf(out, "ack latency inside the guard (guard_webhook_ack_seconds, handler start to reply; bucket bounds): p50 <= %s  p99 <= %s\n",
			ms(time.Duration(r.serverP50*1e9)), ms(time.Duration(r.serverP99*1e9)))
	}
	drain := "drained"
	if !r.drainedOK {
		drain = "NOT drained"
	}
	fmt.Fprintf(out, "processing: %d check runs written during load+drain, %s %s after the senders stopped; %.2f GitHub calls per delivery\n",
		r.decidedLoad, drain, r.drained.Round(100*time.Millisecond), float64(r.callsLoad)/float64(max(r.decidedLoad, 1)))
	fmt.Fprintf(out, "delivery -> check run under load (%d): p50 %s  p99 %s  max %s\n",
		len(r.loaded), ms(pct(r.loaded, .5)), ms(pct(r.loaded, .99)), ms(pct(r.loaded, 1)))
	fmt.Fprintf(out, "guard peak RSS (VmHWM): %.1f MiB   [target <= 150 MiB: %s]\n", float64(r.rss)/(1<<20), verdict(r.rss > 0 && r.rss <= 150<<20))

	bySec := r.bySecond()
	fmt.Fprintln(out, "\n  t(s)  acked   check-runs  queue-depth  rss(MiB)  ack-p50  ack-p99  in-guard-p99<=  stolen")
	fmt.Fprintln(out, "  (ack p50/p99 of the deliveries due in that second; in-guard: guard_webhook_ack_seconds bucket bound since the previous line)")
	step := max(1, len(r.series)/40)
	for i, s := range r.series {
		if i%step != 0 && i != len(r.series)-1 {
			continue
		}
		lat := latCells(bySec[int(s.at.Seconds()+.5)])
		inGuard := "-"
		if s.inP99 > 0 && !math.IsInf(s.inP99, 1) {
			inGuard = strconv.FormatFloat(s.inP99*1000, 'f', 0, 64)
		}
		fmt.Fprintf(out, "  %4.0f  %7d  %9d  %11d  %8.1f  %s  %14s  %5.0f%%\n", s.at.Seconds(), s.acks, s.wrote, s.depth, float64(s.rss)/(1<<20), lat, inGuard, s.steal*100)
	}
	return missed
}
