package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/dirtest"
)

// auditFixture is a database with records around Berlin's 2026-W13 and a
// config naming that zone.
type auditFixture struct {
	db, cfg string
	recs    []audit.Record
}

func newAuditFixture(t *testing.T) auditFixture {
	t.Helper()
	dir := t.TempDir()
	f := auditFixture{db: filepath.Join(dir, "guard.db"), cfg: filepath.Join(dir, "guard.yaml")}
	if err := os.WriteFile(f.cfg, []byte("timezone: Europe/Berlin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := audit.Open(context.Background(), f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, at := range []string{
		"2026-03-22T23:30:00+01:00", // Sunday of W12, Berlin
		"2026-03-23T00:00:00+01:00", // Monday 00:00 of W13
		"2026-03-29T23:59:00+02:00", // last minute of W13 (after the switch to CEST)
		"2026-03-30T00:00:00+02:00", // Monday 00:00 of W14
	} {
		tm, _ := time.Parse(time.RFC3339, at)
		out, err := s.Append(context.Background(), audit.Record{Time: tm, Kind: audit.KindDecision, Outcome: "escalate",
			Repository: "o/r", PullRequest: i + 1, Actor: "bot[bot]", Agent: true, Rules: []string{"agent_self_merge"},
			Reason: "needs \"a human\", please,\nthanks — ✓"})
		if err != nil {
			t.Fatal(err)
		}
		f.recs = append(f.recs, out...)
	}
	return f
}

// guardAudit runs "guard audit args..." in-process with a fixed clock and
// returns the exit code and both streams.
func guardAudit(t *testing.T, now time.Time, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	s := stdio{in: strings.NewReader(""), out: &out, err: &errOut}
	code := 0
	if err := auditCommand(context.Background(), args, s, func() time.Time { return now }); err != nil {
		// the same mapping as run
		var ec interface{ ExitCode() int }
		switch {
		case errors.Is(err, errUsage):
			code = 2
		case errors.As(err, &ec):
			code = ec.ExitCode()
		default:
			code = 1
		}
		errOut.WriteString(err.Error() + "\n")
	}
	return code, out.String(), errOut.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestAuditExport(t *testing.T) {
	f := newAuditFixture(t)
	head := f.recs[len(f.recs)-1].Hash
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	t.Run("a week in the configured zone, with the chain head last on stderr", func(t *testing.T) {
		code, out, errOut := guardAudit(t, now, "export", "--week", "2026-W13", "--db", f.db, "--config", f.cfg)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 || rows[1][12] != f.recs[1].Hash || rows[2][12] != f.recs[2].Hash {
			t.Fatalf("W13 rows = %q", rows)
		}
		if rows[1][9] != f.recs[1].Reason {
			t.Fatalf("reason = %q", rows[1][9])
		}
		if got := lastLine(errOut); got != "chain head: "+head {
			t.Fatalf("last stderr line = %q, want chain head: %s", got, head)
		}
	})
	for _, tc := range []struct {
		name string
		now  string
		want string
	}{
		{"--week last just before Monday 00:00 Berlin", "2026-03-29T23:59:59+02:00", "2026-W12"},
		{"--week last at Monday 00:00 Berlin", "2026-03-30T00:00:00+02:00", "2026-W13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now, _ := time.Parse(time.RFC3339, tc.now)
			code, out, errOut := guardAudit(t, now, "export", "--week", "last", "--db", f.db, "--config", f.cfg, "--format", "jsonl")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(errOut, " of "+tc.want+" ") {
				t.Fatalf("stderr = %q, want week %s", errOut, tc.want)
			}
			n := strings.Count(out, "\n")
			if want := map[string]int{"2026-W12": 1, "2026-W13": 2}[tc.want]; n != want {
				t.Fatalf("%d records, want %d", n, want)
			}
		})
	}
	t.Run("--from/--to as JSONL into --out", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "trail.jsonl")
		code, out, errOut := guardAudit(t, now, "export", "--from", "2026-03-22T00:00:00Z", "--to", "2026-03-30T00:00:00Z",
			"--format", "jsonl", "--out", file, "--db", f.db)
		if code != 0 || out != "" {
			t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 4 { // 22 Mar 22:30Z, 22 Mar 23:00Z, 29 Mar 21:59Z, 29 Mar 22:00Z
			t.Fatalf("%d lines, want 4:\n%s", len(lines), data)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m["agent"] != true || m["pull_request"] != float64(1) {
			t.Fatalf("line 0 = %v, %v", m, err)
		}
		if got := lastLine(errOut); got != "chain head: "+head {
			t.Fatalf("last stderr line = %q", got)
		}
	})
	t.Run("guard.yaml in the working directory sets the zone", func(t *testing.T) {
		t.Chdir(filepath.Dir(f.cfg))
		t.Setenv("GUARD_CONFIG", "")
		code, _, errOut := guardAudit(t, now, "export", "--week", "2026-W13", "--db", f.db)
		if code != 0 || !strings.Contains(errOut, "[2026-03-23T00:00:00+01:00, 2026-03-30T00:00:00+02:00)") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("without a config the zone is UTC", func(t *testing.T) {
		t.Chdir(t.TempDir())
		t.Setenv("GUARD_CONFIG", "")
		code, _, errOut := guardAudit(t, now, "export", "--week", "2026-W13", "--db", f.db)
		if code != 0 || !strings.Contains(errOut, "[2026-03-23T00:00:00Z, 2026-03-30T00:00:00Z)") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"both --week and --from", []string{"--week", "2026-W13", "--from", "2026-03-22T00:00:00Z", "--to", "2026-03-23T00:00:00Z"}, 2, "either --week or --from/--to"},
		{"no span", nil, 2, "name the span"},
		{"--from without --to", []string{"--from", "2026-03-22T00:00:00Z"}, 2, "both --from and --to"},
		{"a week that does not exist", []string{"--week", "2027-W53"}, 2, "weeks 1 to 52"},
		{"a malformed week", []string{"--week", "2026-13"}, 2, "YYYY-Www"},
		{"an unknown format", []string{"--week", "2026-W13", "--format", "xml"}, 2, "want csv or jsonl"},
		{"--to before --from", []string{"--from", "2026-03-23T00:00:00Z", "--to", "2026-03-22T00:00:00Z"}, 2, "must be after"},
		{"a time that is not RFC 3339", []string{"--from", "2026-03-22", "--to", "2026-03-23T00:00:00Z"}, 2, "RFC 3339"},
		{"an extra argument", []string{"--week", "2026-W13", "extra"}, 2, "unexpected argument"},
		{"an unknown flag", []string{"--weeks", "2026-W13"}, 2, "flag provided but not defined"},
		{"a config with an unknown zone", []string{"--week", "2026-W13", "--config", "BADZONE"}, 1, "Mars/Olympus"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			args := append([]string{"export", "--db", f.db}, tc.args...)
			for i, a := range args {
				if a == "BADZONE" {
					p := filepath.Join(t.TempDir(), "bad.yaml")
					os.WriteFile(p, []byte("timezone: Mars/Olympus\n"), 0o600)
					args[i] = p
				}
			}
			code, out, errOut := guardAudit(t, now, args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d mentioning %q", code, out, errOut, tc.code, tc.want)
			}
		})
	}
	t.Run("a missing database is an error and is not created", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.db")
		code, _, errOut := guardAudit(t, now, "export", "--week", "2026-W13", "--db", missing)
		if code != 1 || !strings.Contains(errOut, "guard serve' creates it") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatal("export created the missing database")
		}
	})
}

func TestAuditVerify(t *testing.T) {
	now := time.Now()
	t.Run("an intact chain exits 0 and names the head", func(t *testing.T) {
		f := newAuditFixture(t)
		code, out, errOut := guardAudit(t, now, "verify", "--db", f.db, "--anchor", f.recs[2].Hash)
		if code != 0 || !strings.Contains(out, "intact: 4 records") || !strings.Contains(out, f.recs[3].Hash) {
			t.Fatalf("exit %d, %q, %q", code, out, errOut)
		}
	})
	tamper := func(t *testing.T, db string, q string) {
		t.Helper()
		raw, err := sql.Open("sqlite", db)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		for _, s := range []string{"DROP TRIGGER records_no_update", "DROP TRIGGER records_no_delete", q} {
			if _, err := raw.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name, q, anchor, want string
	}{
		{"an edited record", "UPDATE records SET outcome = 'allow' WHERE seq = 2", "", "record 2 (id %ID2%): edited"},
		{"a deleted record", "DELETE FROM records WHERE seq = 2", "", "record 3 (id %ID3%): deleted"},
		{"a truncated tail with --anchor", "DELETE FROM records WHERE seq = 4", "%HEAD%", "truncated"},
	} {
		t.Run("exits 3 naming "+tc.name, func(t *testing.T) {
			f := newAuditFixture(t)
			tamper(t, f.db, tc.q)
			r := strings.NewReplacer("%ID2%", f.recs[1].ID, "%ID3%", f.recs[2].ID, "%HEAD%", f.recs[3].Hash)
			args := []string{"verify", "--db", f.db}
			if tc.anchor != "" {
				args = append(args, "--anchor", r.Replace(tc.anchor))
			}
			code, _, errOut := guardAudit(t, now, args...)
			if code != 3 || !strings.Contains(errOut, r.Replace(tc.want)) {
				t.Fatalf("exit %d, stderr %q; want 3 mentioning %q", code, errOut, r.Replace(tc.want))
			}
		})
	}
	t.Run("refuses an anchor that is not a hash", func(t *testing.T) {
		f := newAuditFixture(t)
		if code, _, errOut := guardAudit(t, now, "verify", "--db", f.db, "--anchor", "xyz"); code != 2 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("a missing database is an error", func(t *testing.T) {
		if code, _, _ := guardAudit(t, now, "verify", "--db", filepath.Join(t.TempDir(), "nope.db")); code != 1 {
			t.Fatalf("exit %d", code)
		}
	})
}

func TestAuditSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"--help"}, 0},
		{[]string{"rewrite"}, 2},
		{[]string{"export", "--help"}, 0},
	} {
		t.Run(strings.Join(append([]string{"guard audit"}, tc.args...), " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"audit"}, tc.args...), stdio{in: strings.NewReader(""), out: &out, err: &errOut})
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut.String())
			}
		})
	}
}

// dbHeader returns a database file's header fields that say what it is:
// the read version (2: WAL mode, 1: rollback journal) and the schema
// version (user_version).
func dbHeader(t *testing.T, path string) (readVersion byte, userVersion uint32) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 100 {
		t.Fatalf("read header of %s: %d bytes, %v", path, len(b), err)
	}
	return b[19], binary.BigEndian.Uint32(b[60:64])
}

// rawExec runs statements on the database file at path, closing it after.
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// 'guard audit export|verify' and 'guard freeze list' leave a database they
// read byte for byte as it was, and create nothing beside it: a backup
// copy, a rollback-journal backup, and a database of the older schema 1
// (which is read as it is, not migrated).
func TestAuditCommandsLeaveTheDatabaseAlone(t *testing.T) {
	clearEnv(t)
	f := newAuditFixture(t)
	head := f.recs[len(f.recs)-1].Hash
	copyOf := func(t *testing.T) string { // a file copy of the stopped guard's database
		b, err := os.ReadFile(f.db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f.db + "-wal"); err == nil {
			t.Fatal("the fixture has a -wal file")
		}
		p := filepath.Join(t.TempDir(), "guard-backup.db")
		if err := os.WriteFile(p, b, 0o400); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vacuumed := func(t *testing.T) string { // sqlite3 guard.db "VACUUM INTO ..." (docs/install.md)
		p := filepath.Join(t.TempDir(), "guard-backup.db")
		rawExec(t, copyOf(t), "VACUUM INTO '"+p+"'")
		return p
	}
	schema1 := func(t *testing.T) string { // what a guard of schema version 1 left
		init1, err := os.ReadFile(filepath.Join("..", "..", "internal", "audit", "0001_init.sql"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "guard-v1.db")
		rawExec(t, p, "PRAGMA journal_mode=WAL", string(init1), "PRAGMA user_version = 1",
			"ATTACH '"+f.db+"' AS src", "INSERT INTO records SELECT * FROM src.records", "DETACH src")
		return p
	}
	for _, tc := range []struct {
		name        string
		db          func(t *testing.T) string
		readVersion byte
		userVersion uint32
	}{
		{"a copy of a WAL-mode database, without its -wal file", copyOf, 2, audit.SchemaVersion},
		{"a VACUUM INTO backup, rollback journal", vacuumed, 1, audit.SchemaVersion},
		{"a schema version 1 database", schema1, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db(t)
			if rv, uv := dbHeader(t, db); rv != tc.readVersion || uv != tc.userVersion {
				t.Fatalf("fixture: read version %d, schema %d; want %d, %d", rv, uv, tc.readVersion, tc.userVersion)
			}
			dir := filepath.Dir(db)
			before := dirtest.State(t, dir)
			now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
			code, out, errOut := guardAudit(t, now, "verify", "--db", db, "--anchor", head)
			if code != 0 || !strings.Contains(out, "intact: 4 records") {
				t.Fatalf("verify: exit %d, %q, %q", code, out, errOut)
			}
			code, out, errOut = guardAudit(t, now, "export", "--week", "2026-W13", "--db", db, "--config", f.cfg)
			if rows, err := csv.NewReader(strings.NewReader(out)).ReadAll(); code != 0 || err != nil || len(rows) != 3 || lastLine(errOut) != "chain head: "+head {
				t.Fatalf("export: exit %d, %d rows (%v), %q", code, len(rows), err, errOut)
			}
			outFile := filepath.Join(t.TempDir(), "trail.jsonl")
			code, _, errOut = guardAudit(t, now, "export", "--from", "2026-03-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z",
				"--format", "jsonl", "--out", outFile, "--db", db)
			if code != 0 {
				t.Fatalf("export --out: exit %d, %q", code, errOut)
			}
			code, out, errOut = runGuard(t, "freeze", "list", "--db", db)
			if code != 0 || !strings.Contains(out, "no active freezes") {
				t.Fatalf("freeze list: exit %d, %q, %q", code, out, errOut)
			}
			if after := dirtest.State(t, dir); !slices.Equal(before, after) {
				t.Fatalf("the database or its directory changed:\nbefore %q\nafter  %q", before, after)
			}
			if rv, uv := dbHeader(t, db); rv != tc.readVersion || uv != tc.userVersion {
				t.Fatalf("after: read version %d, schema %d; want %d, %d", rv, uv, tc.readVersion, tc.userVersion)
			}
		})
	}
}

// export and verify run beside a guard that appends to the same database,
// and see what it committed before they started.
func TestAuditBesideAWritingGuard(t *testing.T) {
	clearEnv(t)
	f := newAuditFixture(t)
	ctx := context.Background()
	serve, err := audit.Open(ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer serve.Close()
	var committed atomic.Int64
	committed.Store(int64(len(f.recs)))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		at := time.Date(2026, 3, 25, 12, 0, 0, 0, time.UTC)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := serve.Append(ctx, audit.Record{Time: at, Kind: audit.KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: i}); err != nil {
				t.Error(err)
				return
			}
			committed.Add(1)
		}
	}()
	defer func() { close(stop); <-done }()
	start := committed.Load()
	for committed.Load() < start+20 {
		time.Sleep(time.Millisecond)
	}
	now := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		want := int(committed.Load())
		code, out, errOut := guardAudit(t, now, "verify", "--db", f.db)
		var n int
		if code != 0 || !strings.HasPrefix(out, "audit chain intact: ") {
			t.Fatalf("verify beside serve: exit %d, %q, %q", code, out, errOut)
		}
		fmt.Sscanf(strings.TrimPrefix(out, "audit chain intact: "), "%d", &n)
		if n < want {
			t.Fatalf("verify saw %d records, %d were committed before it", n, want)
		}
		want = int(committed.Load())
		code, out, errOut = guardAudit(t, now, "export", "--db", f.db, "--format", "jsonl",
			"--from", "2026-03-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z")
		if code != 0 || strings.Count(out, "\n") < want {
			t.Fatalf("export beside serve: exit %d, %d lines, %d committed before: %q", code, strings.Count(out, "\n"), want, errOut)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := committed.Load() - start; n < 40 {
		t.Fatalf("serve appended only %d records while export and verify ran", n)
	}
}

func TestAuditRefusesWhatIsNotAGuardDatabase(t *testing.T) {
	clearEnv(t)
	now := time.Now()
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(t.TempDir(), "newer.db")
	rawExec(t, newer, "PRAGMA journal_mode=WAL", "CREATE TABLE records (seq INTEGER)", fmt.Sprintf("PRAGMA user_version = %d", audit.SchemaVersion+1))
	for _, tc := range []struct{ name, db, want string }{
		{"a file that is not a database", junk, "file is not a database"},
		{"a directory", t.TempDir(), "is a directory"},
		{"a newer schema", newer, "newer than this guard"},
	} {
		for _, cmd := range [][]string{{"verify"}, {"export", "--week", "2026-W13"}} {
			t.Run(cmd[0]+" refuses "+tc.name, func(t *testing.T) {
				before := dirtest.State(t, filepath.Dir(tc.db))
				code, out, errOut := guardAudit(t, now, append(cmd, "--db", tc.db)...)
				if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 mentioning %q", code, out, errOut, tc.want)
				}
				if after := dirtest.State(t, filepath.Dir(tc.db)); !slices.Equal(before, after) {
					t.Fatalf("the directory changed:\nbefore %q\nafter  %q", before, after)
				}
			})
		}
	}
}
