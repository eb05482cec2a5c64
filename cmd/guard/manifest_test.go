package main

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	mergeguard "github.com/mergeguard/guard"
	"github.com/mergeguard/guard/internal/guard"
)

// TestManifestEventsMatchCode: every event the guard handles is delivered
// to the app (subscribed, or sent without subscription), and every event the
// manifest subscribes is handled.
func TestManifestEventsMatchCode(t *testing.T) {
	var handled []string
	for e := range guard.HandledEvents() {
		handled = append(handled, e)
	}
	sort.Strings(handled)
	delivered := mergeguard.DeliveredEvents()
	sort.Strings(delivered)
	if !slices.Equal(handled, delivered) {
		t.Fatalf("events the code handles %v != events delivered to the app %v", handled, delivered)
	}
}

// routePermission is the installation permission each REST route the guard
// calls needs (GitHub's "Permissions required for GitHub Apps" tables).
var routePermission = map[string][2]string{
	"GET /repos/{owner}/{repo}":                                     {"metadata", "read"},
	"GET /repos/{owner}/{repo}/pulls":                               {"pull_requests", "read"},
	"GET /repos/{owner}/{repo}/pulls/{number}":                      {"pull_requests", "read"},
	"GET /repos/{owner}/{repo}/pulls/{number}/reviews":              {"pull_requests", "read"},
	"GET /repos/{owner}/{repo}/pulls/{number}/commits":              {"pull_requests", "read"},
	"GET /repos/{owner}/{repo}/pulls/{number}/files":                {"pull_requests", "read"},
	"POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers": {"pull_requests", "write"},
	"GET /repos/{owner}/{repo}/issues/{number}/comments":            {"issues", "read"},
	"POST /repos/{owner}/{repo}/issues/{number}/comments":           {"issues", "write"},
	"POST /repos/{owner}/{repo}/check-runs":                         {"checks", "write"},
	"PATCH /repos/{owner}/{repo}/check-runs/{id}":                   {"checks", "write"},
	"GET /repos/{owner}/{repo}/check-runs/{id}":                     {"checks", "read"},
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs":            {"checks", "read"},
	"GET /repos/{owner}/{repo}/commits/{ref}/pulls":                 {"contents", "read"},
	"GET /repos/{owner}/{repo}/compare/{basehead}":                  {"contents", "read"},
	"GET /repos/{owner}/{repo}/collaborators/{user}/permission":     {"metadata", "read"},
	"GET /orgs/{org}/teams/{team}/memberships/{user}":               {"members", "read"},
	"GET /installation/repositories":                                {"metadata", "read"},
	"GET /repos/{owner}/{repo}/branches/{branch}/protection":        {"administration", "read"},
	"GET /repos/{owner}/{repo}/rules/branches/{branch}":             {"metadata", "read"},
}

// permissionsByEvent are granted for a webhook the guard needs.
var permissionsByEvent = map[string]string{"merge_group": "merge_queues"}

// TestManifestPermissionsMatchCode runs an escalation (reviewers, comment,
// team membership, permission check) and a /guard command through the real
// guard against the fake GitHub, then checks that every installation call
// it made is allowed by the manifest's permissions, and that every
// permission the manifest asks for is used by the guard (administration is
// used by guard doctor's protection check).
func TestManifestPermissionsMatchCode(t *testing.T) {
	fake := newFake(t)
	fake.AddTeamMember("octo-org", "release-managers", "carol", "active")
	fake.SetPermission(testRepo, "carol", "maintain")
	h := startGuard(t, fake, "escalation:\n  reviewers: {teams: [release-managers]}\n  approvers: {teams: [release-managers]}\n")
	addPull(fake, 7, agent, sha('7'))
	h.deliver("pull_request", prEvent(t, "opened", 7, agent, sha('7'), agent))
	h.waitCheckOn(t, sha('7'), "action_required")
	waitFor(t, "the escalation comment", func() bool { return len(fake.Comments(testRepo, 7)) > 0 })
	// An approver's command: team membership and a reply.
	h.deliver("issue_comment", payload(t, "issue_comment.created", map[string]any{
		"issue.number": 7, "issue.pull_request": map[string]any{"url": "https://api.github.com/repos/" + testRepo + "/pulls/7"},
		"comment.id": 9007, "comment.user.login": "carol", "comment.user.type": "User",
		"comment.created_at": time.Now().UTC().Format(time.RFC3339), "comment.body": "/guard approve read every line",
		"sender.login": "carol", "sender.type": "User",
	}))
	h.waitCheckOn(t, sha('7'), "success")
	// A merge group: compare and commits -> pulls.
	h.deliver("merge_group", payload(t, "merge_group.checks_requested", map[string]any{
		"merge_group.head_sha": sha('7'), "merge_group.base_sha": strings.Repeat("0", 40),
		"merge_group.base_ref": "refs/heads/main",
	}))
	waitFor(t, "the merge group evaluation", func() bool { return fake.CallCount("GET", "/repos/{owner}/{repo}/compare/{basehead}") > 0 })

	granted := mergeguard.Permissions()
	// metadata is granted to every app; administration is for guard doctor.
	used := map[string]bool{"metadata": true, "administration": true}
	for _, p := range permissionsByEvent {
		used[p] = true
	}
	for _, c := range fake.Calls() {
		if c.Route == "" || strings.HasPrefix(c.Route, "/app") {
			continue // app-level (JWT) calls need no installation permission
		}
		key := c.Method + " " + c.Route
		need, ok := routePermission[key]
		if !ok {
			t.Errorf("the guard called %s, which the permission table does not know: add it with the permission GitHub documents", key)
			continue
		}
		used[need[0]] = true
		have := granted[need[0]]
		if have == "" || (need[1] == "write" && have != "write") {
			t.Errorf("%s needs %s: %s, the manifest grants %q", key, need[0], need[1], have)
		}
	}
	for p := range granted {
		if !used[p] {
			t.Errorf("the manifest asks for %s: %s, but the guard never needs it", p, granted[p])
		}
	}
}
