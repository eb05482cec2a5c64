package githubtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mergeguard/guard/internal/pr"
)

const extract = "../../testdata/github/openapi-extract.json"

func loadSchemas(t *testing.T) *Schemas {
	t.Helper()
	sc, err := LoadSchemas(extract)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestResponsesHaveGitHubsShape checks every operation of the OpenAPI
// extract: the fake's response (and the request used) validate, strictly.
func TestResponsesHaveGitHubsShape(t *testing.T) {
	sc := loadSchemas(t)
	s := seeded(t)
	s.AddPull(repo, pr.PullRequest{Number: 2, Title: "fork", Author: pr.Account{Login: "carol"}, HeadSHA: "2222", HeadRepo: "carol/widgets",
		AutoMerge: &pr.AutoMerge{EnabledBy: pr.Account{Login: "carol"}}, State: "closed", Merged: true})
	s.AddReview(repo, 1, pr.Review{User: pr.Account{Login: "bob"}, State: "PENDING"})
	s.AddCommit(repo, 1, pr.Commit{SHA: "3333", Message: "unmapped identities", Author: pr.Person{Name: "x"}})
	s.AddFile(repo, 1, pr.File{Filename: "logo.png", Status: "added"})
	tok := "token " + s.InstallationToken(inst)
	run := do(t, s, "POST", "/repos/acme/widgets/check-runs", tok, map[string]any{"name": "seed", "head_sha": head})
	var created struct{ ID int64 }
	run.json(t, &created)

	requests := map[string]any{
		"POST /repos/{owner}/{repo}/check-runs": map[string]any{
			"name": "merge-guard", "head_sha": head, "external_id": "d1", "details_url": "https://guard.example/d/1",
			"status": "completed", "conclusion": "action_required",
			"output":  map[string]any{"title": "Held for a human", "summary": "Approve it", "text": "details"},
			"actions": []map[string]string{{"label": "Approve", "description": "Approve this head", "identifier": "approve"}},
		},
		"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}": map[string]any{
			"status": "completed", "conclusion": "success", "output": map[string]any{"title": "Approved", "summary": "by @alice"},
		},
		"POST /repos/{owner}/{repo}/issues/{issue_number}/comments":          map[string]any{"body": "hello"},
		"POST /repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers": map[string]any{"reviewers": []string{"alice"}, "team_reviewers": []string{"release-managers"}},
	}
	params := strings.NewReplacer("{owner}", "acme", "{repo}", "widgets", "{pull_number}", "1", "{issue_number}", "1",
		"{ref}", head, "{check_run_id}", fmt.Sprint(created.ID), "{org}", "acme", "{team_slug}", "release-managers", "{username}", "alice")
	for _, op := range sc.OperationKeys() {
		t.Run(op, func(t *testing.T) {
			method, tmpl, _ := strings.Cut(op, " ")
			body := requests[op]
			if body != nil {
				b, _ := json.Marshal(body)
				if p := sc.CheckRequest(op, b, true); len(p) > 0 {
					t.Fatalf("test request does not fit the schema: %v", p)
				}
			}
			u := params.Replace(tmpl)
			if op == "GET /repos/{owner}/{repo}/pulls" {
				u += "?state=all"
			}
			r := do(t, s, method, u, tok, body)
			if r.status >= 300 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			for _, p := range sc.CheckResponse(op, r.body, true) {
				t.Error(p)
			}
		})
	}
}

func TestSchemaValidatorCatchesMistakes(t *testing.T) {
	sc := loadSchemas(t)
	tests := []struct {
		name, op, body string
		request        bool
		want           string
	}{
		{"valid request", "POST /repos/{owner}/{repo}/check-runs", `{"name":"x","head_sha":"y"}`, true, ""},
		{"request missing required", "POST /repos/{owner}/{repo}/check-runs", `{"name":"x"}`, true, "missing required head_sha"},
		{"request with bad enum", "POST /repos/{owner}/{repo}/check-runs", `{"name":"x","head_sha":"y","conclusion":"great"}`, true, "is not one of"},
		{"request with misspelt field", "POST /repos/{owner}/{repo}/check-runs", `{"name":"x","head_sha":"y","detail_url":"z"}`, true, "detail_url is not in the schema"},
		{"completed without conclusion", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", `{"status":"completed"}`, true, "missing required conclusion"},
		{"response with wrong type", "GET /repos/{owner}/{repo}/pulls/{pull_number}/files", `[{"filename":1}]`, false, "$[0].filename: integer, want string"},
		{"response with bad date", "GET /repos/{owner}/{repo}/issues/{issue_number}/comments", `[{"created_at":"yesterday"}]`, false, "not an RFC 3339"},
		{"not JSON", "GET /repos/{owner}/{repo}/pulls", `{`, false, "not JSON"},
		{"unknown operation", "GET /nope", `{}`, false, "no response schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if tt.request {
				got = sc.CheckRequest(tt.op, []byte(tt.body), true)
			} else {
				got = sc.CheckResponse(tt.op, []byte(tt.body), true)
			}
			joined := strings.Join(got, "\n")
			if tt.want == "" && joined != "" || !strings.Contains(joined, tt.want) {
				t.Fatalf("problems %q, want one containing %q", joined, tt.want)
			}
		})
	}
}

// TestSchemaEnforcesGitHubsLimits: the extract keeps maxLength/maxItems and
// the validator enforces them, counting characters (code points), not bytes.
func TestSchemaEnforcesGitHubsLimits(t *testing.T) {
	sc := loadSchemas(t)
	action := func(label, description, identifier string) map[string]any {
		return map[string]any{"label": label, "description": description, "identifier": identifier}
	}
	ok := action("Approve", "Approve this head", "approve")
	tests := []struct {
		name   string
		fields map[string]any
		want   string // "" : accepted
	}{
		{"summary of 65535 characters", map[string]any{"output": map[string]any{"title": "t", "summary": strings.Repeat("a", 65535)}}, ""},
		{"summary of 65535 multi-byte characters", map[string]any{"output": map[string]any{"title": "t", "summary": strings.Repeat("é", 65534) + "😀"}}, ""},
		{"summary of 65536 characters", map[string]any{"output": map[string]any{"title": "t", "summary": strings.Repeat("a", 65536)}},
			"$.output.summary: 65536 characters, at most 65535 allowed"},
		{"text of 65536 characters", map[string]any{"output": map[string]any{"title": "t", "summary": "s", "text": strings.Repeat("é", 65536)}},
			"$.output.text: 65536 characters, at most 65535 allowed"},
		{"3 actions", map[string]any{"actions": []any{ok, ok, ok}}, ""},
		{"4 actions", map[string]any{"actions": []any{ok, ok, ok, ok}}, "$.actions: 4 items, at most 3 allowed"},
		{"label of 20 characters", map[string]any{"actions": []any{action(strings.Repeat("é", 20), "d", "i")}}, ""},
		{"label of 21 characters", map[string]any{"actions": []any{action(strings.Repeat("a", 21), "d", "i")}},
			"$.actions[0].label: 21 characters, at most 20 allowed"},
		{"description of 41 characters", map[string]any{"actions": []any{action("l", strings.Repeat("a", 41), "i")}},
			"$.actions[0].description: 41 characters, at most 40 allowed"},
		{"identifier of 21 characters", map[string]any{"actions": []any{action("l", "d", strings.Repeat("a", 21))}},
			"$.actions[0].identifier: 21 characters, at most 20 allowed"},
	}
	for _, op := range []string{"POST /repos/{owner}/{repo}/check-runs", "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"} {
		for _, tt := range tests {
			t.Run(op+"/"+tt.name, func(t *testing.T) {
				body := map[string]any{"name": "merge-guard", "head_sha": "1111111111111111111111111111111111111111", "conclusion": "action_required"}
				if strings.HasPrefix(op, "PATCH") {
					delete(body, "head_sha")
				}
				for k, v := range tt.fields {
					body[k] = v
				}
				b, err := json.Marshal(body)
				if err != nil {
					t.Fatal(err)
				}
				joined := strings.Join(sc.CheckRequest(op, b, true), "\n")
				if tt.want == "" && joined != "" || !strings.Contains(joined, tt.want) {
					t.Fatalf("problems %q, want %q", joined, tt.want)
				}
			})
		}
	}
}
