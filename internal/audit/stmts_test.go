package audit

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// The writer's statements are prepared at Open; a query that is not runs
// unprepared inside the transaction instead of waiting for the one writer
// connection the transaction itself holds. Readers prepare on first use and
// reuse the statement.
func TestPreparedStatements(t *testing.T) {
	for _, path := range []string{":memory:", filepath.Join(t.TempDir(), "guard.db")} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.wq.stmt(ctx, qTrackPR); err != nil {
				t.Fatalf("qTrackPR not prepared at Open: %v", err)
			}
			done := make(chan error, 1)
			go func() {
				done <- s.inTx(ctx, func(tx *sql.Tx) error {
					_, err := s.wq.in(tx).ExecContext(ctx, "INSERT INTO state (key, value, updated_at) VALUES ('k', 'v', 0)")
					return err
				})
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("unprepared statement in a transaction: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("an unprepared statement in a transaction waited for the writer connection it holds")
			}
			for range 3 {
				var v string
				if err := s.rq.QueryRowContext(ctx, "SELECT value FROM state WHERE key = ?", "k").Scan(&v); err != nil || v != "v" {
					t.Fatalf("cached read = %q, %v", v, err)
				}
			}
			n := 0
			s.rq.m.Range(func(any, any) bool { n++; return true })
			if n != 1 {
				t.Fatalf("%d reader statements cached after one query run three times, want 1", n)
			}
			if err := s.rq.QueryRowContext(ctx, "SELECT nope FROM nowhere").Scan(new(int)); err == nil {
				t.Fatal("a bad query through the cache reported no error")
			}
		})
	}
}
