package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mergeguard/guard/internal/dirtest"
	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/policies"
)

// doctorFake is a fake GitHub with one installation whose repositories all
// require merge-guard pinned to the app; broken adds one whose check is
// not pinned.
func doctorFake(t *testing.T, broken bool) *githubtest.Server {
	t.Helper()
	fake := githubtest.New(t)
	fake.AddInstallation(1, "acme")
	fake.AddRepo(1, "acme/api")
	fake.SetProtection("acme/api", "main", false, githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	fake.AddRepo(1, "acme/web")
	fake.SetRulesetChecks("acme/web", "~DEFAULT_BRANCH", githubtest.RequiredCheck{Context: "merge-guard", AppID: fake.AppID()})
	if broken {
		fake.AddRepo(1, "acme/tools")
		fake.SetProtection("acme/tools", "main", false, githubtest.RequiredCheck{Context: "merge-guard"})
	}
	return fake
}

func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoctor(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	good, bad := doctorFake(t, false), doctorFake(t, true)
	flags := func(fake *githubtest.Server) []string {
		return []string{"doctor", "--github-url", fake.URL(), "--app-id", strconv.FormatInt(fake.AppID(), 10),
			"--private-key-file", writeFile(t, "key.pem", fake.PrivateKeyPEM(), 0o600)}
	}
	credFile := func(fake *githubtest.Server) string {
		b, _ := json.Marshal(map[string]any{"id": fake.AppID(), "slug": "merge-guard", "pem": string(fake.PrivateKeyPEM()),
			"webhook_secret": "s3cret", "github_url": fake.URL()})
		return writeFile(t, "guard-credentials.json", b, 0o600)
	}
	notPEM := writeFile(t, "bad.pem", []byte("-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	badConfig := writeFile(t, "guard.yaml", []byte("check_name: merge-guard\nmode: sometimes\n"), 0o644)
	good.AddTeam("acme", "release")
	teamConfig := func(team string) string {
		return writeFile(t, "guard.yaml", []byte("agents: {teams: ["+team+"]}\n"), 0o644)
	}
	embedded, err := policy.Compile(t.Context(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	goodPolicies := dirtest.Policies(t, nil)
	brokenPolicies := dirtest.Policies(t, map[string]string{"broken.rego": "package guard\n\nallow if {\n\tinput.x ==\n}\n"})
	failingPolicies := dirtest.Policies(t, map[string]string{"extra_test.rego": "package guard\n\ntest_extra_passes if { true }\n\n" +
		"test_agent_pr_is_allowed_always if {\n\tdecision.outcome == \"allow\" with input as agent_input\n}\n"})
	missing := filepath.Join(t.TempDir(), "no-such-dir")

	tests := []struct {
		name           string
		args           []string
		env            map[string]string
		code           int
		stdout, stderr string
	}{
		{name: "help", args: []string{"doctor", "--help"}, code: 0, stderr: "-private-key-file"},
		{name: "every repository pinned", args: flags(good), code: 0,
			stdout: "OK: merge-guard is required and pinned to this app wherever the guard acts"},
		{name: "credentials from the credentials file", args: []string{"doctor", "--credentials", credFile(good)}, code: 0,
			stdout: "✓ acme/api (main)"},
		{name: "credentials from the environment", args: []string{"doctor"}, code: 0, stdout: "2 of 2 checked repositories enforced",
			env: map[string]string{"GUARD_APP_ID": strconv.FormatInt(good.AppID(), 10), "GUARD_PRIVATE_KEY": string(good.PrivateKeyPEM()), "GUARD_GITHUB_URL": good.URL()}},
		{name: "an unpinned check", args: flags(bad), code: 1, stdout: "✗ acme/tools (main)",
			stderr: "guard doctor: the guard is advisory only in 1 repository: require merge-guard pinned to this app (Settings → Rules → Rulesets, or Settings → Branches"},
		{name: "a config that does not load", args: append(flags(good), "--config", badConfig), code: 1, stdout: "guard.yaml:2",
			stderr: "1 installation, configuration or policy problem"},
		{name: "a private key that is not one", args: []string{"doctor", "--github-url", good.URL(), "--app-id", "1", "--private-key-file", notPEM}, code: 1,
			stderr: "github app private key"},
		{name: "the key of another app", args: []string{"doctor", "--github-url", good.URL(), "--app-id", strconv.FormatInt(good.AppID(), 10), "--private-key-file", testKeyPEM(t)},
			code: 1, stderr: "GitHub refused the app's credentials (401"},
		{name: "the key of another app, --json", args: []string{"doctor", "--json", "--github-url", good.URL(), "--app-id", strconv.FormatInt(good.AppID(), 10), "--private-key-file", testKeyPEM(t)},
			code: 1, stdout: `"installations": [],`, stderr: "GitHub refused the app's credentials (401"},
		{name: "the key of another app, --json, says why", args: []string{"doctor", "--json", "--github-url", good.URL(), "--app-id", strconv.FormatInt(good.AppID(), 10), "--private-key-file", testKeyPEM(t)},
			code: 1, stdout: `"error": "GitHub refused the app's credentials (401`},
		{name: "no app id", args: []string{"doctor", "--private-key-file", notPEM}, code: 2, stderr: "the GitHub App id is required"},
		{name: "an app id that is not a number", args: []string{"doctor", "--app-id", "merge-guard", "--private-key-file", notPEM}, code: 2, stderr: "is not a GitHub App id"},
		{name: "no private key", args: []string{"doctor", "--app-id", "1"}, code: 2, stderr: "private key is required"},
		{name: "an unexpected argument", args: []string{"doctor", "acme"}, code: 2, stderr: `unexpected argument "acme"`},
		{name: "the embedded policies", args: flags(good), code: 0, stdout: "✓ policies: the embedded policies compile, revision " + embedded.Revision()},
		{name: "a configured team that exists", args: append(flags(good), "--config", teamConfig("acme/release")), code: 0,
			stdout: "✓ teams: every configured team exists (acme/release)"},
		{name: "a configured team that does not exist", args: append(flags(good), "--config", teamConfig("ai-bots")), code: 1,
			stdout: `✗ agents.teams: team "acme/ai-bots" does not exist (or the app cannot see it: members: read permission)`,
			stderr: "1 installation, configuration or policy problem"},
		{name: "a policy dir whose tests pass", args: append(flags(good), "--policy-dir", goodPolicies), code: 0,
			stdout: "✓ policies: the policies in " + goodPolicies + " compile, revision " + embedded.Revision() + ", "},
		{name: "a policy dir from the environment", args: flags(good), env: map[string]string{"GUARD_POLICY_DIR": brokenPolicies}, code: 1,
			stdout: "broken.rego:5:1: rego_parse_error"},
		{name: "a policy dir that does not compile", args: append(flags(good), "--policy-dir", brokenPolicies), code: 1,
			stdout: "✗ the policies in " + brokenPolicies + " do not compile (guard serve refuses to start with them): ",
			stderr: "1 installation, configuration or policy problem"},
		{name: "a policy dir whose tests fail", args: append(flags(good), "--policy-dir", failingPolicies), code: 1,
			stdout: "tests fail: FAIL test_agent_pr_is_allowed_always (extra_test.rego:5)"},
		{name: "a policy dir that does not exist", args: append(flags(good), "--policy-dir", missing), code: 1,
			stderr: "guard doctor: --policy-dir " + missing + ": stat " + missing + ": no such file or directory"},
		{name: "a policy dir that is a file", args: append(flags(good), "--policy-dir", badConfig), code: 1,
			stderr: "--policy-dir " + badConfig + " is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runGuard(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout with %q, stderr with %q", code, tt.code, out, errOut, tt.stdout, tt.stderr)
			}
			if strings.Contains(out+errOut, "-----BEGIN") || strings.Contains(out+errOut, "bm90IGEga2V5") {
				t.Fatal("output shows key material")
			}
		})
	}
}

func TestDoctorJSON(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	fake := doctorFake(t, true)
	fake.FailNext("GET", "/repos/acme/web/branches/*/protection", 0, http.StatusForbidden, nil, `{"message":"Resource not accessible by integration"}`)
	code, out, errOut := runGuard(t, "doctor", "--json", "--github-url", fake.URL(), "--app-id", strconv.FormatInt(fake.AppID(), 10),
		"--private-key-file", writeFile(t, "key.pem", fake.PrivateKeyPEM(), 0o600))
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	var rep struct {
		Summary struct {
			OK           bool     `json:"ok"`
			Enforced     int      `json:"enforced"`
			AdvisoryOnly []string `json:"advisory_only"`
		} `json:"summary"`
		Installations []struct {
			Repos []struct {
				FullName         string `json:"full_name"`
				Status           string `json:"status"`
				BranchProtection struct {
					State string `json:"state"`
				} `json:"branch_protection"`
			} `json:"repositories"`
		} `json:"installations"`
		Policies struct {
			Source   string `json:"source"`
			Revision string `json:"revision"`
		} `json:"policies"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if rep.Summary.OK || rep.Summary.Enforced != 2 || strings.Join(rep.Summary.AdvisoryOnly, ",") != "acme/tools" {
		t.Fatalf("summary %+v", rep.Summary)
	}
	if rep.Policies.Source != "embedded" || rep.Policies.Revision == "" {
		t.Fatalf("policies %+v, want the embedded ones with their revision", rep.Policies)
	}
	// acme/web's protection is unreadable, but its ruleset pins the check.
	web := rep.Installations[0].Repos[2]
	if web.FullName != "acme/web" || web.Status != "ok" || web.BranchProtection.State != "cannot_tell" {
		t.Fatalf("acme/web: %+v", web)
	}
}
