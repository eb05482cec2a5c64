// Package doctor checks an installed Merge Guard (SPEC §2, `guard doctor`):
// that the app's credentials work, that every installation granted the
// permissions and events the app needs, that the configuration loads, that
// the teams it names exist, that the policy set compiles (and, for a
// --policy-dir set, passes its tests), and, for every repository the guard acts on, that the check (config
// check_name, default merge-guard) is a required status check on the
// default branch, by classic branch protection or by a ruleset, pinned to
// this app (app_id / integration_id). A required check that is not pinned
// can be satisfied by anyone who posts a passing status of that name, and a
// check that is not required blocks nothing: in both cases the guard is
// advisory only.
//
// Contract:
//   - Run only reads from GitHub (GET requests) and never changes anything.
//     It returns an error only when nothing can be checked: the credentials
//     are refused or the installations cannot be listed. Every other failure
//     is part of the Report, next to the repository or installation it
//     concerns.
//   - Report.OK is true exactly when every included repository has the check
//     required and pinned to this app, no installation is suspended or short
//     of a permission or event, every configured team exists, the
//     configuration loads, and the policy set compiles and passes its tests
//     (when Options.Policies is given). Repositories
//     that repos.include/exclude leave out are listed, not checked, and do
//     not count, and neither do archived repositories (read-only, no pull
//     requests). mode: advisory is a problem too: SPEC §2 promises a non-zero
//     exit whenever the guard would be advisory only, and in advisory mode
//     the check always passes.
//   - A 403 on branch protection means the app cannot read it (usually the
//     administration: read permission is missing): the repository is
//     "cannot tell" unless a ruleset already pins the check, and counts as a
//     problem, since the doctor cannot vouch for it.
//   - Teams (agents.teams, escalation.approvers.teams and the
//     escalation.reviewers.teams of the installation's own organisation) are
//     looked up as the guard looks them up: GET /orgs/{org}/teams/{slug} with
//     the token of each installation that has an included repository, a bare
//     slug in the installation's organisation. A 404 is a problem (the guard
//     fails closed on pull requests that need the team); a 403 is "cannot
//     tell" (members: read is missing).
//   - Rendering (WriteText, WriteJSON) is separate from checking; messages
//     never contain tokens, JWTs or key material.
package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	mergeguard "github.com/mergeguard/guard"
	"github.com/mergeguard/guard/internal/config"
)

// DefaultConcurrency is how many repositories are checked at once.
const DefaultConcurrency = 4

// Options configure Run.
type Options struct {
	// ConfigPath is guard.yaml; "" means the built-in defaults.
	ConfigPath string
	// Concurrency bounds the repositories checked at once (default
	// DefaultConcurrency). Each repository costs two GET requests.
	Concurrency int
	// Policies is the policy set the guard would load; nil skips the
	// policy check. PolicyDir names it when it is a --policy-dir
	// directory: then its Rego tests are run too; "" means the embedded
	// policies, which are only compiled (their tests run in CI).
	Policies  fs.FS
	PolicyDir string
}

// Status is the verdict of one item.
type Status string

// Statuses, from good to bad. Problem and Unknown make Report.OK false.
const (
	StatusOK      Status = "ok"
	StatusSkipped Status = "skipped" // not checked: excluded by repos in guard.yaml
	StatusInfo    Status = "info"
	StatusWarning Status = "warning"
	StatusUnknown Status = "unknown" // cannot tell: the app cannot read the protection
	StatusProblem Status = "problem"
)

// failing reports whether s makes the report fail.
func (s Status) failing() bool { return s == StatusProblem || s == StatusUnknown }

// Finding is one observation with what to do about it.
type Finding struct {
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// State is what one source of requirements (branch protection or the
// rulesets) says about the check.
type State string

// States of a Requirement.
const (
	StatePinned       State = "pinned"        // required, source: this app
	StateUnpinned     State = "unpinned"      // required, any source
	StateOtherApp     State = "other_app"     // required, source: another app
	StateNotRequired  State = "not_required"  // the rules exist but do not require the check
	StateNotProtected State = "not_protected" // classic: the branch has no protection
	StateCannotTell   State = "cannot_tell"   // GitHub refused to show the rules (403)
	StateError        State = "error"         // the request failed otherwise
)

// Requirement is what branch protection or the rulesets require of the
// check on the default branch.
type Requirement struct {
	State State `json:"state"`
	// AppIDs are the sources the check is pinned to other than this app.
	AppIDs []int64 `json:"other_app_ids,omitempty"`
	// Detail is GitHub's answer when the rules could not be read.
	Detail string `json:"detail,omitempty"`
}

// Repo is the verdict for one repository.
type Repo struct {
	FullName         string      `json:"full_name"`
	DefaultBranch    string      `json:"default_branch"`
	Included         bool        `json:"included"`
	Status           Status      `json:"status"`
	Message          string      `json:"message"`
	Fix              string      `json:"fix,omitempty"`
	BranchProtection Requirement `json:"branch_protection"`
	Rulesets         Requirement `json:"rulesets"`
}

// Installation is the verdict for one installation and its repositories.
type Installation struct {
	ID       int64     `json:"id"`
	Account  string    `json:"account"`
	HTMLURL  string    `json:"html_url,omitempty"`
	Findings []Finding `json:"findings"`
	Repos    []Repo    `json:"repositories"`
}

// Report is everything the doctor found.
type Report struct {
	App           AppInfo        `json:"app"`
	CheckName     string         `json:"check_name"`
	Mode          string         `json:"mode"`
	ConfigSource  string         `json:"config"`
	Config        []Finding      `json:"config_findings"`
	Policies      *Policies      `json:"policies,omitempty"`
	Installations []Installation `json:"installations"`
	Summary       Summary        `json:"summary"`
	// Error says why GitHub could not be checked (the credentials, or
	// listing the installations); the report then holds the local checks
	// only, and Summary.OK is false.
	Error string `json:"error,omitempty"`
}

// Summary counts the repositories by outcome.
type Summary struct {
	OK            bool     `json:"ok"`
	Repositories  int      `json:"repositories"`
	Enforced      int      `json:"enforced"`
	Skipped       int      `json:"skipped"`       // excluded by the configuration or archived: not checked
	AdvisoryOnly  []string `json:"advisory_only"` // included repositories not enforced (problem or unknown)
	OtherProblems int      `json:"other_problems"`
	// NothingGuarded: no included repository is enforced (none installed,
	// or repos.include/exclude leave none): the guard guards nothing.
	NothingGuarded bool `json:"nothing_guarded"`
}

// OK reports whether the guard is enforced everywhere it acts (see the
// package contract).
func (r *Report) OK() bool { return r.Summary.OK }

// Run checks the app through g. The configuration and policies are
// checked first, then the credentials: an error means GitHub could not be
// checked; the report returned with it holds the local checks, and Error.
func Run(ctx context.Context, g GitHub, o Options) (*Report, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	rep := &Report{}
	cfg := loadConfig(o.ConfigPath, rep)
	rep.CheckName, rep.Mode = cfg.CheckName, string(cfg.Mode)
	if o.Policies != nil {
		rep.Policies = checkPolicies(ctx, o.Policies, o.PolicyDir)
	}

	fail := func(err error) (*Report, error) {
		rep.Error, rep.Installations = err.Error(), []Installation{}
		return rep, err
	}
	app, err := g.App(ctx)
	if err != nil {
		return fail(credentialsError(err))
	}
	rep.App = app
	insts, err := g.Installations(ctx)
	if err != nil {
		return fail(fmt.Errorf("the credentials work, but %w", err))
	}
	slices.SortFunc(insts, func(a, b InstallationInfo) int { return cmp.Compare(a.ID, b.ID) })

	var installed []string
	for _, ii := range insts {
		inst := Installation{ID: ii.ID, Account: ii.Account, HTMLURL: ii.HTMLURL}
		inst.Findings = append(inst.Findings, permissionFindings(app, ii)...)
		inst.Findings = append(inst.Findings, eventFindings(app, ii)...)
		if ii.Suspended {
			inst.Findings = append(inst.Findings, Finding{
				Status:  StatusProblem,
				Message: "the installation is suspended: GitHub sends it no webhooks and refuses its tokens",
				Fix:     "an owner of " + ii.Account + " must unsuspend it" + at(ii.HTMLURL),
			})
			rep.Installations = append(rep.Installations, inst)
			continue
		}
		repos, err := g.Repositories(ctx, ii.ID)
		if err != nil {
			inst.Findings = append(inst.Findings, Finding{
				Status: StatusProblem, Message: "cannot list its repositories: " + err.Error(),
				Fix: "run guard doctor again; if it persists, check the installation" + at(ii.HTMLURL),
			})
			rep.Installations = append(rep.Installations, inst)
			continue
		}
		slices.SortFunc(repos, func(a, b RepositoryInfo) int { return strings.Compare(a.FullName, b.FullName) })
		inst.Repos = checkRepos(ctx, g, ii.ID, app.ID, cfg, repos, o.Concurrency)
		if slices.ContainsFunc(inst.Repos, func(r Repo) bool { return r.Included }) {
			inst.Findings = append(inst.Findings, teamFindings(ctx, g, ii, cfg)...)
		}
		for _, r := range repos {
			installed = append(installed, r.FullName)
		}
		rep.Installations = append(rep.Installations, inst)
	}
	if len(insts) == 0 {
		rep.Config = append(rep.Config, Finding{
			Status:  StatusProblem,
			Message: "the app is not installed anywhere: it receives no webhooks",
			Fix:     "install it on your organization" + at(installURL(app.HTMLURL)),
		})
	}
	if len(installed) > 0 {
		rep.Config = append(rep.Config, globFindings(cfg, installed)...)
	}
	rep.summarize()
	return rep, nil
}

// loadConfig loads the configuration, recording problems; on failure it
// goes on with the defaults so that the rest can still be checked.
func loadConfig(p string, rep *Report) *config.Config {
	rep.ConfigSource = p
	if p == "" {
		rep.ConfigSource = "built-in defaults"
	}
	cfg, err := config.Load(p)
	if err != nil {
		rep.Config = append(rep.Config, Finding{
			Status:  StatusProblem,
			Message: "the configuration does not load (guard serve refuses to start): " + oneLine(err),
			Fix:     "fix " + p + " at the lines named; the checks below use the built-in defaults",
		})
		return config.Default()
	}
	if cfg.Mode == config.Advisory {
		rep.Config = append(rep.Config, Finding{
			Status:  StatusProblem,
			Message: "mode: advisory: the check always passes and its title says what enforce would do",
			Fix:     "set mode: enforce in " + p + " when you are ready to hold pull requests",
		})
	}
	return cfg
}

// oneLine joins a multi-line error with "; ".
func oneLine(err error) string {
	return strings.Join(strings.Split(strings.TrimSpace(err.Error()), "\n"), "; ")
}

// credentialsError explains why GitHub refused the app's credentials.
func credentialsError(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("cannot check the credentials: %w; check --github-url and the network", err)
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("GitHub refused the app's credentials (401 %s): the private key does not belong to the app id, "+
			"the app id is wrong, or this machine's clock is off; compare --app-id and --private-key-file (or the credentials file) "+
			"with the app's settings page and generate a new private key there if needed", ae.Message)
	case http.StatusNotFound:
		return fmt.Errorf("GitHub answered 404 for GET /app: --github-url names the wrong server or API base (GitHub Enterprise Server: https://HOST/api/v3/)")
	}
	return fmt.Errorf("cannot check the credentials: %w", err)
}

// levels orders GitHub's permission levels.
var levels = map[string]int{"": 0, "none": 0, "read": 1, "write": 2, "admin": 3}

// permissionFindings compares the permissions an installation granted with
// what the guard needs.
func permissionFindings(app AppInfo, ii InstallationInfo) []Finding {
	want := mergeguard.Permissions()
	var missing, notInApp []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got := ii.Permissions[name]
		if levels[got] >= levels[want[name]] {
			continue
		}
		if got == "" {
			got = "none"
		}
		missing = append(missing, fmt.Sprintf("%s: %s (granted: %s)", name, want[name], got))
		if levels[app.Permissions[name]] < levels[want[name]] {
			notInApp = append(notInApp, name+": "+want[name])
		}
	}
	if len(missing) == 0 {
		return []Finding{{Status: StatusOK, Message: fmt.Sprintf("permissions: all %d the guard needs are granted", len(want))}}
	}
	f := Finding{Status: StatusProblem, Message: "missing permissions: " + strings.Join(missing, ", ")}
	if len(notInApp) > 0 {
		f.Fix = "add " + strings.Join(notInApp, ", ") + " in the app's settings (Permissions & events; the app's page" + at(app.HTMLURL) +
			" links to them), then an owner of " + ii.Account + " must accept the new permissions" + at(ii.HTMLURL)
	} else {
		f.Fix = "an owner of " + ii.Account + " must accept the app's new permissions" + at(ii.HTMLURL)
	}
	if slices.ContainsFunc(missing, func(s string) bool { return strings.HasPrefix(s, "administration:") }) {
		f.Message += "; without administration: read the doctor cannot read branch protection"
	}
	return []Finding{f}
}

// eventFindings reports subscribed events the installation does not
// receive.
func eventFindings(app AppInfo, ii InstallationInfo) []Finding {
	if ii.Events == nil {
		return nil // GitHub did not say; nothing to compare
	}
	var missing []string
	for _, e := range mergeguard.SubscribedEvents() {
		if !slices.Contains(ii.Events, e) {
			missing = append(missing, e)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []Finding{{
		Status:  StatusProblem,
		Message: "the installation does not receive these events: " + strings.Join(missing, ", "),
		Fix: "subscribe to them in the app's settings (Permissions & events; the app's page" + at(app.HTMLURL) +
			" links to them), then an owner of " + ii.Account + " must accept the change" + at(ii.HTMLURL),
	}}
}

// globFindings notes include globs that match no installed repository
// (often a typo).
func globFindings(cfg *config.Config, installed []string) []Finding {
	var out []Finding
	for _, g := range cfg.Repos.Include {
		probe := &config.Config{Repos: config.Repos{Include: []string{g}}}
		if !slices.ContainsFunc(installed, probe.RepoIncluded) {
			out = append(out, Finding{
				Status:  StatusInfo,
				Message: fmt.Sprintf("repos.include %q matches none of the installed repositories", g),
				Fix:     "check the glob for a typo, or install the app on those repositories",
			})
		}
	}
	return out
}

// checkRepos checks repos with at most n at once; the result keeps their
// order.
func checkRepos(ctx context.Context, g GitHub, inst, appID int64, cfg *config.Config, repos []RepositoryInfo, n int) []Repo {
	out := make([]Repo, len(repos))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, r := range repos {
		switch {
		case !cfg.RepoIncluded(r.FullName):
			out[i] = Repo{
				FullName: r.FullName, DefaultBranch: r.DefaultBranch, Status: StatusSkipped,
				Message: "excluded by repos.include/exclude in the configuration: not checked, the guard does not act here",
			}
			continue
		case r.Archived:
			out[i] = Repo{
				FullName: r.FullName, DefaultBranch: r.DefaultBranch, Status: StatusSkipped,
				Message: "archived: read-only, no pull requests to guard; not checked",
			}
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Repo{FullName: r.FullName, DefaultBranch: r.DefaultBranch, Included: true,
					Status: StatusUnknown, Message: "not checked: " + ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			out[i] = checkRepo(ctx, g, inst, appID, cfg.CheckName, r)
		})
	}
	wg.Wait()
	return out
}

// checkRepo reads the classic protection and the rulesets of the default
// branch and judges them.
func checkRepo(ctx context.Context, g GitHub, inst, appID int64, check string, r RepositoryInfo) Repo {
	owner, name, _ := strings.Cut(r.FullName, "/")
	rep := Repo{FullName: r.FullName, DefaultBranch: r.DefaultBranch, Included: true}
	checks, err := g.BranchProtection(ctx, inst, owner, name, r.DefaultBranch)
	rep.BranchProtection = requirement(check, appID, checks, err, true)
	checks, err = g.BranchRules(ctx, inst, owner, name, r.DefaultBranch)
	rep.Rulesets = requirement(check, appID, checks, err, false)
	judge(&rep, check, appID, r.HTMLURL)
	return rep
}

// requirement reduces the required checks of one source to a State.
func requirement(check string, appID int64, checks []RequiredCheck, err error, classic bool) Requirement {
	if err != nil {
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound && classic:
			return Requirement{State: StateNotProtected}
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			// Servers without rulesets (older GitHub Enterprise Server).
			return Requirement{State: StateNotRequired, Detail: "rulesets are not available: " + ae.Message}
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			return Requirement{State: StateCannotTell, Detail: ae.Message}
		}
		return Requirement{State: StateError, Detail: err.Error()}
	}
	var pinned, unpinned bool
	var others []int64
	for _, c := range checks {
		if c.Context != check {
			continue
		}
		switch c.AppID {
		case appID:
			pinned = true
		case 0:
			unpinned = true
		default:
			if !slices.Contains(others, c.AppID) {
				others = append(others, c.AppID)
			}
		}
	}
	switch {
	case pinned:
		return Requirement{State: StatePinned}
	case len(others) > 0:
		slices.Sort(others)
		return Requirement{State: StateOtherApp, AppIDs: others}
	case unpinned:
		return Requirement{State: StateUnpinned}
	}
	return Requirement{State: StateNotRequired}
}

// judge combines both sources: every requirement must be met, so one
// requirement pinned to this app is enough.
func judge(rep *Repo, check string, appID int64, repoHTML string) {
	bp, rs := rep.BranchProtection, rep.Rulesets
	branch := rep.DefaultBranch
	has := func(s State) bool { return bp.State == s || rs.State == s }
	where := func(s State) string {
		switch {
		case bp.State == s && rs.State == s:
			return "branch protection and a ruleset"
		case bp.State == s:
			return "branch protection"
		}
		return "a ruleset"
	}
	// pinHow says how to pin the check in the sources that require it
	// unpinned or for another app.
	pinHow := func(s State) string {
		var steps []string
		if bp.State == s {
			steps = append(steps, fmt.Sprintf("Settings → Branches → the rule for %s%s: choose this app as the source of %s "+
				`(API: {"context": %q, "app_id": %d} in required_status_checks.checks)`,
				branch, at(settingsURL(repoHTML, "branches")), check, check, appID))
		}
		if rs.State == s {
			steps = append(steps, fmt.Sprintf("Settings → Rules → Rulesets%s → the ruleset that requires %s: choose this app as its source "+
				`(API: {"context": %q, "integration_id": %d})`,
				at(settingsURL(repoHTML, "rules")), check, check, appID))
		}
		return fmt.Sprintf("pin %s to this app (id %d): %s", check, appID, strings.Join(steps, "; and "))
	}

	switch {
	case has(StatePinned):
		rep.Status = StatusOK
		rep.Message = fmt.Sprintf("%s is required on %s and pinned to this app (%s)", check, branch, where(StatePinned))
	case has(StateOtherApp):
		ids := slices.Concat(bp.AppIDs, rs.AppIDs)
		slices.Sort(ids)
		rep.Status = StatusProblem
		rep.Message = fmt.Sprintf("%s is required on %s (%s) but pinned to another app (id %s), not this one (id %d): "+
			"that app decides, and this guard is advisory only", check, branch, where(StateOtherApp), joinIDs(slices.Compact(ids)), appID)
		rep.Fix = pinHow(StateOtherApp)
	case has(StateUnpinned):
		rep.Status = StatusProblem
		rep.Message = fmt.Sprintf("%s is required on %s (%s) but not pinned to this app: anyone with write access, "+
			"or any app, can post a passing %s", check, branch, where(StateUnpinned), check)
		rep.Fix = pinHow(StateUnpinned)
	case bp.State == StateCannotTell:
		rep.Status = StatusUnknown
		rep.Message = fmt.Sprintf("cannot tell: GitHub refused to show the branch protection of %s (403 %s) and no ruleset requires %s",
			branch, bp.Detail, check)
		rep.Fix = "grant the app administration: read (app settings → Permissions & events) and accept it on the installation, " +
			"then run guard doctor again; or check Settings → Branches → the rule for " + branch + " by hand" + at(settingsURL(repoHTML, "branches"))
	case bp.State == StateError || rs.State == StateError:
		rep.Status = StatusUnknown
		rep.Message = "cannot tell: " + strings.Join(nonEmpty(bp.Detail, rs.Detail), "; ")
		rep.Fix = "run guard doctor again; if it persists, check GitHub's status and --github-url"
	case rs.State == StateCannotTell:
		rep.Status = StatusUnknown
		rep.Message = fmt.Sprintf("cannot tell: %s is not required by branch protection, and GitHub refused to show the rulesets of %s (403 %s)",
			check, branch, rs.Detail)
		rep.Fix = "check Settings → Rules → Rulesets by hand" + at(settingsURL(repoHTML, "rules"))
	default:
		rep.Status = StatusProblem
		why := "no branch protection"
		if bp.State == StateNotRequired {
			why = "branch protection does not require it"
		}
		rep.Message = fmt.Sprintf("%s is not required on %s (%s, and no ruleset requires it): the check blocks nothing", check, branch, why)
		rep.Fix = fmt.Sprintf("require %s on %s, with this app (id %d) as its source: Settings → Rules → Rulesets%s (recommended: one organization ruleset), "+
			"or Settings → Branches → a branch protection rule%s; see docs/install.md section 4",
			check, branch, appID, at(settingsURL(repoHTML, "rules")), at(settingsURL(repoHTML, "branches")))
	}
}

func (r *Report) summarize() {
	s := Summary{AdvisoryOnly: []string{}}
	for _, f := range r.Config {
		if f.Status.failing() {
			s.OtherProblems++
		}
	}
	if r.Policies != nil {
		for _, f := range r.Policies.Findings {
			if f.Status.failing() {
				s.OtherProblems++
			}
		}
	}
	for _, inst := range r.Installations {
		for _, f := range inst.Findings {
			if f.Status.failing() {
				s.OtherProblems++
			}
		}
		for _, rp := range inst.Repos {
			s.Repositories++
			switch {
			case !rp.Included:
				s.Skipped++
			case rp.Status == StatusOK:
				s.Enforced++
			default:
				s.AdvisoryOnly = append(s.AdvisoryOnly, rp.FullName)
			}
		}
	}
	s.NothingGuarded = s.Enforced == 0
	s.OK = s.OtherProblems == 0 && len(s.AdvisoryOnly) == 0 && !s.NothingGuarded
	r.Summary = s
}

// at returns " at URL", or "" when url is empty.
func at(url string) string {
	if url == "" {
		return ""
	}
	return " at " + url
}

// installURL is the installation page of an app page.
func installURL(appHTML string) string {
	if appHTML == "" {
		return ""
	}
	return strings.TrimSuffix(appHTML, "/") + "/installations/new"
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}

func nonEmpty(ss ...string) []string {
	return slices.DeleteFunc(ss, func(s string) bool { return s == "" })
}
