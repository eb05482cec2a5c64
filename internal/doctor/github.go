package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"

	"github.com/mergeguard/guard/internal/gh"
)

// GitHub is what the doctor reads from GitHub. FromApp implements it with
// the app's credentials; tests may wrap that to change an answer.
//
// Failed requests return an error that errors.As finds an *APIError in
// when GitHub answered (with its status and message).
type GitHub interface {
	// App is GET /app with the app's JWT: it proves the credentials.
	App(ctx context.Context) (AppInfo, error)
	// Installations is GET /app/installations, every page.
	Installations(ctx context.Context) ([]InstallationInfo, error)
	// Repositories is GET /installation/repositories with the
	// installation's token, every page.
	Repositories(ctx context.Context, installation int64) ([]RepositoryInfo, error)
	// BranchProtection is the required status checks of the classic
	// protection of branch (GET …/branches/{branch}/protection); a branch
	// without protection is an *APIError with status 404.
	BranchProtection(ctx context.Context, installation int64, owner, repo, branch string) ([]RequiredCheck, error)
	// BranchRules is the required status checks of the active rulesets
	// that apply to branch (GET …/rules/branches/{branch}), every page.
	BranchRules(ctx context.Context, installation int64, owner, repo, branch string) ([]RequiredCheck, error)
	// Team is GET /orgs/{org}/teams/{team_slug} with the installation's
	// token, the request the guard makes before it trusts a 404 on a team
	// membership: nil when the team exists; a team that does not exist, or
	// that the app cannot see, is an *APIError with status 404.
	Team(ctx context.Context, installation int64, org, slug string) error
}

// AppInfo is the app as GET /app describes it.
type AppInfo struct {
	ID          int64             `json:"id"`
	Slug        string            `json:"slug"`
	Name        string            `json:"name"`
	HTMLURL     string            `json:"html_url"`
	Permissions map[string]string `json:"permissions"`
	Events      []string          `json:"events"`
}

// InstallationInfo is one installation as GET /app/installations lists it.
type InstallationInfo struct {
	ID          int64             `json:"id"`
	Account     string            `json:"account"`
	HTMLURL     string            `json:"html_url"`
	Permissions map[string]string `json:"permissions"`
	Events      []string          `json:"events"`
	Suspended   bool              `json:"suspended"`
}

// RepositoryInfo is one repository an installation can access.
type RepositoryInfo struct {
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
	HTMLURL       string `json:"html_url"`
	Archived      bool   `json:"archived"`
}

// RequiredCheck is one required status check: its context (the check
// name) and the app it must come from (0: any source).
type RequiredCheck struct {
	Context string `json:"context"`
	AppID   int64  `json:"app_id,omitempty"`
}

// APIError is GitHub's answer to a request that failed.
type APIError struct {
	Op      string // "get branch protection of acme/api@main"
	Status  int    // HTTP status
	Message string // GitHub's message
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: GitHub answered %d %s", e.Op, e.Status, msg)
}

// FromApp returns the GitHub of app: the app's JWT for /app routes, an
// installation token for the rest.
func FromApp(app *gh.App) GitHub { return appGitHub{app: app} }

type appGitHub struct{ app *gh.App }

var _ GitHub = appGitHub{}

// apiErr turns an error of go-github or ghinstallation into an *APIError
// when GitHub answered, and wraps it with op otherwise. go-github's
// ErrorResponse quotes the request URL, which holds no secret, but the
// doctor shows GitHub's message only.
func apiErr(op string, err error) error {
	var er *github.ErrorResponse
	var he *ghinstallation.HTTPError
	switch {
	case errors.As(err, &er) && er.Response != nil:
		return &APIError{Op: op, Status: er.Response.StatusCode, Message: er.Message}
	case errors.As(err, &he) && he.Response != nil:
		return &APIError{Op: op + " (installation token)", Status: he.Response.StatusCode, Message: he.Message}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (g appGitHub) App(ctx context.Context) (AppInfo, error) {
	c := g.app.Client()
	req, err := c.NewRequest(http.MethodGet, "app", nil)
	if err != nil {
		return AppInfo{}, fmt.Errorf("get app: %w", err)
	}
	var a AppInfo
	if _, err := c.Do(ctx, req, &a); err != nil {
		return AppInfo{}, apiErr("get app", err)
	}
	return a, nil
}

// rawInstallation is GitHub's installation JSON; go-github's type does not
// know every permission (merge_queues), so the doctor reads its own.
type rawInstallation struct {
	ID      int64 `json:"id"`
	Account struct {
		Login string `json:"login"`
	} `json:"account"`
	HTMLURL     string            `json:"html_url"`
	Permissions map[string]string `json:"permissions"`
	Events      []string          `json:"events"`
	SuspendedAt *time.Time        `json:"suspended_at"`
}

func (g appGitHub) Installations(ctx context.Context) ([]InstallationInfo, error) {
	c := g.app.Client()
	var out []InstallationInfo
	for page := 1; page != 0; {
		req, err := c.NewRequest(http.MethodGet, fmt.Sprintf("app/installations?per_page=100&page=%d", page), nil)
		if err != nil {
			return nil, fmt.Errorf("list installations: %w", err)
		}
		var raw []rawInstallation
		resp, err := c.Do(ctx, req, &raw)
		if err != nil {
			return nil, apiErr("list installations", err)
		}
		for _, r := range raw {
			out = append(out, InstallationInfo{
				ID: r.ID, Account: r.Account.Login, HTMLURL: r.HTMLURL,
				Permissions: r.Permissions, Events: r.Events, Suspended: r.SuspendedAt != nil,
			})
		}
		page = resp.NextPage
	}
	return out, nil
}

func (g appGitHub) Repositories(ctx context.Context, installation int64) ([]RepositoryInfo, error) {
	c := g.app.Installation(installation).GitHub()
	var out []RepositoryInfo
	opts := &github.ListOptions{PerPage: 100}
	for {
		list, resp, err := c.Apps.ListRepos(ctx, opts)
		if err != nil {
			return nil, apiErr("list repositories", err)
		}
		for _, r := range list.Repositories {
			out = append(out, RepositoryInfo{
				FullName: r.GetFullName(), DefaultBranch: r.GetDefaultBranch(),
				HTMLURL: r.GetHTMLURL(), Archived: r.GetArchived(),
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

func (g appGitHub) BranchProtection(ctx context.Context, installation int64, owner, repo, branch string) ([]RequiredCheck, error) {
	c := g.app.Installation(installation).GitHub()
	op := fmt.Sprintf("get branch protection of %s/%s@%s", owner, repo, branch)
	p, _, err := c.Repositories.GetBranchProtection(ctx, owner, repo, branch)
	if errors.Is(err, github.ErrBranchNotProtected) {
		return nil, &APIError{Op: op, Status: http.StatusNotFound, Message: "Branch not protected"}
	}
	if err != nil {
		return nil, apiErr(op, err)
	}
	rsc := p.GetRequiredStatusChecks()
	if rsc == nil {
		return nil, nil
	}
	var out []RequiredCheck
	if rsc.Checks != nil && len(*rsc.Checks) > 0 {
		for _, ch := range *rsc.Checks {
			out = append(out, RequiredCheck{Context: ch.Context, AppID: max(ch.GetAppID(), 0)})
		}
		return out, nil
	}
	// Servers that predate "checks" list contexts only: any source.
	if rsc.Contexts != nil {
		for _, ctxName := range *rsc.Contexts {
			out = append(out, RequiredCheck{Context: ctxName})
		}
	}
	return out, nil
}

func (g appGitHub) BranchRules(ctx context.Context, installation int64, owner, repo, branch string) ([]RequiredCheck, error) {
	c := g.app.Installation(installation).GitHub()
	op := fmt.Sprintf("get rules of %s/%s@%s", owner, repo, branch)
	// go-github v62's GetRulesForBranch takes no ListOptions and so reads
	// GitHub's first page only (30 rules): a required check pinned by a
	// later rule would be missed. Ask for 100 a page and follow Link next
	// to the last page. The path is built as go-github builds it.
	var rules []*github.RepositoryRule
	for page := 1; ; {
		req, err := c.NewRequest(http.MethodGet, fmt.Sprintf("repos/%v/%v/rules/branches/%v?per_page=100&page=%d", owner, repo, branch, page), nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		var list []*github.RepositoryRule
		resp, err := c.Do(ctx, req, &list)
		if err != nil {
			return nil, apiErr(op, err)
		}
		rules = append(rules, list...)
		if resp.NextPage <= page { // the last page (or a Link that does not move on)
			break
		}
		page = resp.NextPage
	}
	var out []RequiredCheck
	for _, r := range rules {
		if r == nil || r.Type != "required_status_checks" || r.Parameters == nil {
			continue
		}
		var p github.RequiredStatusChecksRuleParameters
		if err := json.Unmarshal(*r.Parameters, &p); err != nil {
			return nil, fmt.Errorf("%s: ruleset %d: %w", op, r.RulesetID, err)
		}
		for _, ch := range p.RequiredStatusChecks {
			out = append(out, RequiredCheck{Context: ch.Context, AppID: max(ch.GetIntegrationID(), 0)})
		}
	}
	return out, nil
}

func (g appGitHub) Team(ctx context.Context, installation int64, org, slug string) error {
	c := g.app.Installation(installation).GitHub()
	if _, _, err := c.Teams.GetTeamBySlug(ctx, org, slug); err != nil {
		return apiErr("get team "+org+"/"+slug, err)
	}
	return nil
}

// webURL returns the web address of a repository's settings page from its
// html_url ("https://github.com/acme/api" → ".../settings/branches").
func settingsURL(repoHTML, page string) string {
	if repoHTML == "" {
		return ""
	}
	return strings.TrimSuffix(repoHTML, "/") + "/settings/" + page
}
