package githubtest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// The render functions build GitHub's JSON shapes as maps so that required
// fields GitHub sends as null are present.

type obj = map[string]any

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nodeID(kind string, id int64) string {
	return base64.RawStdEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%d", kind, id)))
}

// userJSON renders a simple-user; nil when login is empty.
func (q *request) userJSON(login string) any {
	if login == "" {
		return nil
	}
	u := q.s.user(pr.Account{Login: login})
	api := q.api + "/users/" + escape(u.login)
	return obj{
		"login": u.login, "id": u.id, "node_id": nodeID("User", u.id), "type": u.typ, "site_admin": false,
		"avatar_url":  q.web + "/avatars/u/" + fmt.Sprint(u.id),
		"gravatar_id": "", "url": api, "html_url": q.web + "/" + escape(u.login),
		"followers_url": api + "/followers", "following_url": api + "/following{/other_user}",
		"gists_url": api + "/gists{/gist_id}", "starred_url": api + "/starred{/owner}{/repo}",
		"subscriptions_url": api + "/subscriptions", "organizations_url": api + "/orgs",
		"repos_url": api + "/repos", "events_url": api + "/events{/privacy}",
		"received_events_url": api + "/received_events", "user_view_type": "public",
	}
}

func (q *request) botLogin() string { return q.s.slug + "[bot]" }

func (q *request) appJSON() obj {
	s := q.s
	owner := ""
	for _, i := range s.installs {
		owner = i.account
		break
	}
	if owner == "" {
		owner = "mergeguard"
	}
	return obj{
		"id": s.appID, "slug": s.slug, "node_id": nodeID("Integration", s.appID), "client_id": "Iv1.fake",
		"owner": q.userJSON(owner), "name": "Merge Guard", "description": "Holds AI agents' pull requests for a human.",
		"external_url": q.web, "html_url": q.web + "/apps/" + s.slug,
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"permissions":         obj{"checks": "write", "pull_requests": "write", "issues": "write", "contents": "read", "metadata": "read", "members": "read", "merge_queues": "read", "administration": "read"},
		"events":              []string{"pull_request", "pull_request_review", "issue_comment", "merge_group"},
		"installations_count": len(s.installs),
	}
}

var repoURLFields = []struct{ field, suffix string }{
	{"archive_url", "/{archive_format}{/ref}"}, {"assignees_url", "/assignees{/user}"},
	{"blobs_url", "/git/blobs{/sha}"}, {"branches_url", "/branches{/branch}"},
	{"collaborators_url", "/collaborators{/collaborator}"}, {"comments_url", "/comments{/number}"},
	{"commits_url", "/commits{/sha}"}, {"compare_url", "/compare/{base}...{head}"},
	{"contents_url", "/contents/{+path}"}, {"contributors_url", "/contributors"},
	{"deployments_url", "/deployments"}, {"downloads_url", "/downloads"}, {"events_url", "/events"},
	{"forks_url", "/forks"}, {"git_commits_url", "/git/commits{/sha}"}, {"git_refs_url", "/git/refs{/sha}"},
	{"git_tags_url", "/git/tags{/sha}"}, {"hooks_url", "/hooks"}, {"issue_comment_url", "/issues/comments{/number}"},
	{"issue_events_url", "/issues/events{/number}"}, {"issues_url", "/issues{/number}"}, {"keys_url", "/keys{/key_id}"},
	{"labels_url", "/labels{/name}"}, {"languages_url", "/languages"}, {"merges_url", "/merges"},
	{"milestones_url", "/milestones{/number}"}, {"notifications_url", "/notifications{?since,all,participating}"},
	{"pulls_url", "/pulls{/number}"}, {"releases_url", "/releases{/id}"}, {"stargazers_url", "/stargazers"},
	{"statuses_url", "/statuses/{sha}"}, {"subscribers_url", "/subscribers"}, {"subscription_url", "/subscription"},
	{"tags_url", "/tags"}, {"teams_url", "/teams"}, {"trees_url", "/git/trees{/sha}"},
}

// repoJSON renders a repository.
func (q *request) repoJSON(r *repoState) obj {
	api := q.api + "/repos/" + r.info.FullName
	html := q.web + "/" + r.info.FullName
	visibility := "public"
	if r.info.Private {
		visibility = "private"
	}
	o := obj{
		"id": r.id, "node_id": nodeID("Repository", r.id), "name": r.info.Name, "full_name": r.info.FullName,
		"owner": q.userJSON(r.info.Owner), "private": r.info.Private, "visibility": visibility,
		"html_url": html, "description": nil, "fork": false, "url": api,
		"clone_url": html + ".git", "git_url": strings.Replace(html, "http://", "git://", 1) + ".git",
		"ssh_url": "git@" + strings.TrimPrefix(q.web, "http://") + ":" + r.info.FullName + ".git",
		"svn_url": html, "mirror_url": nil, "homepage": nil, "language": nil,
		"forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
		"size": 0, "default_branch": r.info.DefaultBranch, "open_issues": 0, "open_issues_count": 0,
		"has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false, "has_downloads": true,
		"archived": false, "disabled": false, "license": nil,
		"pushed_at": ts(r.created), "created_at": ts(r.created), "updated_at": ts(r.created),
	}
	for _, f := range repoURLFields {
		o[f.field] = api + f.suffix
	}
	return o
}

// headRepo renders the head repository of a pull request: the base
// repository, or a fork (owner/name) rendered from it.
func (q *request) headRepo(r *repoState, full string) obj {
	if full == "" || strings.EqualFold(full, r.info.FullName) {
		return q.repoJSON(r)
	}
	owner, name, _ := strings.Cut(full, "/")
	fork := *r
	fork.info = pr.Repository{Owner: owner, Name: name, FullName: full, DefaultBranch: r.info.DefaultBranch, Private: r.info.Private}
	fork.id = r.id + 1_000_000
	o := q.repoJSON(&fork)
	o["fork"] = true
	return o
}

func (q *request) labelsJSON(r *repoState, labels []string) []any {
	out := []any{}
	for i, l := range labels {
		id := r.id*1000 + int64(i)
		out = append(out, obj{
			"id": id, "node_id": nodeID("Label", id), "url": q.api + "/repos/" + r.info.FullName + "/labels/" + escape(l),
			"name": l, "color": "ededed", "default": false, "description": "",
		})
	}
	return out
}

func link(href string) obj { return obj{"href": href} }

// pullJSON renders a pull request; full adds the fields of GET pulls/{n}.
func (q *request) pullJSON(r *repoState, ps *pullState, full bool) obj {
	p := ps.p
	api := fmt.Sprintf("%s/repos/%s/pulls/%d", q.api, r.info.FullName, p.Number)
	issue := fmt.Sprintf("%s/repos/%s/issues/%d", q.api, r.info.FullName, p.Number)
	html := fmt.Sprintf("%s/%s/pull/%d", q.web, r.info.FullName, p.Number)
	headOwner, _, _ := strings.Cut(p.HeadRepo, "/")
	var autoMerge any
	if p.AutoMerge != nil {
		method := p.AutoMerge.MergeMethod
		if method == "" {
			method = "merge"
		}
		autoMerge = obj{"enabled_by": q.userJSON(p.AutoMerge.EnabledBy.Login), "merge_method": method, "commit_title": p.Title, "commit_message": ""}
	}
	var closedAt, mergedAt any
	if p.State == "closed" {
		closedAt = ts(p.UpdatedAt)
	}
	if p.Merged {
		mergedAt = ts(p.UpdatedAt)
	}
	users := []any{}
	for _, u := range ps.users {
		users = append(users, q.userJSON(u))
	}
	teams := []any{}
	for _, t := range ps.teams {
		teams = append(teams, q.teamJSON(r.info.Owner, t))
	}
	o := obj{
		"url": api, "id": ps.id, "node_id": nodeID("PullRequest", ps.id), "html_url": html,
		"diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": issue,
		"commits_url": api + "/commits", "review_comments_url": api + "/comments",
		"review_comment_url": q.api + "/repos/" + r.info.FullName + "/pulls/comments{/number}",
		"comments_url":       issue + "/comments", "statuses_url": q.api + "/repos/" + r.info.FullName + "/statuses/" + p.HeadSHA,
		"number": p.Number, "state": p.State, "locked": false, "title": p.Title, "user": q.userJSON(p.Author.Login),
		"body": nil, "labels": q.labelsJSON(r, p.Labels), "milestone": nil, "active_lock_reason": nil,
		"created_at": ts(p.CreatedAt), "updated_at": ts(p.UpdatedAt), "closed_at": closedAt, "merged_at": mergedAt,
		"merge_commit_sha": nil, "assignee": nil, "assignees": []any{},
		"requested_reviewers": users, "requested_teams": teams,
		"head": obj{"label": headOwner + ":" + p.HeadRef, "ref": p.HeadRef, "sha": p.HeadSHA, "user": q.userJSON(headOwner), "repo": q.headRepo(r, p.HeadRepo)},
		"base": obj{"label": r.info.Owner + ":" + p.BaseRef, "ref": p.BaseRef, "sha": p.BaseSHA, "user": q.userJSON(r.info.Owner), "repo": q.repoJSON(r)},
		"_links": obj{
			"self": link(api), "html": link(html), "issue": link(issue), "comments": link(issue + "/comments"),
			"review_comments": link(api + "/comments"), "review_comment": link(q.api + "/repos/" + r.info.FullName + "/pulls/comments{/number}"),
			"commits": link(api + "/commits"), "statuses": link(q.api + "/repos/" + r.info.FullName + "/statuses/" + p.HeadSHA),
		},
		"author_association": "CONTRIBUTOR", "auto_merge": autoMerge, "draft": p.Draft,
	}
	if full {
		adds, dels := 0, 0
		for _, f := range ps.files {
			adds += f.Additions
			dels += f.Deletions
		}
		mergeable, state := any(true), "clean"
		if p.State == "closed" {
			mergeable, state = nil, "unknown"
		}
		o["merged"] = p.Merged
		o["mergeable"] = mergeable
		o["rebaseable"] = true
		o["mergeable_state"] = state
		o["merged_by"] = nil
		o["comments"] = 0
		o["review_comments"] = 0
		o["maintainer_can_modify"] = false
		o["commits"] = len(ps.commits)
		o["additions"] = adds
		o["deletions"] = dels
		o["changed_files"] = len(ps.files)
	}
	return o
}

func (q *request) teamJSON(org, slug string) obj {
	id := int64(len(slug)) * 7919
	api := q.api + "/orgs/" + org + "/teams/" + slug
	return obj{
		"id": id, "node_id": nodeID("Team", id), "url": api, "html_url": q.web + "/orgs/" + org + "/teams/" + slug,
		"name": slug, "slug": slug, "description": nil, "privacy": "closed", "notification_setting": "notifications_enabled",
		"permission": "pull", "members_url": api + "/members{/member}", "repositories_url": api + "/repos", "type": "organization",
		"parent": nil,
	}
}

func (q *request) reviewJSON(r *repoState, ps *pullState, rv pr.Review) obj {
	pull := fmt.Sprintf("%s/repos/%s/pulls/%d", q.api, r.info.FullName, ps.p.Number)
	html := fmt.Sprintf("%s/%s/pull/%d#pullrequestreview-%d", q.web, r.info.FullName, ps.p.Number, rv.ID)
	o := obj{
		"id": rv.ID, "node_id": nodeID("PullRequestReview", rv.ID), "user": q.userJSON(rv.User.Login),
		"body": "", "state": rv.State, "html_url": html, "pull_request_url": pull,
		"_links":             obj{"html": link(html), "pull_request": link(pull)},
		"commit_id":          strOrNil(rv.CommitID),
		"author_association": "MEMBER",
	}
	if rv.State != "PENDING" {
		o["submitted_at"] = ts(rv.SubmittedAt)
	}
	return o
}

func gitUser(p pr.Person) obj {
	o := obj{"name": p.Name, "email": p.Email}
	if !p.Date.IsZero() {
		o["date"] = ts(p.Date)
	}
	return o
}

func (q *request) commitJSON(r *repoState, g *graphCommit) obj {
	c := g.c
	api := q.api + "/repos/" + r.info.FullName
	parents := []any{}
	for _, p := range g.parents {
		parents = append(parents, obj{"sha": p, "url": api + "/commits/" + p, "html_url": q.web + "/" + r.info.FullName + "/commit/" + p})
	}
	return obj{
		"sha": c.SHA, "node_id": nodeID("Commit", int64(len(c.SHA))), "url": api + "/commits/" + c.SHA,
		"html_url": q.web + "/" + r.info.FullName + "/commit/" + c.SHA, "comments_url": api + "/commits/" + c.SHA + "/comments",
		"commit": obj{
			"url": api + "/git/commits/" + c.SHA, "message": c.Message, "comment_count": 0,
			"author": gitUser(c.Author), "committer": gitUser(c.Committer),
			"tree":         obj{"sha": c.SHA, "url": api + "/git/trees/" + c.SHA},
			"verification": obj{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil},
		},
		"author": q.userJSON(c.Author.Account.Login), "committer": q.userJSON(c.Committer.Account.Login),
		"parents": parents,
	}
}

func (q *request) fileJSON(r *repoState, f pr.File) obj {
	sha := fmt.Sprintf("%040x", len(f.Filename)*7777+f.Additions)
	o := obj{
		"sha": sha, "filename": f.Filename, "status": f.Status, "additions": f.Additions, "deletions": f.Deletions,
		"changes":      f.Additions + f.Deletions,
		"blob_url":     q.web + "/" + r.info.FullName + "/blob/" + sha + "/" + f.Filename,
		"raw_url":      q.web + "/" + r.info.FullName + "/raw/" + sha + "/" + f.Filename,
		"contents_url": q.api + "/repos/" + r.info.FullName + "/contents/" + f.Filename + "?ref=" + sha,
	}
	if f.Patch != "" {
		o["patch"] = f.Patch
	}
	return o
}

func (q *request) commentJSON(r *repoState, n int, c *comment) obj {
	issue := fmt.Sprintf("%s/repos/%s/issues/%d", q.api, r.info.FullName, n)
	o := obj{
		"id": c.id, "node_id": nodeID("IssueComment", c.id), "url": q.api + "/repos/" + r.info.FullName + "/issues/comments/" + fmt.Sprint(c.id),
		"html_url": fmt.Sprintf("%s/%s/issues/%d#issuecomment-%d", q.web, r.info.FullName, n, c.id),
		"body":     c.body, "user": q.userJSON(c.user.Login), "created_at": ts(c.created), "updated_at": ts(c.created),
		"issue_url": issue, "author_association": "NONE", "performed_via_github_app": nil,
	}
	if c.viaApp {
		o["performed_via_github_app"] = q.appJSON()
	}
	return o
}

func (q *request) checkRunJSON(r *repoState, c *CheckRun) obj {
	api := q.api + "/repos/" + r.info.FullName + "/check-runs/" + fmt.Sprint(c.ID)
	var conclusion any
	if c.Conclusion != "" {
		conclusion = c.Conclusion
	}
	app := q.appJSON()
	if c.AppID != q.s.appID {
		app["id"] = c.AppID
		app["slug"] = fmt.Sprintf("app-%d", c.AppID)
		app["name"] = fmt.Sprintf("App %d", c.AppID)
		app["node_id"] = nodeID("Integration", c.AppID)
	}
	details := strOrNil(c.DetailsURL)
	if details == nil {
		details = app["html_url"]
	}
	prs := []any{}
	for _, ps := range r.pulls {
		if ps.p.HeadSHA == c.HeadSHA && ps.p.HeadRepo == r.info.FullName {
			prs = append(prs, obj{
				"id": ps.id, "number": ps.p.Number, "url": fmt.Sprintf("%s/repos/%s/pulls/%d", q.api, r.info.FullName, ps.p.Number),
				"head": obj{"ref": ps.p.HeadRef, "sha": ps.p.HeadSHA, "repo": obj{"id": r.id, "name": r.info.Name, "url": q.api + "/repos/" + r.info.FullName}},
				"base": obj{"ref": ps.p.BaseRef, "sha": ps.p.BaseSHA, "repo": obj{"id": r.id, "name": r.info.Name, "url": q.api + "/repos/" + r.info.FullName}},
			})
		}
	}
	return obj{
		"id": c.ID, "node_id": nodeID("CheckRun", c.ID), "head_sha": c.HeadSHA, "external_id": c.ExternalID,
		"url": api, "html_url": fmt.Sprintf("%s/%s/runs/%d", q.web, r.info.FullName, c.ID), "details_url": details,
		"status": c.Status, "conclusion": conclusion, "started_at": ts(c.StartedAt), "completed_at": ts(c.CompletedAt),
		"output": obj{
			"title": strOrNil(c.Title), "summary": strOrNil(c.Summary), "text": strOrNil(c.Text),
			"annotations_count": 0, "annotations_url": api + "/annotations",
		},
		"name": c.Name, "check_suite": obj{"id": c.ID + 500_000}, "app": app, "pull_requests": prs,
	}
}
