package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"github.com/mergeguard/guard/internal/dirtest"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runGuard runs the guard in-process and returns exit code, stdout, stderr.
func runGuard(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

// clearEnv unsets every GUARD_ variable for the test.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GUARD_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// testKeyPEM writes a fresh RSA key (PKCS #1, as GitHub issues them).
func testKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsage(t *testing.T) {
	if code, _, errOut := runGuard(t); code != 2 || !strings.Contains(errOut, "Commands:") {
		t.Fatalf("no args: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runGuard(t, "launch"); code != 2 || !strings.Contains(errOut, `unknown command "launch"`) {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errOut)
	}
	for _, c := range commands() {
		t.Run(c.name+" --help", func(t *testing.T) {
			args := []string{c.name, "--help"}
			code, _, errOut := runGuard(t, args...)
			if code != 0 || !strings.Contains(errOut, "Usage") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestServeRefusesBadStart(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	key := testKeyPEM(t)
	brokenPolicy := t.TempDir()
	os.WriteFile(filepath.Join(brokenPolicy, "decision.rego"), []byte("package guard\n\ndecision := {\n"), 0o644)
	failingPolicy := dirtest.Policies(t, map[string]string{"extra_test.rego": "package guard\n\n" +
		"test_agent_pr_is_allowed_always if {\n\tdecision.outcome == \"allow\" with input as agent_input\n}\n"})
	badConfig := filepath.Join(t.TempDir(), "guard.yaml")
	os.WriteFile(badConfig, []byte("timezone: Mars/Olympus\n"), 0o644)
	badKey := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(badKey, []byte("-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	db := filepath.Join(t.TempDir(), "guard.db")
	base := []string{"serve", "--addr", "127.0.0.1:0", "--db", db}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no app id", nil, 2, "GUARD_APP_ID"},
		{"app id not a number", []string{"--app-id", "abc", "--private-key-file", key, "--webhook-secret", "s"}, 2, `--app-id "abc"`},
		{"no private key", []string{"--app-id", "1", "--webhook-secret", "s"}, 2, "GUARD_PRIVATE_KEY"},
		{"no webhook secret", []string{"--app-id", "1", "--private-key-file", key}, 2, "GUARD_WEBHOOK_SECRET"},
		{"missing key file", []string{"--app-id", "1", "--private-key-file", "/nonexistent.pem", "--webhook-secret", "s"}, 1, "private-key-file"},
		{"unknown flag", []string{"--port", "80"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"now"}, 2, `unexpected argument "now"`},
		{"broken policy names file and line", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--policy-dir", brokenPolicy}, 1, "decision.rego:4"},
		{"policy dir whose tests fail names them", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--policy-dir", failingPolicy}, 1, "1 of its tests fail: FAIL test_agent_pr_is_allowed_always (extra_test.rego:3)"},
		{"bad config names file and line", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--config", badConfig}, 1, "guard.yaml:1"},
		{"bad log level", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{"bad private key", []string{"--app-id", "1", "--private-key-file", badKey, "--webhook-secret", "s"}, 1, "private key"},
		{"no workers", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--workers", "0"}, 2, "--workers 0: want 1 to 256"},
		{"negative workers", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--workers", "-3"}, 2, "--workers -3"},
		{"GitHub URL not http", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--github-url", "ftp://x/api/v3/"}, 2, "--github-url"},
		{"public URL not a URL", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--public-url", "not a url"}, 2, "--public-url"},
		{"public URL with a query", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--public-url", "https://g.example.com/?x=1"}, 2, "query"},
		{"short link secret", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--link-secret", "x"}, 2, "openssl rand -hex 32"},
		{"export dir is a file", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--export-dir", badKey}, 1, "is not a folder"},
		{"export dir below a file", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--export-dir", filepath.Join(badKey, "exports")}, 1, "export dir"},
		{"database folder missing", []string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--db", filepath.Join(t.TempDir(), "none", "guard.db")}, 1, "does not exist (create it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runGuard(t, append(append([]string{}, base...), tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, tt.code, errOut, tt.stderr)
			}
			if strings.Contains(errOut, "bm90IGEga2V5") {
				t.Fatal("stderr leaks key material")
			}
		})
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("a refused start created the database")
	}
}

// A GitHub URL of none of GitHub's forms starts, with a warning (a proxy in
// front of GitHub's API may rightly have another form).
func TestServeWarnsOfAnUnusualGitHubURL(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	key := testKeyPEM(t)
	for _, tt := range []struct{ url, warning string }{
		{"https://api.github.com/", ""},
		{"https://ghe.example.com/api/v3/", ""},
		{"https://api.acme.ghe.com/", ""},
		{"https://ghe.example.com", "https://HOST/api/v3/"},
	} {
		c, err := parseServe([]string{"--app-id", "1", "--private-key-file", key, "--webhook-secret", "s", "--github-url", tt.url}, stdio{err: io.Discard})
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		if tt.warning == "" && c.gitHubURLWarning != "" || !strings.Contains(c.gitHubURLWarning, tt.warning) {
			t.Errorf("%s: warning %q, want %q", tt.url, c.gitHubURLWarning, tt.warning)
		}
	}
}

// Every server setting can come from its environment variable (SPEC §3);
// a flag wins over it.
func TestServeSettingsFromTheEnvironment(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	key := testKeyPEM(t)
	exports := t.TempDir()
	for k, v := range map[string]string{
		"GUARD_ADDR": "127.0.0.1:9999", "GUARD_DB": "env.db", "GUARD_CONFIG": "env.yaml",
		"GUARD_APP_ID": "77", "GUARD_PRIVATE_KEY_FILE": key, "GUARD_WEBHOOK_SECRET": "now",
		"GUARD_WEBHOOK_SECRET_PREVIOUS": "before", "GUARD_GITHUB_URL": "https://ghe.example.com/api/v3/",
		"GUARD_PUBLIC_URL": "https://guard.example.com", "GUARD_LINK_SECRET": "0123456789abcdef0123",
		"GUARD_POLICY_DIR": "pol", "GUARD_EXPORT_DIR": exports, "GUARD_LOG_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	c, err := parseServe(nil, stdio{err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.Addr, c.DB, c.ConfigPath, c.AppID, c.WebhookSecret, c.PreviousSecret, c.GitHubURL, c.PublicURL, c.LinkSecret, c.PolicyDir, c.ExportDir, c.LogLevel}
	want := []any{"127.0.0.1:9999", "env.db", "env.yaml", int64(77), "now", "before", "https://ghe.example.com/api/v3/",
		"https://guard.example.com", "0123456789abcdef0123", "pol", exports, "warn"}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(c.PrivateKey) == 0 {
		t.Fatalf("settings %v, want %v", got, want)
	}
	c, err = parseServe([]string{"--db", "flag.db", "--addr", ":1"}, stdio{err: io.Discard})
	if err != nil || c.DB != "flag.db" || c.Addr != ":1" {
		t.Fatalf("flags over the environment: %+v, %v", c, err)
	}
}

// The start line says which settings the guard runs with: a guard.yaml
// that is not where the service looks would otherwise pass unnoticed.
func TestServeLogsItsSettings(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"", `config="built-in defaults (no guard.yaml)"`},
		{"timezone: Europe/Paris\n", "guard.yaml config_digest="},
	} {
		h := startGuard(t, newFake(t), tt.yaml)
		waitFor(t, "the start line", func() bool { return strings.Contains(h.log.String(), "merge-guard listening") })
		if line := h.log.String(); !strings.Contains(line, tt.want) || !strings.Contains(line, "config_digest=") {
			t.Fatalf("start log lacks %q:\n%s", tt.want, line)
		}
	}
}
