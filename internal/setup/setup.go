// Package setup creates Merge Guard's GitHub App with GitHub's manifest flow
// and manages the credentials file it produces.
//
// Run serves a page on a loopback address whose button posts the app
// manifest (app-manifest.yml, URLs filled in) to GitHub together with a
// random state. The page's address carries a random token that only the
// terminal shows: another user of the machine can reach the loopback port
// but not the page, so cannot learn the state and send the callback a code
// for an app of their own. GitHub creates the app and sends the browser back to the
// page's /callback with a one-time code; Run checks the state (a wrong or
// missing state is answered 400 and changes nothing), exchanges the code at
// POST {api}/app-manifests/{code}/conversions and writes the returned
// credentials atomically, mode 0600, refusing to replace an existing file
// unless told to. Only one code is ever exchanged per Run.
//
// Nothing this package prints, serves or returns as an error contains a
// secret: not the private key, the webhook or client secret, nor the
// one-time code. LoadCredentials reads the file back for serve and doctor.
package setup

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	mergeguard "github.com/mergeguard/guard"
	"github.com/mergeguard/guard/internal/pr"
)

// DefaultGitHubURL is the REST API base of github.com.
const DefaultGitHubURL = "https://api.github.com/"

// DefaultListen is where the setup page listens when neither Listener nor
// Listen is given: loopback, on a free port.
const DefaultListen = "127.0.0.1:0"

// callbackPath is where GitHub sends the browser back with ?code=&state=.
const callbackPath = "/callback"

// Options configure Run. Only PublicURL is required.
type Options struct {
	// PublicURL is the base URL at which GitHub reaches the guard (a
	// tunnel or the public address); the webhook is PublicURL + "/webhook".
	PublicURL string
	// Org creates the app owned by this organization; empty: by the
	// signed-in user's personal account.
	Org string
	// Name overrides the app name from the manifest (GitHub App names are
	// unique across GitHub; the user may also edit it on GitHub's page).
	Name string
	// GitHubURL is the REST API base: https://api.github.com/ (default) or,
	// for GitHub Enterprise Server, https://HOST/api/v3/.
	GitHubURL string
	// WebURL is where the browser registers the app; empty: derived from
	// GitHubURL (https://github.com, https://HOST for GHES).
	WebURL string
	// Manifest is the manifest YAML; nil: the embedded app-manifest.yml.
	Manifest []byte
	// Listener serves the setup page; nil: Run listens on Listen, which must
	// be a loopback address (default 127.0.0.1:0). Run closes it.
	Listener net.Listener
	Listen   string
	// HTTPClient exchanges the code with GitHub; nil: a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Out receives instructions and next steps (never a secret); nil: discarded.
	Out io.Writer
	// CredentialsPath is the file to write; empty: DefaultCredentialsFile.
	CredentialsPath string
	// Force replaces an existing credentials file.
	Force bool
}

// Run performs the manifest flow and returns the new app's credentials once
// they are written. It returns early, before serving anything, when the
// options are invalid or the credentials file exists and Force is off. It
// ends with an error when the exchange or the write fails, or when ctx is
// done (the user gave up); in both cases no credentials file is written.
func Run(ctx context.Context, o Options) (Credentials, error) {
	f, err := newFlow(o)
	if err != nil {
		return Credentials{}, err
	}
	f.ctx = ctx
	ln := o.Listener
	if ln == nil {
		if ln, err = listenLoopback(o.Listen); err != nil {
			return Credentials{}, err
		}
	}
	defer ln.Close()
	if err := f.prepare(ln.Addr().String()); err != nil {
		return Credentials{}, err
	}

	srv := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx) // lets the last page reach the browser
	}()

	f.printIntro()
	select {
	case <-ctx.Done():
		// Wait for an exchange under way (it fails fast: it runs on ctx)
		// and stop any later one, so that the answer below is the truth.
		f.mu.Lock()
		f.finished = true
		f.mu.Unlock()
		select {
		case r := <-f.result:
			if r.err == nil {
				f.printNextSteps(r.creds)
				return r.creds, nil
			}
		default:
		}
		return Credentials{}, fmt.Errorf("setup stopped before GitHub returned (%w); no credentials were written", context.Cause(ctx))
	case err := <-serveErr:
		return Credentials{}, fmt.Errorf("serve setup page: %w", err)
	case r := <-f.result:
		if r.err != nil {
			return Credentials{}, r.err
		}
		f.printNextSteps(r.creds)
		return r.creds, nil
	}
}

// flow is one run of the manifest flow.
type flow struct {
	o        Options
	ctx      context.Context // Run's: bounds the exchange
	api      *url.URL
	web      string
	path     string // credentials file, absolute
	manifest *mergeguard.AppManifest
	state    string
	token    string // the page's: ?token= on its address
	local    string // http://127.0.0.1:PORT
	page     string // local + "/?token=" + token
	action   string // GitHub's "new app" URL with the state
	json     string // the filled manifest, JSON
	hosts    map[string]bool
	out      io.Writer
	client   *http.Client

	mu       sync.Mutex
	finished bool // a code was exchanged (successfully or not)
	result   chan result
}

type result struct {
	creds Credentials
	err   error
}

// newFlow checks the options that do not depend on the listener.
func newFlow(o Options) (*flow, error) {
	f := &flow{o: o, out: o.Out, client: o.HTTPClient, result: make(chan result, 1)}
	if f.out == nil {
		f.out = io.Discard
	}
	if f.client == nil {
		f.client = &http.Client{Timeout: 30 * time.Second}
	}
	if strings.TrimSpace(o.PublicURL) == "" {
		return nil, errors.New("the public URL is required: pass the https URL at which GitHub can reach the guard, such as your tunnel's (webhooks go to PUBLIC_URL/webhook)")
	}
	if o.Org != "" && !pr.ValidOrgLogin(o.Org) {
		return nil, fmt.Errorf("organization %q is not a valid GitHub login", o.Org)
	}
	gh := o.GitHubURL
	if gh == "" {
		gh = DefaultGitHubURL
	}
	api, err := apiBase(gh)
	if err != nil {
		return nil, err
	}
	f.api = api
	if o.WebURL != "" {
		f.web = strings.TrimRight(o.WebURL, "/")
	} else if f.web, err = webBase(api); err != nil {
		return nil, err
	}
	data := o.Manifest
	if data == nil {
		data = mergeguard.Manifest
	}
	if f.manifest, err = mergeguard.Parse(data); err != nil {
		return nil, err
	}
	if o.Name != "" {
		if len([]rune(o.Name)) > mergeguard.MaxNameLength {
			return nil, fmt.Errorf("app name %q is longer than GitHub's %d characters", o.Name, mergeguard.MaxNameLength)
		}
		f.manifest.Name = o.Name
	}
	path := o.CredentialsPath
	if path == "" {
		path = DefaultCredentialsFile
	}
	if f.path, err = filepath.Abs(path); err != nil {
		return nil, fmt.Errorf("credentials path: %w", err)
	}
	if err := checkWritable(f.path, o.Force); err != nil {
		return nil, err
	}
	return f, nil
}

// checkWritable fails early, before the user creates an app on GitHub, when
// the credentials could not be written.
func checkWritable(path string, force bool) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory: pass a file name to write the credentials to", path)
		}
		if !force {
			return fmt.Errorf("%s already exists and may hold the credentials of an app created earlier: pass --force to replace it, or choose another file", path)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check credentials file: %w", err)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("credentials directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("credentials directory %s is not a directory", dir)
	}
	return nil
}

// prepare fills in everything that depends on the listener's address.
func (f *flow) prepare(addr string) error {
	f.local = "http://" + addr
	f.hosts = map[string]bool{addr: true}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		f.hosts[net.JoinHostPort("localhost", port)] = true
	}
	m, err := f.manifest.Fill(f.o.PublicURL, f.local+callbackPath)
	if err != nil {
		return err
	}
	f.manifest = m
	raw, err := m.JSON()
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	f.json = string(raw)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("random state: %w", err)
	}
	f.state = hex.EncodeToString(b[:])
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("random token: %w", err)
	}
	f.token = hex.EncodeToString(b[:])
	f.page = f.local + "/?" + url.Values{"token": {f.token}}.Encode()
	newApp := f.web + "/settings/apps/new"
	if f.o.Org != "" {
		newApp = f.web + "/organizations/" + url.PathEscape(f.o.Org) + "/settings/apps/new"
	}
	f.action = newApp + "?" + url.Values{"state": {f.state}}.Encode()
	return nil
}

// listenLoopback listens on addr, which must be a loopback address: the
// page hands out the state, and only the local browser may see it.
func listenLoopback(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultListen
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("listen address %q is not a loopback address: the setup page must not be reachable from the network; use 127.0.0.1:PORT (on a remote machine, forward it with ssh -L PORT:127.0.0.1:PORT)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the setup page: %w", err)
	}
	return ln, nil
}

// apiBase parses the REST API base and gives it a trailing slash.
func apiBase(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("GitHub URL %q is not an http(s) URL: use https://api.github.com/ or, for GitHub Enterprise Server, https://HOST/api/v3/", redactURL(s))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// CheckGitHubURL checks a GitHub REST API base: an error when it is no
// http(s) URL; a warning when it has none of GitHub's forms
// (https://api.github.com/, https://HOST/api/v3/ for GitHub Enterprise
// Server, https://api.SUB.ghe.com/), which a proxy in front of GitHub may
// rightly not have.
func CheckGitHubURL(s string) (warning string, err error) {
	api, err := apiBase(s)
	if err != nil {
		return "", err
	}
	if _, err := webBase(api); err != nil {
		return err.Error() + " (fine for a proxy in front of GitHub's API)", nil
	}
	return "", nil
}

// webBase derives the web address where apps are registered from the API
// base: api.github.com → github.com, HOST/api/v3/ → HOST (GHES),
// api.SUB.ghe.com → SUB.ghe.com.
func webBase(api *url.URL) (string, error) {
	host := api.Host
	switch {
	case host == "api.github.com":
		return "https://github.com", nil
	case strings.HasPrefix(api.Path, "/api/v3/"):
		return api.Scheme + "://" + host, nil
	case strings.HasPrefix(host, "api.") && strings.HasSuffix(host, ".ghe.com"):
		return api.Scheme + "://" + strings.TrimPrefix(host, "api."), nil
	}
	return "", fmt.Errorf("cannot tell GitHub's web address from the API URL %s: use https://api.github.com/ or, for GitHub Enterprise Server, https://HOST/api/v3/", api.Redacted())
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// codeRE is what a manifest code looks like; anything else never reaches
// the API path.
var codeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func (f *flow) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", f.servePage)
	mux.HandleFunc("GET "+callbackPath, f.serveCallback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// No form-action: GitHub may redirect the form's POST to a login
		// or SSO page on another host, which form-action would block.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if !f.hosts[r.Host] { // DNS rebinding: only the loopback address itself
			http.Error(w, "unexpected Host header: open the address guard setup printed", http.StatusMisdirectedRequest)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *flow) servePage(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(f.token)) != 1 {
		message(w, http.StatusForbidden, "Open the address guard setup printed",
			"This page is only shown at the address guard setup printed in its terminal, which carries a token (so that other users of this machine cannot use it).")
		return
	}
	perms := make([]string, 0, len(f.manifest.DefaultPermissions))
	for _, k := range sortedKeys(f.manifest.DefaultPermissions) {
		perms = append(perms, k+": "+f.manifest.DefaultPermissions[k])
	}
	render(w, http.StatusOK, pageTmpl, map[string]any{
		"Name": f.manifest.Name, "Org": f.o.Org, "Web": f.web, "Action": f.action,
		"Manifest": f.json, "Hook": f.manifest.HookAttributes.URL,
		"Permissions": perms, "Events": f.manifest.DefaultEvents, "Path": f.path,
	})
}

func (f *flow) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	if subtle.ConstantTimeCompare([]byte(state), []byte(f.state)) != 1 {
		message(w, http.StatusBadRequest, "Wrong or missing state",
			"This request did not come from the page guard setup is showing. Nothing was exchanged or written. Start again from the address guard setup printed in your terminal.")
		return
	}
	if !codeRE.MatchString(code) {
		message(w, http.StatusBadRequest, "Missing code",
			"GitHub's redirect carries no valid code. Nothing was exchanged or written. Start again from the address guard setup printed in your terminal.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finished {
		message(w, http.StatusConflict, "Already done",
			"guard setup has already exchanged a code; see its output in your terminal.")
		return
	}
	f.finished = true
	creds, err := f.exchange(f.ctx, code)
	if err == nil {
		err = f.write(creds)
	}
	if err != nil {
		message(w, http.StatusBadGateway, "Setup failed", err.Error()+" (see your terminal)")
		f.result <- result{err: err}
		return
	}
	render(w, http.StatusOK, doneTmpl, map[string]any{
		"Name": creds.Name, "Install": installURL(creds), "Path": f.path,
	})
	f.result <- result{creds: creds}
}

// exchange trades the one-time code for the app's credentials.
func (f *flow) exchange(ctx context.Context, code string) (Credentials, error) {
	client := github.NewClient(f.client)
	client.BaseURL = f.api
	cfg, _, err := client.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		return Credentials{}, f.exchangeError(err, code)
	}
	c := Credentials{
		AppID:         cfg.GetID(),
		Slug:          cfg.GetSlug(),
		Name:          cfg.GetName(),
		HTMLURL:       cfg.GetHTMLURL(),
		Owner:         cfg.GetOwner().GetLogin(),
		GitHubURL:     f.api.String(),
		ClientID:      cfg.GetClientID(),
		ClientSecret:  cfg.GetClientSecret(),
		WebhookSecret: cfg.GetWebhookSecret(),
		PEM:           cfg.GetPEM(),
	}
	if c.AppID <= 0 || c.PEM == "" {
		return Credentials{}, fmt.Errorf("GitHub's answer to the code exchange lacks the app id or private key; nothing was written: open %s/settings/apps, delete the half-created app if present, and run guard setup again", f.web)
	}
	return c, nil
}

// exchangeError explains a failed exchange without the one-time code, which
// go-github puts into its error texts (the URL path).
func (f *flow) exchangeError(err error, code string) error {
	const again = "run guard setup again (if GitHub created the app anyway, delete it first under Settings > Developer settings > GitHub Apps)"
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		msg := githubMessage(er)
		switch er.Response.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("exchange manifest code: GitHub at %s answered 404 Not Found%s: a code is valid once and for one hour, and --github-url must be the server the app was created on; nothing was written; %s", f.api, msg, again)
		case http.StatusUnprocessableEntity:
			return fmt.Errorf("exchange manifest code: GitHub refused the code (422 Unprocessable Entity%s): a code is valid once and for one hour; nothing was written; %s", msg, again)
		default:
			return fmt.Errorf("exchange manifest code: GitHub answered %d %s%s; nothing was written; %s", er.Response.StatusCode, http.StatusText(er.Response.StatusCode), msg, again)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("exchange manifest code: POST %sapp-manifests/…/conversions: %s; nothing was written; check --github-url and the network, then %s", f.api, strings.ReplaceAll(ue.Err.Error(), code, "…"), again)
	}
	return fmt.Errorf("exchange manifest code: %s; nothing was written; %s", strings.ReplaceAll(err.Error(), code, "…"), again)
}

// githubMessage returns ": message (errors)" from GitHub's error body, which
// go-github drops when "errors" is a list of strings (validation-error-simple).
func githubMessage(er *github.ErrorResponse) string {
	msg := er.Message
	var extra []string
	if er.Response.Body != nil {
		var body struct {
			Message string `json:"message"`
			Errors  []any  `json:"errors"`
		}
		if data, err := io.ReadAll(io.LimitReader(er.Response.Body, 64<<10)); err == nil && json.Unmarshal(data, &body) == nil {
			if msg == "" {
				msg = body.Message
			}
			for _, e := range body.Errors {
				if s, ok := e.(string); ok {
					extra = append(extra, s)
				}
			}
		}
	}
	if len(extra) > 0 {
		msg += " (" + strings.Join(extra, "; ") + ")"
	}
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func (f *flow) write(c Credentials) error {
	if err := writeCredentials(f.path, c, f.o.Force); err != nil {
		where := f.web + "/settings/apps/" + c.Slug
		if c.Owner != "" && strings.EqualFold(c.Owner, f.o.Org) {
			where = f.web + "/organizations/" + c.Owner + "/settings/apps/" + c.Slug
		}
		if errors.Is(err, errExists) {
			return fmt.Errorf("the app %s was created, but %s appeared meanwhile and was left alone: generate a private key at %s and write the credentials by hand, or delete the app there and run guard setup again", c, f.path, where)
		}
		return fmt.Errorf("the app %s was created, but its credentials could not be written (%w): generate a private key and a webhook secret at %s, or delete the app there and run guard setup again", c, err, where)
	}
	return nil
}

func installURL(c Credentials) string {
	if c.HTMLURL == "" {
		return ""
	}
	return strings.TrimRight(c.HTMLURL, "/") + "/installations/new"
}

func (f *flow) printIntro() {
	owner := "your personal account"
	if f.o.Org != "" {
		owner = "the organization " + f.o.Org
	}
	fmt.Fprintf(f.out, "Open this page in a browser on this machine and press the button to create the app, owned by %s, on %s:\n\n    %s\n\n", owner, f.web, f.page)
	fmt.Fprintf(f.out, "Webhooks will go to %s; the credentials will be written to %s.\n", f.manifest.HookAttributes.URL, f.path)
	if strings.HasPrefix(f.manifest.HookAttributes.URL, "http://") {
		fmt.Fprintln(f.out, "Warning: the public URL is plain http; GitHub would send webhooks unencrypted. Use an https tunnel or proxy.")
	}
	fmt.Fprintln(f.out, "Waiting for GitHub to send the browser back (Ctrl-C to give up)...")
}

func (f *flow) printNextSteps(c Credentials) {
	w := f.out
	fmt.Fprintf(w, "\nCreated %s, %q, owned by %s.\n", c, c.Name, c.Owner)
	fmt.Fprintf(w, "Credentials written to %s (mode 0600). Keep that file secret: it holds the app's private key and webhook secret.\n", f.path)
	if c.WebhookSecret == "" {
		fmt.Fprintf(w, "Warning: GitHub returned no webhook secret. Set one in the app's settings and add it to %s as \"webhook_secret\" (or pass --webhook-secret to serve).\n", f.path)
	}
	serve := "guard serve --credentials " + f.path + " --public-url " + strings.TrimSuffix(f.manifest.HookAttributes.URL, "/webhook")
	if f.api.String() != DefaultGitHubURL {
		serve += " --github-url " + f.api.String()
	}
	fmt.Fprintf(w, "\nNext steps:\n")
	fmt.Fprintf(w, "  1. Install the app on your organization and choose its repositories:\n       %s\n", installURL(c))
	fmt.Fprintf(w, "  2. Run the guard where GitHub reaches %s:\n       %s\n", f.manifest.HookAttributes.URL, serve)
	fmt.Fprintf(w, "  3. Make %s a required status check pinned to this app, so that nobody else can post a passing one:\n", "merge-guard")
	fmt.Fprintf(w, "       branch protection: Require status checks to pass > merge-guard, with %q as the expected source (app_id %d)\n", c.Name, c.AppID)
	fmt.Fprintf(w, "       rulesets: Require status checks to pass > merge-guard, with integration_id %d\n", c.AppID)
	fmt.Fprintf(w, "  4. Check the installation:\n       GUARD_CREDENTIALS=%s guard doctor\n", f.path)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func render(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = t.Execute(w, data) // the browser went away; nothing to do
}

func message(w http.ResponseWriter, status int, title, text string) {
	render(w, status, messageTmpl, map[string]string{"Title": title, "Text": text})
}
