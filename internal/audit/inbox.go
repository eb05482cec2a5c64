package audit

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"
)

// Delivery is a durable webhook delivery in the inbox.
type Delivery struct {
	Seq        int64  // assigned by Accept
	ID         string // X-GitHub-Delivery
	Event      string // X-GitHub-Event
	Action     string
	Key        string // ordering key computed by the caller, e.g. "owner/repo#12"; deliveries of one key are processed in Seq order
	Payload    []byte
	ReceivedAt time.Time
	Attempts   int
	State      string // pending, done, failed
}

// Delivery states.
const (
	StatePending = "pending"
	StateDone    = "done"
	StateFailed  = "failed"
)

type acceptReq struct {
	d        Delivery
	encoding string         // of d.Payload: "" or "s2"
	res      chan acceptRes // buffered: the writer never blocks on it
}

// compressAbove is the payload size from which Accept stores payloads
// compressed: webhook JSON shrinks ~7x, which is what keeps group commits
// (and the WAL checkpoints behind them) fast.
const compressAbove = 1 << 10

// compress encodes p with S2 (klauspost/compress): ~17 µs for a 30 KB
// payload where flate's fastest level took 50-130 µs for a ratio only a
// little better; at 3,000 acknowledgements/s compression was the largest
// CPU cost of the intake. It runs in the caller's goroutine, not the
// writer's.
func compress(p []byte) []byte {
	return s2.Encode(make([]byte, s2.MaxEncodedLen(len(p))), p)
}

// encodeBufs recycles compression buffers of payloads up to pooledPayload
// bytes: a fresh 35 KB buffer per acknowledgement was half of the intake's
// allocations, and the garbage collections they caused were the tail of its
// latency.
var encodeBufs sync.Pool // *[]byte

const pooledPayload = 256 << 10

// compressPooled is compress into a buffer from encodeBufs; release returns
// the buffer once nothing reads the result any more.
func compressPooled(p []byte) (out []byte, release func()) {
	if len(p) > pooledPayload {
		return compress(p), func() {}
	}
	bp, _ := encodeBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if n := s2.MaxEncodedLen(len(p)); cap(*bp) < n {
		*bp = make([]byte, n)
	}
	out = s2.Encode((*bp)[:cap(*bp)], p)
	return out, func() { encodeBufs.Put(bp) }
}

// decompress decodes a stored payload: "s2" (schema 2 on), "deflate" (rows
// written by schema 1) or "" (stored as is).
func decompress(encoding string, p []byte) ([]byte, error) {
	switch encoding {
	case "":
		return p, nil
	case "s2":
		out, err := s2.Decode(nil, p)
		if err != nil {
			return nil, fmt.Errorf("decode s2 payload: %w", err)
		}
		return out, nil
	case "deflate":
		r := flate.NewReader(bytes.NewReader(p))
		defer r.Close()
		out, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("inflate payload: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("payload encoding %q unknown", encoding)
}

type acceptRes struct {
	seq   int64
	fresh bool
	err   error
}

// Accept stores d durably before returning nil. Group commit: concurrent
// calls are batched into one transaction by a single writer goroutine, so
// many acknowledgements share one fsync.
//
// A delivery ID seen before: done or pending -> fresh=false (nothing
// changes); failed -> set back to pending (a redelivery of a failed one is
// processed again), fresh=true. Seq is the delivery's original Seq then.
//
// If ctx ends while the batch is being committed, Accept returns ctx.Err()
// although the delivery may have been stored; a redelivery is then
// answered with fresh=false.
func (s *Store) Accept(ctx context.Context, d Delivery) (seq int64, fresh bool, err error) {
	if d.ID == "" {
		return 0, false, errors.New("accept delivery: empty delivery id")
	}
	if d.Event == "" {
		return 0, false, fmt.Errorf("accept delivery %s: empty event name", d.ID)
	}
	if s.readOnly {
		return 0, false, fmt.Errorf("accept delivery %s: %w", d.ID, ErrReadOnly)
	}
	req := acceptReq{d: d, res: make(chan acceptRes, 1)}
	s.intake.Add(1)
	defer s.intake.Add(-1)
	s.arriving.Add(1)
	release := func() {}
	if len(d.Payload) > compressAbove {
		req.d.Payload, release = compressPooled(d.Payload)
		req.encoding = "s2"
	}
	// Handed over now (the writer may not wait for it any longer than
	// for its turn in the channel).
	s.arriving.Add(-1)
	select {
	case s.accepts <- req:
	case <-s.quit:
		release()
		return 0, false, ErrClosed
	case <-ctx.Done():
		release()
		return 0, false, fmt.Errorf("accept delivery %s: %w", d.ID, ctx.Err())
	}
	select {
	case r := <-req.res:
		release() // the writer has answered: it is done with the payload
		if r.err != nil {
			return 0, false, fmt.Errorf("accept delivery %s: %w", d.ID, r.err)
		}
		return r.seq, r.fresh, nil
	case <-ctx.Done():
		// The writer may still read the payload: its buffer is left to
		// the collector.
		return 0, false, fmt.Errorf("accept delivery %s: %w", d.ID, ctx.Err())
	}
}

// writer is the group-commit goroutine: it takes every Accept waiting at
// the moment, commits them in one transaction and answers each.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]acceptReq, 0, maxBatch)
	var finish chan struct{} // nil (never ready) without a checkpointer
	if s.ckpt != nil {
		finish = s.ckpt.finish
	}
	var last time.Time               // when the last commit started
	wait := time.NewTimer(time.Hour) // gather's and linger's, kept stopped
	wait.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-finish:
			s.finishCheckpoint()
			continue
		case r := <-s.accepts:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.accepts:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		batch = s.linger(s.gather(batch, last, wait), wait)
		last = time.Now()
		res := s.commitAccepts(batch)
		for i, r := range batch {
			r.res <- res[i]
		}
	}
}

// commitPace is the least time between the starts of two commits. A
// commit's cost hardly depends on its size: measured on the 2-core VM,
// ~400 µs of CPU (half of it the fsync, most of the rest the WAL frames of
// the pages every commit rewrites: the table's and the indexes' last
// leaves, the AUTOINCREMENT counter) against ~70 µs per delivery. At 3,000
// deliveries/s, committing as soon as the previous commit ended made
// batches of 2-3 and ~1,200 commits/s, a third of the guard's CPU; at most
// 500 commits/s make batches of 6 or more and took the guard from ~1.17 to
// ~0.95 cores at that rate (and the store's disk writes per delivery from
// 21-26 to 14 KiB), for ~1 ms more per acknowledgement at the median; the
// p99 stayed where the VM's stalls put it (BENCHMARKS.md). A commit that
// took longer than commitPace (a busy machine) is followed at once by the
// next, and an Accept that comes after a pause is committed at once: the
// pace costs nothing when the writer is slow or idle.
const commitPace = 2 * time.Millisecond

// gather adds to batch the Accepts that come until pace has passed since
// the last commit started (last), returning at once if it has. t is the
// writer's timer, stopped and drained, as gather leaves it.
func (s *Store) gather(batch []acceptReq, last time.Time, t *time.Timer) []acceptReq {
	return s.collect(batch, s.pace-time.Since(last), t, nil)
}

// lingerMax bounds how long a batch waits for Accepts already under way.
const lingerMax = 500 * time.Microsecond

// linger adds to batch the Accepts that have started (they are compressing
// their payload) but not reached the writer yet, waiting at most lingerMax
// for them: one fsync then serves them all. Each commit costs an fsync of
// ~0.5-1 ms and, on this VM, ~100 µs of CPU, so at 3,000/s batches of 2-3
// spent a tenth of the CPU on fsyncs. With no Accept under way it does not
// wait at all. Under way means started and not handed to the writer yet
// (arriving): Accepts the writer has answered but whose goroutines have not
// run since, which a busy CPU can leave for a while, are not waited for. t
// is as for gather.
func (s *Store) linger(batch []acceptReq, t *time.Timer) []acceptReq {
	return s.collect(batch, s.lingerMax, t, func() bool { return s.arriving.Load() > 0 })
}

// collect adds to batch the Accepts that come within wait (on t, left
// stopped) while more reports true (nil: always), until the batch is full
// or the store closes.
func (s *Store) collect(batch []acceptReq, wait time.Duration, t *time.Timer, more func() bool) []acceptReq {
	going := func() bool { return len(batch) < maxBatch && (more == nil || more()) }
	if wait <= 0 || !going() {
		return batch
	}
	t.Reset(wait)
	defer t.Stop()
	for going() {
		select {
		case r := <-s.accepts:
			batch = append(batch, r)
		case <-t.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// commitAccepts stores a batch in one transaction. If the transaction fails
// as a whole, every request gets the error.
func (s *Store) commitAccepts(batch []acceptReq) []acceptRes {
	res := make([]acceptRes, len(batch))
	fail := func(err error) []acceptRes {
		for i := range res {
			res[i] = acceptRes{err: err}
		}
		return res
	}
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	// The common case, a new delivery, is one statement: insert unless the
	// id exists. Only a duplicate is looked up.
	w := s.wq.in(tx)
	now := s.nowUTC()
	for i, r := range batch {
		d := r.d
		at := d.ReceivedAt
		if at.IsZero() {
			at = now
		}
		payload := d.Payload
		if payload == nil {
			payload = []byte{}
		}
		out, err := w.ExecContext(ctx, qInsertDelivery, d.ID, d.Event, d.Action, d.Key, payload, r.encoding, ns(at))
		if err != nil {
			return fail(err)
		}
		if n, err := out.RowsAffected(); err != nil {
			return fail(err)
		} else if n == 1 {
			seq, err := out.LastInsertId()
			if err != nil {
				return fail(err)
			}
			res[i] = acceptRes{seq: seq, fresh: true}
			continue
		}
		var seq int64
		var state string
		if err := tx.QueryRowContext(ctx, "SELECT seq, state FROM deliveries WHERE id = ?", d.ID).Scan(&seq, &state); err != nil {
			return fail(err)
		}
		if state == StateFailed {
			if _, err := tx.ExecContext(ctx, "UPDATE deliveries SET state = 'pending' WHERE seq = ?", seq); err != nil {
				return fail(err)
			}
			res[i] = acceptRes{seq: seq, fresh: true}
		} else {
			res[i] = acceptRes{seq: seq, fresh: false}
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	s.wrote.Store(true)
	return res
}

const deliveryCols = "seq, id, event, action, key, payload, encoding, received_at, attempts, state"

// Statements of the hot paths, prepared once (see stmts).
const (
	qInsertDelivery = `INSERT INTO deliveries (id, event, action, key, payload, encoding, received_at, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT (id) DO NOTHING`
	qDeliveryState = "SELECT id, state FROM deliveries WHERE seq = ?"
	qDeliveryDone  = "UPDATE deliveries SET state = 'done', done_at = ?, last_error = '' WHERE seq = ?"
	qDelivery      = "SELECT " + deliveryCols + " FROM deliveries WHERE seq = ?"
)

func scanDelivery(sc interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var at int64
	var enc string
	if err := sc.Scan(&d.Seq, &d.ID, &d.Event, &d.Action, &d.Key, &d.Payload, &enc, &at, &d.Attempts, &d.State); err != nil {
		return Delivery{}, err
	}
	d.ReceivedAt = fromNS(at)
	p, err := decompress(enc, d.Payload)
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", d.Seq, err)
	}
	d.Payload = p
	return d, nil
}

// Pending returns up to limit deliveries in state pending with Seq >= from,
// in Seq order (to resume them on start, and to read back those the
// dispatcher did not hold), without their payloads: after a flood the
// backlog can be far larger than memory. Load each payload with Delivery
// when its turn comes. limit <= 0 means no limit.
func (s *Store) Pending(ctx context.Context, from int64, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, "SELECT seq, id, event, action, key, received_at, attempts, state FROM deliveries WHERE state = 'pending' AND seq >= ? ORDER BY seq LIMIT ?", from, limit)
	if err != nil {
		return nil, fmt.Errorf("list pending deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var at int64
		if err := rows.Scan(&d.Seq, &d.ID, &d.Event, &d.Action, &d.Key, &at, &d.Attempts, &d.State); err != nil {
			return nil, fmt.Errorf("list pending deliveries: %w", err)
		}
		d.ReceivedAt = fromNS(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pending deliveries: %w", err)
	}
	return out, nil
}

// Delivery returns the delivery with that Seq, or ErrNotFound.
func (s *Store) Delivery(ctx context.Context, seq int64) (Delivery, error) {
	d, err := scanDelivery(s.rq.QueryRowContext(ctx, qDelivery, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", seq, err)
	}
	return d, nil
}

// Fail counts a failed attempt and marks the delivery failed with reason,
// noting when (done_at) for RetryFailed. A delivery already done stays done
// (its records are in the trail).
func (s *Store) Fail(ctx context.Context, seq int64, reason string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := tx.ExecContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, state = 'failed', last_error = ?,
			done_at = ? WHERE seq = ? AND state <> 'done'`, reason, ns(s.nowUTC()), seq)
		if err != nil {
			return err
		}
		if n, _ := out.RowsAffected(); n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, "SELECT 1 FROM deliveries WHERE seq = ?", seq).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fail delivery %d: %w", seq, err)
	}
	return nil
}

// RetryWithin is how long after its receipt a failed delivery is tried
// again; retryPauseFirst and retryPauseMax bound the pause after a failed
// attempt, which doubles from the first to the most: 1, 2, 4, 8, 16, 30,
// 30... minutes.
const (
	RetryWithin     = 24 * time.Hour
	retryPauseFirst = time.Minute
	retryPauseMax   = 30 * time.Minute
)

// RetryFailed sets the failed deliveries whose pause since their last
// attempt is over back to pending, and returns them (without payloads) in
// Seq order, to be processed again: GitHub does not redeliver a delivery
// it got a 2xx for, so an outage of GitHub's API while one was processed
// must not lose it. Those received more than RetryWithin ago stay failed.
// Times are the store's clock, as Accept and Fail note them.
func (s *Store) RetryFailed(ctx context.Context) ([]Delivery, error) {
	now := s.nowUTC()
	// The pause after attempt n is retryPauseFirst << (n-1), at most
	// retryPauseMax; a delivery failed before done_at was noted (schema
	// version 2) is due at once.
	const q = `UPDATE deliveries SET state = 'pending'
		WHERE state = 'failed' AND received_at >= ?
		AND coalesce(done_at, 0) + min(? << (min(max(attempts, 1), 16) - 1), ?) <= ?
		RETURNING seq, id, event, action, key, received_at, attempts, state`
	var out []Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, ns(now.Add(-RetryWithin)), int64(retryPauseFirst), int64(retryPauseMax), ns(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d Delivery
			var at int64
			if err := rows.Scan(&d.Seq, &d.ID, &d.Event, &d.Action, &d.Key, &at, &d.Attempts, &d.State); err != nil {
				return err
			}
			d.ReceivedAt = fromNS(at)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("retry failed deliveries: %w", err)
	}
	slices.SortFunc(out, func(a, b Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// FailedPushes returns how many synchronize deliveries of key (OWNER/NAME#N)
// failed (and are not processed since), other than the delivery except,
// and when the latest of them was received. Who pushed is known only once
// such a delivery is processed: until then, or a human's approval of the
// PR's head after it, the guard counts the push as an agent's. It reads the
// partial index of failed deliveries, which are few.
func (s *Store) FailedPushes(ctx context.Context, key string, except int64) (int, time.Time, error) {
	var n int
	var latest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT count(*), max(received_at) FROM deliveries INDEXED BY deliveries_failed
		WHERE state = 'failed' AND key = ? AND action = 'synchronize' AND seq <> ?`, key, except).Scan(&n, &latest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("failed pushes of %s: %w", key, err)
	}
	return n, timeOrZero(latest), nil
}

// Complete appends recs to the trail and marks the delivery done in ONE
// transaction; if it is already done it appends nothing and returns nil
// (exactly-once across crashes and redeliveries). Records without a
// DeliveryID get the delivery's ID. It returns the records as stored.
func (s *Store) Complete(ctx context.Context, seq int64, recs ...Record) ([]Record, error) {
	var out []Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w := s.wq.in(tx)
		var id, state string
		err := w.QueryRowContext(ctx, qDeliveryState, seq).Scan(&id, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if state == StateDone {
			return nil
		}
		recs = append([]Record(nil), recs...)
		for i := range recs {
			if recs[i].DeliveryID == "" {
				recs[i].DeliveryID = id
			}
		}
		if out, err = s.appendTx(ctx, tx, recs); err != nil {
			return err
		}
		_, err = w.ExecContext(ctx, qDeliveryDone, ns(s.nowUTC()), seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("complete delivery %d: %w", seq, err)
	}
	return out, nil
}

// InboxStats returns how many deliveries are pending and when the first of
// them (by Seq, the order of acceptance) was received (zero when none).
//
// Both come from the deliveries_pending index plus one row: /metrics calls
// this on every scrape, and reading received_at of every pending row (it is
// stored after the payload, so each read walks the payload's overflow pages)
// cost ~100 ms per scrape with a backlog of 30,000.
func (s *Store) InboxStats(ctx context.Context) (depth int, oldest time.Time, err error) {
	err = s.r.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE state = 'pending'").Scan(&depth)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("inbox stats: %w", err)
	}
	if depth == 0 {
		return 0, time.Time{}, nil
	}
	var at int64
	err = s.r.QueryRowContext(ctx, "SELECT received_at FROM deliveries WHERE state = 'pending' ORDER BY seq LIMIT 1").Scan(&at)
	if errors.Is(err, sql.ErrNoRows) { // processed in between
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("inbox stats: %w", err)
	}
	return depth, fromNS(at), nil
}

// PendingRange returns the lowest and highest Seq of the pending
// deliveries (ok false when there are none), without reading payloads.
func (s *Store) PendingRange(ctx context.Context) (lo, hi int64, ok bool, err error) {
	var min, max sql.NullInt64
	err = s.r.QueryRowContext(ctx, "SELECT min(seq), max(seq) FROM deliveries WHERE state = 'pending'").Scan(&min, &max)
	if err != nil {
		return 0, 0, false, fmt.Errorf("pending range: %w", err)
	}
	return min.Int64, max.Int64, min.Valid, nil
}

// PruneInbox deletes the deliveries that were done before the given time
// and returns how many it deleted. Their records stay in the trail; a
// redelivery of a pruned ID would be processed again, so keep at least the
// window in which GitHub redelivers (days).
func (s *Store) PruneInbox(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := tx.ExecContext(ctx, "DELETE FROM deliveries WHERE state = 'done' AND done_at < ?", ns(before))
		if err != nil {
			return err
		}
		n, err = out.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune inbox: %w", err)
	}
	return int(n), nil
}
