package githubtest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// repoState is one repository's state.
type repoState struct {
	id           int64
	installation int64
	info         pr.Repository
	created      time.Time
	pulls        map[int]*pullState
	issues       map[int]bool
	comments     map[int][]*comment
	runs         []*CheckRun
	perms        map[string]string
	protection   map[string][]RequiredCheck
	strict       map[string]bool
	rulesets     map[string][]RequiredCheck // branch glob -> checks
	graph        map[string]*graphCommit
}

type graphCommit struct {
	c       pr.Commit
	parents []string
}

type pullState struct {
	id      int64
	p       pr.PullRequest
	commits []string // SHAs in the repository graph, oldest first
	reviews []pr.Review
	files   []pr.File
	users   []string
	teams   []string
}

type comment struct {
	id      int64
	user    pr.Account
	body    string
	created time.Time
	viaApp  bool
}

// CheckRun is a check run as the fake stores it.
type CheckRun struct {
	ID          int64
	AppID       int64
	Name        string
	HeadSHA     string
	ExternalID  string
	Status      string
	Conclusion  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	Actions     []Action
	StartedAt   time.Time
	CompletedAt time.Time
	// Updates counts the PATCHes the run received.
	Updates int
}

// Action is a requested action (button) of a check run.
type Action struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

// Comment is an issue or pull request comment as the fake stores it.
type Comment struct {
	ID   int64
	User string
	Body string
	// ViaApp is true when the comment was posted with an installation token.
	ViaApp bool
}

// RequiredCheck is a required status check of branch protection (AppID:
// app_id) or of a ruleset (AppID: integration_id); 0 means any source.
type RequiredCheck struct {
	Context string
	AppID   int64
}

// Delivery is a webhook delivery of the app (GET /app/hook/deliveries).
type Delivery struct {
	ID             int64
	GUID           string
	Event          string
	Action         string
	Status         string // "OK" or an error text
	StatusCode     int
	Redelivery     bool
	DeliveredAt    time.Time
	InstallationID int64
	RepositoryID   int64
}

// AddInstallation adds (or keeps) an installation of the app on account (an
// organization).
func (s *Server) AddInstallation(id int64, account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.installs[id]; ok {
		return
	}
	s.user(pr.Account{Login: account, Type: "Organization"})
	s.installs[id] = &installation{id: id, account: account}
}

// AddRepo adds repository fullName ("owner/name", default branch main,
// public) to installation, which must exist. Adding it again keeps its state.
func (s *Server) AddRepo(installation int64, fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.installs[installation]
	if !ok {
		panic(fmt.Sprintf("githubtest: AddRepo: installation %d does not exist", installation))
	}
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" {
		panic(fmt.Sprintf("githubtest: AddRepo: %q is not owner/name", fullName))
	}
	if _, ok := s.repos[fullName]; ok {
		return
	}
	s.user(pr.Account{Login: owner, Type: "Organization"})
	s.repos[fullName] = &repoState{
		id: s.id(), installation: installation, created: s.now(),
		info:     pr.Repository{Owner: owner, Name: name, FullName: fullName, DefaultBranch: "main"},
		pulls:    map[int]*pullState{},
		issues:   map[int]bool{},
		comments: map[int][]*comment{},
		perms:    map[string]string{}, protection: map[string][]RequiredCheck{}, strict: map[string]bool{},
		rulesets: map[string][]RequiredCheck{}, graph: map[string]*graphCommit{},
	}
	inst.repos = append(inst.repos, fullName)
}

// SetRepo sets a repository's default branch and visibility.
func (s *Server) SetRepo(fullName, defaultBranch string, private bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("SetRepo", fullName)
	r.info.DefaultBranch = defaultBranch
	r.info.Private = private
}

func (s *Server) mustRepo(op, fullName string) *repoState {
	r, ok := s.repos[fullName]
	if !ok {
		panic(fmt.Sprintf("githubtest: %s: repository %q was not added (AddRepo)", op, fullName))
	}
	return r
}

func (s *Server) mustPull(op, repo string, n int) (*repoState, *pullState) {
	r := s.mustRepo(op, repo)
	p, ok := r.pulls[n]
	if !ok {
		panic(fmt.Sprintf("githubtest: %s: pull request %s#%d was not added (AddPull)", op, repo, n))
	}
	return r, p
}

// AddPull adds or replaces pull request p.Number of repo, keeping its
// reviews, commits, files and requested reviewers. Defaults: state open,
// base ref the default branch, head repository repo, author type User,
// created and updated now.
func (s *Server) AddPull(repo string, p pr.PullRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("AddPull", repo)
	if p.Number <= 0 {
		panic("githubtest: AddPull: Number must be positive")
	}
	if p.State == "" {
		p.State = "open"
	}
	if p.BaseRef == "" {
		p.BaseRef = r.info.DefaultBranch
	}
	if p.HeadRepo == "" {
		p.HeadRepo = repo
	}
	if p.HeadRef == "" {
		p.HeadRef = fmt.Sprintf("pr-%d", p.Number)
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = s.now().UTC().Truncate(time.Second)
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.CreatedAt
	}
	if u := s.user(p.Author); u != nil {
		p.Author.Type = u.typ
	}
	if p.AutoMerge != nil {
		s.user(p.AutoMerge.EnabledBy)
	}
	ps, ok := r.pulls[p.Number]
	if !ok {
		ps = &pullState{id: s.id()}
		r.pulls[p.Number] = ps
	}
	ps.p = p
	r.issues[p.Number] = true
}

// AddIssue adds issue n (not a pull request) to repo, so that it can be
// commented on.
func (s *Server) AddIssue(repo string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustRepo("AddIssue", repo).issues[n] = true
}

// AddReview adds a review to pull request n and returns its id. Defaults:
// the commit is the PR's head, submitted now, user type User.
func (s *Server) AddReview(repo string, n int, rv pr.Review) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p := s.mustPull("AddReview", repo, n)
	if rv.ID == 0 {
		rv.ID = s.id()
	}
	if rv.CommitID == "" {
		rv.CommitID = p.p.HeadSHA
	}
	if rv.SubmittedAt.IsZero() {
		rv.SubmittedAt = s.now().UTC().Truncate(time.Second)
	}
	if rv.State == "" {
		rv.State = "APPROVED"
	}
	rv.User.Type = s.user(rv.User).typ
	p.reviews = append(p.reviews, rv)
	return rv.ID
}

// AddCommit appends a commit to pull request n (GitHub lists a PR's
// commits in this order, which is by date, not by ancestry). Its parents
// are c.Parents, or else the PR's previous commit (or its base SHA); the
// commit also enters the repository's history for compare and
// commits/{sha}/pulls.
func (s *Server) AddCommit(repo string, n int, c pr.Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull("AddCommit", repo, n)
	parents := c.Parents
	if len(parents) == 0 {
		parent := p.p.BaseSHA
		if len(p.commits) > 0 {
			parent = p.commits[len(p.commits)-1]
		}
		parents = []string{parent}
	}
	s.addGraph(r, c, parents...)
	p.commits = append(p.commits, c.SHA)
}

// AddGraphCommit adds a commit with parents to repo's history (for merge
// group compares).
func (s *Server) AddGraphCommit(repo string, c pr.Commit, parents ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addGraph(s.mustRepo("AddGraphCommit", repo), c, parents...)
}

func (s *Server) addGraph(r *repoState, c pr.Commit, parents ...string) {
	if c.SHA == "" {
		panic("githubtest: commit without SHA")
	}
	now := s.now().UTC().Truncate(time.Second)
	if c.Author.Date.IsZero() {
		c.Author.Date = now
	}
	if c.Committer.Date.IsZero() {
		c.Committer.Date = c.Author.Date
	}
	if u := s.user(c.Author.Account); u != nil {
		c.Author.Account.Type = u.typ
	}
	if u := s.user(c.Committer.Account); u != nil {
		c.Committer.Account.Type = u.typ
	}
	var ps []string
	for _, p := range parents {
		if p != "" {
			ps = append(ps, p)
		}
	}
	r.graph[c.SHA] = &graphCommit{c: c, parents: ps}
}

// AddFile adds a changed file to pull request n. Additions and deletions
// are counted from the patch when both are zero; status defaults to
// modified.
func (s *Server) AddFile(repo string, n int, f pr.File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p := s.mustPull("AddFile", repo, n)
	if f.Status == "" {
		f.Status = "modified"
	}
	if f.Additions == 0 && f.Deletions == 0 {
		for _, l := range strings.Split(f.Patch, "\n") {
			switch {
			case strings.HasPrefix(l, "+"):
				f.Additions++
			case strings.HasPrefix(l, "-"):
				f.Deletions++
			}
		}
	}
	p.files = append(p.files, f)
}

// AddComment adds a comment by author to issue or pull request n and
// returns its id.
func (s *Server) AddComment(repo string, n int, author pr.Account, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("AddComment", repo)
	r.issues[n] = true
	s.user(author)
	c := &comment{id: s.id(), user: author, body: body, created: s.now().UTC().Truncate(time.Second)}
	r.comments[n] = append(r.comments[n], c)
	return c.id
}

// AddCheckRun stores a check run as if another app (run.AppID) or this one
// had created it, and returns its id.
func (s *Server) AddCheckRun(repo string, run CheckRun) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("AddCheckRun", repo)
	run.ID = s.id()
	if run.AppID == 0 {
		run.AppID = s.appID
	}
	if run.Status == "" {
		run.Status = "completed"
	}
	if run.StartedAt.IsZero() {
		run.StartedAt = s.now().UTC().Truncate(time.Second)
	}
	run.Actions = slices.Clone(run.Actions)
	r.runs = append(r.runs, &run)
	return run.ID
}

// AddTeam adds an organisation team with no members.
func (s *Server) AddTeam(org, team string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := strings.ToLower(org + "/" + team); s.teams[k] == nil {
		s.teams[k] = map[string]string{}
	}
}

// AddTeamMember makes login a member of org/team with state active or
// pending.
func (s *Server) AddTeamMember(org, team, login, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(org + "/" + team)
	if s.teams[k] == nil {
		s.teams[k] = map[string]string{}
	}
	s.user(pr.Account{Login: login})
	s.teams[k][strings.ToLower(login)] = state
}

// SetPermission gives login a role on repo: admin, maintain, write, triage
// or read ("" removes it: none).
func (s *Server) SetPermission(repo, login, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("SetPermission", repo)
	s.user(pr.Account{Login: login})
	if role == "" {
		delete(r.perms, strings.ToLower(login))
		return
	}
	r.perms[strings.ToLower(login)] = role
}

// SetProtection protects branch with required status checks; no checks
// removes the protection (404 Branch not protected).
func (s *Server) SetProtection(repo, branch string, strict bool, checks ...RequiredCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("SetProtection", repo)
	if len(checks) == 0 {
		delete(r.protection, branch)
		return
	}
	r.protection[branch] = slices.Clone(checks)
	r.strict[branch] = strict
}

// SetRulesetChecks adds a ruleset requiring checks on the branches matching
// glob ("~DEFAULT_BRANCH" for the default branch); no checks removes it.
func (s *Server) SetRulesetChecks(repo, glob string, checks ...RequiredCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mustRepo("SetRulesetChecks", repo)
	if len(checks) == 0 {
		delete(r.rulesets, glob)
		return
	}
	r.rulesets[glob] = slices.Clone(checks)
}

// AddDelivery records a webhook delivery (ID and DeliveredAt default).
func (s *Server) AddDelivery(d Delivery) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ID == 0 {
		d.ID = s.id()
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = s.now().UTC().Truncate(time.Second)
	}
	s.deliveries = append(s.deliveries, &d)
	return d.ID
}

// Redeliveries returns the delivery ids redelivered through POST
// /app/hook/deliveries/{id}/attempts, in order.
func (s *Server) Redeliveries() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.redeliveries)
}

// AddManifestCode makes code a valid, single-use manifest code.
func (s *Server) AddManifestCode(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifests[code] = true
}

// CheckRuns returns the check runs on sha in repo, oldest first.
func (s *Server) CheckRuns(repo, sha string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CheckRun
	for _, c := range s.mustRepo("CheckRuns", repo).runs {
		if c.HeadSHA == sha {
			cp := *c
			cp.Actions = slices.Clone(c.Actions)
			out = append(out, cp)
		}
	}
	return out
}

// Comments returns the comments of issue or pull request n, oldest first.
func (s *Server) Comments(repo string, n int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.mustRepo("Comments", repo).comments[n] {
		out = append(out, Comment{ID: c.id, User: c.user.Login, Body: c.body, ViaApp: c.viaApp})
	}
	return out
}

// RequestedReviewers returns the users and team slugs requested to review
// pull request n.
func (s *Server) RequestedReviewers(repo string, n int) (users, teams []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p := s.mustPull("RequestedReviewers", repo, n)
	return slices.Clone(p.users), slices.Clone(p.teams)
}

// Pull returns pull request n as the fake stores it.
func (s *Server) Pull(repo string, n int) (pr.PullRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repo]
	if !ok {
		return pr.PullRequest{}, false
	}
	p, ok := r.pulls[n]
	if !ok {
		return pr.PullRequest{}, false
	}
	return p.p, true
}

// SetPullCommits replaces the list of pull request n's commits with shas,
// which must be in the repository's history already (AddCommit,
// AddGraphCommit): a force-push (rebase) rewrote the PR's history.
func (s *Server) SetPullCommits(repo string, n int, shas ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, p := s.mustPull("SetPullCommits", repo, n)
	for _, sha := range shas {
		if r.graph[sha] == nil {
			panic("githubtest: SetPullCommits: commit " + sha + " is not in the history of " + repo)
		}
	}
	p.commits = append([]string(nil), shas...)
}
