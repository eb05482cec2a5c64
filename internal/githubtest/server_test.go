package githubtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

const (
	inst = int64(7)
	repo = "acme/widgets"
	head = "1111111111111111111111111111111111111111"
	base = "0000000000000000000000000000000000000000"
)

// seeded returns a fake with one installation, repository and agent PR.
func seeded(t *testing.T) *Server {
	t.Helper()
	s := New(t)
	s.AddInstallation(inst, "acme")
	s.AddRepo(inst, repo)
	s.AddPull(repo, pr.PullRequest{Number: 1, Title: "Bump deps", Author: pr.Account{Login: "dep-bot[bot]"}, HeadSHA: head, BaseSHA: base, Labels: []string{"deps"}})
	s.AddCommit(repo, 1, pr.Commit{SHA: head, Message: "bump", Author: pr.Person{Name: "Dep Bot", Email: "bot@example.com", Account: pr.Account{Login: "dep-bot[bot]"}}, Committer: pr.Person{Name: "GitHub", Email: "noreply@github.com"}})
	s.AddReview(repo, 1, pr.Review{User: pr.Account{Login: "alice"}, State: "APPROVED"})
	s.AddFile(repo, 1, pr.File{Filename: "go.mod", Patch: "@@ -1,2 +1,2 @@\n module x\n-require a v1\n+require a v2"})
	s.AddComment(repo, 1, pr.Account{Login: "alice"}, "looks fine")
	s.SetPermission(repo, "alice", "maintain")
	s.AddTeamMember("acme", "release-managers", "alice", "active")
	s.AddTeamMember("acme", "release-managers", "bob", "pending")
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with an Authorization header ("" for none).
func do(t *testing.T, s *Server, method, url, authz string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	if !strings.HasPrefix(url, "http") {
		url = strings.TrimSuffix(s.URL(), "/") + url
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func TestAuthentication(t *testing.T) {
	s := seeded(t)
	other := New(t) // same process key: its JWTs are valid here too, so forge one with a wrong iss
	_ = other
	tok := "token " + s.InstallationToken(inst)
	tests := []struct {
		name, method, path, authz string
		want                      int
	}{
		{"repo route with installation token", "GET", "/repos/acme/widgets", tok, 200},
		{"repo route with Bearer installation token", "GET", "/repos/acme/widgets", "Bearer " + strings.TrimPrefix(tok, "token "), 200},
		{"repo route without credentials", "GET", "/repos/acme/widgets", "", 401},
		{"repo route with unknown token", "GET", "/repos/acme/widgets", "token ghs_nope", 401},
		{"repo route with app JWT", "GET", "/repos/acme/widgets", "Bearer " + s.AppJWT(), 401},
		{"repo of no installation of the token", "GET", "/repos/other/thing", tok, 404},
		{"app route with JWT", "GET", "/app", "Bearer " + s.AppJWT(), 200},
		{"app route with installation token", "GET", "/app", tok, 401},
		{"app route with garbage JWT", "GET", "/app", "Bearer a.b.c", 401},
		{"app route with JWT expiring in 11 minutes", "GET", "/app", "Bearer " + signJWT(s.key, map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(11*time.Minute + 2*clockSkew).Unix(), "iss": "4242"}), 401},
		{"app route with expired JWT", "GET", "/app", "Bearer " + signJWT(s.key, map[string]any{"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix(), "iss": "4242"}), 401},
		{"app route with JWT of another app", "GET", "/app", "Bearer " + signJWT(s.key, map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "iss": "1"}), 401},
		{"app route with numeric iss", "GET", "/app", "Bearer " + signJWT(s.key, map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "iss": 4242}), 200},
		{"token for unknown installation", "POST", "/app/installations/99/access_tokens", "Bearer " + s.AppJWT(), 404},
		{"manifest conversion with unknown code", "POST", "/app-manifests/nope/conversions", "", 404},
		{"unknown route", "GET", "/nope", tok, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.method, tt.path, tt.authz, nil)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if r.status >= 400 {
				var e struct{ Message, DocumentationURL string }
				r.json(t, &e)
				if e.Message == "" || !strings.Contains(string(r.body), "documentation_url") {
					t.Errorf("error body %s lacks message or documentation_url", r.body)
				}
			}
		})
	}
}

func TestAccessTokenThenRepositoryCall(t *testing.T) {
	s := seeded(t)
	r := do(t, s, "POST", "/app/installations/7/access_tokens", "Bearer "+s.AppJWT(), nil)
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var tok struct {
		Token     string
		ExpiresAt time.Time `json:"expires_at"`
	}
	r.json(t, &tok)
	if !strings.HasPrefix(tok.Token, "ghs_") || time.Until(tok.ExpiresAt) < 50*time.Minute {
		t.Fatalf("token %q expires %v", tok.Token, tok.ExpiresAt)
	}
	if r := do(t, s, "GET", "/installation/repositories", "token "+tok.Token, nil); r.status != 200 || !strings.Contains(string(r.body), `"full_name":"acme/widgets"`) {
		t.Fatalf("installation repositories: %d %s", r.status, r.body)
	}
	s.ExpireTokens()
	if r := do(t, s, "GET", "/repos/acme/widgets", "token "+tok.Token, nil); r.status != 401 {
		t.Fatalf("expired token: status %d", r.status)
	}
}

func TestPagination(t *testing.T) {
	s := seeded(t)
	for i := 0; i < 250; i++ {
		s.AddFile(repo, 1, pr.File{Filename: fmt.Sprintf("f%03d.go", i), Patch: "@@ -0,0 +1 @@\n+x"})
	}
	tok := "token " + s.InstallationToken(inst)
	tests := []struct {
		name      string
		query     string
		wantLen   int
		wantLinks []string
	}{
		{"default page size is 30", "", 30, []string{`page=2>; rel="next"`, `page=9>; rel="last"`}},
		{"per_page 100", "?per_page=100", 100, []string{`page=2&per_page=100>; rel="next"`, `page=3&per_page=100>; rel="last"`}},
		{"per_page above 100 is capped", "?per_page=500", 100, []string{`rel="next"`}},
		{"last page is partial", "?per_page=100&page=3", 51, []string{`rel="prev"`, `rel="first"`}},
		{"page past the end is empty", "?per_page=100&page=9", 0, []string{`rel="prev"`}},
		{"bad per_page falls back to 30", "?per_page=abc", 30, []string{`rel="next"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, "GET", "/repos/acme/widgets/pulls/1/files"+tt.query, tok, nil)
			var files []map[string]any
			r.json(t, &files)
			if len(files) != tt.wantLen {
				t.Errorf("got %d files, want %d", len(files), tt.wantLen)
			}
			for _, l := range tt.wantLinks {
				if !strings.Contains(r.header.Get("Link"), l) {
					t.Errorf("Link %q lacks %q", r.header.Get("Link"), l)
				}
			}
		})
	}
}

func TestETagAndRateLimit(t *testing.T) {
	s := seeded(t)
	tok := "token " + s.InstallationToken(inst)
	first := do(t, s, "GET", "/repos/acme/widgets/pulls/1", tok, nil)
	etag := first.header.Get("ETag")
	if first.status != 200 || etag == "" {
		t.Fatalf("first GET: %d, ETag %q", first.status, etag)
	}
	remaining := first.header.Get("X-RateLimit-Remaining")
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Reset", "X-RateLimit-Used", "X-RateLimit-Resource"} {
		if first.header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
	again := do(t, s, "GET", "/repos/acme/widgets/pulls/1", tok, nil, "If-None-Match", etag)
	if again.status != 304 || len(again.body) != 0 {
		t.Fatalf("conditional GET: %d %s", again.status, again.body)
	}
	if again.header.Get("X-RateLimit-Remaining") != remaining {
		t.Errorf("304 cost rate limit: %s -> %s", remaining, again.header.Get("X-RateLimit-Remaining"))
	}
	if n := len(s.FreeCalls()); n != 1 {
		t.Errorf("free calls %d, want 1", n)
	}
	if n := s.CallCount("GET", "/repos/{owner}/{repo}/pulls/{number}"); n != 1 {
		t.Errorf("costly calls %d, want 1", n)
	}
	s.AddPull(repo, pr.PullRequest{Number: 1, Title: "changed", HeadSHA: head, BaseSHA: base, Author: pr.Account{Login: "dep-bot[bot]"}})
	if r := do(t, s, "GET", "/repos/acme/widgets/pulls/1", tok, nil, "If-None-Match", etag); r.status != 200 {
		t.Fatalf("GET after change: %d", r.status)
	}

	s.SetRateLimit(5000, 0, time.Now().Add(time.Hour))
	r := do(t, s, "GET", "/repos/acme/widgets", tok, nil)
	if r.status != 403 || r.header.Get("X-RateLimit-Remaining") != "0" || !strings.Contains(string(r.body), "rate limit") {
		t.Fatalf("exhausted: %d %v %s", r.status, r.header, r.body)
	}
	s.SetRateLimit(5000, 0, time.Now().Add(-time.Second))
	if r := do(t, s, "GET", "/repos/acme/widgets", tok, nil); r.status != 200 {
		t.Fatalf("after reset: %d %s", r.status, r.body)
	}
}

func TestFaults(t *testing.T) {
	s := seeded(t)
	tok := "token " + s.InstallationToken(inst)
	s.FailNext("GET", "/repos/{owner}/{repo}/pulls/{number}", 2, 502, nil, "")
	s.FailNext("", "/repos/*/*/pulls/1/reviews", 1, 403, http.Header{"Retry-After": {"7"}}, "")
	for i, want := range []int{502, 502, 200} {
		if r := do(t, s, "GET", "/repos/acme/widgets/pulls/1", tok, nil); r.status != want {
			t.Fatalf("call %d: %d, want %d", i, r.status, want)
		}
	}
	r := do(t, s, "GET", "/repos/acme/widgets/pulls/1/reviews", tok, nil)
	if r.status != 403 || r.header.Get("Retry-After") != "7" || !strings.Contains(string(r.body), "secondary rate limit") {
		t.Fatalf("secondary: %d %v %s", r.status, r.header, r.body)
	}
	s.FailNext("GET", "/repos/acme/widgets", 1, 0, nil, "")
	req, _ := http.NewRequest("GET", s.URL()+"repos/acme/widgets", nil)
	req.Header.Set("Authorization", tok)
	if resp, err := s.HTTPClient().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped connection answered %d", resp.StatusCode)
	}
	if got := s.Calls()[len(s.Calls())-1]; got.Status != 0 || got.Route != "/repos/{owner}/{repo}" {
		t.Errorf("dropped call recorded as %+v", got)
	}
	s.FailAfterNext("POST", "/repos/{owner}/{repo}/issues/{number}/comments", 1, 502)
	if r := do(t, s, "POST", "/repos/acme/widgets/issues/1/comments", tok, map[string]any{"body": "lost"}); r.status != 502 {
		t.Fatalf("lost answer: %d", r.status)
	}
	if c := s.Comments(repo, 1); c[len(c)-1].Body != "lost" {
		t.Fatal("FailAfterNext did not apply the request first")
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Error("ResetCalls kept calls")
	}
}

func TestGHESPrefix(t *testing.T) {
	s := seeded(t)
	for i := 0; i < 40; i++ {
		s.AddComment(repo, 1, pr.Account{Login: "carol"}, "hi")
	}
	r := do(t, s, "GET", s.GHESURL()+"repos/acme/widgets/issues/1/comments", "token "+s.InstallationToken(inst), nil)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if l := r.header.Get("Link"); !strings.Contains(l, "/api/v3/repos/acme/widgets/issues/1/comments?page=2") {
		t.Errorf("Link %q does not keep the /api/v3 prefix", l)
	}
	if c := s.Calls(); c[len(c)-1].Path != "/repos/acme/widgets/issues/1/comments" {
		t.Errorf("recorded path %q", c[len(c)-1].Path)
	}
}

func TestCheckRuns(t *testing.T) {
	s := seeded(t)
	tok := "token " + s.InstallationToken(inst)
	good := map[string]any{"name": "merge-guard", "head_sha": head, "conclusion": "success", "output": map[string]any{"title": "ok", "summary": "fine"}}
	tests := []struct {
		name string
		body map[string]any
		want int
	}{
		{"valid run", good, 201},
		{"missing name", map[string]any{"head_sha": head}, 422},
		{"missing head_sha", map[string]any{"name": "x"}, 422},
		{"unknown head_sha", map[string]any{"name": "x", "head_sha": strings.Repeat("9", 40)}, 422},
		{"completed without conclusion", map[string]any{"name": "x", "head_sha": head, "status": "completed"}, 422},
		{"bad conclusion", map[string]any{"name": "x", "head_sha": head, "conclusion": "great"}, 422},
		{"output without summary", map[string]any{"name": "x", "head_sha": head, "output": map[string]any{"title": "t"}}, 422},
		{"four actions", map[string]any{"name": "x", "head_sha": head, "actions": []Action{{"a", "b", "c"}, {"a", "b", "c"}, {"a", "b", "c"}, {"a", "b", "c"}}}, 422},
		{"action label over 20 characters", map[string]any{"name": "x", "head_sha": head, "actions": []Action{{strings.Repeat("a", 21), "b", "c"}}}, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, "POST", "/repos/acme/widgets/check-runs", tok, tt.body)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if r.status == 422 && !strings.Contains(string(r.body), `"errors"`) {
				t.Errorf("422 without errors: %s", r.body)
			}
		})
	}
	runs := s.CheckRuns(repo, head)
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].CompletedAt.IsZero() {
		t.Fatalf("runs %+v", runs)
	}
	id := runs[0].ID
	if r := do(t, s, "PATCH", fmt.Sprintf("/repos/acme/widgets/check-runs/%d", id), tok, map[string]any{"conclusion": "failure"}); r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	foreign := s.AddCheckRun(repo, CheckRun{Name: "merge-guard", HeadSHA: head, AppID: 1, Conclusion: "success"})
	if r := do(t, s, "PATCH", fmt.Sprintf("/repos/acme/widgets/check-runs/%d", foreign), tok, map[string]any{"conclusion": "failure"}); r.status != 403 {
		t.Fatalf("PATCH of another app's run: %d", r.status)
	}
	var list struct {
		TotalCount int `json:"total_count"`
		CheckRuns  []struct {
			ID  int64
			App struct{ ID int64 }
		} `json:"check_runs"`
	}
	do(t, s, "GET", "/repos/acme/widgets/commits/"+head+"/check-runs?check_name=merge-guard&app_id=4242", tok, nil).json(t, &list)
	if list.TotalCount != 1 || list.CheckRuns[0].ID != id {
		t.Fatalf("filtered by app: %+v", list)
	}
	do(t, s, "GET", "/repos/acme/widgets/commits/"+head+"/check-runs?check_name=merge-guard", tok, nil).json(t, &list)
	if list.TotalCount != 2 {
		t.Fatalf("both apps' runs: %+v", list)
	}
	if got := s.CheckRuns(repo, head)[0]; got.Conclusion != "failure" || got.Updates != 1 {
		t.Fatalf("after PATCH: %+v", got)
	}
}

func TestDirectoryRoutes(t *testing.T) {
	s := seeded(t)
	s.AddInstallation(8, "other")
	tok := "token " + s.InstallationToken(inst)
	tests := []struct {
		name, path, authz string
		want              int
		contains          string
	}{
		{"active member", "/orgs/acme/teams/release-managers/memberships/alice", tok, 200, `"state":"active"`},
		{"pending member", "/orgs/acme/teams/release-managers/memberships/bob", tok, 200, `"state":"pending"`},
		{"non-member", "/orgs/acme/teams/release-managers/memberships/mallory", tok, 404, "Not Found"},
		{"unknown team", "/orgs/acme/teams/nope/memberships/alice", tok, 404, "Not Found"},
		{"org of another installation", "/orgs/acme/teams/release-managers/memberships/alice", "token " + s.InstallationToken(8), 404, "Not Found"},
		{"maintainer permission", "/repos/acme/widgets/collaborators/alice/permission", tok, 200, `"role_name":"maintain"`},
		{"no role on a public repository", "/repos/acme/widgets/collaborators/dep-bot%5Bbot%5D/permission", tok, 200, `"permission":"read"`},
		{"unknown user", "/repos/acme/widgets/collaborators/ghost/permission", tok, 404, "is not a user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, "GET", tt.path, tt.authz, nil)
			if r.status != tt.want || !strings.Contains(string(r.body), tt.contains) {
				t.Fatalf("%d %s, want %d containing %s", r.status, r.body, tt.want, tt.contains)
			}
		})
	}
}

func TestProtectionAndRules(t *testing.T) {
	s := seeded(t)
	tok := "token " + s.InstallationToken(inst)
	if r := do(t, s, "GET", "/repos/acme/widgets/branches/main/protection", tok, nil); r.status != 404 || !strings.Contains(string(r.body), "Branch not protected") {
		t.Fatalf("unprotected: %d %s", r.status, r.body)
	}
	s.SetProtection(repo, "release/1.0", true, RequiredCheck{Context: "merge-guard", AppID: 4242})
	r := do(t, s, "GET", "/repos/acme/widgets/branches/release%2F1.0/protection", tok, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"checks":[{"app_id":4242,"context":"merge-guard"}]`) {
		t.Fatalf("protected: %d %s", r.status, r.body)
	}
	s.SetRulesetChecks(repo, "~DEFAULT_BRANCH", RequiredCheck{Context: "merge-guard", AppID: 4242})
	r = do(t, s, "GET", "/repos/acme/widgets/rules/branches/main", tok, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"integration_id":4242`) {
		t.Fatalf("rules: %d %s", r.status, r.body)
	}
	if r := do(t, s, "GET", "/repos/acme/widgets/rules/branches/dev", tok, nil); string(r.body) != "[]" {
		t.Fatalf("rules of an unruled branch: %s", r.body)
	}
}

// TestBranchRulesPaginate: GET …/rules/branches/{branch} pages like
// GitHub's other lists (30 by default, per_page at most 100, Link).
func TestBranchRulesPaginate(t *testing.T) {
	s := seeded(t)
	tok := "token " + s.InstallationToken(inst)
	// 35 rulesets match main: "[m0]ain" … "[m9]ain", "[mA]ain" … and, last
	// in GitHub's (the fake's) order, "main".
	for i := range 34 {
		s.SetRulesetChecks(repo, fmt.Sprintf("[m%c]ain", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]), RequiredCheck{Context: fmt.Sprint("ci/", i)})
	}
	s.SetRulesetChecks(repo, "main", RequiredCheck{Context: "merge-guard", AppID: 4242})
	var first []map[string]any
	r := do(t, s, "GET", "/repos/acme/widgets/rules/branches/main", tok, nil)
	r.json(t, &first)
	if r.status != 200 || len(first) != 30 || strings.Contains(string(r.body), "merge-guard") {
		t.Fatalf("first page: status %d, %d rules, want 30 without merge-guard's", r.status, len(first))
	}
	if l := r.header.Get("Link"); !strings.Contains(l, "/repos/acme/widgets/rules/branches/main?page=2>; rel=\"next\"") {
		t.Fatalf("Link %q lacks the next page", l)
	}
	var second []map[string]any
	r = do(t, s, "GET", "/repos/acme/widgets/rules/branches/main?page=2", tok, nil)
	r.json(t, &second)
	if len(second) != 5 || !strings.Contains(string(r.body), `"integration_id":4242`) || strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("second page: %d rules, Link %q: %s", len(second), r.header.Get("Link"), r.body)
	}
	var all []map[string]any
	r = do(t, s, "GET", "/repos/acme/widgets/rules/branches/main?per_page=100", tok, nil)
	r.json(t, &all)
	if len(all) != 35 || r.header.Get("Link") != "" {
		t.Fatalf("per_page=100: %d rules, Link %q", len(all), r.header.Get("Link"))
	}
}

func TestReviewersCommentsCompareDeliveries(t *testing.T) {
	s := seeded(t)
	tok := "token " + s.InstallationToken(inst)
	t.Run("requested reviewers", func(t *testing.T) {
		if r := do(t, s, "POST", "/repos/acme/widgets/pulls/1/requested_reviewers", tok, map[string]any{"reviewers": []string{"alice"}, "team_reviewers": []string{"release-managers"}}); r.status != 201 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := do(t, s, "POST", "/repos/acme/widgets/pulls/1/requested_reviewers", tok, map[string]any{"reviewers": []string{"dep-bot[bot]"}}); r.status != 422 {
			t.Fatalf("author as reviewer: %d", r.status)
		}
		if r := do(t, s, "POST", "/repos/acme/widgets/pulls/1/requested_reviewers", tok, map[string]any{"reviewers": []string{"stranger"}}); r.status != 422 {
			t.Fatalf("non-collaborator: %d", r.status)
		}
		users, teams := s.RequestedReviewers(repo, 1)
		if fmt.Sprint(users, teams) != "[alice] [release-managers]" {
			t.Fatalf("requested %v %v", users, teams)
		}
		do(t, s, "DELETE", "/repos/acme/widgets/pulls/1/requested_reviewers", tok, map[string]any{"reviewers": []string{"alice"}})
		if users, _ := s.RequestedReviewers(repo, 1); len(users) != 0 {
			t.Fatalf("after DELETE: %v", users)
		}
	})
	t.Run("comments", func(t *testing.T) {
		if r := do(t, s, "POST", "/repos/acme/widgets/issues/1/comments", tok, map[string]any{"body": "hello"}); r.status != 201 || !strings.Contains(string(r.body), `"login":"merge-guard[bot]"`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := do(t, s, "POST", "/repos/acme/widgets/issues/1/comments", tok, map[string]any{"body": ""}); r.status != 422 {
			t.Fatalf("empty body: %d", r.status)
		}
		if r := do(t, s, "POST", "/repos/acme/widgets/issues/99/comments", tok, map[string]any{"body": "x"}); r.status != 404 {
			t.Fatalf("unknown issue: %d", r.status)
		}
		if c := s.Comments(repo, 1); len(c) != 2 || !c[1].ViaApp {
			t.Fatalf("comments %+v", c)
		}
	})
	t.Run("compare and commits/pulls", func(t *testing.T) {
		s.AddGraphCommit(repo, pr.Commit{SHA: base})
		s.AddGraphCommit(repo, pr.Commit{SHA: "mg"}, base, head)
		var cmp struct {
			Status  string
			Commits []struct{ SHA string }
		}
		do(t, s, "GET", "/repos/acme/widgets/compare/"+base+"...mg", tok, nil).json(t, &cmp)
		if cmp.Status != "ahead" || len(cmp.Commits) != 2 || cmp.Commits[0].SHA != head || cmp.Commits[1].SHA != "mg" {
			t.Fatalf("compare %+v", cmp)
		}
		var pulls []struct{ Number int }
		do(t, s, "GET", "/repos/acme/widgets/commits/"+head+"/pulls", tok, nil).json(t, &pulls)
		if len(pulls) != 1 || pulls[0].Number != 1 {
			t.Fatalf("pulls %+v", pulls)
		}
		if r := do(t, s, "GET", "/repos/acme/widgets/compare/"+base+"...nope", tok, nil); r.status != 404 {
			t.Fatalf("unknown head: %d", r.status)
		}
	})
	t.Run("hook deliveries by cursor", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			s.AddDelivery(Delivery{GUID: fmt.Sprint("g", i), Event: "pull_request", Status: "Invalid HTTP Response: 503", StatusCode: 503})
		}
		jwt := "Bearer " + s.AppJWT()
		r := do(t, s, "GET", "/app/hook/deliveries?per_page=2", jwt, nil)
		var page []struct{ ID int64 }
		r.json(t, &page)
		if len(page) != 2 || !strings.Contains(r.header.Get("Link"), "cursor=") {
			t.Fatalf("page %+v link %q", page, r.header.Get("Link"))
		}
		if r := do(t, s, "POST", fmt.Sprintf("/app/hook/deliveries/%d/attempts", page[0].ID), jwt, nil); r.status != 202 {
			t.Fatalf("redeliver: %d", r.status)
		}
		if got := s.Redeliveries(); len(got) != 1 || got[0] != page[0].ID {
			t.Fatalf("redeliveries %v", got)
		}
	})
	t.Run("manifest code is single use", func(t *testing.T) {
		s.AddManifestCode("abc")
		r := do(t, s, "POST", "/app-manifests/abc/conversions", "", nil)
		if r.status != 201 || !strings.Contains(string(r.body), "BEGIN RSA PRIVATE KEY") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r := do(t, s, "POST", "/app-manifests/abc/conversions", "", nil); r.status != 404 {
			t.Fatalf("second use: %d", r.status)
		}
	})
}
