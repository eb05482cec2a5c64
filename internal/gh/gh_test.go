package gh

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/pr"
)

const (
	instID = int64(7)
	repo   = "acme/widgets"
	head   = "1111111111111111111111111111111111111111"
	base   = "0000000000000000000000000000000000000000"
)

// harness is a client wired to a seeded fake GitHub, with recorded sleeps
// and OnCall reports instead of real waits.
type harness struct {
	s   *githubtest.Server
	app *App
	c   *Client
	log *bytes.Buffer

	mu     sync.Mutex
	sleeps []time.Duration
	onCall []string
}

func (h *harness) slept() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sleeps)
}

func (h *harness) reported() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.onCall)
}

// requests counts the GETs of route GitHub saw, 304s included.
func (h *harness) requests(route string) int {
	n := h.s.CallCount("GET", route)
	for _, c := range h.s.FreeCalls() {
		if c.Route == route {
			n++
		}
	}
	return n
}

func newHarness(t *testing.T, opts ...func(*Options)) *harness {
	t.Helper()
	s := githubtest.New(t)
	s.AddInstallation(instID, "acme")
	s.AddRepo(instID, repo)
	s.AddPull(repo, pr.PullRequest{Number: 1, Title: "Bump deps", Author: pr.Account{Login: "dep-bot[bot]"}, HeadSHA: head, BaseSHA: base, Labels: []string{"deps"}, AutoMerge: &pr.AutoMerge{EnabledBy: pr.Account{Login: "dep-bot[bot]"}, MergeMethod: "squash"}})
	s.AddCommit(repo, 1, pr.Commit{SHA: head, Message: "bump", Author: pr.Person{Name: "Dep Bot", Email: "bot@example.com", Account: pr.Account{Login: "dep-bot[bot]"}}, Committer: pr.Person{Name: "GitHub", Email: "noreply@github.com"}})
	s.AddReview(repo, 1, pr.Review{User: pr.Account{Login: "alice"}, State: "APPROVED"})
	s.AddFile(repo, 1, pr.File{Filename: "x_test.go", Patch: "@@ -10,2 +10,3 @@ func TestX(t *testing.T) {\n \tx := 1\n+\tt.Skip(\"flaky\")\n \t_ = x"})
	s.SetPermission(repo, "alice", "maintain")
	s.AddTeamMember("acme", "release-managers", "alice", "active")
	s.AddTeamMember("acme", "release-managers", "bob", "pending")

	h := &harness{s: s, log: &bytes.Buffer{}}
	var logMu sync.Mutex
	o := Options{
		BaseURL: s.URL(), AppID: s.AppID(), PrivateKey: s.PrivateKeyPEM(), Transport: s.HTTPClient().Transport,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{mu: &logMu, w: h.log}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			return ctx.Err()
		},
		OnCall: func(method, route string, status int, cached bool, remaining int) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.onCall = append(h.onCall, fmt.Sprintf("%s %s %d cached=%v", method, route, status, cached))
		},
	}
	for _, f := range opts {
		f(&o)
	}
	app, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.app, h.c = app, app.Installation(instID)
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

const (
	routePull    = "/repos/{owner}/{repo}/pulls/{number}"
	routeReviews = "/repos/{owner}/{repo}/pulls/{number}/reviews"
	routeCommits = "/repos/{owner}/{repo}/pulls/{number}/commits"
	routeFiles   = "/repos/{owner}/{repo}/pulls/{number}/files"
	routeRepo    = "/repos/{owner}/{repo}"
	routeRuns    = "/repos/{owner}/{repo}/check-runs"
	routeRun     = "/repos/{owner}/{repo}/check-runs/{id}"
	routeFind    = "/repos/{owner}/{repo}/commits/{ref}/check-runs"
	routeComment = "/repos/{owner}/{repo}/issues/{number}/comments"
	routeToken   = "/app/installations/{id}/access_tokens"
)

func readAll(t *testing.T, f pr.Facts) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.PullRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Repository(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reviews(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commits(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Files(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFactsAreFetchedOncePerEvaluation(t *testing.T) {
	known := &pr.PullRequest{Number: 1, HeadSHA: head, Author: pr.Account{Login: "dep-bot[bot]", Type: "Bot"}}
	tests := []struct {
		name  string
		known *pr.PullRequest
		want  map[string]int
	}{
		{"PR fetched, repository comes with it", nil, map[string]int{routePull: 1, routeRepo: 0, routeReviews: 1, routeCommits: 1, routeFiles: 1}},
		{"PR known from the payload", known, map[string]int{routePull: 0, routeRepo: 1, routeReviews: 1, routeCommits: 1, routeFiles: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			f := h.c.Facts("acme", "widgets", 1, tt.known)
			readAll(t, f)
			readAll(t, f)
			for route, n := range tt.want {
				if got := h.s.CallCount("GET", route); got != n {
					t.Errorf("%s: %d calls, want %d", route, got, n)
				}
			}
			if got := h.s.CallCount("POST", routeToken); got != 1 {
				t.Errorf("installation token minted %d times, want 1", got)
			}
		})
	}
}

func TestFactsFailuresAreNotRefetched(t *testing.T) {
	h := newHarness(t)
	h.s.FailNext("GET", routeReviews, 0, 404, nil, "")
	f := h.c.Facts("acme", "widgets", 1, nil)
	for i := 0; i < 2; i++ {
		if _, err := f.Reviews(context.Background()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err %v, want ErrNotFound", err)
		}
	}
	if got := h.s.CallCount("GET", routeReviews); got != 1 {
		t.Fatalf("%d calls, want 1", got)
	}
}

func TestFactsContent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	f := h.c.Facts("acme", "widgets", 1, nil)
	p, err := f.PullRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Author != (pr.Account{Login: "dep-bot[bot]", Type: "Bot"}) || p.HeadSHA != head || p.BaseSHA != base || p.BaseRef != "main" ||
		p.HeadRepo != repo || !slices.Equal(p.Labels, []string{"deps"}) || p.AutoMerge == nil || p.AutoMerge.MergeMethod != "squash" || p.State != "open" {
		t.Errorf("pull request %+v", p)
	}
	r, _ := f.Repository(ctx)
	if *r != (pr.Repository{Owner: "acme", Name: "widgets", FullName: repo, DefaultBranch: "main"}) {
		t.Errorf("repository %+v", r)
	}
	rs, _ := f.Reviews(ctx)
	if len(rs) != 1 || rs[0].User != (pr.Account{Login: "alice", Type: "User"}) || rs[0].CommitID != head || rs[0].State != "APPROVED" || rs[0].SubmittedAt.IsZero() {
		t.Errorf("reviews %+v", rs)
	}
	cs, _ := f.Commits(ctx)
	if len(cs) != 1 || cs[0].Author.Account.Login != "dep-bot[bot]" || cs[0].Author.Account.Type != "Bot" || cs[0].Committer.Account.Login != "" || cs[0].Committer.Email != "noreply@github.com" {
		t.Errorf("commits %+v", cs)
	}
	fs, _ := f.Files(ctx)
	if len(fs) != 1 || len(fs[0].AddedLines) != 1 || fs[0].AddedLines[0] != (pr.Line{Number: 11, Text: "\tt.Skip(\"flaky\")"}) || fs[0].Additions != 1 {
		t.Errorf("files %+v", fs)
	}
}

func TestPaginationAcrossPages(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 250; i++ {
		h.s.AddFile(repo, 1, pr.File{Filename: fmt.Sprintf("f%03d.go", i), Patch: "@@ -0,0 +1 @@\n+x"})
	}
	for i := 0; i < 120; i++ {
		h.s.AddReview(repo, 1, pr.Review{User: pr.Account{Login: "carol"}, State: "COMMENTED"})
	}
	f := h.c.Facts("acme", "widgets", 1, nil)
	files, err := f.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reviews, err := f.Reviews(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 251 || len(reviews) != 121 {
		t.Fatalf("%d files, %d reviews; want 251, 121", len(files), len(reviews))
	}
	if got := h.s.CallCount("GET", routeFiles); got != 3 {
		t.Errorf("files in %d pages, want 3 of 100", got)
	}
	for _, c := range h.s.Calls() {
		if c.Route == routeFiles && !strings.Contains(c.Query, "per_page=100") {
			t.Errorf("files listed with %q, want per_page=100", c.Query)
		}
	}
}

func TestRetries(t *testing.T) {
	soon := strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10)
	later := strconv.FormatInt(time.Now().Add(2*time.Hour).Unix(), 10)
	tests := []struct {
		name      string
		n, status int
		headers   http.Header
		body      string
		wantErr   error // nil: success
		wantCalls int
		minSleep  time.Duration // of the first wait
		maxSleep  time.Duration
		sleeps    int
	}{
		{"5xx then success", 2, 502, nil, "", nil, 3, 250 * time.Millisecond, 500 * time.Millisecond, 2},
		{"down after retries", 0, 503, nil, "", ErrUnavailable, 5, 250 * time.Millisecond, 500 * time.Millisecond, 4},
		{"network error then success", 1, 0, nil, "", nil, 2, 250 * time.Millisecond, 500 * time.Millisecond, 1},
		{"secondary rate limit with Retry-After", 1, 403, http.Header{"Retry-After": {"7"}}, "", nil, 2, 7 * time.Second, 7 * time.Second, 1},
		{"secondary rate limit without Retry-After waits a minute", 1, 403, nil, "", nil, 2, time.Minute, time.Minute, 1},
		{"429 with Retry-After", 1, 429, http.Header{"Retry-After": {"2"}}, "", nil, 2, 2 * time.Second, 2 * time.Second, 1},
		{"429 without Retry-After waits a minute", 1, 429, nil, "", nil, 2, time.Minute, time.Minute, 1},
		{"primary limit exhausted waits for the reset", 1, 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {soon}}, "", nil, 2, 20 * time.Second, 32 * time.Second, 1},
		{"primary limit beyond MaxWait fails at once", 1, 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {later}}, "", ErrRateLimited, 1, 0, 0, 0},
		{"rate limited after retries", 0, 429, http.Header{"Retry-After": {"1"}}, "", ErrRateLimited, 5, time.Second, time.Second, 4},
		{"404 is not retried", 1, 404, nil, "", ErrNotFound, 1, 0, 0, 0},
		{"plain 403 is not retried", 1, 403, nil, `{"message":"Resource not accessible by integration"}`, errNone, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if _, err := h.c.Facts("acme", "widgets", 1, nil).Repository(context.Background()); err != nil { // mint the token first
				t.Fatal(err)
			}
			h.s.ResetCalls()
			h.s.FailNext("GET", routeReviews, tt.n, tt.status, tt.headers, tt.body)
			_, err := h.c.Facts("acme", "widgets", 1, nil).Reviews(context.Background())
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err %v", err)
			case tt.wantErr == errNone:
				if err == nil || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
					t.Fatalf("err %v, want an unclassified error", err)
				}
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if got := h.s.CallCount("GET", routeReviews); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			sl := h.slept()
			if len(sl) != tt.sleeps {
				t.Fatalf("slept %v, want %d waits", sl, tt.sleeps)
			}
			if len(sl) > 0 && (sl[0] < tt.minSleep || sl[0] > tt.maxSleep) {
				t.Errorf("first wait %v, want within [%v, %v]", sl[0], tt.minSleep, tt.maxSleep)
			}
			for i := 1; i < len(sl) && tt.status >= 500; i++ {
				if sl[i] > DefaultMaxWait {
					t.Errorf("wait %v above MaxWait", sl[i])
				}
			}
			if errors.Is(err, ErrRateLimited) && !strings.Contains(err.Error(), "retry after") {
				t.Errorf("rate-limit error %q does not say when to retry", err)
			}
		})
	}
}

// errNone marks an expected error that is none of the classified kinds.
var errNone = errors.New("unclassified")

func TestWaitsEndWithContext(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Sleep = nil })
	h.s.FailNext("GET", routeReviews, 0, 429, http.Header{"Retry-After": {"50"}}, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.c.Facts("acme", "widgets", 1, nil).Reviews(ctx)
		done <- err
	}()
	for h.s.CallCount("GET", routeReviews) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end with the context")
	}
}

func TestETagReuse(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	first, err := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Title != second.Title || second.HeadSHA != head {
		t.Fatalf("cached answer differs: %+v vs %+v", first, second)
	}
	if got := h.s.CallCount("GET", routePull); got != 1 {
		t.Errorf("%d costly calls, want 1", got)
	}
	if got := len(h.s.FreeCalls()); got != 1 {
		t.Errorf("%d free calls, want 1", got)
	}
	if !slices.Contains(h.reported(), "GET "+routePull+" 304 cached=true") {
		t.Errorf("OnCall did not see the cached 304: %v", h.reported())
	}
	h.s.AddPull(repo, pr.PullRequest{Number: 1, Title: "Bump more deps", Author: pr.Account{Login: "dep-bot[bot]"}, HeadSHA: head, BaseSHA: base})
	third, _ := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx)
	if third.Title != "Bump more deps" {
		t.Errorf("changed PR served stale: %q", third.Title)
	}
}

// An entry that cannot be read any more is dropped and the GET asked again
// without a condition: the caller gets GitHub's fresh answer.
func TestUnreadableCacheEntryIsAskedAgain(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx); err != nil {
		t.Fatal(err)
	}
	c := h.app.tr.cache
	c.mu.Lock()
	for _, el := range c.items {
		el.Value.(*cacheItem).e.body = []byte("garbage")
	}
	c.mu.Unlock()
	got, err := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx)
	if err != nil || got.Title != "Bump deps" {
		t.Fatalf("PullRequest = %+v, %v", got, err)
	}
	if n := h.s.CallCount("GET", routePull); n != 2 {
		t.Errorf("%d costly calls, want 2 (the first, and the one asked again)", n)
	}
	if !strings.Contains(h.log.String(), "cache entry unreadable") {
		t.Errorf("not logged: %s", h.log.String())
	}
	if third, err := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx); err != nil || third.Title != "Bump deps" {
		t.Fatalf("third PullRequest = %+v, %v", third, err)
	}
	if n := h.s.CallCount("GET", routePull); n != 2 {
		t.Errorf("%d costly calls after the entry was replaced, want 2", n)
	}
}

func TestETagCacheIsBounded(t *testing.T) {
	entry := func(key, body string) *cacheEntry {
		return newCacheEntry(key, http.Header{"Etag": {`"` + key + `"`}}, []byte(body))
	}
	a, b, c := entry("a", "aaaa"), entry("b", "bbbb"), entry("c", "cc")
	cache := newETagCache(2, a.size+b.size+c.size)
	cache.put("a", a)
	cache.put("b", b)
	cache.get("a")
	cache.put("c", c)
	if cache.get("b") != nil || cache.get("a") == nil || cache.get("c") == nil {
		t.Fatal("least recently used entry not evicted by count")
	}
	d := entry("d", strings.Repeat("d", 4000)+"x")
	cache.maxBytes = d.size
	cache.put("d", d)
	if cache.len() != 1 || cache.get("d") == nil || cache.bytes != d.size {
		t.Fatalf("byte bound not kept: %d entries, %d bytes", cache.len(), cache.bytes)
	}
	cache.remove("d")
	if cache.len() != 0 || cache.bytes != 0 {
		t.Fatalf("after remove: %d entries, %d bytes", cache.len(), cache.bytes)
	}
}

// A cached answer keeps its body (compressed) and the headers a client
// reads, not the rest; served again it is the same answer, with the 304's
// rate-limit headers.
func TestCacheEntryKeepsWhatClientsRead(t *testing.T) {
	body := []byte(strings.Repeat(`{"sha":"0123456789abcdef0123456789abcdef01234567","url":"https://api.github.com/repos/acme/widgets/commits/0123456789abcdef"},`, 40))
	h := http.Header{
		"Etag":                      {`W/"abc"`},
		"Link":                      {`<https://api.github.com/repositories/1/pulls/1/commits?page=2>; rel="next"`},
		"Content-Type":              {"application/json; charset=utf-8"},
		"X-Ratelimit-Remaining":     {"4999"},
		"Content-Security-Policy":   {"default-src 'none'"},
		"Strict-Transport-Security": {"max-age=31536000; includeSubdomains; preload"},
	}
	e := newCacheEntry("k", h, body)
	if e.etag != `W/"abc"` || e.header.Get("Content-Security-Policy") != "" || e.header.Get("Strict-Transport-Security") != "" {
		t.Fatalf("kept headers %v, etag %q", e.header, e.etag)
	}
	if e.size >= len(body) {
		t.Errorf("entry of %d bytes for a %d-byte body: not compressed", e.size, len(body))
	}
	resp, err := e.response(httptest.NewRequest("GET", "/x", nil), http.Header{"X-Ratelimit-Remaining": {"4998"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(got, body) || resp.Header.Get("Link") != h.Get("Link") || resp.Header.Get("X-Ratelimit-Remaining") != "4998" ||
		resp.Header.Get("Content-Type") != h.Get("Content-Type") || resp.Header.Get("X-From-Cache") != "1" {
		t.Fatalf("served %d bytes, headers %v", len(got), resp.Header)
	}
	e.body = []byte("not s2")
	if _, err := e.response(httptest.NewRequest("GET", "/x", nil), nil); err == nil {
		t.Fatal("a corrupt entry was served")
	}
}

func TestGHESBaseURL(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BaseURL = strings.TrimSuffix(o.BaseURL, "/") + "/api/v3" })
	readAll(t, h.c.Facts("acme", "widgets", 1, nil))
	if _, err := h.c.Repositories(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.reported(), "GET "+routeFiles+" 200 cached=false") {
		t.Errorf("routes not templated under /api/v3: %v", h.reported())
	}
	if h.s.CallCount("GET", routeFiles) != 1 {
		t.Errorf("calls %v", h.s.Calls())
	}
}

func TestPublishCheck(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sc, err := githubtest.LoadSchemas("../../testdata/github/openapi-extract.json")
	if err != nil {
		t.Fatal(err)
	}
	escalate := CheckRun{Name: "merge-guard", HeadSHA: head, ExternalID: "d1", Conclusion: "action_required", Title: "Held for a human", Summary: "An agent wrote this.", DetailsURL: "https://guard.example/decisions/d1",
		Actions: []Action{{Label: "Approve", Description: "Approve this head SHA", Identifier: "approve"}}}
	id, err := h.c.PublishCheck(ctx, "acme", "widgets", escalate, false)
	if err != nil {
		t.Fatal(err)
	}
	allow := escalate
	allow.ExternalID, allow.Conclusion, allow.Title, allow.Actions = "d2", "success", "Approved by @alice", nil

	t.Run("found by name and SHA, updated in place", func(t *testing.T) {
		got, err := h.c.PublishCheck(ctx, "acme", "widgets", allow, false)
		if err != nil || got != id {
			t.Fatalf("id %d err %v, want %d", got, err, id)
		}
		runs := h.s.CheckRuns(repo, head)
		if len(runs) != 1 || runs[0].Conclusion != "success" || runs[0].ExternalID != "d2" || len(runs[0].Actions) != 0 || runs[0].Updates != 1 {
			t.Fatalf("runs %+v", runs)
		}
	})
	t.Run("known id is patched without a lookup", func(t *testing.T) {
		h.s.ResetCalls()
		with := allow
		with.ID = id
		if got, err := h.c.PublishCheck(ctx, "acme", "widgets", with, false); err != nil || got != id {
			t.Fatalf("id %d err %v", got, err)
		}
		if n := len(h.s.Calls()); n != 1 || h.s.CallCount("PATCH", routeRun) != 1 {
			t.Fatalf("calls %+v, want one PATCH", h.s.Calls())
		}
	})
	t.Run("vanished id falls back to the lookup", func(t *testing.T) {
		with := allow
		with.ID = 999999
		if got, err := h.c.PublishCheck(ctx, "acme", "widgets", with, false); err != nil || got != id {
			t.Fatalf("id %d err %v", got, err)
		}
	})
	t.Run("another app's run of the same name is not touched", func(t *testing.T) {
		h.s.AddCheckRun(repo, githubtest.CheckRun{Name: "merge-guard", HeadSHA: head, AppID: 1, Conclusion: "success"})
		if got, err := h.c.PublishCheck(ctx, "acme", "widgets", allow, false); err != nil || got != id {
			t.Fatalf("id %d err %v", got, err)
		}
	})
	t.Run("fresh always creates", func(t *testing.T) {
		fresh := allow
		fresh.ExternalID = "d3"
		got, err := h.c.PublishCheck(ctx, "acme", "widgets", fresh, true)
		if err != nil || got == id {
			t.Fatalf("id %d err %v, want a new run", got, err)
		}
		if n := len(h.s.CheckRuns(repo, head)); n != 3 { // ours, the other app's, the fresh one
			t.Fatalf("%d runs", n)
		}
	})
	t.Run("a failed POST is retried after looking again", func(t *testing.T) {
		h.s.AddPull(repo, pr.PullRequest{Number: 2, Author: pr.Account{Login: "x"}, HeadSHA: "2222222222222222222222222222222222222222"})
		h.s.FailNext("POST", routeRuns, 1, 500, nil, "")
		run := allow
		run.HeadSHA = "2222222222222222222222222222222222222222"
		if _, err := h.c.PublishCheck(ctx, "acme", "widgets", run, false); err != nil {
			t.Fatal(err)
		}
		if n := len(h.s.CheckRuns(repo, run.HeadSHA)); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
	})
	t.Run("a POST whose answer was lost is not duplicated", func(t *testing.T) {
		for i, tc := range []struct {
			status int
			fresh  bool
		}{{502, false}, {0, false}, {503, true}} {
			sha := fmt.Sprintf("%040d", 30+i)
			h.s.AddPull(repo, pr.PullRequest{Number: 30 + i, Author: pr.Account{Login: "x"}, HeadSHA: sha})
			h.s.FailAfterNext("POST", routeRuns, 1, tc.status)
			run := allow
			run.HeadSHA, run.ExternalID = sha, fmt.Sprint("lost-", i)
			id, err := h.c.PublishCheck(ctx, "acme", "widgets", run, tc.fresh)
			if err != nil {
				t.Fatalf("status %d fresh %v: %v", tc.status, tc.fresh, err)
			}
			runs := h.s.CheckRuns(repo, sha)
			if len(runs) != 1 || runs[0].ID != id {
				t.Fatalf("status %d fresh %v: runs %+v, id %d", tc.status, tc.fresh, runs, id)
			}
		}
	})
	t.Run("invalid runs are refused before GitHub", func(t *testing.T) {
		for _, bad := range []CheckRun{
			{HeadSHA: head, Conclusion: "success"},
			{Name: "merge-guard", Conclusion: "success"},
			{Name: "merge-guard", HeadSHA: head, Status: "completed"},
			{Name: "merge-guard", HeadSHA: head, Conclusion: "success", Actions: make([]Action, 4)},
			{Name: "merge-guard", HeadSHA: head, Conclusion: "success", Actions: []Action{{Label: "An overly long label!", Description: "d", Identifier: "i"}}},
		} {
			if _, err := h.c.PublishCheck(ctx, "acme", "widgets", bad, false); err == nil {
				t.Errorf("%+v accepted", bad)
			}
		}
	})
	t.Run("requests have GitHub's shape", func(t *testing.T) {
		h.s.ResetCalls()
		if _, err := h.c.PublishCheck(ctx, "acme", "widgets", escalate, true); err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.PublishCheck(ctx, "acme", "widgets", escalate, false); err != nil {
			t.Fatal(err)
		}
		ops := map[string]string{"POST " + routeRuns: "POST /repos/{owner}/{repo}/check-runs", "PATCH " + routeRun: "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"}
		seen := 0
		for _, c := range h.s.Calls() {
			if op, ok := ops[c.Method+" "+c.Route]; ok {
				seen++
				for _, p := range sc.CheckRequest(op, c.Body, true) {
					t.Errorf("%s: %s", op, p)
				}
			}
		}
		if seen != 2 {
			t.Fatalf("checked %d requests, want 2", seen)
		}
	})
}

func TestEnsureComment(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for i := 0; i < 150; i++ {
		h.s.AddComment(repo, 1, pr.Account{Login: "carol"}, "noise")
	}
	tests := []struct {
		name, key   string
		wantCreated bool
		wantErr     bool
	}{
		{"first comment for a key is posted", "escalation-" + head, true, false},
		{"second comment for the key is not (marker on page 2)", "escalation-" + head, false, false},
		{"another key gets its own comment", "escalation-other", true, false},
		{"empty key", "", false, true},
		{"key that would end the marker", "a-->b", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, err := h.c.EnsureComment(ctx, "acme", "widgets", 1, tt.key, "Held for a human.")
			if (err != nil) != tt.wantErr || created != tt.wantCreated {
				t.Fatalf("created %v err %v", created, err)
			}
		})
	}
	cs := h.s.Comments(repo, 1)
	if len(cs) != 152 || !strings.Contains(cs[150].Body, Marker("escalation-"+head)) || !cs[150].ViaApp {
		t.Fatalf("%d comments, last %+v", len(cs), cs[len(cs)-1])
	}
	t.Run("a POST whose answer was lost is not duplicated", func(t *testing.T) {
		h.s.FailAfterNext("POST", routeComment, 1, 500)
		created, err := h.c.EnsureComment(ctx, "acme", "widgets", 1, "lost", "x")
		if err != nil || !created {
			t.Fatalf("created %v err %v", created, err)
		}
		if n := len(h.s.Comments(repo, 1)); n != 153 {
			t.Fatalf("%d comments, want 153", n)
		}
	})
	t.Run("a failed POST is retried after looking again", func(t *testing.T) {
		h.s.FailNext("POST", routeComment, 1, 502, nil, "")
		created, err := h.c.EnsureComment(ctx, "acme", "widgets", 1, "retry", "x")
		if err != nil || !created {
			t.Fatalf("created %v err %v", created, err)
		}
		if n := len(h.s.Comments(repo, 1)); n != 154 {
			t.Fatalf("%d comments, want 154", n)
		}
	})
}

func TestDirectory(t *testing.T) {
	ctx := context.Background()
	t.Run("answers", func(t *testing.T) {
		h := newHarness(t)
		d := h.c.Directory()
		for _, tt := range []struct {
			login string
			want  bool
		}{{"alice", true}, {"bob", false}, {"mallory", false}} {
			got, err := d.IsTeamMember(ctx, "acme", "release-managers", tt.login)
			if err != nil || got != tt.want {
				t.Errorf("%s: %v %v, want %v", tt.login, got, err, tt.want)
			}
		}
		for _, tt := range []struct{ login, want string }{{"alice", "maintain"}, {"bob", "read"}, {"ghost", "none"}} {
			got, err := d.Permission(ctx, "acme", "widgets", tt.login)
			if err != nil || got != tt.want {
				t.Errorf("%s: %q %v, want %q", tt.login, got, err, tt.want)
			}
		}
		if _, err := d.IsTeamMember(ctx, "", "t", "x"); err == nil {
			t.Error("empty org accepted")
		}
		if _, err := d.Permission(ctx, "acme", "widgets", ""); err == nil {
			t.Error("empty login accepted")
		}
	})
	t.Run("cached across evaluations", func(t *testing.T) {
		h := newHarness(t)
		for i := 0; i < 3; i++ {
			h.c.Directory().IsTeamMember(ctx, "acme", "release-managers", "alice")
			h.app.Installation(instID).Directory().Permission(ctx, "acme", "widgets", "alice")
		}
		if n := len(h.s.Calls()); n != 3 { // token, membership, permission
			t.Fatalf("%d calls: %+v", n, h.s.Calls())
		}
	})
	t.Run("expires after the TTL", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.DirectoryTTL = time.Nanosecond })
		for i := 0; i < 2; i++ {
			h.c.Directory().IsTeamMember(ctx, "acme", "release-managers", "alice")
		}
		if n := h.requests("/orgs/{org}/teams/{team}/memberships/{user}"); n != 2 {
			t.Fatalf("%d calls, want 2", n)
		}
	})
	t.Run("a team that does not exist is an error, not a team without members", func(t *testing.T) {
		h := newHarness(t)
		d := h.c.Directory()
		for i := 0; i < 2; i++ {
			_, err := d.IsTeamMember(ctx, "acme", "release-managrs", "alice")
			if err == nil || !strings.Contains(err.Error(), "acme/release-managrs does not exist") {
				t.Fatalf("IsTeamMember of a missing team: %v", err)
			}
		}
		for _, login := range []string{"bob", "mallory"} { // non-members of a real team
			if ok, err := d.IsTeamMember(ctx, "acme", "release-managers", login); err != nil || ok {
				t.Fatalf("%s: %v %v", login, ok, err)
			}
		}
		if n := h.requests("/orgs/{org}/teams/{team}"); n != 2 {
			t.Fatalf("%d team lookups, want 2 (one per team, cached)", n)
		}
	})
	t.Run("failures are errors and not cached", func(t *testing.T) {
		h := newHarness(t)
		h.s.FailNext("GET", "/orgs/{org}/teams/{team}/memberships/{user}", 5, 500, nil, "")
		if _, err := h.c.Directory().IsTeamMember(ctx, "acme", "release-managers", "alice"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err %v", err)
		}
		if ok, err := h.c.Directory().IsTeamMember(ctx, "acme", "release-managers", "alice"); err != nil || !ok {
			t.Fatalf("after recovery: %v %v", ok, err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.DirectoryEntries = 1 })
		h.c.Directory().Permission(ctx, "acme", "widgets", "alice")
		h.c.Directory().Permission(ctx, "acme", "widgets", "bob")
		h.c.Directory().Permission(ctx, "acme", "widgets", "alice")
		if n := h.requests("/repos/{owner}/{repo}/collaborators/{user}/permission"); n != 3 {
			t.Fatalf("%d calls, want 3", n)
		}
	})
}

func TestListsAndReviewers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.s.AddPull(repo, pr.PullRequest{Number: 2, Author: pr.Account{Login: "carol"}, HeadSHA: "2222"})
	h.s.AddPull(repo, pr.PullRequest{Number: 3, Author: pr.Account{Login: "carol"}, HeadSHA: "3333", State: "closed"})
	h.s.AddGraphCommit(repo, pr.Commit{SHA: base})
	h.s.AddGraphCommit(repo, pr.Commit{SHA: "mg"}, base, head)

	open, err := h.c.OpenPulls(ctx, "acme", "widgets")
	if err != nil || len(open) != 2 || open[0].Number != 2 || open[1].Number != 1 {
		t.Fatalf("open pulls %+v %v", open, err)
	}
	nums, err := h.c.PullsForCommit(ctx, "acme", "widgets", head)
	if err != nil || !slices.Equal(nums, []int{1}) {
		t.Fatalf("pulls for commit %v %v", nums, err)
	}
	shas, err := h.c.CompareCommits(ctx, "acme", "widgets", base, "mg")
	if err != nil || !slices.Equal(shas, []string{head, "mg"}) {
		t.Fatalf("compare %v %v", shas, err)
	}
	if _, err := h.c.CompareCommits(ctx, "acme", "widgets", base, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("compare of unknown head: %v", err)
	}
	repos, err := h.c.Repositories(ctx)
	if err != nil || len(repos) != 1 || repos[0].FullName != repo || repos[0].DefaultBranch != "main" {
		t.Fatalf("repositories %+v %v", repos, err)
	}
	if err := h.c.RequestReviewers(ctx, "acme", "widgets", 1, []string{"alice"}, []string{"release-managers"}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.RequestReviewers(ctx, "acme", "widgets", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.c.RequestReviewers(ctx, "acme", "widgets", 1, []string{"dep-bot[bot]"}, nil); err == nil || !strings.Contains(err.Error(), "author") {
		t.Fatalf("author as reviewer: %v", err)
	}
	users, teams := h.s.RequestedReviewers(repo, 1)
	if !slices.Equal(users, []string{"alice"}) || !slices.Equal(teams, []string{"release-managers"}) {
		t.Fatalf("requested %v %v", users, teams)
	}
	if err := h.c.Comment(ctx, "acme", "widgets", 404, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("comment on unknown issue: %v", err)
	}
}

func TestAppClient(t *testing.T) {
	h := newHarness(t)
	a, _, err := h.app.Client().Apps.Get(context.Background(), "")
	if err != nil || a.GetID() != h.s.AppID() {
		t.Fatalf("app %+v %v", a, err)
	}
	if h.app.Installation(instID) != h.c {
		t.Error("installation clients are not cached")
	}
}

func TestNew(t *testing.T) {
	s := githubtest.New(t)
	good := s.PrivateKeyPEM()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	garbage := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("SECRETSECRETSECRET-not-a-key")})
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"good key", Options{AppID: 1, PrivateKey: good}, ""},
		{"GHES base URL", Options{AppID: 1, PrivateKey: good, BaseURL: "https://ghe.example/api/v3"}, ""},
		{"empty key", Options{AppID: 1}, "private key: empty"},
		{"not PEM", Options{AppID: 1, PrivateKey: []byte("SECRETSECRETSECRET")}, "not PEM-encoded"},
		{"PEM without an RSA key", Options{AppID: 1, PrivateKey: garbage}, "not an RSA private key"},
		{"EC key", Options{AppID: 1, PrivateKey: ecPEM}, "GitHub Apps use RSA keys"},
		{"truncated key", Options{AppID: 1, PrivateKey: good[:len(good)/2]}, "not PEM-encoded"},
		{"no app id", Options{PrivateKey: good}, "app id"},
		{"bad base URL", Options{AppID: 1, PrivateKey: good, BaseURL: "ftp://x/"}, "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			for _, secret := range []string{"SECRET", "MII", "BEGIN"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains key material (%s)", err, secret)
				}
			}
		})
	}
}

func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var errs []error
	h.s.FailNext("", "", 0, 503, nil, "")
	_, err := h.c.Facts("acme", "widgets", 1, nil).PullRequest(ctx) // token mint fails
	errs = append(errs, err)
	h.s.ClearFaults()
	readAll(t, h.c.Facts("acme", "widgets", 1, nil))
	h.s.FailNext("GET", routeFiles, 0, 500, nil, "")
	_, err = h.c.Facts("acme", "widgets", 1, nil).Files(ctx)
	errs = append(errs, err)
	h.s.ClearFaults()
	h.s.ExpireTokens()
	_, err = h.c.Facts("acme", "widgets", 1, nil).Reviews(ctx)
	errs = append(errs, err)
	_, _, err = h.app.Client().Apps.ListInstallations(ctx, nil)
	if err != nil {
		errs = append(errs, err)
	}
	if h.log.Len() == 0 {
		t.Fatal("nothing was logged: the test proves nothing")
	}
	key := string(h.s.PrivateKeyPEM())
	keyLine := strings.Split(key, "\n")[3]
	texts := []string{h.log.String()}
	for _, e := range errs {
		if e == nil {
			t.Fatal("expected an error")
		}
		texts = append(texts, e.Error())
	}
	for _, s := range texts {
		for _, secret := range []string{"ghs_", "eyJ", "Bearer", "PRIVATE KEY", keyLine} {
			if strings.Contains(s, secret) {
				t.Errorf("%q leaks %q", s, secret)
			}
		}
	}
}

func TestRouteOf(t *testing.T) {
	tests := []struct{ path, prefix, want string }{
		{"/repos/acme/widgets/pulls/1/files", "", routeFiles},
		{"/api/v3/repos/acme/widgets/pulls/1/files", "/api/v3", routeFiles},
		{"/repos/acme/widgets/branches/release%2F1.0/protection", "", "/repos/{owner}/{repo}/branches/{branch}/protection"},
		{"/repos/acme/widgets/compare/a...b", "", "/repos/{owner}/{repo}/compare/{basehead}"},
		{"/app/installations/7/access_tokens", "", routeToken},
		{"/gists/1", "", "other"},
		{"/", "", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := routeOf(tt.path, tt.prefix); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkFactsAllFive(b *testing.B) {
	s := githubtest.New(b)
	s.AddInstallation(instID, "acme")
	s.AddRepo(instID, repo)
	s.AddPull(repo, pr.PullRequest{Number: 1, Author: pr.Account{Login: "a"}, HeadSHA: head, BaseSHA: base})
	s.AddCommit(repo, 1, pr.Commit{SHA: head})
	s.AddFile(repo, 1, pr.File{Filename: "a.go", Patch: "@@ -1 +1 @@\n-a\n+b"})
	app, err := New(Options{BaseURL: s.URL(), AppID: s.AppID(), PrivateKey: s.PrivateKeyPEM(), Transport: s.HTTPClient().Transport})
	if err != nil {
		b.Fatal(err)
	}
	c := app.Installation(instID)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := c.Facts("acme", "widgets", 1, nil)
		f.PullRequest(ctx)
		f.Reviews(ctx)
		f.Commits(ctx)
		f.Files(ctx)
	}
}
