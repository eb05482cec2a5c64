package audit

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// Checkpoints. In WAL mode a commit appends pages to the -wal file and a
// checkpoint copies them into the database file; the WAL starts over from
// its beginning at the first write transaction after every page has been
// copied. SQLite's automatic checkpoint runs inside the commit that crosses
// its threshold: copying 1,000 pages and fsyncing the database file there
// stalled every Accept batched behind that commit for ~10 ms, about twelve
// times a second at 3,000 deliveries/s (commit p99.9 11 ms).
//
// The store checkpoints in two phases instead:
//  1. A checkpointer goroutine on a connection of its own copies the WAL
//     (PASSIVE: beside the writer, which goes on committing; nothing waits
//     for it) within checkpointEvery of a commit of this process. Each pass
//     costs two fsyncs (the WAL's, then the database file's) whatever it
//     copies, and its flush slows the commits' fsyncs while it lasts: every
//     20 ms rather than every 5 ms, a pass copies the pages that every
//     commit rewrites once for four times as many commits, and at 3,000
//     deliveries/s the guard spent ~0.1 core less (with commitPace).
//  2. Once the WAL has grown past restartFrames and a pass copied all that
//     was there when it started (at most finishFrames short: a reader's
//     snapshot can hold the copy back), the writer goroutine copies the
//     rest itself between two transactions: what was committed while the
//     checkpointer copied and synced, at most one checkpointEvery of
//     commits. Nothing is appended meanwhile, so the next write transaction
//     restarts the WAL. Measured at 3,000 deliveries/s: ~1.6 ms for the
//     writer (at most 3.3), twice a second, instead of ~10 ms twelve times
//     a second.
//
// A connection's own automatic checkpoint stays on as a safety net at
// safetyCheckpointPages, should the checkpointer be unable to run. No
// checkpoint copies past the snapshot of a read transaction under way (of
// any process): the WAL grows while one lasts, which is why exports read
// in short transactions. A store that never writes never checkpoints, and
// one opened with OpenReadOnly (the CLI's export, verify and list commands)
// has no checkpointer and cannot checkpoint.
const (
	checkpointEvery       = 20 * time.Millisecond
	restartFrames         = 2000 // 8 MiB of 4 KiB pages
	finishFrames          = 500
	safetyCheckpointPages = 16384 // 64 MiB of 4 KiB pages
)

// checkpointer is phase 1; the writer goroutine runs phase 2 when finish
// has a request.
type checkpointer struct {
	db     *sql.DB       // its own connection
	wrote  *atomic.Bool  // set by every commit of the store
	finish chan struct{} // to the writer goroutine: copy the rest (buffered 1)
	quit   chan struct{}
	done   chan struct{}

	copies   atomic.Int64 // checkpoints run by the checkpointer (tests)
	finishes atomic.Int64 // checkpoints finished by the writer (tests)
	copied   atomic.Bool  // the last checkpoint copied the whole WAL (tests)
}

// startCheckpointer opens the checkpointer's connection to path and starts
// it.
func startCheckpointer(path string, wrote *atomic.Bool) (*checkpointer, error) {
	db, err := sql.Open("sqlite", path+fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(%d)",
		busyTimeout.Milliseconds(), safetyCheckpointPages))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{
		db:     db,
		wrote:  wrote,
		finish: make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// checkpoint runs a PASSIVE checkpoint on q and returns the WAL's size and
// how much of it is copied, in frames (pages); both are -1 when a
// checkpoint could not run (another one was under way).
func checkpoint(ctx context.Context, q queryRower) (log, copied int, err error) {
	var busy int
	if err := q.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		return -1, -1, fmt.Errorf("checkpoint: %w", err)
	}
	return log, copied, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	ctx := context.Background()
	dirty := false // this process committed something not known to be copied
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		if len(c.finish) > 0 {
			continue // the writer has yet to finish the last pass
		}
		if c.wrote.Swap(false) {
			dirty = true
		}
		if !dirty {
			continue
		}
		log, copied, err := checkpoint(ctx, c.db)
		if err != nil || log < 0 {
			// A transient failure, or another checkpoint under way (say,
			// another process's): look again at the next tick.
			continue
		}
		c.copies.Add(1)
		whole := copied == log
		c.copied.Store(whole)
		if whole {
			dirty = false
		}
		if log >= restartFrames && log-copied <= finishFrames {
			select {
			case c.finish <- struct{}{}:
			default:
			}
		}
	}
}

// finishCheckpoint is phase 2, run by the writer goroutine between
// transactions. A failure only delays the WAL's restart to a later round.
func (s *Store) finishCheckpoint() {
	log, copied, err := checkpoint(context.Background(), s.w)
	if err != nil || log < 0 {
		s.wrote.Store(true) // the checkpointer tries again
		return
	}
	s.ckpt.finishes.Add(1)
	s.ckpt.copied.Store(copied == log)
}

func (c *checkpointer) close() error {
	close(c.quit)
	<-c.done
	return c.db.Close()
}
