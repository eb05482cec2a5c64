package main

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mergeguard "github.com/mergeguard/guard"
	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/guard"
	"github.com/mergeguard/guard/internal/metrics"
	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/internal/setup"
	"github.com/mergeguard/guard/internal/webhook"
)

// serveConfig is everything `guard serve` is configured with (SPEC §3).
type serveConfig struct {
	Addr           string
	DB             string
	ConfigPath     string
	Credentials    string
	AppID          int64
	PrivateKey     []byte
	WebhookSecret  string
	PreviousSecret string
	GitHubURL      string
	PublicURL      string
	LinkSecret     string
	PolicyDir      string
	ExportDir      string
	Workers        int
	LogLevel       string
	// gitHubURLWarning is logged at start: GitHubURL has none of GitHub's
	// forms (a proxy may rightly have another).
	gitHubURLWarning string

	// Set by tests: the clock, the scheduler's tick and a channel told the
	// listening address.
	now           func() time.Time
	tick          time.Duration
	ready         chan<- string
	ghSleep       func(ctx context.Context, d time.Duration) error // GitHub retry waits
	reloadEvery   time.Duration                                    // policy directory polling
	reconcile     time.Duration                                    // repair interval (negative: off)
	maxQueued     int                                              // deliveries the dispatcher holds (0: maxQueued)
	shutdownGrace time.Duration                                    // for deliveries under way at shutdown (0: the dispatcher's 5 s)
}

// envOr returns the environment variable key, or def.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

const credentialsDefault = "guard-credentials.json"

func runServe(ctx context.Context, args []string, s stdio) error {
	c, err := parseServe(args, s)
	if err != nil {
		return err
	}
	return serve(ctx, c, s)
}

// parseServe reads flags and environment and fills in the credentials.
func parseServe(args []string, s stdio) (*serveConfig, error) {
	fs := newFlagSet("serve", "serve [flags]   (every flag but --workers also has an environment variable)", s)
	c := &serveConfig{}
	fs.StringVar(&c.Addr, "addr", envOr("GUARD_ADDR", ":8080"), "listen address `[host]:port` (GUARD_ADDR)")
	fs.StringVar(&c.DB, "db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	fs.StringVar(&c.ConfigPath, "config", envOr("GUARD_CONFIG", ""), "policy settings `file` (GUARD_CONFIG; default guard.yaml if present, else built-in defaults)")
	cf := addCredentialFlags(fs)
	fs.StringVar(&c.WebhookSecret, "webhook-secret", envOr("GUARD_WEBHOOK_SECRET", ""), "webhook `secret` (GUARD_WEBHOOK_SECRET; GUARD_WEBHOOK_SECRET_PREVIOUS is also accepted while rotating)")
	fs.StringVar(&c.PublicURL, "public-url", envOr("GUARD_PUBLIC_URL", ""), "public base `URL` of this guard, for check-run links (GUARD_PUBLIC_URL)")
	fs.StringVar(&c.LinkSecret, "link-secret", envOr("GUARD_LINK_SECRET", ""), "`key` that signs details links, at least 16 bytes (GUARD_LINK_SECRET; default derived from the webhook secret)")
	fs.StringVar(&c.PolicyDir, "policy-dir", envOr("GUARD_POLICY_DIR", ""), "`dir` of Rego policies to use instead of the embedded ones (GUARD_POLICY_DIR)")
	fs.StringVar(&c.ExportDir, "export-dir", envOr("GUARD_EXPORT_DIR", ""), "`dir` for weekly audit exports (GUARD_EXPORT_DIR; default exports/ beside the database)")
	fs.IntVar(&c.Workers, "workers", 8, "deliveries processed in parallel")
	fs.StringVar(&c.LogLevel, "log-level", envOr("GUARD_LOG_LEVEL", "info"), "debug, info, warn or error (GUARD_LOG_LEVEL)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErr("unexpected argument %q", fs.Arg(0))
	}
	c.PreviousSecret = os.Getenv("GUARD_WEBHOOK_SECRET_PREVIOUS")

	cred, err := cf.resolve(c.WebhookSecret)
	if err != nil {
		return nil, err
	}
	c.Credentials, c.AppID, c.PrivateKey, c.WebhookSecret, c.GitHubURL = cred.File, cred.AppID, cred.PrivateKey, cred.WebhookSecret, cred.GitHubURL
	if c.WebhookSecret == "" {
		return nil, usageErr("the webhook secret is required: pass --webhook-secret or GUARD_WEBHOOK_SECRET")
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		return nil, usageErr("--workers %d: want 1 to %d", c.Workers, maxWorkers)
	}
	if c.gitHubURLWarning, err = setup.CheckGitHubURL(c.GitHubURL); err != nil {
		return nil, usageErr("--github-url (GUARD_GITHUB_URL or the credentials file): %v", err)
	}
	if c.PublicURL != "" {
		if _, err := mergeguard.PublicURL(c.PublicURL); err != nil {
			return nil, usageErr("--public-url (GUARD_PUBLIC_URL): %v; want the https address at which people open the guard's pages, like https://guard.example.com", err)
		}
	}
	if c.LinkSecret != "" && len(c.LinkSecret) < minLinkSecret {
		return nil, usageErr("--link-secret (GUARD_LINK_SECRET) has %d bytes, fewer than %d: use a random key, like the output of 'openssl rand -hex 32', or leave it out to derive one from the webhook secret", len(c.LinkSecret), minLinkSecret)
	}
	return c, nil
}

// checkExportDir checks that the weekly exports can be written into dir:
// it or, while it does not exist (it is created at the first export), its
// nearest existing parent must be a folder this user can write in. A week
// closes days after the start, and only then would a bad folder show, as a
// log line. Nothing is left behind.
func checkExportDir(dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("export dir %s: %w (pass --export-dir or GUARD_EXPORT_DIR with a folder this user can write)", dir, err)
	}
	at, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	for {
		fi, err := os.Stat(at)
		if err == nil {
			if !fi.IsDir() {
				return fail(fmt.Errorf("%s is not a folder", at))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(at) == at {
			return fail(err)
		}
		at = filepath.Dir(at)
	}
	f, err := os.CreateTemp(at, ".guard-write-check-*")
	if err != nil {
		return fail(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// maxWorkers bounds --workers; minLinkSecret is the shortest link secret
// accepted (a details link's signature is only as strong as its key).
const (
	maxWorkers    = 256
	minLinkSecret = 16
)

// serve runs the guard until ctx is done.
func serve(ctx context.Context, c *serveConfig, s stdio) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return usageErr("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
	now := c.now
	if now == nil {
		now = time.Now
	}

	cfgPath := c.ConfigPath
	if cfgPath == "" {
		if _, err := os.Stat("guard.yaml"); err == nil {
			cfgPath = "guard.yaml"
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	var cfgRef atomic.Pointer[config.Config]
	cfgRef.Store(cfg)

	pfs, err := policyFS(c.PolicyDir)
	if err != nil {
		return err
	}
	eng, err := policy.Compile(ctx, pfs)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	if c.PolicyDir != "" {
		// As on a reload: a set whose own tests fail is refused. (The
		// embedded set's pass in CI.)
		if err := policy.TestsPass(ctx, pfs); err != nil {
			return fmt.Errorf("policies in %s: %w; guard policy test -v %s shows why", c.PolicyDir, err, c.PolicyDir)
		}
	}
	var engRef atomic.Pointer[policy.Engine]
	engRef.Store(eng)

	var store *audit.Store // opened below, once every input has been checked
	m := metrics.New(func() (int, time.Duration) {
		depth, oldest, err := store.InboxStats(context.Background())
		if err != nil || oldest.IsZero() {
			return depth, 0
		}
		return depth, now().Sub(oldest)
	})

	app, err := gh.New(gh.Options{
		BaseURL:    c.GitHubURL,
		AppID:      c.AppID,
		PrivateKey: c.PrivateKey,
		Logger:     log,
		Sleep:      c.ghSleep,
		OnCall: func(method, route string, status int, cached bool, remaining int) {
			m.APICall(status, cached, remaining)
		},
	})
	if err != nil {
		return err
	}

	if c.DB != ":memory:" {
		if fi, err := os.Stat(filepath.Dir(c.DB)); err != nil || !fi.IsDir() {
			return fmt.Errorf("open database %s: its folder %s does not exist (create it, or pass --db or GUARD_DB with a path in an existing folder)", c.DB, filepath.Dir(c.DB))
		}
	}
	exportDir := c.ExportDir
	if exportDir == "" {
		exportDir = filepath.Join(filepath.Dir(c.DB), "exports")
	}
	if err := checkExportDir(exportDir); err != nil {
		return err
	}

	store, err = audit.Open(ctx, c.DB, audit.WithClock(now))
	if err != nil {
		return fmt.Errorf("open database: %w (check that the folder of --db %s exists and is writable)", err, c.DB)
	}
	defer store.Close()

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	if c.gitHubURLWarning != "" {
		log.Warn("--github-url: " + c.gitHubURLWarning)
	}
	publicURL := strings.TrimSuffix(c.PublicURL, "/")
	if publicURL == "" {
		publicURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		log.Warn("no --public-url: check-run links point at " + publicURL + ", which only this machine can open")
	}
	linkSecret := []byte(c.LinkSecret)
	if len(linkSecret) == 0 {
		linkSecret, err = hkdf.Key(sha256.New, []byte(c.WebhookSecret), nil, "merge-guard details links", 32)
		if err != nil {
			return fmt.Errorf("derive link secret: %w", err)
		}
	}

	g := guard.New(guard.Options{
		Store:      store,
		GitHub:     app,
		Policies:   engRef.Load,
		Config:     cfgRef.Load,
		Now:        now,
		Logger:     log,
		Metrics:    m,
		PublicURL:  publicURL,
		LinkSecret: linkSecret,
	})
	held := maxQueued
	if c.maxQueued > 0 {
		held = c.maxQueued
	}
	disp := webhook.NewDispatcher(webhook.DispatcherOptions{
		Workers: c.Workers,
		Process: g.Process,
		// Queued payloads beyond this are reloaded from the inbox when their
		// turn comes; it keeps peak RSS under 150 MiB with a large backlog.
		MaxPayloadBytes: 8 << 20,
		Load: func(ctx context.Context, seq int64) (webhook.Delivery, error) {
			d, err := store.Delivery(ctx, seq)
			return inboxToWebhook(d), err
		},
		Failed: func(ctx context.Context, d webhook.Delivery, err error) {
			if ferr := store.Fail(ctx, d.Seq, err.Error()); ferr != nil {
				log.Error("record failed delivery", "delivery", d.ID, "err", ferr)
			}
		},
		Logger: log,
		Done:   func(_ webhook.Delivery, took time.Duration) { m.Processed(took) },
		// Beyond this many the backlog stays in the inbox and is read back
		// in turn: a long flood must not grow memory past 150 MiB.
		MaxQueued:     held,
		ShutdownGrace: c.shutdownGrace,
		Refill: func(ctx context.Context, from int64, limit int) ([]webhook.Delivery, error) {
			ds, err := store.Pending(ctx, from, limit)
			out := make([]webhook.Delivery, len(ds))
			for i, d := range ds {
				out[i] = inboxToWebhook(d)
			}
			return out, err
		},
	})
	// One more than the dispatcher holds: if there are more, that one is
	// left to the inbox and marks where its refills start.
	pending, err := store.Pending(ctx, 0, held+1)
	if err != nil {
		return fmt.Errorf("read inbox: %w", err)
	}
	for _, d := range pending {
		disp.Enqueue(inboxToWebhook(d)) // without payload: the dispatcher loads it when its turn comes
	}
	if depth, _, err := store.InboxStats(ctx); err == nil && depth > 0 {
		log.Info("resuming deliveries acknowledged before the last stop", "count", depth)
	}

	secrets := [][]byte{[]byte(c.WebhookSecret)}
	if c.PreviousSecret != "" {
		secrets = append(secrets, []byte(c.PreviousSecret))
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", webhook.NewHandler(webhook.Options{
		Secrets:     func() [][]byte { return secrets },
		Inbox:       inboxAdapter{store},
		Enqueue:     disp.Receive,
		KeepPayload: disp.KeepPayload,
		Interested:  guard.Interested,
		Metrics:     m,
		Logger:      log,
		Now:         now,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := store.Ping(r.Context()); err != nil {
			http.Error(w, "database not writable", http.StatusServiceUnavailable)
			return
		}
		if engRef.Load() == nil {
			http.Error(w, "policies not compiled", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("GET /decisions/{id}", g.DecisionPage())

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	dispDone := make(chan struct{})
	go func() { disp.Run(runCtx); close(dispDone) }()
	if c.PolicyDir != "" {
		r := policy.NewReloader(eng, c.PolicyDir,
			func(err error) { log.Error("policy reload refused; keeping the last good set", "err", err) },
			func(e *policy.Engine) {
				engRef.Store(e)
				log.Info("policies reloaded", "revision", e.Revision(), "evaluator", e.Evaluator())
			})
		every := c.reloadEvery
		if every <= 0 {
			every = 2 * time.Second
		}
		go r.Watch(runCtx, every)
	}
	go g.RunRedelivery(runCtx, 10*time.Minute)
	go pruneInbox(runCtx, store, now, log)
	schedDone := make(chan struct{})
	go func() {
		g.RunScheduler(runCtx, guard.SchedulerOptions{Tick: c.tick, Reconcile: c.reconcile, ExportDir: exportDir,
			Retry: func(d audit.Delivery) { disp.Enqueue(inboxToWebhook(d)) }})
		close(schedDone)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("merge-guard listening", "addr", ln.Addr().String(), "github", c.GitHubURL,
		"app_id", c.AppID, "policy_revision", eng.Revision(), "policy_evaluator", eng.Evaluator(), "mode", cfg.Mode,
		"config", cmp.Or(cfgPath, "built-in defaults (no guard.yaml)"), "config_digest", cfg.Digest[:min(12, len(cfg.Digest))])
	if c.ready != nil {
		c.ready <- ln.Addr().String()
	}
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	<-dispDone
	<-schedDone
	log.Info("merge-guard stopped")
	return nil
}

// inboxAdapter lets the audit store serve as the webhook inbox; the two
// packages do not know each other.
type inboxAdapter struct{ s *audit.Store }

func (a inboxAdapter) Accept(ctx context.Context, d webhook.Delivery) (int64, bool, error) {
	return a.s.Accept(ctx, audit.Delivery{
		ID: d.ID, Event: d.Event, Action: d.Action, Key: d.Key, Payload: d.Payload, ReceivedAt: d.ReceivedAt,
	})
}

func inboxToWebhook(d audit.Delivery) webhook.Delivery {
	return webhook.Delivery{
		Seq: d.Seq, ID: d.ID, Event: d.Event, Action: d.Action, Key: d.Key, Payload: d.Payload, ReceivedAt: d.ReceivedAt,
	}
}

// maxQueued bounds the deliveries the dispatcher holds in memory.
const maxQueued = 20000

// inboxRetention is how long processed deliveries are kept for duplicate
// detection; GitHub redelivers only within a few days.
const inboxRetention = 30 * 24 * time.Hour

// pruneInbox deletes processed deliveries past the retention, hourly.
func pruneInbox(ctx context.Context, store *audit.Store, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := store.PruneInbox(ctx, now().Add(-inboxRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("prune inbox", "err", err)
		case n > 0:
			log.Info("pruned processed deliveries", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
