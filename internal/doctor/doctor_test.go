package doctor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/dirtest"
	"github.com/mergeguard/guard/internal/doctor"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/policies"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const forbiddenBody = `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/branches/branch-protection#get-branch-protection"}`

// newApp returns the gh App for the fake with the given key, retrying
// without waiting.
func newApp(t *testing.T, fake *githubtest.Server, appID int64, key []byte) *gh.App {
	t.Helper()
	app, err := gh.New(gh.Options{
		BaseURL: fake.URL(), AppID: appID, PrivateKey: key, MaxRetries: 1,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// orgFake is one installation on acme with a repository for every case.
func orgFake(t *testing.T) *githubtest.Server {
	t.Helper()
	fake := githubtest.New(t)
	id := fake.AppID()
	fake.AddInstallation(1, "acme")
	for _, r := range []string{"classic", "ruleset", "unpinned", "other-app", "without", "unprotected", "forbidden", "sandbox"} {
		fake.AddRepo(1, "acme/"+r)
	}
	fake.SetRepo("acme/classic", "trunk", true)
	fake.SetProtection("acme/classic", "trunk", true, githubtest.RequiredCheck{Context: "ci/build"}, githubtest.RequiredCheck{Context: "merge-guard", AppID: id})
	fake.SetRulesetChecks("acme/ruleset", "~DEFAULT_BRANCH", githubtest.RequiredCheck{Context: "merge-guard", AppID: id})
	fake.SetProtection("acme/unpinned", "main", false, githubtest.RequiredCheck{Context: "merge-guard"})
	fake.SetRulesetChecks("acme/other-app", "main", githubtest.RequiredCheck{Context: "merge-guard", AppID: 999})
	fake.SetProtection("acme/without", "main", false, githubtest.RequiredCheck{Context: "ci/build", AppID: id})
	fake.SetProtection("acme/forbidden", "main", false, githubtest.RequiredCheck{Context: "merge-guard", AppID: id})
	fake.FailNext("GET", "/repos/acme/forbidden/branches/*/protection", 0, http.StatusForbidden, nil, forbiddenBody)
	return fake
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "guard.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func repoByName(t *testing.T, rep *doctor.Report, name string) doctor.Repo {
	t.Helper()
	for _, inst := range rep.Installations {
		for _, r := range inst.Repos {
			if r.FullName == name {
				return r
			}
		}
	}
	t.Fatalf("repository %s not in the report", name)
	return doctor.Repo{}
}

func TestRunJudgesEveryRepository(t *testing.T) {
	fake := orgFake(t)
	cfg := writeConfig(t, "repos: {include: [\"acme/*\"], exclude: [sandbox]}\n")
	rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		repo           string
		status         doctor.Status
		classic, rules doctor.State
		message, fix   string
	}{
		{"acme/classic", doctor.StatusOK, doctor.StatePinned, doctor.StateNotRequired, "required on trunk and pinned to this app (branch protection)", ""},
		{"acme/ruleset", doctor.StatusOK, doctor.StateNotProtected, doctor.StatePinned, "pinned to this app (a ruleset)", ""},
		{"acme/unpinned", doctor.StatusProblem, doctor.StateUnpinned, doctor.StateNotRequired, "not pinned to this app", "pin merge-guard to this app"},
		{"acme/other-app", doctor.StatusProblem, doctor.StateNotProtected, doctor.StateOtherApp, "pinned to another app (id 999)", "pin merge-guard to this app"},
		{"acme/without", doctor.StatusProblem, doctor.StateNotRequired, doctor.StateNotRequired, "not required on main (branch protection does not require it", "Settings → Rules → Rulesets"},
		{"acme/unprotected", doctor.StatusProblem, doctor.StateNotProtected, doctor.StateNotRequired, "not required on main (no branch protection", "Settings → Branches"},
		{"acme/forbidden", doctor.StatusUnknown, doctor.StateCannotTell, doctor.StateNotRequired, "cannot tell", "administration: read"},
		{"acme/sandbox", doctor.StatusSkipped, "", "", "excluded by repos.include/exclude", ""},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			r := repoByName(t, rep, tt.repo)
			if r.Status != tt.status || r.BranchProtection.State != tt.classic || r.Rulesets.State != tt.rules {
				t.Errorf("status %s, classic %s, rulesets %s; want %s, %s, %s (%s)", r.Status, r.BranchProtection.State, r.Rulesets.State, tt.status, tt.classic, tt.rules, r.Message)
			}
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("message %q does not say %q", r.Message, tt.message)
			}
			if !strings.Contains(r.Fix, tt.fix) || (tt.fix == "") != (r.Fix == "") {
				t.Errorf("fix %q, want one with %q", r.Fix, tt.fix)
			}
		})
	}
	if rep.OK() {
		t.Error("report OK with unpinned and missing checks")
	}
	want := []string{"acme/forbidden", "acme/other-app", "acme/unpinned", "acme/unprotected", "acme/without"}
	if got := rep.Summary.AdvisoryOnly; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("advisory only in %v, want %v", got, want)
	}
	if s := rep.Summary; s.Enforced != 2 || s.Skipped != 1 || s.Repositories != 8 || s.OtherProblems != 0 {
		t.Errorf("summary %+v", s)
	}
	if n := fake.CallCount("GET", "/repos/acme/sandbox/*"); n != 0 {
		t.Errorf("the excluded repository was read %d times", n)
	}
	if n := fake.CallCount("GET", "/repos/acme/sandbox/*/*/*"); n != 0 {
		t.Errorf("the excluded repository was read %d times", n)
	}
	for _, c := range fake.Calls() {
		if c.Method != http.MethodGet && c.Route != "/app/installations/{id}/access_tokens" {
			t.Errorf("doctor changed something: %s %s", c.Method, c.Path)
		}
	}
}

func TestWriteTextGolden(t *testing.T) {
	fake := orgFake(t)
	cfg := writeConfig(t, "repos: {include: [\"acme/*\", \"other/*\"], exclude: [sandbox]}\n")
	rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(buf.String(), strings.TrimSuffix(fake.URL(), "/"), "https://github.example")
	got = strings.ReplaceAll(got, cfg, "guard.yaml")
	golden := filepath.Join("testdata", "report.txt")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("text report differs from %s (go test -update rewrites it):\n%s", golden, got)
	}

	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back doctor.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if back.Summary.OK || len(back.Summary.AdvisoryOnly) != 5 || len(back.Installations) != 1 || len(back.Installations[0].Repos) != 8 {
		t.Errorf("JSON report lost content: %+v", back.Summary)
	}
}

func TestRunOKWhenEveryRepositoryIsPinned(t *testing.T) {
	tests := []struct {
		name  string
		setup func(fake *githubtest.Server)
	}{
		{"branch protection", func(fake *githubtest.Server) {
			fake.SetProtection("acme/api", "main", false, githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
		}},
		{"ruleset", func(fake *githubtest.Server) {
			fake.SetRulesetChecks("acme/api", "~ALL", githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
		}},
		{"ruleset pinned although protection is unreadable", func(fake *githubtest.Server) {
			fake.SetRulesetChecks("acme/api", "main", githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
			fake.FailNext("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", 0, http.StatusForbidden, nil, forbiddenBody)
		}},
		{"pinned in one source and unpinned in the other", func(fake *githubtest.Server) {
			fake.SetProtection("acme/api", "main", false, githubtest.RequiredCheck{Context: "merge-guard"})
			fake.SetRulesetChecks("acme/api", "main", githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := githubtest.New(t)
			fake.AddInstallation(7, "acme")
			fake.AddRepo(7, "acme/api")
			tt.setup(fake)
			rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("not OK: %+v", repoByName(t, rep, "acme/api"))
			}
		})
	}
}

func TestRunCustomCheckName(t *testing.T) {
	fake := githubtest.New(t)
	fake.AddInstallation(7, "acme")
	fake.AddRepo(7, "acme/api")
	fake.SetProtection("acme/api", "main", false, githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	cfg := writeConfig(t, "check_name: agent-guard\n")
	rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if r := repoByName(t, rep, "acme/api"); rep.OK() || !strings.Contains(r.Message, "agent-guard is not required") {
		t.Fatalf("merge-guard counted for check_name agent-guard: %s", r.Message)
	}
}

func otherKey(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func TestRunRefusedCredentials(t *testing.T) {
	fake := orgFake(t)
	key := otherKey(t)
	tests := []struct {
		name  string
		appID int64
		key   []byte
		want  string
	}{
		{"a private key of another app", fake.AppID(), key, "private key does not belong to the app id"},
		{"a wrong app id", fake.AppID() + 1, fake.PrivateKeyPEM(), "GitHub refused the app's credentials (401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, tt.appID, tt.key)), doctor.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "Bearer") {
				t.Fatalf("error shows key material: %v", err)
			}
		})
	}
	t.Run("the wrong server", func(t *testing.T) {
		fake.FailNext("GET", "/app", 1, http.StatusNotFound, nil, "")
		_, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
		if err == nil || !strings.Contains(err.Error(), "--github-url") {
			t.Fatalf("error %v, want one naming --github-url", err)
		}
	})
}

// editInstallations changes what GET /app/installations said.
type editInstallations struct {
	doctor.GitHub
	edit func(*doctor.InstallationInfo)
}

func (e editInstallations) Installations(ctx context.Context) ([]doctor.InstallationInfo, error) {
	insts, err := e.GitHub.Installations(ctx)
	for i := range insts {
		insts[i].Permissions = maps.Clone(insts[i].Permissions)
		e.edit(&insts[i])
	}
	return insts, err
}

func TestRunInstallationFindings(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*doctor.InstallationInfo)
		message string
		fix     string
	}{
		{"administration permission not accepted", func(i *doctor.InstallationInfo) { delete(i.Permissions, "administration") },
			"missing permissions: administration: read (granted: none)", "an owner of acme must accept the app's new permissions at "},
		{"checks granted read only", func(i *doctor.InstallationInfo) { i.Permissions["checks"] = "read" },
			"checks: write (granted: read)", "accept"},
		{"an event not received", func(i *doctor.InstallationInfo) { i.Events = []string{"pull_request", "issue_comment"} },
			"does not receive these events: pull_request_review, merge_group", "subscribe"},
		{"suspended", func(i *doctor.InstallationInfo) { i.Suspended = true },
			"suspended", "unsuspend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := guardedFake(t)
			g := editInstallations{doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), tt.edit}
			rep, err := doctor.Run(context.Background(), g, doctor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("report OK")
			}
			var found bool
			for _, f := range rep.Installations[0].Findings {
				if f.Status == doctor.StatusProblem && strings.Contains(f.Message, tt.message) && strings.Contains(f.Fix, tt.fix) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no problem saying %q with fix %q in %+v", tt.message, tt.fix, rep.Installations[0].Findings)
			}
		})
	}
	t.Run("all permissions granted", func(t *testing.T) {
		fake := githubtest.New(t)
		fake.AddInstallation(3, "acme")
		rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if f := rep.Installations[0].Findings; len(f) != 1 || f[0].Status != doctor.StatusOK {
			t.Fatalf("findings %+v", f)
		}
		// Nothing else is wrong, but the guard guards nothing: not OK.
		if rep.OK() || !rep.Summary.NothingGuarded || rep.Summary.OtherProblems != 0 {
			t.Fatalf("summary %+v: an installation without repositories guards nothing", rep.Summary)
		}
		var out strings.Builder
		if err := rep.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "guards no repository") {
			t.Fatalf("report does not say the guard guards nothing:\n%s", out.String())
		}
	})
}

func TestRunConfigFindings(t *testing.T) {
	tests := []struct {
		name   string
		config string
		ok     bool
		status doctor.Status
		want   string
	}{
		{"does not load", "timezone: Mars/Olympus\n", false, doctor.StatusProblem, "guard.yaml:1"},
		{"advisory mode is a problem (the guard is advisory only)", "mode: advisory\n", false, doctor.StatusProblem, "mode: advisory"},
		{"include glob matching nothing", "repos: {include: [\"acme/*\", \"acne/*\"]}\n", true, doctor.StatusInfo, `"acne/*" matches none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := guardedFake(t)
			rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{ConfigPath: writeConfig(t, tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tt.ok {
				t.Errorf("OK = %v, want %v", rep.OK(), tt.ok)
			}
			if len(rep.Config) != 1 || rep.Config[0].Status != tt.status || !strings.Contains(rep.Config[0].Message, tt.want) {
				t.Fatalf("config findings %+v, want one %s saying %q", rep.Config, tt.status, tt.want)
			}
		})
	}
	t.Run("not installed anywhere", func(t *testing.T) {
		fake := githubtest.New(t)
		rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || len(rep.Config) != 1 || !strings.Contains(rep.Config[0].Fix, "/installations/new") {
			t.Fatalf("OK %v, findings %+v", rep.OK(), rep.Config)
		}
	})
}

func TestRunGitHubFailures(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		status  int
		state   func(doctor.Repo) doctor.State
		want    string
	}{
		{"protection unavailable", "/repos/{owner}/{repo}/branches/{branch}/protection", http.StatusBadGateway,
			func(r doctor.Repo) doctor.State { return r.BranchProtection.State }, "cannot tell"},
		{"rulesets forbidden", "/repos/{owner}/{repo}/rules/branches/{branch}", http.StatusForbidden,
			func(r doctor.Repo) doctor.State { return r.Rulesets.State }, "refused to show the rulesets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := githubtest.New(t)
			fake.AddInstallation(3, "acme")
			fake.AddRepo(3, "acme/api")
			fake.FailNext("GET", tt.pattern, 0, tt.status, nil, forbiddenBody)
			rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := repoByName(t, rep, "acme/api")
			if rep.OK() || r.Status != doctor.StatusUnknown || !strings.Contains(r.Message, tt.want) {
				t.Fatalf("OK %v, repo %+v", rep.OK(), r)
			}
		})
	}
	t.Run("repositories cannot be listed", func(t *testing.T) {
		fake := githubtest.New(t)
		fake.AddInstallation(3, "acme")
		fake.FailNext("GET", "/installation/repositories", 0, http.StatusForbidden, nil, forbiddenBody)
		rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || !strings.Contains(rep.Installations[0].Findings[len(rep.Installations[0].Findings)-1].Message, "cannot list its repositories") {
			t.Fatalf("findings %+v", rep.Installations[0].Findings)
		}
	})
}

func TestRunPaginates(t *testing.T) {
	fake := githubtest.New(t)
	fake.AddInstallation(3, "acme")
	for i := range 130 {
		name := "acme/r" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		fake.AddRepo(3, name)
		fake.SetRulesetChecks(name, "~DEFAULT_BRANCH", githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	}
	rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Summary.Repositories != 130 || rep.Summary.Enforced != 130 {
		t.Fatalf("OK %v, summary %+v", rep.OK(), rep.Summary)
	}
}

// TestRunReadsEveryPageOfBranchRules: a branch with more rules than one
// page holds (GitHub's default is 30, its maximum 100), merge-guard pinned
// by the last, is enforced, not "not required".
func TestRunReadsEveryPageOfBranchRules(t *testing.T) {
	fake := githubtest.New(t)
	fake.AddInstallation(3, "acme")
	fake.AddRepo(3, "acme/api")
	// 130 rulesets match main: "[maa]ain" … "[mey]ain", then "main", last
	// in the order GitHub (the fake) lists them.
	for i := range 129 {
		glob := "[m" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "]ain"
		fake.SetRulesetChecks("acme/api", glob, githubtest.RequiredCheck{Context: "ci/" + glob})
	}
	fake.SetRulesetChecks("acme/api", "main", githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), doctor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := repoByName(t, rep, "acme/api"); !rep.OK() || r.Rulesets.State != doctor.StatePinned {
		t.Fatalf("OK %v, repo %+v", rep.OK(), r)
	}
	if n := fake.CallCount("GET", "/repos/{owner}/{repo}/rules/branches/{branch}"); n != 2 {
		t.Errorf("%d requests for the rules, want 2 pages of 100", n)
	}
}

// archiveRepos marks repositories archived in what GitHub listed.
type archiveRepos struct {
	doctor.GitHub
	archived string
}

func (a archiveRepos) Repositories(ctx context.Context, installation int64) ([]doctor.RepositoryInfo, error) {
	repos, err := a.GitHub.Repositories(ctx, installation)
	for i := range repos {
		repos[i].Archived = repos[i].FullName == a.archived
	}
	return repos, err
}

func TestRunSkipsArchivedRepositories(t *testing.T) {
	fake := githubtest.New(t)
	fake.AddInstallation(3, "acme")
	fake.AddRepo(3, "acme/api")
	fake.AddRepo(3, "acme/old")
	fake.SetProtection("acme/api", "main", false, githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	g := archiveRepos{doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())), "acme/old"}
	rep, err := doctor.Run(context.Background(), g, doctor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := repoByName(t, rep, "acme/old"); !rep.OK() || r.Status != doctor.StatusSkipped || !strings.Contains(r.Message, "archived") {
		t.Fatalf("OK %v, acme/old %+v", rep.OK(), r)
	}
	if n := fake.CallCount("GET", "/repos/acme/old/*/*/*"); n != 0 {
		t.Errorf("the archived repository was read %d times", n)
	}
}

// teamFindings returns the findings of the only installation that mention
// teams.
func teamFindings(rep *doctor.Report) []doctor.Finding {
	var out []doctor.Finding
	for _, inst := range rep.Installations {
		for _, f := range inst.Findings {
			if strings.Contains(f.Message, "team") {
				out = append(out, f)
			}
		}
	}
	return out
}

func TestRunChecksConfiguredTeams(t *testing.T) {
	const teamForbidden = `{"message":"Resource not accessible by integration"}`
	tests := []struct {
		name   string
		config string
		setup  func(fake *githubtest.Server)
		ok     bool
		want   []doctor.Finding // Message and Fix are substrings
		calls  int              // GET /orgs/{org}/teams/{team}
	}{
		{name: "every team exists",
			config: "agents: {teams: [ai-bots]}\nescalation: {approvers: {teams: [acme/release]}, reviewers: {teams: [release, other/reviewers]}}\n",
			setup:  func(fake *githubtest.Server) { fake.AddTeam("acme", "ai-bots"); fake.AddTeam("acme", "release") },
			ok:     true,
			want:   []doctor.Finding{{Status: doctor.StatusOK, Message: "teams: every configured team exists (acme/ai-bots, acme/release)"}},
			// acme/release once for both keys; a reviewer team of another
			// organisation is never asked, so not looked up.
			calls: 2},
		{name: "a team that does not exist",
			config: "agents: {teams: [acme/ai-bots]}\n",
			want: []doctor.Finding{{Status: doctor.StatusProblem,
				Message: `agents.teams: team "acme/ai-bots" does not exist (or the app cannot see it: members: read permission)`,
				Fix:     "check the team slug"}},
			calls: 1},
		{name: "one name under two keys, missing",
			config: "agents: {teams: [ai-bots]}\nescalation: {approvers: {teams: [ai-bots, release]}}\n",
			setup:  func(fake *githubtest.Server) { fake.AddTeam("acme", "release") },
			want: []doctor.Finding{{Status: doctor.StatusProblem,
				Message: `agents.teams, escalation.approvers.teams: team "acme/ai-bots" does not exist`}},
			calls: 2},
		{name: "GitHub refuses to show the team",
			config: "escalation: {reviewers: {teams: [release]}}\n",
			setup: func(fake *githubtest.Server) {
				fake.AddTeam("acme", "release")
				fake.FailNext("GET", "/orgs/{org}/teams/{team}", 0, http.StatusForbidden, nil, teamForbidden)
			},
			want: []doctor.Finding{{Status: doctor.StatusUnknown,
				Message: `escalation.reviewers.teams: cannot tell whether team "acme/release" exists: GitHub refused to show it (403 Resource not accessible by integration)`,
				Fix:     "members: read"}},
			calls: 1},
		{name: "no teams configured", config: "agents: {logins: [robot]}\n", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := guardedFake(t)
			if tt.setup != nil {
				tt.setup(fake)
			}
			rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())),
				doctor.Options{ConfigPath: writeConfig(t, tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tt.ok {
				t.Errorf("OK = %v, want %v (summary %+v)", rep.OK(), tt.ok, rep.Summary)
			}
			got := teamFindings(rep)
			if len(got) != len(tt.want) {
				t.Fatalf("team findings %+v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].Status != w.Status || !strings.Contains(got[i].Message, w.Message) || !strings.Contains(got[i].Fix, w.Fix) {
					t.Errorf("finding %+v, want %s with %q (fix with %q)", got[i], w.Status, w.Message, w.Fix)
				}
			}
			if n := fake.CallCount("GET", "/orgs/{org}/teams/{team}"); n != tt.calls {
				t.Errorf("%d team lookups, want %d", n, tt.calls)
			}
		})
	}
}

func TestRunChecksPolicies(t *testing.T) {
	embedded, err := policy.Compile(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	changed := "package guard\n\ntest_extra if { true }\n"
	tests := []struct {
		name     string
		fsys     fs.FS // nil: os.DirFS(dir)
		dir      string
		ok       bool
		status   doctor.Status
		want     []string
		revision bool // the revision is that of the embedded set
		tested   bool
	}{
		{name: "embedded: compiled, tests not run", fsys: policies.FS, ok: true, status: doctor.StatusOK,
			want: []string{"policies: the embedded policies compile, revision " + embedded.Revision()}, revision: true},
		{name: "a directory whose tests pass", dir: dirtest.Policies(t, nil), ok: true, status: doctor.StatusOK,
			want: []string{"compile, revision " + embedded.Revision(), "tests passed"}, revision: true, tested: true},
		{name: "a directory with one more test", dir: dirtest.Policies(t, map[string]string{"extra_test.rego": changed}), ok: true,
			status: doctor.StatusOK, want: []string{"tests passed"}, tested: true},
		{name: "a directory that does not compile", dir: dirtest.Policies(t, map[string]string{"broken.rego": "package guard\n\nallow if {\n\tinput.x ==\n}\n"}),
			status: doctor.StatusProblem, want: []string{"do not compile", "broken.rego:5:1: rego_parse_error"}},
		{name: "a directory whose tests fail",
			dir:    dirtest.Policies(t, map[string]string{"extra_test.rego": "package guard\n\ntest_extra_passes if { true }\n\ntest_agent_pr_is_allowed_always if {\n\tdecision.outcome == \"allow\" with input as agent_input\n}\n"}),
			status: doctor.StatusProblem, want: []string{"1 of", "tests fail: FAIL test_agent_pr_is_allowed_always (extra_test.rego:5)"}, tested: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := guardedFake(t)
			fsys := tt.fsys
			if fsys == nil {
				fsys = os.DirFS(tt.dir)
			}
			rep, err := doctor.Run(context.Background(), doctor.FromApp(newApp(t, fake, fake.AppID(), fake.PrivateKeyPEM())),
				doctor.Options{Policies: fsys, PolicyDir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tt.ok {
				t.Errorf("OK = %v, want %v", rep.OK(), tt.ok)
			}
			p := rep.Policies
			if p == nil || len(p.Findings) != 1 {
				t.Fatalf("policies %+v, want one finding", p)
			}
			f := p.Findings[0]
			for _, w := range tt.want {
				if f.Status != tt.status || !strings.Contains(f.Message, w) {
					t.Errorf("finding %+v, want %s saying %q", f, tt.status, w)
				}
			}
			if tt.revision && p.Revision != embedded.Revision() {
				t.Errorf("revision %q, want %q", p.Revision, embedded.Revision())
			}
			if p.Tested != tt.tested || (tt.tested && p.Passed == 0) {
				t.Errorf("tested %v (%d passed, %d failed), want %v", p.Tested, p.Passed, p.Failed, tt.tested)
			}
			var text, js bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), f.Status.Mark()+" "+f.Message) {
				t.Errorf("text report lacks the policy finding:\n%s", text.String())
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back doctor.Report
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Policies == nil || back.Policies.Revision != p.Revision ||
				back.Policies.Passed != p.Passed || back.Policies.Findings[0] != f {
				t.Errorf("JSON report lost the policies (%v): %s", err, js.String())
			}
		})
	}
}

// guardedFake is a fake GitHub with installation 3 on acme and acme/api,
// whose main branch requires merge-guard pinned to the app: a guard with
// nothing wrong yet.
func guardedFake(t *testing.T) *githubtest.Server {
	t.Helper()
	fake := githubtest.New(t)
	fake.AddInstallation(3, "acme")
	fake.AddRepo(3, "acme/api")
	fake.SetProtection("acme/api", "main", false, githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	return fake
}
