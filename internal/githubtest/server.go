package githubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// DefaultAppID is the id of the fake's GitHub App.
const DefaultAppID int64 = 4242

// DefaultAppSlug is the slug of the fake's GitHub App; its bot account is
// DefaultAppSlug + "[bot]".
const DefaultAppSlug = "merge-guard"

// appKey is the app's RSA key: generated once per process because key
// generation is slow, never changed afterwards.
var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("githubtest: generate app key: " + err.Error())
	}
	return k
})

// Call is one request the fake answered.
type Call struct {
	Method string
	// Route is the matched route template without the method, e.g.
	// "/repos/{owner}/{repo}/pulls/{number}"; "" when nothing matched.
	Route string
	// Path is the request path without the /api/v3 prefix; Query its query.
	Path  string
	Query string
	// Status is the status sent (0: the connection was dropped).
	Status int
	// Body is the request body of POST, PATCH, PUT and DELETE requests.
	Body []byte
	// Installation is the installation whose token authenticated the call.
	Installation int64
}

// fault is a scripted failure (FailNext).
type fault struct {
	method, pattern string
	left            int // <= 0: forever
	status          int
	headers         http.Header
	body            string
	after           bool // the request is applied first, then the answer replaced
}

// Server is a fake GitHub. Create it with New.
type Server struct {
	srv   *httptest.Server
	mux   *http.ServeMux
	key   *rsa.PrivateKey
	appID int64
	slug  string

	mu           sync.Mutex
	now          func() time.Time
	latency      time.Duration
	nextID       int64
	users        map[string]*user
	installs     map[int64]*installation
	tokens       map[string]token
	repos        map[string]*repoState
	teams        map[string]map[string]string // org/team -> login -> state
	deliveries   []*Delivery
	redeliveries []int64
	manifests    map[string]bool
	faults       []*fault
	calls        []Call
	free         []Call
	rate         rateState
	onCheckRun   func(repo string, run CheckRun)
}

type rateState struct {
	limit, remaining int
	reset            time.Time
}

type user struct {
	id    int64
	login string
	typ   string
}

type installation struct {
	id      int64
	account string
	repos   []string
}

type token struct {
	installation int64
	expires      time.Time
}

// New starts a fake GitHub that is closed when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := Start()
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake GitHub outside a test (load tools, demos); the caller
// closes it with Close.
func Start() *Server {
	s := &Server{
		key:       appKey(),
		appID:     DefaultAppID,
		slug:      DefaultAppSlug,
		now:       time.Now,
		nextID:    1000,
		users:     map[string]*user{},
		installs:  map[int64]*installation{},
		tokens:    map[string]token{},
		repos:     map[string]*repoState{},
		teams:     map[string]map[string]string{},
		manifests: map[string]bool{},
	}
	s.rate = rateState{limit: 5000, remaining: 5000, reset: s.now().Add(time.Hour)}
	s.mux = http.NewServeMux()
	s.routes()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close shuts the server down. It is called by the test's cleanup.
func (s *Server) Close() { s.srv.Close() }

// URL is the base URL of the API at the root, with a trailing slash
// (like https://api.github.com/).
func (s *Server) URL() string { return s.srv.URL + "/" }

// GHESURL is the base URL of the API under /api/v3/ (like GitHub Enterprise
// Server's https://HOST/api/v3/).
func (s *Server) GHESURL() string { return s.srv.URL + "/api/v3/" }

// HTTPClient returns a client for the server.
func (s *Server) HTTPClient() *http.Client { return s.srv.Client() }

// AppID returns the id of the fake's app.
func (s *Server) AppID() int64 { return s.appID }

// AppSlug returns the slug of the fake's app.
func (s *Server) AppSlug() string { return s.slug }

// PrivateKeyPEM returns the app's private key (PKCS#1 PEM), the one the
// fake verifies app JWTs with.
func (s *Server) PrivateKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(s.key)})
}

// SetClock replaces the clock used for timestamps, token expiry and the rate
// limit window. App JWTs are always checked against the real clock, as
// their issuers use it.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetLatency delays every response by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// OnCheckRun sets f to be called with every check run the fake creates or
// updates (a copy, after the change; also when a scripted fault replaces the
// answer, as GitHub acted). f runs while the fake holds its lock: it must be
// fast and must not call the Server. nil removes it.
func (s *Server) OnCheckRun(f func(repo string, run CheckRun)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCheckRun = f
}

// SetRateLimit sets the rate-limit budget: limit per window, what remains
// and when the window resets.
func (s *Server) SetRateLimit(limit, remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate = rateState{limit: limit, remaining: remaining, reset: reset}
}

// FailNext makes the next n requests matching method ("" any) and
// pathPattern fail with status, headers and body. pathPattern is a route
// template as in Call.Route ("/repos/{owner}/{repo}/check-runs"), a
// path.Match pattern on the request path, or "" for any path. n <= 0 fails
// every matching request until ClearFaults. status 0 breaks the connection
// (the client's round trip fails with a transport error). An empty body gets GitHub's usual body for status
// (a secondary-rate-limit message for 403 and 429).
func (s *Server) FailNext(method, pathPattern string, n, status int, headers http.Header, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, pattern: pathPattern, left: n, status: status, headers: headers.Clone(), body: body})
}

// FailAfterNext is FailNext for an answer lost after GitHub acted: the next
// n matching requests are applied (a POST creates its object) and then
// answered with status and GitHub's usual body (status 0: a broken
// connection). It tests that a client never duplicates a write it retries.
func (s *Server) FailAfterNext(method, pathPattern string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, pattern: pathPattern, left: n, status: status, after: true})
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Calls returns the calls that cost (everything but 304 Not Modified), in
// order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// FreeCalls returns the conditional requests answered 304 Not Modified.
func (s *Server) FreeCalls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.free)
}

// CallCount counts the calls that cost with method ("" any) whose route
// template equals route or whose path matches it (path.Match); "" counts
// every call.
func (s *Server) CallCount(method, route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if matchCall(method, route, c.Method, c.Route, c.Path) {
			n++
		}
	}
	return n
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.free = nil, nil
}

func matchCall(method, pattern, gotMethod, route, p string) bool {
	if method != "" && !strings.EqualFold(method, gotMethod) {
		return false
	}
	if pattern == "" || pattern == route {
		return true
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// AppJWT returns a valid app JWT, for tests that call the fake directly.
func (s *Server) AppJWT() string {
	now := time.Now()
	return signJWT(s.key, map[string]any{"iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(5 * time.Minute).Unix(), "iss": strconv.FormatInt(s.appID, 10)})
}

// InstallationToken mints a token for installation id, for tests that call
// the fake directly. The installation must exist.
func (s *Server) InstallationToken(id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mintToken(id)
}

// ExpireTokens makes every installation token invalid (401 Bad credentials).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

func (s *Server) mintToken(id int64) string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	t := "ghs_" + hex.EncodeToString(b)
	s.tokens[t] = token{installation: id, expires: s.now().Add(time.Hour)}
	return t
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// request is one request being answered by a route handler.
type request struct {
	s      *Server
	r      *http.Request
	body   []byte
	header http.Header // extra response headers (Link)
	inst   *installation
	api    string // absolute API base without trailing slash, e.g. http://127.0.0.1:1/api/v3
	web    string // absolute "web" base, e.g. http://127.0.0.1:1
}

// handler answers a routed request while holding s.mu: it returns the status
// and the value to send as JSON (nil: no body).
type handler func(q *request) (int, any)

type authKind int

const (
	authToken authKind = iota
	authJWT
	authNone
)

// route is a registered route.
type route struct {
	s    *Server
	auth authKind
	h    handler
}

func (s *Server) handle(pattern string, auth authKind, h handler) {
	s.mux.Handle(pattern, &route{s: s, auth: auth, h: h})
}

// prefixKey is the context key of the path prefix ("/api/v3" or "").
type prefixKey struct{}

// serve strips the GHES prefix, applies latency and routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	prefix := ""
	if strings.HasPrefix(r.URL.Path, "/api/v3/") {
		prefix = "/api/v3"
		r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
		r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, prefix)
	}
	s.mu.Lock()
	lat := s.latency
	s.mu.Unlock()
	if lat > 0 {
		// Read the body first: until a request's body is read, net/http
		// does not notice its client going away, and a POST would hold
		// its handler (and Close) for the whole latency after a caller
		// gave up, which GitHub does not.
		if r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), prefixKey{}, prefix))
	h, _ := s.mux.Handler(r)
	if _, ok := h.(*route); !ok {
		s.notFoundRoute(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) notFoundRoute(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	c := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: http.StatusNotFound}
	if r.Method != http.MethodGet {
		c.Body = body
	}
	s.calls = append(s.calls, c)
	s.writeRate(w.Header())
	writeJSON(w, http.StatusNotFound, errBody("Not Found"))
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := rt.s
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		return
	}
	tmpl := r.Pattern
	if i := strings.IndexByte(tmpl, ' '); i >= 0 {
		tmpl = tmpl[i+1:]
	}
	call := Call{Method: r.Method, Route: tmpl, Path: r.URL.Path, Query: r.URL.RawQuery}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		call.Body = body
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	record := func(status int) {
		call.Status = status
		s.calls = append(s.calls, call)
	}

	fail := func(w http.ResponseWriter, f *fault) {
		record(f.status)
		if f.status == 0 {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					// Not HTTP: the client's RoundTrip fails (a closed
					// connection alone would be retried by net/http).
					_, _ = conn.Write([]byte("\x00 connection reset by fake\r\n\r\n"))
					conn.Close()
				}
			}
			return
		}
		s.writeRate(w.Header())
		for k, vs := range f.headers {
			w.Header()[k] = vs
		}
		if f.body != "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(f.status)
			_, _ = io.WriteString(w, f.body)
			return
		}
		writeJSON(w, f.status, defaultErrBody(f.status, f.headers))
	}
	if f := s.takeFault(r.Method, tmpl, r.URL.Path, false); f != nil {
		fail(w, f)
		return
	}

	q := &request{s: s, r: r, body: body, header: http.Header{}}
	scheme := "http"
	q.web = scheme + "://" + r.Host
	prefix, _ := r.Context().Value(prefixKey{}).(string)
	q.api = q.web + prefix

	switch rt.auth {
	case authJWT:
		if msg := s.checkJWT(r.Header.Get("Authorization")); msg != "" {
			record(http.StatusUnauthorized)
			s.writeRate(w.Header())
			writeJSON(w, http.StatusUnauthorized, errBody(msg))
			return
		}
	case authToken:
		inst, msg := s.checkToken(r.Header.Get("Authorization"))
		if msg != "" {
			record(http.StatusUnauthorized)
			s.writeRate(w.Header())
			writeJSON(w, http.StatusUnauthorized, errBody(msg))
			return
		}
		q.inst = inst
		call.Installation = inst.id
	}

	// Primary rate limit.
	now := s.now()
	if !now.Before(s.rate.reset) {
		s.rate.remaining = s.rate.limit
		s.rate.reset = now.Add(time.Hour)
	}
	if rt.auth != authNone && s.rate.remaining <= 0 {
		record(http.StatusForbidden)
		s.writeRate(w.Header())
		writeJSON(w, http.StatusForbidden, map[string]any{
			"message":           "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
		})
		return
	}

	status, v := rt.h(q)
	if f := s.takeFault(r.Method, tmpl, r.URL.Path, true); f != nil {
		if rt.auth != authNone {
			s.rate.remaining--
		}
		fail(w, f)
		return
	}
	var out []byte
	if v != nil {
		out, err = json.Marshal(v)
		if err != nil {
			panic("githubtest: marshal response: " + err.Error())
		}
	}
	for k, vs := range q.header {
		w.Header()[k] = vs
	}
	if r.Method == http.MethodGet && status == http.StatusOK {
		sum := sha256.Sum256(out)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
		w.Header().Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			call.Status = http.StatusNotModified
			s.free = append(s.free, call)
			s.writeRate(w.Header())
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if rt.auth != authNone {
		s.rate.remaining--
	}
	record(status)
	s.writeRate(w.Header())
	if v == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (s *Server) takeFault(method, tmpl, p string, after bool) *fault {
	for i, f := range s.faults {
		if f.after != after || !matchCall(f.method, f.pattern, method, tmpl, p) {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f
	}
	return nil
}

func (s *Server) writeRate(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.rate.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.rate.remaining, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.rate.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.rate.limit-max(s.rate.remaining, 0)))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%d", len(s.calls)+len(s.free)))
}

func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	weak := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || strings.TrimPrefix(t, "W/") == weak {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const docsURL = "https://docs.github.com/rest"

func errBody(msg string) map[string]any {
	return map[string]any{"message": msg, "documentation_url": docsURL}
}

// validation is a 422 Unprocessable Entity body.
func validation(resource, field, code string) (int, any) {
	return http.StatusUnprocessableEntity, map[string]any{
		"message":           "Validation Failed",
		"errors":            []any{map[string]any{"resource": resource, "field": field, "code": code}},
		"documentation_url": docsURL,
	}
}

// validationMsg is a 422 with a custom error message, as GitHub sends for
// rules that are not field validations.
func validationMsg(msg string) (int, any) {
	return http.StatusUnprocessableEntity, map[string]any{
		"message":           "Validation Failed",
		"errors":            []any{msg},
		"documentation_url": docsURL,
	}
}

func notFound() (int, any) { return http.StatusNotFound, errBody("Not Found") }

func defaultErrBody(status int, h http.Header) map[string]any {
	switch {
	case status == http.StatusForbidden && h.Get("X-RateLimit-Remaining") == "0":
		return map[string]any{"message": "API rate limit exceeded for installation.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
	case status == http.StatusForbidden || status == http.StatusTooManyRequests:
		return map[string]any{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}
	case status == http.StatusNotFound:
		return errBody("Not Found")
	case status == http.StatusUnprocessableEntity:
		return map[string]any{"message": "Validation Failed", "errors": []any{}, "documentation_url": docsURL}
	case status >= 500:
		return map[string]any{"message": http.StatusText(status)}
	}
	return errBody(http.StatusText(status))
}

// paginate returns the page of items the request asks for and sets the Link
// header: per_page defaults to 30 and is capped at 100, like GitHub's.
func paginate[T any](q *request, items []T) []T {
	perPage := 30
	if v, err := strconv.Atoi(q.r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.r.URL.Query().Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max((len(items)+perPage-1)/perPage, 1)
	var links []string
	link := func(p int, rel string) {
		u := *q.r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(p))
		if q.r.URL.Query().Has("per_page") {
			v.Set("per_page", strconv.Itoa(perPage))
		}
		u.RawQuery = v.Encode()
		links = append(links, fmt.Sprintf(`<%s%s?%s>; rel="%s"`, q.api, u.EscapedPath(), u.RawQuery, rel))
	}
	if page > 1 {
		link(page-1, "prev")
	}
	if page < last {
		link(page+1, "next")
		link(last, "last")
	}
	if page > 1 {
		link(1, "first")
	}
	if len(links) > 0 {
		q.header.Set("Link", strings.Join(links, ", "))
	}
	lo := (page - 1) * perPage
	if lo >= len(items) {
		return []T{}
	}
	return items[lo:min(lo+perPage, len(items))]
}

// decode unmarshals the request body into v, reporting a 400 problem.
func (q *request) decode(v any) (int, any, bool) {
	if len(bytes.TrimSpace(q.body)) == 0 {
		return http.StatusBadRequest, errBody("Problems parsing JSON"), false
	}
	if err := json.Unmarshal(q.body, v); err != nil {
		return http.StatusBadRequest, errBody("Problems parsing JSON"), false
	}
	return 0, nil, true
}

// repo returns the repository the request names, if the authenticated
// installation can see it.
func (q *request) repo() *repoState {
	full := q.r.PathValue("owner") + "/" + q.r.PathValue("repo")
	for k, r := range q.s.repos {
		if strings.EqualFold(k, full) {
			if q.inst == nil || r.installation != q.inst.id {
				return nil
			}
			return r
		}
	}
	return nil
}

func (q *request) number() (int, bool) {
	n, err := strconv.Atoi(q.r.PathValue("number"))
	return n, err == nil && n > 0
}

// user returns (creating it) the account of login.
func (s *Server) user(a pr.Account) *user {
	if a.Login == "" {
		return nil
	}
	u, ok := s.users[a.Login]
	if !ok {
		typ := a.Type
		if typ == "" {
			typ = "User"
			if strings.HasSuffix(a.Login, "[bot]") {
				typ = "Bot"
			}
		}
		u = &user{id: s.id(), login: a.Login, typ: typ}
		s.users[a.Login] = u
	} else if a.Type != "" {
		u.typ = a.Type
	}
	return u
}

func escape(s string) string { return url.PathEscape(s) }

// checkRunChanged tells the OnCheckRun hook about c. s.mu is held.
func (s *Server) checkRunChanged(r *repoState, c *CheckRun) {
	if s.onCheckRun == nil {
		return
	}
	cp := *c
	cp.Actions = slices.Clone(c.Actions)
	s.onCheckRun(r.info.FullName, cp)
}
