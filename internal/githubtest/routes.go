package githubtest

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mergeguard/guard/internal/pr"
)

func (s *Server) routes() {
	s.handle("GET /app", authJWT, getApp)
	s.handle("GET /app/installations", authJWT, listInstallations)
	s.handle("POST /app/installations/{id}/access_tokens", authJWT, createToken)
	s.handle("GET /app/hook/deliveries", authJWT, listDeliveries)
	s.handle("POST /app/hook/deliveries/{id}/attempts", authJWT, redeliver)
	s.handle("POST /app-manifests/{code}/conversions", authNone, convertManifest)
	s.handle("GET /installation/repositories", authToken, installationRepos)
	s.handle("GET /repos/{owner}/{repo}", authToken, getRepo)
	s.handle("GET /repos/{owner}/{repo}/pulls", authToken, listPulls)
	s.handle("GET /repos/{owner}/{repo}/pulls/{number}", authToken, getPull)
	s.handle("GET /repos/{owner}/{repo}/pulls/{number}/reviews", authToken, listReviews)
	s.handle("GET /repos/{owner}/{repo}/pulls/{number}/commits", authToken, listPullCommits)
	s.handle("GET /repos/{owner}/{repo}/pulls/{number}/files", authToken, listFiles)
	s.handle("POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers", authToken, requestReviewers)
	s.handle("DELETE /repos/{owner}/{repo}/pulls/{number}/requested_reviewers", authToken, removeReviewers)
	s.handle("GET /repos/{owner}/{repo}/issues/{number}/comments", authToken, listComments)
	s.handle("POST /repos/{owner}/{repo}/issues/{number}/comments", authToken, createComment)
	s.handle("POST /repos/{owner}/{repo}/check-runs", authToken, createCheckRun)
	s.handle("GET /repos/{owner}/{repo}/check-runs/{id}", authToken, getCheckRun)
	s.handle("PATCH /repos/{owner}/{repo}/check-runs/{id}", authToken, updateCheckRun)
	s.handle("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", authToken, listCheckRunsForRef)
	s.handle("GET /repos/{owner}/{repo}/commits/{ref}/pulls", authToken, pullsForCommit)
	s.handle("GET /repos/{owner}/{repo}/compare/{basehead}", authToken, compare)
	s.handle("GET /orgs/{org}/teams/{team}", authToken, getTeam)
	s.handle("GET /orgs/{org}/teams/{team}/memberships/{user}", authToken, teamMembership)
	s.handle("GET /repos/{owner}/{repo}/collaborators/{user}/permission", authToken, permission)
	s.handle("GET /repos/{owner}/{repo}/branches/{branch}/protection", authToken, protection)
	s.handle("GET /repos/{owner}/{repo}/rules/branches/{branch}", authToken, branchRules)
}

func getApp(q *request) (int, any) { return http.StatusOK, q.appJSON() }

func (q *request) installationJSON(i *installation) obj {
	return obj{
		"id": i.id, "app_id": q.s.appID, "app_slug": q.s.slug, "target_type": "Organization",
		"account": q.userJSON(i.account), "repository_selection": "selected",
		"access_tokens_url":         fmt.Sprintf("%s/app/installations/%d/access_tokens", q.api, i.id),
		"repositories_url":          q.api + "/installation/repositories",
		"html_url":                  fmt.Sprintf("%s/organizations/%s/settings/installations/%d", q.web, i.account, i.id),
		"permissions":               q.appJSON()["permissions"],
		"events":                    q.appJSON()["events"],
		"created_at":                "2026-01-01T00:00:00Z",
		"updated_at":                "2026-01-01T00:00:00Z",
		"single_file_name":          nil,
		"suspended_at":              nil,
		"suspended_by":              nil,
		"has_multiple_single_files": false,
	}
}

func listInstallations(q *request) (int, any) {
	ids := make([]int64, 0, len(q.s.installs))
	for id := range q.s.installs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []any{}
	for _, id := range ids {
		out = append(out, q.installationJSON(q.s.installs[id]))
	}
	return http.StatusOK, paginate(q, out)
}

func createToken(q *request) (int, any) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil {
		return notFound()
	}
	if _, ok := q.s.installs[id]; !ok {
		return notFound()
	}
	t := q.s.mintToken(id)
	return http.StatusCreated, obj{
		"token": t, "expires_at": ts(q.s.tokens[t].expires),
		"permissions": q.appJSON()["permissions"], "repository_selection": "selected",
	}
}

func deliveryJSON(d *Delivery) obj {
	var inst, repo any
	if d.InstallationID != 0 {
		inst = d.InstallationID
	}
	if d.RepositoryID != 0 {
		repo = d.RepositoryID
	}
	var action any
	if d.Action != "" {
		action = d.Action
	}
	status := d.Status
	if status == "" {
		status = "OK"
	}
	code := d.StatusCode
	if code == 0 {
		code = 200
	}
	return obj{
		"id": d.ID, "guid": d.GUID, "delivered_at": ts(d.DeliveredAt), "redelivery": d.Redelivery,
		"duration": 0.05, "status": status, "status_code": code, "event": d.Event, "action": action,
		"installation_id": inst, "repository_id": repo, "throttled_at": nil,
	}
}

// listDeliveries pages newest first with an opaque cursor, as GitHub does.
func listDeliveries(q *request) (int, any) {
	all := slices.Clone(q.s.deliveries)
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	perPage := 30
	if v, err := strconv.Atoi(q.r.URL.Query().Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	start := 0
	if c := q.r.URL.Query().Get("cursor"); c != "" {
		v, err := strconv.Atoi(strings.TrimPrefix(c, "v1_"))
		if err != nil || v < 0 {
			return http.StatusBadRequest, errBody("Invalid cursor")
		}
		start = min(v, len(all))
	}
	end := min(start+perPage, len(all))
	if end < len(all) {
		u := *q.r.URL
		v := u.Query()
		v.Set("cursor", "v1_"+strconv.Itoa(end))
		v.Set("per_page", strconv.Itoa(perPage))
		q.header.Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, q.api, u.EscapedPath(), v.Encode()))
	}
	out := []any{}
	for _, d := range all[start:end] {
		out = append(out, deliveryJSON(d))
	}
	return http.StatusOK, out
}

func redeliver(q *request) (int, any) {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil {
		return notFound()
	}
	for _, d := range q.s.deliveries {
		if d.ID == id {
			q.s.redeliveries = append(q.s.redeliveries, id)
			again := *d
			again.ID = q.s.id()
			again.Redelivery = true
			again.Status, again.StatusCode = "OK", 200
			again.DeliveredAt = q.s.now().UTC().Truncate(time.Second)
			q.s.deliveries = append(q.s.deliveries, &again)
			return http.StatusAccepted, obj{}
		}
	}
	return notFound()
}

func convertManifest(q *request) (int, any) {
	code := q.r.PathValue("code")
	if !q.s.manifests[code] {
		return notFound()
	}
	delete(q.s.manifests, code)
	o := q.appJSON()
	o["client_id"] = "Iv1.fake"
	o["client_secret"] = "fake-client-secret"
	o["webhook_secret"] = "fake-webhook-secret"
	o["pem"] = string(q.s.PrivateKeyPEM())
	return http.StatusCreated, o
}

func installationRepos(q *request) (int, any) {
	var names []string
	names = append(names, q.inst.repos...)
	slices.Sort(names)
	all := []any{}
	for _, n := range names {
		all = append(all, q.repoJSON(q.s.repos[n]))
	}
	return http.StatusOK, obj{"total_count": len(all), "repository_selection": "selected", "repositories": paginate(q, all)}
}

func getRepo(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	return http.StatusOK, q.repoJSON(r)
}

func (r *repoState) sortedPulls() []*pullState {
	out := make([]*pullState, 0, len(r.pulls))
	for _, p := range r.pulls {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].p.Number > out[j].p.Number })
	return out
}

func listPulls(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	state := q.r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	if state != "open" && state != "closed" && state != "all" {
		return validation("PullRequest", "state", "invalid")
	}
	base := q.r.URL.Query().Get("base")
	all := []any{}
	for _, p := range r.sortedPulls() {
		if (state == "all" || p.p.State == state) && (base == "" || p.p.BaseRef == base) {
			all = append(all, q.pullJSON(r, p, false))
		}
	}
	return http.StatusOK, paginate(q, all)
}

// pull returns the repository and the pull request the path names.
func (q *request) pull() (*repoState, *pullState) {
	r := q.repo()
	if r == nil {
		return nil, nil
	}
	n, ok := q.number()
	if !ok {
		return nil, nil
	}
	p, ok := r.pulls[n]
	if !ok {
		return nil, nil
	}
	return r, p
}

func getPull(q *request) (int, any) {
	r, p := q.pull()
	if p == nil {
		return notFound()
	}
	return http.StatusOK, q.pullJSON(r, p, true)
}

func listReviews(q *request) (int, any) {
	r, p := q.pull()
	if p == nil {
		return notFound()
	}
	all := []any{}
	for _, rv := range p.reviews {
		all = append(all, q.reviewJSON(r, p, rv))
	}
	return http.StatusOK, paginate(q, all)
}

// maxPullCommits is how many commits GitHub lists for a pull request.
const maxPullCommits = 250

func listPullCommits(q *request) (int, any) {
	r, p := q.pull()
	if p == nil {
		return notFound()
	}
	all := []any{}
	for _, sha := range p.commits {
		if len(all) == maxPullCommits {
			break
		}
		all = append(all, q.commitJSON(r, r.graph[sha]))
	}
	return http.StatusOK, paginate(q, all)
}

// maxPullFiles is how many files GitHub lists for a pull request.
const maxPullFiles = 3000

func listFiles(q *request) (int, any) {
	r, p := q.pull()
	if p == nil {
		return notFound()
	}
	all := []any{}
	for _, f := range p.files {
		if len(all) == maxPullFiles {
			break
		}
		all = append(all, q.fileJSON(r, f))
	}
	return http.StatusOK, paginate(q, all)
}

type reviewersBody struct {
	Reviewers     []string `json:"reviewers"`
	TeamReviewers []string `json:"team_reviewers"`
}

// requestReviewers adds reviewers: users must be collaborators (SetPermission)
// other than the author; teams must exist (AddTeamMember).
func requestReviewers(q *request) (int, any) {
	r, p := q.pull()
	if p == nil {
		return notFound()
	}
	var b reviewersBody
	if st, v, ok := q.decode(&b); !ok {
		return st, v
	}
	for _, u := range b.Reviewers {
		if strings.EqualFold(u, p.p.Author.Login) {
			return validationMsg("Review cannot be requested from pull request author.")
		}
		if _, ok := r.perms[strings.ToLower(u)]; !ok {
			return validationMsg(fmt.Sprintf("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the %s repository.", r.info.FullName))
		}
	}
	for _, t := range b.TeamReviewers {
		if _, ok := q.s.teams[strings.ToLower(r.info.Owner+"/"+t)]; !ok {
			return validationMsg(fmt.Sprintf("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the %s repository.", r.info.FullName))
		}
	}
	for _, u := range b.Reviewers {
		if !slices.ContainsFunc(p.users, func(x string) bool { return strings.EqualFold(x, u) }) {
			p.users = append(p.users, u)
		}
	}
	for _, t := range b.TeamReviewers {
		if !slices.ContainsFunc(p.teams, func(x string) bool { return strings.EqualFold(x, t) }) {
			p.teams = append(p.teams, t)
		}
	}
	return http.StatusCreated, q.pullJSON(r, p, false)
}

func removeReviewers(q *request) (int, any) {
	r, p := q.pull()
	if p == nil {
		return notFound()
	}
	var b reviewersBody
	if st, v, ok := q.decode(&b); !ok {
		return st, v
	}
	p.users = slices.DeleteFunc(p.users, func(x string) bool {
		return slices.ContainsFunc(b.Reviewers, func(y string) bool { return strings.EqualFold(x, y) })
	})
	p.teams = slices.DeleteFunc(p.teams, func(x string) bool {
		return slices.ContainsFunc(b.TeamReviewers, func(y string) bool { return strings.EqualFold(x, y) })
	})
	return http.StatusOK, q.pullJSON(r, p, false)
}

func (q *request) issue() (*repoState, int) {
	r := q.repo()
	if r == nil {
		return nil, 0
	}
	n, ok := q.number()
	if !ok || !r.issues[n] {
		return nil, 0
	}
	return r, n
}

func listComments(q *request) (int, any) {
	r, n := q.issue()
	if r == nil {
		return notFound()
	}
	all := []any{}
	for _, c := range r.comments[n] {
		all = append(all, q.commentJSON(r, n, c))
	}
	return http.StatusOK, paginate(q, all)
}

// maxCommentBody is GitHub's limit on a comment body, in characters.
const maxCommentBody = 65536

func createComment(q *request) (int, any) {
	r, n := q.issue()
	if r == nil {
		return notFound()
	}
	var b struct {
		Body *string `json:"body"`
	}
	if st, v, ok := q.decode(&b); !ok {
		return st, v
	}
	if b.Body == nil || *b.Body == "" {
		return validation("IssueComment", "body", "missing_field")
	}
	if utf8.RuneCountInString(*b.Body) > maxCommentBody {
		return validation("IssueComment", "body", "too_long")
	}
	c := &comment{id: q.s.id(), user: pr.Account{Login: q.botLogin(), Type: "Bot"}, body: *b.Body, created: q.s.now().UTC().Truncate(time.Second), viaApp: true}
	q.s.user(c.user)
	r.comments[n] = append(r.comments[n], c)
	q.header.Set("Location", q.api+"/repos/"+r.info.FullName+"/issues/comments/"+strconv.FormatInt(c.id, 10))
	return http.StatusCreated, q.commentJSON(r, n, c)
}

type checkRunBody struct {
	Name        *string    `json:"name"`
	HeadSHA     *string    `json:"head_sha"`
	DetailsURL  *string    `json:"details_url"`
	ExternalID  *string    `json:"external_id"`
	Status      *string    `json:"status"`
	Conclusion  *string    `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Output      *struct {
		Title   *string `json:"title"`
		Summary *string `json:"summary"`
		Text    *string `json:"text"`
	} `json:"output"`
	Actions *[]Action `json:"actions"`
}

var (
	checkStatuses    = []string{"queued", "in_progress", "completed"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
)

// GitHub's limits on check run fields.
const (
	maxCheckText     = 65535
	maxActions       = 3
	maxActionLabel   = 20
	maxActionDesc    = 40
	maxActionIdent   = 20
	checkRunResource = "CheckRun"
)

// apply validates b and applies it to c, as POST (create) or PATCH.
func (q *request) applyCheckRun(c *CheckRun, b *checkRunBody, create bool) (int, any, bool) {
	fail := func(field, code string) (int, any, bool) {
		st, v := validation(checkRunResource, field, code)
		return st, v, false
	}
	if create {
		if b.Name == nil || *b.Name == "" {
			return fail("name", "missing_field")
		}
		if b.HeadSHA == nil || *b.HeadSHA == "" {
			return fail("head_sha", "missing_field")
		}
	}
	if b.Status != nil && !slices.Contains(checkStatuses, *b.Status) {
		return fail("status", "invalid")
	}
	if b.Conclusion != nil && !slices.Contains(checkConclusions, *b.Conclusion) {
		return fail("conclusion", "invalid")
	}
	if b.Status != nil && *b.Status == "completed" && b.Conclusion == nil && (create || c.Conclusion == "") {
		return fail("conclusion", "missing_field")
	}
	if b.Output != nil {
		if b.Output.Title == nil || *b.Output.Title == "" {
			return fail("title", "missing_field")
		}
		if b.Output.Summary == nil || *b.Output.Summary == "" {
			return fail("summary", "missing_field")
		}
		if utf8.RuneCountInString(*b.Output.Summary) > maxCheckText {
			return fail("summary", "too_long")
		}
		if b.Output.Text != nil && utf8.RuneCountInString(*b.Output.Text) > maxCheckText {
			return fail("text", "too_long")
		}
	}
	if b.Actions != nil {
		if len(*b.Actions) > maxActions {
			return fail("actions", "too_long")
		}
		for _, a := range *b.Actions {
			switch {
			case a.Label == "" || utf8.RuneCountInString(a.Label) > maxActionLabel:
				return fail("label", "invalid")
			case a.Description == "" || utf8.RuneCountInString(a.Description) > maxActionDesc:
				return fail("description", "invalid")
			case a.Identifier == "" || utf8.RuneCountInString(a.Identifier) > maxActionIdent:
				return fail("identifier", "invalid")
			}
		}
	}
	now := q.s.now().UTC().Truncate(time.Second)
	if b.Name != nil {
		c.Name = *b.Name
	}
	if b.HeadSHA != nil {
		c.HeadSHA = *b.HeadSHA
	}
	if b.DetailsURL != nil {
		c.DetailsURL = *b.DetailsURL
	}
	if b.ExternalID != nil {
		c.ExternalID = *b.ExternalID
	}
	if b.Status != nil {
		c.Status = *b.Status
		if c.Status != "completed" {
			c.Conclusion = ""
			c.CompletedAt = time.Time{}
		}
	}
	if b.Conclusion != nil {
		c.Conclusion = *b.Conclusion
		c.Status = "completed"
	}
	if c.Status == "" {
		c.Status = "queued"
	}
	if b.StartedAt != nil {
		c.StartedAt = *b.StartedAt
	} else if c.StartedAt.IsZero() {
		c.StartedAt = now
	}
	if b.CompletedAt != nil {
		c.CompletedAt = *b.CompletedAt
	} else if c.Status == "completed" && (c.CompletedAt.IsZero() || b.Conclusion != nil) {
		c.CompletedAt = now
	}
	if b.Output != nil {
		c.Title, c.Summary = *b.Output.Title, *b.Output.Summary
		c.Text = ""
		if b.Output.Text != nil {
			c.Text = *b.Output.Text
		}
	}
	if b.Actions != nil {
		c.Actions = slices.Clone(*b.Actions)
	}
	return 0, nil, true
}

// knownSHA reports whether sha is a commit the repository knows (a pull
// request's head or base, or a commit added to its history).
func (r *repoState) knownSHA(sha string) bool {
	if _, ok := r.graph[sha]; ok {
		return true
	}
	for _, p := range r.pulls {
		if p.p.HeadSHA == sha || p.p.BaseSHA == sha {
			return true
		}
	}
	return false
}

func createCheckRun(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	var b checkRunBody
	if st, v, ok := q.decode(&b); !ok {
		return st, v
	}
	c := &CheckRun{AppID: q.s.appID}
	if st, v, ok := q.applyCheckRun(c, &b, true); !ok {
		return st, v
	}
	if !r.knownSHA(c.HeadSHA) {
		return validationMsg("No commit found for SHA: " + c.HeadSHA)
	}
	c.ID = q.s.id()
	r.runs = append(r.runs, c)
	q.s.checkRunChanged(r, c)
	return http.StatusCreated, q.checkRunJSON(r, c)
}

func (q *request) checkRun(r *repoState) *CheckRun {
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil {
		return nil
	}
	for _, c := range r.runs {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func getCheckRun(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	c := q.checkRun(r)
	if c == nil {
		return notFound()
	}
	return http.StatusOK, q.checkRunJSON(r, c)
}

func updateCheckRun(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	c := q.checkRun(r)
	if c == nil {
		return notFound()
	}
	if c.AppID != q.s.appID {
		return http.StatusForbidden, errBody("Invalid app_id `" + strconv.FormatInt(q.s.appID, 10) + "` - check run can only be modified by the GitHub App that created it.")
	}
	var b checkRunBody
	if st, v, ok := q.decode(&b); !ok {
		return st, v
	}
	if b.HeadSHA != nil {
		return validation(checkRunResource, "head_sha", "invalid")
	}
	cp := *c
	if st, v, ok := q.applyCheckRun(&cp, &b, false); !ok {
		return st, v
	}
	cp.Updates++
	*c = cp
	q.s.checkRunChanged(r, c)
	return http.StatusOK, q.checkRunJSON(r, c)
}

// listCheckRunsForRef lists the runs on a commit: check_name, status,
// app_id and filter (latest: the newest run per name and app; all).
func listCheckRunsForRef(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	sha := q.r.PathValue("ref")
	if !r.knownSHA(sha) {
		return validationMsg("No commit found for SHA: " + sha)
	}
	v := q.r.URL.Query()
	filter := v.Get("filter")
	if filter == "" {
		filter = "latest"
	}
	if filter != "latest" && filter != "all" {
		return validation(checkRunResource, "filter", "invalid")
	}
	var appID int64
	if a := v.Get("app_id"); a != "" {
		var err error
		if appID, err = strconv.ParseInt(a, 10, 64); err != nil {
			return validation(checkRunResource, "app_id", "invalid")
		}
	}
	var runs []*CheckRun
	latest := map[string]bool{}
	for i := len(r.runs) - 1; i >= 0; i-- { // newest first
		c := r.runs[i]
		if c.HeadSHA != sha || (v.Has("check_name") && c.Name != v.Get("check_name")) ||
			(v.Has("status") && c.Status != v.Get("status")) || (appID != 0 && c.AppID != appID) {
			continue
		}
		key := fmt.Sprintf("%d/%s", c.AppID, c.Name)
		if filter == "latest" && latest[key] {
			continue
		}
		latest[key] = true
		runs = append(runs, c)
	}
	all := []any{}
	for _, c := range runs {
		all = append(all, q.checkRunJSON(r, c))
	}
	return http.StatusOK, obj{"total_count": len(all), "check_runs": paginate(q, all)}
}

func pullsForCommit(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	sha := q.r.PathValue("ref")
	if !r.knownSHA(sha) {
		return validationMsg("No commit found for SHA: " + sha)
	}
	all := []any{}
	for _, p := range r.sortedPulls() {
		if p.p.HeadSHA == sha || slices.Contains(p.commits, sha) {
			all = append(all, q.pullJSON(r, p, false))
		}
	}
	return http.StatusOK, paginate(q, all)
}

// compare lists the commits reachable from head but not from base, oldest
// first.
func compare(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	base, head, ok := strings.Cut(q.r.PathValue("basehead"), "...")
	if !ok || base == "" || head == "" {
		return notFound()
	}
	for _, sha := range []string{base, head} {
		if _, ok := r.graph[sha]; !ok && !r.knownSHA(sha) {
			return http.StatusNotFound, errBody("No common ancestor between " + base + " and " + head + ".")
		}
	}
	ancestors := r.ancestors(base)
	var order []string
	seen := map[string]bool{}
	var walk func(sha string)
	walk = func(sha string) {
		if seen[sha] || ancestors[sha] {
			return
		}
		seen[sha] = true
		if g, ok := r.graph[sha]; ok {
			for _, p := range g.parents {
				walk(p)
			}
			order = append(order, sha)
		}
	}
	walk(head)
	behind := 0
	for sha := range ancestors {
		if !r.ancestors(head)[sha] {
			behind++
		}
	}
	status := "ahead"
	switch {
	case len(order) == 0 && behind == 0:
		status = "identical"
	case len(order) == 0:
		status = "behind"
	case behind > 0:
		status = "diverged"
	}
	commits := []any{}
	for _, sha := range order {
		commits = append(commits, q.commitJSON(r, r.graph[sha]))
	}
	total := len(commits)
	baseCommit := any(nil)
	if g, ok := r.graph[base]; ok {
		baseCommit = q.commitJSON(r, g)
	}
	html := q.web + "/" + r.info.FullName + "/compare/" + base + "..." + head
	return http.StatusOK, obj{
		"url": q.api + "/repos/" + r.info.FullName + "/compare/" + base + "..." + head, "html_url": html,
		"permalink_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch",
		"base_commit": baseCommit, "merge_base_commit": baseCommit, "status": status,
		"ahead_by": total, "behind_by": behind, "total_commits": total,
		"commits": paginate(q, commits), "files": []any{},
	}
}

// ancestors returns sha and every commit reachable from it.
func (r *repoState) ancestors(sha string) map[string]bool {
	out := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[s] {
			continue
		}
		out[s] = true
		if g, ok := r.graph[s]; ok {
			stack = append(stack, g.parents...)
		}
	}
	return out
}

// getTeam answers a team that exists (AddTeam, AddTeamMember), shaped like
// GitHub's team object; 404 otherwise, as for a team the app cannot see.
func getTeam(q *request) (int, any) {
	org, team := q.r.PathValue("org"), q.r.PathValue("team")
	if !strings.EqualFold(q.inst.account, org) {
		return notFound()
	}
	if _, ok := q.s.teams[strings.ToLower(org+"/"+team)]; !ok {
		return notFound()
	}
	slug := strings.ToLower(team)
	return http.StatusOK, obj{
		"id": 1, "node_id": "T_kwDOAAAAAc4AAAAB", "name": team, "slug": slug, "description": "",
		"privacy": "closed", "notification_setting": "notifications_enabled", "permission": "pull",
		"url":              fmt.Sprintf("%s/organizations/1/team/1", q.api),
		"html_url":         fmt.Sprintf("https://github.com/orgs/%s/teams/%s", escape(org), escape(slug)),
		"members_url":      fmt.Sprintf("%s/organizations/1/team/1/members{/member}", q.api),
		"repositories_url": fmt.Sprintf("%s/organizations/1/team/1/repos", q.api),
		"parent":           nil, "members_count": len(q.s.teams[strings.ToLower(org+"/"+team)]), "repos_count": 0,
		"created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
		"type": "organization",
		"organization": obj{
			"login": org, "id": 1, "node_id": "O_kgDOAAAAAQ", "url": fmt.Sprintf("%s/orgs/%s", q.api, escape(org)),
			"repos_url":          fmt.Sprintf("%s/orgs/%s/repos", q.api, escape(org)),
			"events_url":         fmt.Sprintf("%s/orgs/%s/events", q.api, escape(org)),
			"hooks_url":          fmt.Sprintf("%s/orgs/%s/hooks", q.api, escape(org)),
			"issues_url":         fmt.Sprintf("%s/orgs/%s/issues", q.api, escape(org)),
			"members_url":        fmt.Sprintf("%s/orgs/%s/members{/member}", q.api, escape(org)),
			"public_members_url": fmt.Sprintf("%s/orgs/%s/public_members{/member}", q.api, escape(org)),
			"avatar_url":         "https://avatars.githubusercontent.com/u/1?v=4",
			"description":        nil, "html_url": "https://github.com/" + escape(org),
			"has_organization_projects": true, "has_repository_projects": true,
			"public_repos": 0, "public_gists": 0, "followers": 0, "following": 0, "type": "Organization",
			"created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "archived_at": nil,
		},
	}
}

func teamMembership(q *request) (int, any) {
	org, team, login := q.r.PathValue("org"), q.r.PathValue("team"), q.r.PathValue("user")
	if !strings.EqualFold(q.inst.account, org) {
		return notFound()
	}
	members, ok := q.s.teams[strings.ToLower(org+"/"+team)]
	if !ok {
		return notFound()
	}
	state, ok := members[strings.ToLower(login)]
	if !ok {
		return notFound()
	}
	return http.StatusOK, obj{
		"url":  fmt.Sprintf("%s/organizations/1/team/1/memberships/%s", q.api, escape(login)),
		"role": "member", "state": state,
	}
}

var legacyPermission = map[string]string{"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}

func permission(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	login := q.r.PathValue("user")
	if _, ok := q.s.users[login]; !ok {
		return http.StatusNotFound, errBody(login + " is not a user")
	}
	role, ok := r.perms[strings.ToLower(login)]
	if !ok {
		role = "none"
		if !r.info.Private {
			role = "read"
		}
	}
	legacy := legacyPermission[role]
	if legacy == "" {
		legacy = "none"
	}
	u, _ := q.userJSON(login).(obj)
	u["role_name"] = role
	u["permissions"] = obj{
		"admin": role == "admin", "maintain": role == "admin" || role == "maintain",
		"push": legacy == "admin" || legacy == "write", "triage": role != "read" && role != "none",
		"pull": role != "none",
	}
	return http.StatusOK, obj{"permission": legacy, "role_name": role, "user": u}
}

func protection(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	branch := q.r.PathValue("branch")
	checks, ok := r.protection[branch]
	if !ok {
		return http.StatusNotFound, errBody("Branch not protected")
	}
	api := q.api + "/repos/" + r.info.FullName + "/branches/" + escape(branch) + "/protection"
	contexts := []string{}
	list := []any{}
	for _, c := range checks {
		contexts = append(contexts, c.Context)
		var app any
		if c.AppID != 0 {
			app = c.AppID
		}
		list = append(list, obj{"context": c.Context, "app_id": app})
	}
	return http.StatusOK, obj{
		"url": api,
		"required_status_checks": obj{
			"url": api + "/required_status_checks", "strict": r.strict[branch], "contexts": contexts,
			"contexts_url": api + "/required_status_checks/contexts", "checks": list,
		},
		"enforce_admins":          obj{"url": api + "/enforce_admins", "enabled": false},
		"required_linear_history": obj{"enabled": false},
		"allow_force_pushes":      obj{"enabled": false},
		"allow_deletions":         obj{"enabled": false},
	}
}

func branchRules(q *request) (int, any) {
	r := q.repo()
	if r == nil {
		return notFound()
	}
	branch := q.r.PathValue("branch")
	globs := make([]string, 0, len(r.rulesets))
	for g := range r.rulesets {
		globs = append(globs, g)
	}
	slices.Sort(globs)
	out := []any{}
	for i, g := range globs {
		match := g == "~ALL" || (g == "~DEFAULT_BRANCH" && branch == r.info.DefaultBranch)
		if !match {
			match, _ = path.Match(g, branch)
		}
		if !match {
			continue
		}
		checks := []any{}
		for _, c := range r.rulesets[g] {
			o := obj{"context": c.Context}
			if c.AppID != 0 {
				o["integration_id"] = c.AppID
			}
			checks = append(checks, o)
		}
		out = append(out, obj{
			"type": "required_status_checks", "ruleset_source_type": "Repository", "ruleset_source": r.info.FullName,
			"ruleset_id": r.id*100 + int64(i),
			"parameters": obj{"required_status_checks": checks, "strict_required_status_checks_policy": false},
		})
	}
	// GitHub pages this list like its others (per_page, default 30, at
	// most 100; page; Link).
	return http.StatusOK, paginate(q, out)
}
