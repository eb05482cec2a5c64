package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		{"a reason in several words without quotes", []string{"freeze", "start", "--db", db, "--repo", "o/r", "--reason", "db", "failover", "--for", "2h"}, 2, "", `unexpected argument "failover"`},
		{"zero duration", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o/r", "--for", "0s"}, 2, "", "leave --for out"},
		{"unknown duration unit", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "o/r", "--for", "2w"}, 2, "", "like 30m, 2h or 1d"},
		{"repo with spaces", []string{"freeze", "start", "--db", db, "--reason", "x", "--repo", "a b/c d"}, 2, "", "want OWNER/NAME"},
		{"org with a slash", []string{"freeze", "start", "--db", db, "--reason", "x", "--org", "o/r"}, 2, "", "want an organization login"},
		{"end needs a scope", []string{"freeze", "end", "--db", db}, 2, "", "name what to end the freezes of"},
		{"end with a stray argument", []string{"freeze", "end", "--db", db, "--org", "o", "junk"}, 2, "", `unexpected argument "junk"`},
		{"list with a stray argument", []string{"freeze", "list", "--db", db, "junk"}, 2, "", `unexpected argument "junk"`},
		{"missing database is not created", []string{"freeze", "list", "--db", missing}, 1, "", "guard serve' creates it"},
		{"start", []string{"freeze", "start", "--db", db, "--reason", "INC-9 database failover", "--repo", "o/r", "--for", "2h"}, 0, "freeze incident-1 started on repo o/r until", ""},
		{"start for days", []string{"freeze", "start", "--db", db, "--reason", "year end", "--org", "Octo-Org", "--for", "1d12h"}, 0, "freeze incident-2 started on org Octo-Org until", ""},
		{"list", []string{"freeze", "list", "--db", db}, 0, "INC-9 database failover", ""},
		{"end", []string{"freeze", "end", "--db", db, "--repo", "o/r"}, 0, "ended 1 freeze(s)", ""},
		{"end in another case", []string{"freeze", "end", "--db", db, "--org", "octo-org"}, 0, "ended 1 freeze(s) on org octo-org", ""},
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

func TestParseFor(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30m", 30 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"90s", 90 * time.Second, ""},
		{"1d", 24 * time.Hour, ""},
		{"2d12h", 60 * time.Hour, ""},
		{"0", 0, "must be positive"},
		{"-2h", 0, "must be positive"},
		{"1y", 0, "like 30m, 2h or 1d"},
		{"", 0, "like 30m, 2h or 1d"},
		{"d", 0, "like 30m, 2h or 1d"},
		{"1d2x", 0, "like 30m, 2h or 1d"},
		{"-1d", 0, "like 30m, 2h or 1d"},
		{"0d", 0, "must be positive"},
		{"90d", 90 * 24 * time.Hour, ""},
		{"91d", 0, "longer than 90 days"},
		{"2200h", 0, "longer than 90 days"},
		{"99999999999999d", 0, "longer than 90 days"},
	} {
		got, err := parseFor(tt.in)
		if tt.err == "" && (err != nil || got != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseFor(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}
