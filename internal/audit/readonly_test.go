package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/dirtest"
	"github.com/mergeguard/guard/internal/pr"
)

// header19 is the read version in a database file's header: 2 in WAL mode,
// 1 with a rollback journal.
func header19(tb testing.TB, path string) byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 100 {
		tb.Fatalf("read header of %s: %d bytes, %v", path, len(b), err)
	}
	return b[19]
}

// closedGuardDB is a database a guard wrote and closed: WAL mode, no -wal
// file beside it, n records and an open freeze. It returns its path and the
// chain head.
func closedGuardDB(tb testing.TB, n int) (string, string) {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "guard.db")
	s, err := Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	fillTrail(tb, s, n)
	if _, err := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "INC-1"}); err != nil {
		tb.Fatal(err)
	}
	res, err := s.Verify(ctx, "")
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	if exists(path + "-wal") {
		tb.Fatal("a closed guard left a -wal file: the fixture is not what it claims")
	}
	if h := header19(tb, path); h != 2 {
		tb.Fatalf("header read version %d, want 2 (WAL)", h)
	}
	return path, res.Head
}

// copyInto copies the file at path into a new temporary directory.
func copyInto(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(tb.TempDir(), filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// schema1DB is a database of schema version 1 (as the guard of that version
// left it: WAL mode, no -wal file) holding the records and freezes of src.
func schema1DB(tb testing.TB, src string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "guard-v1.db")
	init1, err := migrationFS.ReadFile("0001_init.sql")
	if err != nil {
		tb.Fatal(err)
	}
	db := rawDB(tb, path)
	exec(tb, db, "PRAGMA journal_mode=WAL")
	exec(tb, db, string(init1))
	exec(tb, db, "PRAGMA user_version = 1")
	exec(tb, db, "ATTACH ? AS src", src)
	exec(tb, db, "INSERT INTO records SELECT * FROM src.records")
	exec(tb, db, `INSERT INTO freezes SELECT id, scope, target, branch, reason, started_by, from_ns, until_ns,
		ended_at, ended_by FROM src.freezes`) // the columns of version 1
	exec(tb, db, "DETACH src")
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if exists(path + "-wal") {
		tb.Fatal("schema 1 fixture left a -wal file")
	}
	return path
}

// readAll runs what the read-only commands do (verify, export, freeze list)
// on a read-only store of path and returns the number of records, the
// chain head and the number of active freezes.
func readAll(tb testing.TB, path string) (records int, head string, freezes int) {
	tb.Helper()
	ctx := context.Background()
	s, err := OpenReadOnly(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	res, err := s.Verify(ctx, "")
	if err != nil {
		tb.Fatal(err)
	}
	for _, format := range []string{FormatCSV, FormatJSONL} {
		h, n, err := s.Export(ctx, time.Time{}, time.Time{}, format, io.Discard)
		if err != nil {
			tb.Fatal(err)
		}
		if n != res.Records || h != res.Head {
			tb.Fatalf("%s export: %d records, head %s; verify: %d, %s", format, n, h, res.Records, res.Head)
		}
	}
	fs, err := s.ActiveFreezes(ctx, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatalf("Close = %v", err)
	}
	return res.Records, res.Head, len(fs)
}

// The read-only store leaves the file it reads, and its directory, exactly
// as they were, whatever the journal mode and schema version.
func TestOpenReadOnlyLeavesTheFileAlone(t *testing.T) {
	ctx := context.Background()
	const n = 2*exportChunk + 100 // the export reads in chunks, on several connections
	guardDB, head := closedGuardDB(t, n)

	deleteMode := vacuumInto(t, guardDB)
	if h := header19(t, deleteMode); h != 1 {
		t.Fatalf("VACUUM INTO copy has read version %d, want 1 (rollback journal)", h)
	}

	for _, tc := range []struct {
		name, path string
		version    int
		immutable  bool
	}{
		{"a stopped guard's database (WAL mode, no -wal file)", guardDB, SchemaVersion, true},
		{"a copy in another directory (WAL mode, no -wal file)", copyInto(t, guardDB), SchemaVersion, true},
		{"a VACUUM INTO backup (rollback journal)", deleteMode, SchemaVersion, false},
		{"a schema 1 database (WAL mode, no -wal file)", schema1DB(t, guardDB), 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Dir(tc.path)
			before := dirtest.State(t, dir)
			s, err := OpenReadOnly(ctx, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.frozen != nil; got != tc.immutable {
				t.Errorf("opened immutable = %v, want %v", got, tc.immutable)
			}
			if v, err := userVersion(ctx, s.r); err != nil || v != tc.version {
				t.Errorf("user_version = %d, %v; want %d (not migrated)", v, err, tc.version)
			}
			s.Close()
			records, h, freezes := readAll(t, tc.path)
			if records != n+1 || h != head || freezes != 1 {
				t.Errorf("read %d records, head %s, %d freezes; want %d, %s, 1", records, h, freezes, n+1, head)
			}
			if after := dirtest.State(t, dir); !slices.Equal(before, after) {
				t.Fatalf("the directory changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// vacuumInto makes a compacted backup of path, as docs/install.md shows: a
// rollback-journal (DELETE mode) file.
func vacuumInto(tb testing.TB, path string) string {
	tb.Helper()
	backup := filepath.Join(tb.TempDir(), "backup.db")
	db := rawDB(tb, path)
	exec(tb, db, "VACUUM INTO ?", backup)
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if exists(path + "-wal") {
		tb.Fatal("the backup left a -wal file beside the source")
	}
	return backup
}

// A guard that crashed (or a file copy taken with its -wal) leaves
// committed transactions in the -wal file only: the read-only store reads
// them through the WAL and changes neither file. SQLite creates the -shm
// index beside them (documented on OpenReadOnly).
func TestOpenReadOnlyReadsACrashedGuardsWAL(t *testing.T) {
	ctx := context.Background()
	crashed := crashedGuardDB(t)
	sum := func(p string) [32]byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	dbSum, walSum := sum(crashed), sum(crashed+"-wal")
	alone, err := OpenReadOnly(ctx, copyInto(t, crashed)) // the database file without its -wal
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := alone.State(ctx, "only-in-wal"); err != nil || ok {
		t.Fatalf("State(only-in-wal) in the database file alone = %v, %v: the fixture's commit is not in the -wal file only", ok, err)
	}
	alone.Close()
	s, err := OpenReadOnly(ctx, crashed)
	if err != nil {
		t.Fatal(err)
	}
	if s.frozen != nil {
		t.Fatal("opened immutable although a -wal file is beside it")
	}
	if v, ok, err := s.State(ctx, "only-in-wal"); err != nil || !ok || v != "yes" {
		t.Fatalf("State(only-in-wal) = %q, %v, %v: the -wal file was not read", v, ok, err)
	}
	if res, err := s.Verify(ctx, ""); err != nil || res.Records != 11 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	s.Close()
	if sum(crashed) != dbSum || sum(crashed+"-wal") != walSum {
		t.Fatal("the database or its -wal file changed")
	}
}

// crashedGuardDB is what a guard that crashed leaves (or a file copy
// taken with the -wal file while it runs): a database with 10 records and a
// -wal file that holds a committed transaction not copied into it, without
// the -shm file. The state key "only-in-wal" is in the -wal file only.
func crashedGuardDB(tb testing.TB) string {
	tb.Helper()
	guardDB, _ := closedGuardDB(tb, 10)
	crashed := filepath.Join(tb.TempDir(), "guard.db")
	db := rawDB(tb, guardDB)
	db.SetMaxOpenConns(1)
	exec(tb, db, "PRAGMA wal_autocheckpoint=0") // the commit stays in the -wal file
	exec(tb, db, "INSERT INTO state (key, value, updated_at) VALUES ('only-in-wal', 'yes', 1)")
	for _, suffix := range []string{"", "-wal"} { // copied while open, as after a crash
		b, err := os.ReadFile(guardDB + suffix)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return crashed
}

// Export and verify work while a read-write store (serve) appends to the
// same file, and see every record committed before they started.
func TestOpenReadOnlyBesideAWriter(t *testing.T) {
	ctx := context.Background()
	serve, path := mustOpenFile(t)
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := serve.Append(ctx, Record{Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: i}); err != nil {
				t.Error(err)
				return
			}
			committed.Add(1)
		}
	}()
	for committed.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	long, err := OpenReadOnly(ctx, path) // open throughout, sees later commits too
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	if long.frozen != nil {
		t.Fatal("opened immutable beside a writer")
	}
	last := 0
	for i := 0; i < 20; i++ {
		want := int(committed.Load())
		s := long
		if i%2 == 0 {
			if s, err = OpenReadOnly(ctx, path); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Verify(ctx, "")
		if err != nil {
			t.Fatalf("Verify beside a writer: %v", err)
		}
		_, n, err := s.Export(ctx, time.Time{}, time.Time{}, FormatCSV, io.Discard)
		if err != nil {
			t.Fatalf("Export beside a writer: %v", err)
		}
		if res.Records < want || n < res.Records {
			t.Fatalf("verify saw %d records, export %d; %d were committed before", res.Records, n, want)
		}
		last = n
		if s != long {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if last <= 50 {
		t.Fatalf("the last export saw %d records: the reads did not see the appends", last)
	}
	if res, err := long.Verify(ctx, ""); err != nil || res.Records != int(committed.Load()) {
		t.Fatalf("final Verify = %d records, %v; want %d", res.Records, err, committed.Load())
	}
}

// A guard that starts on a file opened immutable (no -wal file at the
// time) makes the reads fail as possibly inconsistent, instead of reporting
// a torn chain; opened again, the store reads through the WAL.
func TestOpenReadOnlyNoticesAGuardStarting(t *testing.T) {
	ctx := context.Background()
	path, _ := closedGuardDB(t, 5)
	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.frozen == nil {
		t.Fatal("not opened immutable")
	}
	if _, err := ro.Verify(ctx, ""); err != nil {
		t.Fatal(err)
	}
	serve, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer serve.Close()
	if _, err := serve.Append(ctx, Record{Kind: KindDecision, Outcome: "allow"}); err != nil {
		t.Fatal(err)
	}
	const want = "was written to while it was read"
	if _, err := ro.Verify(ctx, ""); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify after a guard started = %v, want %q", err, want)
	}
	if _, _, err := ro.Export(ctx, time.Time{}, time.Time{}, FormatCSV, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Export after a guard started = %v, want %q", err, want)
	}
	if _, err := ro.ActiveFreezes(ctx, time.Now()); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("ActiveFreezes after a guard started = %v, want %q", err, want)
	}
	again, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if res, err := again.Verify(ctx, ""); err != nil || res.Records != 7 {
		t.Fatalf("Verify opened again = %+v, %v; want 7 records", res, err)
	}
}

// Every call that writes returns ErrReadOnly at once (none waits for a
// writer that is not there).
func TestReadOnlyStoreRefusesWrites(t *testing.T) {
	path, _ := closedGuardDB(t, 1)
	before := dirtest.State(t, filepath.Dir(path))
	s, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Append": func() error { _, err := s.Append(ctx, Record{Kind: KindDecision, Outcome: "allow"}); return err },
		"Accept": func() error { _, _, err := s.Accept(ctx, Delivery{ID: "d", Event: "ping"}); return err },
		"Ping":   func() error { return s.Ping(ctx) },
		"StartFreeze": func() error {
			_, err := s.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "x"})
			return err
		},
		"EndFreezes":   func() error { _, err := s.EndFreezes(ctx, ScopeRepo, "o/r", "me"); return err },
		"Complete":     func() error { _, err := s.Complete(ctx, 1); return err },
		"Fail":         func() error { return s.Fail(ctx, 1, "x") },
		"PruneInbox":   func() error { _, err := s.PruneInbox(ctx, time.Now()); return err },
		"SaveCheckRun": func() error { return s.SaveCheckRun(ctx, "o/r", "abc", 1, []int{1}) },
		"ClaimComment": func() error { _, err := s.ClaimComment(ctx, 1, "d"); return err },
		"MarkOnce":     func() error { _, err := s.MarkOnce(ctx, "k"); return err },
		"AddOverride":  func() error { return s.AddOverride(ctx, "o/r", 1, pr.Override{Kind: "approve", Actor: "me"}) },
		"TrackPR":      func() error { return s.TrackPR(ctx, TrackedPR{Repo: "o/r", Number: 1}) },
		"SetState":     func() error { return s.SetState(ctx, "k", "v") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store = %v, want ErrReadOnly", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("a write call waited instead of failing")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.Verify(context.Background(), ""); err == nil {
		t.Fatal("Verify after Close succeeded")
	}
	if after := dirtest.State(t, filepath.Dir(path)); !slices.Equal(before, after) {
		t.Fatalf("the directory changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestOpenReadOnlyRefuses(t *testing.T) {
	ctx := context.Background()
	file := func(t *testing.T, content []byte) string {
		p := filepath.Join(t.TempDir(), "guard.db")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newer := func(t *testing.T) string {
		path, _ := closedGuardDB(t, 1)
		db := rawDB(t, path)
		exec(t, db, "PRAGMA user_version = 5")
		db.Close()
		for _, suffix := range []string{"-wal", "-shm"} {
			if exists(path + suffix) {
				t.Fatalf("fixture left %s", suffix)
			}
		}
		return path
	}
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
		want string
	}{
		{"an empty path", func(*testing.T) string { return "" }, "empty database path"},
		{":memory:", func(*testing.T) string { return ":memory:" }, "needs a database file"},
		{"a missing file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.db") }, "does not exist"},
		{"a directory", func(t *testing.T) string { return t.TempDir() }, "is a directory"},
		{"a file that is not a database", func(t *testing.T) string { return file(t, bytes.Repeat([]byte("not a database "), 100)) }, "not a database"},
		{"an empty file", func(t *testing.T) string { return file(t, nil) }, "no guard schema"},
		{"a newer schema", newer, fmt.Sprintf("database schema version 5 is newer than this guard (%d)", SchemaVersion)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			var before []string
			dir := filepath.Dir(path)
			if path != "" && path != ":memory:" {
				before = dirtest.State(t, dir)
			}
			s, err := OpenReadOnly(ctx, path)
			if err == nil {
				s.Close()
				t.Fatal("OpenReadOnly succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenReadOnly = %v, want %q", err, tc.want)
			}
			if before != nil {
				if after := dirtest.State(t, dir); !slices.Equal(before, after) {
					t.Fatalf("the directory changed:\nbefore %q\nafter  %q", before, after)
				}
			}
		})
	}
}

func TestCheckReadable(t *testing.T) {
	for _, tc := range []struct {
		v, oldest int
		want      string // "" = readable
	}{
		{SchemaVersion, 1, ""},
		{1, 1, ""},
		{0, 1, "not a guard database"},
		{SchemaVersion + 1, 1, "newer than this guard"},
		{1, 2, fmt.Sprintf("database schema version 1 is older than this guard's %d and is not read as it is: run 'guard serve' of this version on a copy", SchemaVersion)},
	} {
		err := checkReadable(tc.v, tc.oldest)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkReadable(%d, oldest %d) = %v, want %q", tc.v, tc.oldest, err, tc.want)
		}
	}
}

// In a directory the reader cannot write to, SQLite cannot create -wal and
// -shm files: a WAL-mode copy without them opens all the same (immutable),
// and so does a rollback-journal copy. A crashed guard's database with its
// -wal file but no -shm cannot be read there, and the error says why. Root
// ignores directory permissions, so this runs only as another user.
func TestOpenReadOnlyInAReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write to any directory")
	}
	guardDB, head := closedGuardDB(t, 3)
	deleteMode := vacuumInto(t, guardDB)
	for _, path := range []string{guardDB, deleteMode} {
		dir := filepath.Dir(path)
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		before := dirtest.State(t, dir)
		records, h, _ := readAll(t, path)
		if records != 4 || h != head {
			t.Fatalf("%s: %d records, head %s", path, records, h)
		}
		if after := dirtest.State(t, dir); !slices.Equal(before, after) {
			t.Fatalf("the directory changed:\nbefore %q\nafter  %q", before, after)
		}
	}
	crashed := crashedGuardDB(t)
	if err := os.Chmod(filepath.Dir(crashed), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Dir(crashed), 0o755) })
	const want = "-shm index, which it could not create there"
	if s, err := OpenReadOnly(context.Background(), crashed); err == nil || !strings.Contains(err.Error(), want) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenReadOnly = %v, want an error containing %q", err, want)
	}
}
