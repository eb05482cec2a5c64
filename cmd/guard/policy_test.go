package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyTestCommand(t *testing.T) {
	passing := t.TempDir()
	write := func(dir, name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(passing, "decision.rego", "package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n")
	write(passing, "decision_test.rego", "package guard\n\ntest_allows if decision.outcome == \"allow\"\n")
	failing := t.TempDir()
	write(failing, "decision.rego", "package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n")
	write(failing, "decision_test.rego", "package guard\n\ntest_blocks if decision.outcome == \"block\"\n")
	broken := t.TempDir()
	write(broken, "decision.rego", "package guard\n\ndecision := {\n")
	empty := t.TempDir()
	write(empty, "decision.rego", "package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n")

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"embedded policies pass", []string{"policy", "test"}, 0, " passed, 0 failed\n", ""},
		{"passing directory", []string{"policy", "test", passing}, 0, "PASS test_allows (decision_test.rego:3)\n1 passed, 0 failed\n", ""},
		{"failing directory exits 1", []string{"policy", "test", "-v", failing}, 1, "FAIL test_blocks (decision_test.rego:3)", "1 of 1 policy tests failed"},
		{"broken policy names file and line", []string{"policy", "test", broken}, 1, "", "decision.rego:4:"},
		{"no tests is an error", []string{"policy", "test", empty}, 1, "0 passed, 0 failed", "no policy tests found"},
		{"missing directory", []string{"policy", "test", filepath.Join(empty, "nope")}, 1, "", "policy directory"},
		{"two directories", []string{"policy", "test", passing, failing}, 2, "", "at most one DIR"},
		{"no subcommand", []string{"policy"}, 2, "", "missing subcommand"},
		{"unknown subcommand", []string{"policy", "lint"}, 2, "", `unknown subcommand "lint"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out.String())
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errOut.String())
			}
		})
	}
}
