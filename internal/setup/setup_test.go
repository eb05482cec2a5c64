package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testCode = "a1b2c3d4e5f60718293a"

// fakeGitHub stands in for GitHub: it answers the manifest code exchange
// with a recorded response and counts the calls.
type fakeGitHub struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	codes  []string
	status int
	body   []byte
}

func newFakeGitHub(t *testing.T, status int, bodyFile string) *fakeGitHub {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", bodyFile))
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGitHub{status: status, body: body}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v3/app-manifests/{code}/conversions", func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		g.mu.Lock()
		g.codes = append(g.codes, r.PathValue("code"))
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(g.status)
		w.Write(g.body)
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// apiURL is the fake's REST API base, shaped like GHES's (so the web URL is
// the fake's root).
func (g *fakeGitHub) apiURL() string { return g.srv.URL + "/api/v3/" }

// secrets are the values of conversion-201.json that must never be shown.
func secrets(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("testdata/conversion-201.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		PEM           string `json:"pem"`
		WebhookSecret string `json:"webhook_secret"`
		ClientSecret  string `json:"client_secret"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(v.PEM, "\n")[1] // a line of key material
	return []string{keyLine, v.WebhookSecret, v.ClientSecret, testCode}
}

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range secrets(t) {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %.8s…", where, s)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the setup goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// session is a Run under way.
type session struct {
	local  string // http://127.0.0.1:PORT
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan runResult
	pages  []string // every page body fetched
}

type runResult struct {
	creds Credentials
	err   error
}

// start runs setup against g in the background; opts may preset fields.
func start(t *testing.T, g *fakeGitHub, opts Options) *session {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &session{local: "http://" + ln.Addr().String(), out: &syncBuffer{}, done: make(chan runResult, 1)}
	if opts.PublicURL == "" {
		opts.PublicURL = "https://guard.example.com"
	}
	if opts.GitHubURL == "" {
		opts.GitHubURL = g.apiURL()
	}
	if opts.CredentialsPath == "" {
		opts.CredentialsPath = filepath.Join(t.TempDir(), "guard-credentials.json")
	}
	opts.Listener = ln
	opts.HTTPClient = g.srv.Client()
	opts.Out = s.out
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		c, err := Run(ctx, opts)
		s.done <- runResult{c, err}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return s
}

// get fetches path from the setup page and returns status and body.
func (s *session) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.local + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	s.pages = append(s.pages, string(body))
	return resp.StatusCode, string(body)
}

func (s *session) wait(t *testing.T) runResult {
	t.Helper()
	select {
	case r := <-s.done:
		s.done <- r // let Cleanup see it too
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return runResult{}
	}
}

var (
	actionRE   = regexp.MustCompile(`<form action="([^"]+)" method="post">`)
	manifestRE = regexp.MustCompile(`name="manifest" value="([^"]*)"`)
)

// pageRE is the page's address as Run prints it.
var pageRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+(/\?token=[0-9a-f]{32})\n`)

// pagePath is the path (with its token) of the page Run printed.
func (s *session) pagePath(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := pageRE.FindStringSubmatch(s.out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run printed no page address:\n%s", s.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// form reads the page's form: GitHub's URL, the state and the manifest.
func (s *session) form(t *testing.T) (action *url.URL, state string, manifest map[string]any) {
	t.Helper()
	status, body := s.get(t, s.pagePath(t))
	if status != http.StatusOK {
		t.Fatalf("GET / = %d: %s", status, body)
	}
	am, mm := actionRE.FindStringSubmatch(body), manifestRE.FindStringSubmatch(body)
	if am == nil || mm == nil {
		t.Fatalf("page has no manifest form:\n%s", body)
	}
	action, err := url.Parse(html.UnescapeString(am[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(mm[1])), &manifest); err != nil {
		t.Fatalf("manifest field is not JSON: %v", err)
	}
	return action, action.Query().Get("state"), manifest
}

func TestRunCreatesTheApp(t *testing.T) {
	tests := []struct {
		name       string
		org        string
		appName    string // --name
		wantAction string // path of GitHub's new-app page
		wantName   string // in the manifest
	}{
		{"personal account", "", "", "/settings/apps/new", "Merge Guard"},
		{"organization with its own app name", "acme-corp", "Acme Merge Guard", "/organizations/acme-corp/settings/apps/new", "Acme Merge Guard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
			path := filepath.Join(t.TempDir(), "creds.json")
			s := start(t, g, Options{Org: tt.org, Name: tt.appName, CredentialsPath: path, PublicURL: "https://guard.example.com/"})

			action, state, m := s.form(t)
			if got := action.Scheme + "://" + action.Host + action.Path; got != g.srv.URL+tt.wantAction {
				t.Errorf("form posts to %s, want %s", got, g.srv.URL+tt.wantAction)
			}
			if len(state) < 32 {
				t.Errorf("state %q is too short to be unguessable", state)
			}
			if m["name"] != tt.wantName {
				t.Errorf("name = %v, want %q", m["name"], tt.wantName)
			}
			hook, _ := m["hook_attributes"].(map[string]any)
			if hook["url"] != "https://guard.example.com/webhook" || hook["active"] != true {
				t.Errorf("hook_attributes = %v", hook)
			}
			if m["redirect_url"] != s.local+"/callback" {
				t.Errorf("redirect_url = %v, want %s/callback", m["redirect_url"], s.local)
			}
			if m["url"] != "https://guard.example.com" || m["public"] != false {
				t.Errorf("url = %v, public = %v", m["url"], m["public"])
			}
			perms, _ := m["default_permissions"].(map[string]any)
			if perms["checks"] != "write" || perms["administration"] != "read" || len(perms) != 8 {
				t.Errorf("default_permissions = %v", perms)
			}

			status, body := s.get(t, "/callback?code="+testCode+"&state="+state)
			if status != http.StatusOK {
				t.Fatalf("callback = %d: %s", status, body)
			}
			if !strings.Contains(body, "https://github.com/apps/octoapp/installations/new") {
				t.Errorf("done page lacks the install link:\n%s", body)
			}
			r := s.wait(t)
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			if g.calls.Load() != 1 || g.codes[0] != testCode {
				t.Errorf("exchanges = %d with codes %v, want 1 with %s", g.calls.Load(), g.codes, testCode)
			}
			want := Credentials{AppID: 1, Slug: "octoapp", Name: "Octocat App", HTMLURL: "https://github.com/apps/octoapp",
				Owner: "github", GitHubURL: g.apiURL(), ClientID: "Iv1.8a61f9b3a7aba766",
				ClientSecret: "1726be1638095a19edd134c77bde3aa2ece1e5d8", WebhookSecret: "e340154128314309424b7c8e90325147d99fdafa"}
			got := r.creds
			if !strings.HasPrefix(got.PEM, "-----BEGIN RSA PRIVATE KEY-----") {
				t.Error("private key not returned")
			}
			got.PEM = ""
			if got != want {
				t.Errorf("credentials = %+v\nwant %+v", fields(got), fields(want))
			}

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("credentials file: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("credentials file mode = %04o, want 0600", fi.Mode().Perm())
			}
			loaded, err := LoadCredentials(path)
			if err != nil {
				t.Fatalf("LoadCredentials of the written file: %v", err)
			}
			if loaded != r.creds {
				t.Error("the file does not hold the returned credentials")
			}
			if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".guard-credentials-*")); len(leftovers) != 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}

			out := s.out.String()
			for _, step := range []string{
				"https://github.com/apps/octoapp/installations/new",
				"guard serve --credentials " + path + " --public-url https://guard.example.com --github-url " + g.apiURL(),
				"integration_id 1", "app_id 1", "guard doctor", "mode 0600",
			} {
				if !strings.Contains(out, step) {
					t.Errorf("output lacks %q:\n%s", step, out)
				}
			}
			assertNoSecret(t, "output", out)
			for i, p := range s.pages {
				assertNoSecret(t, "page "+string(rune('0'+i)), p)
			}
		})
	}
}

// fields lists Credentials without its String method, for diffs in tests.
func fields(c Credentials) map[string]any {
	return map[string]any{"id": c.AppID, "slug": c.Slug, "name": c.Name, "html_url": c.HTMLURL,
		"owner": c.Owner, "github_url": c.GitHubURL, "client_id": c.ClientID}
}

func TestCallbackRefusesBadRequests(t *testing.T) {
	tests := []struct {
		name  string
		query func(state string) string
	}{
		{"missing state", func(string) string { return "?code=" + testCode }},
		{"wrong state", func(string) string { return "?code=" + testCode + "&state=0123456789abcdef0123456789abcdef" }},
		{"state with a suffix", func(s string) string { return "?code=" + testCode + "&state=" + s + "0" }},
		{"right state without code", func(s string) string { return "?state=" + s }},
		{"right state with a code that is a path", func(s string) string { return "?code=..%2F..%2Fuser&state=" + s }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
			path := filepath.Join(t.TempDir(), "creds.json")
			s := start(t, g, Options{CredentialsPath: path})
			_, state, _ := s.form(t)

			status, body := s.get(t, "/callback"+tt.query(state))
			if status != http.StatusBadRequest {
				t.Errorf("callback = %d, want 400: %s", status, body)
			}
			if n := g.calls.Load(); n != 0 {
				t.Errorf("GitHub was called %d times, want 0", n)
			}
			s.cancel()
			r := s.wait(t)
			if r.err == nil || !strings.Contains(r.err.Error(), "no credentials were written") {
				t.Errorf("Run error = %v, want 'no credentials were written'", r.err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("credentials file exists after a refused callback (stat: %v)", err)
			}
		})
	}
}

// The page, which hands out the state, is shown only at the address with
// the token Run printed: another user of the machine reaching the loopback
// port gets neither the state nor the token, nor does a callback refused.
func TestSetupPageNeedsTheToken(t *testing.T) {
	g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
	s := start(t, g, Options{})
	_, state, _ := s.form(t)
	token := strings.TrimPrefix(s.pagePath(t), "/?token=")
	for _, path := range []string{"/", "/?token=", "/?token=" + strings.Repeat("0", 32), "/?token=" + token[:31]} {
		status, body := s.get(t, path)
		if status != http.StatusForbidden {
			t.Errorf("GET %s = %d, want 403", path, status)
		}
		if strings.Contains(body, state) || strings.Contains(body, token) {
			t.Errorf("GET %s shows the state or the token:\n%s", path, body)
		}
	}
	status, body := s.get(t, "/callback?state=wrong&code=abc")
	if status != http.StatusBadRequest || strings.Contains(body, token) || strings.Contains(body, state) {
		t.Errorf("refused callback = %d and shows the token or state:\n%s", status, body)
	}
	if r := g.calls.Load(); r != 0 {
		t.Errorf("GitHub was called %d times", r)
	}
}

func TestSetupPageRefusesForeignHost(t *testing.T) {
	g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
	s := start(t, g, Options{})
	s.form(t) // waits until the page is served
	req, _ := http.NewRequest(http.MethodGet, s.local+"/", nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("page for Host attacker.example = %d, want 421", resp.StatusCode)
	}
}

func TestConversionFailureWritesNothing(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr []string
	}{
		{"code refused (422)", http.StatusUnprocessableEntity, "conversion-422.json",
			[]string{"422", "code is invalid or has expired", "valid once and for one hour", "run guard setup again"}},
		{"code unknown (404)", http.StatusNotFound, "conversion-404.json",
			[]string{"404 Not Found", "--github-url", "run guard setup again"}},
		{"server error (502)", http.StatusBadGateway, "conversion-404.json",
			[]string{"502 Bad Gateway", "run guard setup again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGitHub(t, tt.status, tt.body)
			path := filepath.Join(t.TempDir(), "creds.json")
			s := start(t, g, Options{CredentialsPath: path})
			_, state, _ := s.form(t)
			status, body := s.get(t, "/callback?code="+testCode+"&state="+state)
			if status != http.StatusBadGateway {
				t.Errorf("callback = %d, want 502", status)
			}
			r := s.wait(t)
			if r.err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q lacks %q", r.err, w)
				}
			}
			assertNoSecret(t, "error", r.err.Error())
			assertNoSecret(t, "page", body)
			assertNoSecret(t, "output", s.out.String())
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("credentials file exists after a failed exchange (stat: %v)", err)
			}
		})
	}
}

func TestConversionNetworkErrorHidesCode(t *testing.T) {
	g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/api/v3/"
	dead.Close()
	s := start(t, g, Options{GitHubURL: deadURL})
	_, state, _ := s.form(t)
	s.get(t, "/callback?code="+testCode+"&state="+state)
	r := s.wait(t)
	if r.err == nil || !strings.Contains(r.err.Error(), "check --github-url") {
		t.Fatalf("Run error = %v, want a network error naming --github-url", r.err)
	}
	assertNoSecret(t, "error", r.err.Error())
}

func TestExistingCredentialsFile(t *testing.T) {
	t.Run("refused without force, before anything is served", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "creds.json")
		if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Run(context.Background(), Options{PublicURL: "https://guard.example.com", CredentialsPath: path,
			Listener: failListener{t}})
		if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("Run error = %v, want 'already exists … --force'", err)
		}
		if data, _ := os.ReadFile(path); string(data) != "old" {
			t.Errorf("existing file changed to %q", data)
		}
	})
	t.Run("replaced with force, and made private", func(t *testing.T) {
		g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
		path := filepath.Join(t.TempDir(), "creds.json")
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := start(t, g, Options{CredentialsPath: path, Force: true})
		_, state, _ := s.form(t)
		s.get(t, "/callback?code="+testCode+"&state="+state)
		if r := s.wait(t); r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		c, err := LoadCredentials(path)
		if err != nil {
			t.Fatalf("LoadCredentials: %v", err)
		}
		if c.AppID != 1 {
			t.Errorf("app id = %d, want 1", c.AppID)
		}
	})
	t.Run("file appearing during the flow is left alone", func(t *testing.T) {
		g := newFakeGitHub(t, http.StatusCreated, "conversion-201.json")
		path := filepath.Join(t.TempDir(), "creds.json")
		s := start(t, g, Options{CredentialsPath: path})
		_, state, _ := s.form(t)
		if err := os.WriteFile(path, []byte("other"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.get(t, "/callback?code="+testCode+"&state="+state)
		r := s.wait(t)
		if r.err == nil || !strings.Contains(r.err.Error(), "left alone") {
			t.Fatalf("Run error = %v, want 'left alone'", r.err)
		}
		assertNoSecret(t, "error", r.err.Error())
		if data, _ := os.ReadFile(path); string(data) != "other" {
			t.Errorf("file changed to %q", data)
		}
	})
}

// failListener fails the test if Run serves anything.
type failListener struct{ t *testing.T }

func (l failListener) Accept() (net.Conn, error) {
	l.t.Error("Run served the page although it should have stopped")
	return nil, errors.New("closed")
}
func (l failListener) Close() error { return nil }
func (l failListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

func TestRunRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no public URL", Options{}, "public URL is required"},
		{"relative public URL", Options{PublicURL: "guard.example.com"}, "absolute"},
		{"bad organization", Options{PublicURL: "https://g.example", Org: "acme corp"}, "not a valid GitHub login"},
		{"listen on all interfaces", Options{PublicURL: "https://g.example", Listen: "0.0.0.0:0"}, "not a loopback address"},
		{"listen without port", Options{PublicURL: "https://g.example", Listen: "127.0.0.1"}, "listen address"},
		{"GitHub URL not http", Options{PublicURL: "https://g.example", GitHubURL: "ftp://github.example/"}, "not an http(s) URL"},
		{"GitHub URL of unknown shape", Options{PublicURL: "https://g.example", GitHubURL: "https://github.example.com/"}, "/api/v3/"},
		{"GitHub URL with credentials is not echoed", Options{PublicURL: "https://g.example", GitHubURL: "https://u:hunter2@[::1"}, "not an http(s) URL"},
		{"name too long", Options{PublicURL: "https://g.example", Name: strings.Repeat("n", 35)}, "longer than"},
		{"broken manifest", Options{PublicURL: "https://g.example", Manifest: []byte("name: [")}, "app manifest"},
		{"credentials directory missing", Options{PublicURL: "https://g.example", CredentialsPath: filepath.Join(dir, "nope", "c.json")}, "credentials directory"},
		{"credentials path is a directory", Options{PublicURL: "https://g.example", CredentialsPath: dir}, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.CredentialsPath == "" {
				tt.opts.CredentialsPath = filepath.Join(t.TempDir(), "c.json")
			}
			_, err := Run(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run error = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes a password: %v", err)
			}
		})
	}
}

func TestWebBase(t *testing.T) {
	tests := []struct {
		api, want string
	}{
		{"https://api.github.com/", "https://github.com"},
		{"https://github.acme.com/api/v3/", "https://github.acme.com"},
		{"https://github.acme.com/api/v3", "https://github.acme.com"},
		{"https://api.acme.ghe.com/", "https://acme.ghe.com"},
	}
	for _, tt := range tests {
		t.Run(tt.api, func(t *testing.T) {
			api, err := apiBase(tt.api)
			if err != nil {
				t.Fatal(err)
			}
			got, err := webBase(api)
			if err != nil || got != tt.want {
				t.Errorf("webBase(%s) = %q, %v; want %q", tt.api, got, err, tt.want)
			}
		})
	}
	t.Run("unknown host", func(t *testing.T) {
		api, _ := apiBase("https://example.com/")
		if _, err := webBase(api); err == nil {
			t.Error("webBase accepted an API URL it cannot map")
		}
	})
}
