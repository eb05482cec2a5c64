package audit

import (
	"bytes"
	stdflate "compress/flate"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday

// mustOpen opens a fresh in-memory store closed at the end of the test.
func mustOpen(tb testing.TB, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(context.Background(), ":memory:", opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// mustOpenFile opens a store on a file in a temporary directory.
func mustOpenFile(tb testing.TB, opts ...Option) (*Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "guard.db")
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

// rawDB opens the file directly, as an attacker or a test would.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func exec(tb testing.TB, db *sql.DB, q string, args ...any) {
	tb.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
}

func TestSchemaVersionMatchesMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if got := ms[len(ms)-1].version; got != SchemaVersion {
		t.Fatalf("last embedded migration is %d, SchemaVersion is %d", got, SchemaVersion)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("sets WAL, busy timeout and synchronous FULL on a file", func(t *testing.T) {
		s, _ := mustOpenFile(t)
		var mode string
		var busy, sync int
		if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := s.w.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := s.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != int(busyTimeout.Milliseconds()) || sync != 2 {
			t.Fatalf("journal_mode=%s busy_timeout=%d synchronous=%d, want wal %d 2", mode, busy, busyTimeout.Milliseconds(), sync)
		}
		var v int
		if err := s.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
			t.Fatalf("user_version = %d, %v; want %d", v, err, SchemaVersion)
		}
	})
	t.Run("reopening a migrated file keeps its data", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "guard.db")
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetState(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, ok, err := s.State(ctx, "k"); err != nil || !ok || v != "v" {
			t.Fatalf("State = %q, %v, %v", v, ok, err)
		}
	})
	t.Run("refuses a newer schema and leaves the file untouched", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "guard.db")
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db := rawDB(t, path)
		exec(t, db, "PRAGMA user_version = 5")
		exec(t, db, "PRAGMA wal_checkpoint(TRUNCATE)")
		db.Close()
		before, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, path)
		want := fmt.Sprintf("database schema version 5 is newer than this guard (%d); upgrade guard or restore a backup", SchemaVersion)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open = %v, want error containing %q", err, want)
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatal("the refused database file was modified")
		}
	})
	t.Run("rejects an empty path", func(t *testing.T) {
		if _, err := Open(ctx, ""); err == nil {
			t.Fatal("Open(\"\") succeeded")
		}
	})
	t.Run("rejects a path with a query string", func(t *testing.T) {
		if _, err := Open(ctx, filepath.Join(t.TempDir(), "x.db?mode=ro")); err == nil {
			t.Fatal("Open accepted a path with '?'")
		}
	})
	t.Run("fails clearly on a directory that does not exist", func(t *testing.T) {
		if _, err := Open(ctx, filepath.Join(t.TempDir(), "missing", "guard.db")); err == nil {
			t.Fatal("Open in a missing directory succeeded")
		}
	})
	t.Run("fails on a file that is not a database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "junk.db")
		if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 100), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, path); err == nil {
			t.Fatal("Open of a junk file succeeded")
		}
	})
}

func TestPingAndClose(t *testing.T) {
	ctx := context.Background()
	s, _ := mustOpenFile(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
	if _, _, err := s.Accept(ctx, Delivery{ID: "d", Event: "ping"}); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

// TestTwoProcesses runs two stores on one file, as serve and the CLI do.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	serve, path := mustOpenFile(t)
	cli, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	v0, err := serve.FreezeVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := serve.Append(ctx, Record{Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: 1})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := cli.Append(ctx, Record{Kind: KindMerge, Outcome: "merged", Repository: "o/r", PullRequest: 2})
			errs <- err
		}()
	}
	if _, err := cli.StartFreeze(ctx, ManualFreeze{Scope: ScopeRepo, Target: "o/r", Reason: "incident"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := cli.Verify(ctx, "")
	if err != nil {
		t.Fatalf("Verify after concurrent appends from two stores: %v", err)
	}
	if res.Records != 101 {
		t.Fatalf("Verify walked %d records, want 101", res.Records)
	}
	v1, err := serve.FreezeVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v0 {
		t.Fatal("FreezeVersion did not change after a freeze started in another store")
	}
}

// A schema 1 database (payloads deflated, payload column in the middle)
// migrates to schema 2 with every delivery, its state and its payload, and
// without handing out again a Seq that was pruned.
func TestMigrateInboxFromSchema1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "guard.db")
	init1, err := migrationFS.ReadFile("0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte(`{"action":"synchronize","number":7},`), 100)
	var deflated bytes.Buffer
	w, _ := stdflate.NewWriter(&deflated, stdflate.BestSpeed)
	w.Write(payload)
	w.Close()
	db := rawDB(t, path)
	exec(t, db, string(init1))
	exec(t, db, "PRAGMA user_version = 1")
	ins := `INSERT INTO deliveries (seq, id, event, action, key, payload, encoding, received_at, state, done_at) VALUES (?, ?, 'pull_request', 'synchronize', 'o/r#7', ?, ?, ?, ?, ?)`
	exec(t, db, ins, 1, "done-1", deflated.Bytes(), "deflate", 1000, "done", 2000)
	exec(t, db, ins, 2, "pending-2", deflated.Bytes(), "deflate", 3000, "pending", nil)
	exec(t, db, ins, 3, "plain-3", []byte(`{"a":1}`), "", 4000, "failed", nil)
	exec(t, db, ins, 4, "pruned-4", []byte(`{}`), "", 5000, "done", 6000)
	exec(t, db, "DELETE FROM deliveries WHERE seq = 4")
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := userVersion(ctx, s.r); err != nil || v != SchemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, SchemaVersion)
	}
	for seq, want := range map[int64]struct {
		id, state string
		payload   []byte
	}{1: {"done-1", StateDone, payload}, 2: {"pending-2", StatePending, payload}, 3: {"plain-3", StateFailed, []byte(`{"a":1}`)}} {
		d, err := s.Delivery(ctx, seq)
		if err != nil || d.ID != want.id || d.State != want.state || !bytes.Equal(d.Payload, want.payload) {
			t.Errorf("Delivery(%d) = %s %s %d bytes, %v; want %s %s %d bytes", seq, d.ID, d.State, len(d.Payload), err, want.id, want.state, len(want.payload))
		}
	}
	if depth, oldest, err := s.InboxStats(ctx); err != nil || depth != 1 || !oldest.Equal(fromNS(3000)) {
		t.Errorf("InboxStats = %d, %v, %v; want 1 pending received at 3000 ns", depth, oldest, err)
	}
	seq, fresh, err := s.Accept(ctx, Delivery{ID: "new-5", Event: "pull_request", Payload: payload})
	if err != nil || !fresh || seq != 5 {
		t.Fatalf("Accept after migration = %d, %v, %v; want fresh Seq 5 (4 was pruned, never reused)", seq, fresh, err)
	}
	if d, err := s.Delivery(ctx, seq); err != nil || !bytes.Equal(d.Payload, payload) {
		t.Fatalf("new delivery reads back %d bytes, %v", len(d.Payload), err)
	}
	var enc string
	if err := s.r.QueryRow("SELECT encoding FROM deliveries WHERE seq = 5").Scan(&enc); err != nil || enc != "s2" {
		t.Fatalf("new delivery stored with encoding %q, %v; want s2", enc, err)
	}
	var last string
	if err := s.r.QueryRow("SELECT name FROM pragma_table_info('deliveries') ORDER BY cid DESC LIMIT 1").Scan(&last); err != nil || last != "payload" {
		t.Fatalf("last column of deliveries = %q, %v; want payload", last, err)
	}
}
