package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mergeguard/guard/internal/audit"
)

func TestFreezeCommand(t *testing.T) {
	clearEnv(t)
	db := filepath.Join(t.TempDir(), "guard.db")
	st, err := audit.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	missing := filepath.Join(t.TempDir(), "none.db")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no subcommand", []string{"freeze"}, 2, "", "missing subcommand"},
		{"unknown subcommand", []string{"freeze", "thaw"}, 2, "", `unknown subcommand "thaw"`},
		{"start needs a reason", []string{"freeze", "start", "--db", db, "--repo", "o/r"}, 2, "", "--reason is required"},
		{"start needs a scope", []string{"freeze", "start", "--db", db, "--reason", "x"}, 2, "", "--repo OWNER/NAME or --org ORG"},
		{"not both scopes", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o/r", "--org", "o"}, 2, "", "not both"},
		{"bad repo", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o"}, 2, "", "want OWNER/NAME"},
		{"negative duration", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o/r", "--for", "-1h"}, 2, "", "must be positive"},
		{"bad glob", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o/r", "--branch", "[x"}, 2, "", "not a valid branch pattern"},
		{"branch given as a ref", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o/r", "--branch", "refs/heads/main"}, 2, "", "drop the refs/heads/"},
		{"missing database is not created", []string{"freeze", "list", "--db", missing}, 1, "", "guard serve' creates it"},
		{"start", []string{"freeze", "start", "--db", db, "--reason", "INC-9 database failover", "--repo", "o/r", "--for", "2h"}, 0, "freeze incident-1 started on repo o/r until", ""},
		{"list", []string{"freeze", "list", "--db", db}, 0, "INC-9 database failover", ""},
		{"end", []string{"freeze", "end", "--db", db, "--repo", "o/r"}, 0, "ended 1 freeze(s)", ""},
		{"end with nothing active", []string{"freeze", "end", "--db", db, "--repo", "o/r"}, 1, "", "no active freeze"},
		{"list when none", []string{"freeze", "list", "--db", db}, 0, "no active freezes", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runGuard(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tt.code, out, tt.stdout, errOut, tt.stderr)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("freeze list created a database")
	}
	// Start and end are in the audit trail, with who and why.
	_, out, _ := runGuard(t, "audit", "export", "--db", db, "--format", "jsonl", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z")
	if !strings.Contains(out, `"outcome":"started"`) || !strings.Contains(out, `"outcome":"ended"`) || !strings.Contains(out, "INC-9") {
		t.Fatalf("freeze records missing from the trail:\n%s", out)
	}
}
