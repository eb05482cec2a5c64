package audit

import (
	"bytes"
	stdflate "compress/flate"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAccept(t *testing.T) {
	ctx := context.Background()
	t.Run("a new delivery is pending and fresh", func(t *testing.T) {
		c := newClock(t0)
		s := mustOpen(t, WithClock(c.Now))
		seq, fresh, err := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request", Action: "opened", Key: "o/r#1", Payload: []byte(`{"a":1}`)})
		if err != nil || !fresh || seq <= 0 {
			t.Fatalf("Accept = %d, %v, %v", seq, fresh, err)
		}
		d, err := s.Delivery(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		want := Delivery{Seq: seq, ID: "d1", Event: "pull_request", Action: "opened", Key: "o/r#1", Payload: []byte(`{"a":1}`),
			ReceivedAt: t0, State: StatePending}
		if fmt.Sprint(d) != fmt.Sprint(want) {
			t.Fatalf("Delivery = %+v, want %+v", d, want)
		}
	})
	t.Run("a repeated pending delivery is not fresh and changes nothing", func(t *testing.T) {
		s := mustOpen(t)
		seq, _, _ := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request", Payload: []byte("1")})
		seq2, fresh, err := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request", Payload: []byte("2")})
		if err != nil || fresh || seq2 != seq {
			t.Fatalf("repeat Accept = %d, %v, %v; want %d, false", seq2, fresh, err, seq)
		}
		d, _ := s.Delivery(ctx, seq)
		if string(d.Payload) != "1" {
			t.Fatalf("payload changed to %q", d.Payload)
		}
	})
	t.Run("a repeated done delivery is not fresh and stays done", func(t *testing.T) {
		s := mustOpen(t)
		seq, _, _ := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request"})
		if _, err := s.Complete(ctx, seq); err != nil {
			t.Fatal(err)
		}
		_, fresh, err := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request"})
		if err != nil || fresh {
			t.Fatalf("repeat Accept of a done delivery = %v, %v; want fresh=false", fresh, err)
		}
		if d, _ := s.Delivery(ctx, seq); d.State != StateDone {
			t.Fatalf("state = %s, want done", d.State)
		}
	})
	t.Run("a redelivery of a failed delivery is pending again and fresh", func(t *testing.T) {
		s := mustOpen(t)
		seq, _, _ := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request"})
		if err := s.Fail(ctx, seq, "GitHub 502"); err != nil {
			t.Fatal(err)
		}
		seq2, fresh, err := s.Accept(ctx, Delivery{ID: "d1", Event: "pull_request"})
		if err != nil || !fresh || seq2 != seq {
			t.Fatalf("redelivery = %d, %v, %v; want %d, true", seq2, fresh, err, seq)
		}
		d, _ := s.Delivery(ctx, seq)
		if d.State != StatePending || d.Attempts != 1 {
			t.Fatalf("after redelivery: state %s attempts %d, want pending 1", d.State, d.Attempts)
		}
	})
	t.Run("a large payload is stored compressed and read back intact", func(t *testing.T) {
		s := mustOpen(t)
		payload := []byte(strings.Repeat(`{"url":"https://api.github.com/repos/o/r/pulls/1"}`, 500))
		seq, _, err := s.Accept(ctx, Delivery{ID: "big", Event: "pull_request", Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		var stored int
		if err := s.r.QueryRow("SELECT length(payload) FROM deliveries WHERE seq = ?", seq).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored >= len(payload)/4 {
			t.Fatalf("stored %d bytes of a %d-byte payload: not compressed", stored, len(payload))
		}
		d, err := s.Delivery(ctx, seq)
		if err != nil || !bytes.Equal(d.Payload, payload) {
			t.Fatalf("payload read back differs (%d bytes, %v)", len(d.Payload), err)
		}
		p, err := s.Pending(ctx, 0, 0)
		if err != nil || len(p) != 1 || p[0].Seq != seq || p[0].ID != "big" || p[0].Payload != nil {
			t.Fatalf("Pending = %+v, %v; want delivery %d without its payload", p, err, seq)
		}
	})
	t.Run("a corrupt compressed payload is an error, not garbage", func(t *testing.T) {
		s := mustOpen(t)
		seq, _, _ := s.Accept(ctx, Delivery{ID: "big", Event: "pull_request", Payload: bytes.Repeat([]byte("x"), 4096)})
		if _, err := s.w.Exec("UPDATE deliveries SET payload = x'00ff00ff' WHERE seq = ?", seq); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delivery(ctx, seq); err == nil {
			t.Fatal("Delivery of a corrupt payload succeeded")
		}
	})
	t.Run("an empty delivery id is refused", func(t *testing.T) {
		s := mustOpen(t)
		if _, _, err := s.Accept(ctx, Delivery{Event: "pull_request"}); err == nil {
			t.Fatal("Accept without ID succeeded")
		}
	})
	t.Run("an empty event is refused", func(t *testing.T) {
		s := mustOpen(t)
		if _, _, err := s.Accept(ctx, Delivery{ID: "d"}); err == nil {
			t.Fatal("Accept without event succeeded")
		}
	})
	t.Run("a cancelled context returns its error", func(t *testing.T) {
		s := mustOpen(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := s.Accept(cctx, Delivery{ID: "d", Event: "ping"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Accept = %v, want context.Canceled", err)
		}
	})
	t.Run("concurrent accepts are all stored once, duplicates included", func(t *testing.T) {
		s, _ := mustOpenFile(t)
		const n = 200
		var wg sync.WaitGroup
		fresh := make(chan bool, 2*n)
		for i := 0; i < n; i++ {
			for j := 0; j < 2; j++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, f, err := s.Accept(ctx, Delivery{ID: fmt.Sprint("d", i), Event: "pull_request", Key: fmt.Sprint("o/r#", i%7)})
					if err != nil {
						t.Error(err)
					}
					fresh <- f
				}()
			}
		}
		wg.Wait()
		close(fresh)
		nFresh := 0
		for f := range fresh {
			if f {
				nFresh++
			}
		}
		if nFresh != n {
			t.Fatalf("%d accepts were fresh, want %d (one per id)", nFresh, n)
		}
		p, err := s.Pending(ctx, 0, 0)
		if err != nil || len(p) != n {
			t.Fatalf("Pending = %d deliveries, %v; want %d", len(p), err, n)
		}
	})
}

func TestPendingAndStats(t *testing.T) {
	ctx := context.Background()
	c := newClock(t0)
	s := mustOpen(t, WithClock(c.Now))
	if depth, oldest, err := s.InboxStats(ctx); err != nil || depth != 0 || !oldest.IsZero() {
		t.Fatalf("empty InboxStats = %d, %v, %v", depth, oldest, err)
	}
	var seqs []int64
	for i := 0; i < 4; i++ {
		seq, _, err := s.Accept(ctx, Delivery{ID: fmt.Sprint("d", i), Event: "pull_request"})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
		c.Add(time.Second)
	}
	if _, err := s.Complete(ctx, seqs[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Fail(ctx, seqs[2], "boom"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Pending(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[0].Seq != seqs[1] || p[1].Seq != seqs[3] {
		t.Fatalf("Pending = %+v, want seqs %d and %d in order", p, seqs[1], seqs[3])
	}
	depth, oldest, err := s.InboxStats(ctx)
	if err != nil || depth != 2 || !oldest.Equal(t0.Add(time.Second)) {
		t.Fatalf("InboxStats = %d, %v, %v; want 2, %v", depth, oldest, err, t0.Add(time.Second))
	}
	t.Run("Pending pages by Seq", func(t *testing.T) {
		if p, err := s.Pending(ctx, seqs[1]+1, 0); err != nil || len(p) != 1 || p[0].Seq != seqs[3] {
			t.Fatalf("Pending from %d = %+v, %v; want only %d", seqs[1]+1, p, err, seqs[3])
		}
		if p, err := s.Pending(ctx, 0, 1); err != nil || len(p) != 1 || p[0].Seq != seqs[1] {
			t.Fatalf("Pending limit 1 = %+v, %v; want only %d", p, err, seqs[1])
		}
		if p, err := s.Pending(ctx, seqs[3]+1, 10); err != nil || len(p) != 0 {
			t.Fatalf("Pending past the last = %+v, %v; want none", p, err)
		}
	})
	t.Run("Delivery of an unknown seq is ErrNotFound", func(t *testing.T) {
		if _, err := s.Delivery(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Delivery(999) = %v", err)
		}
	})
	t.Run("Fail of an unknown seq is ErrNotFound", func(t *testing.T) {
		if err := s.Fail(ctx, 999, "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Fail(999) = %v", err)
		}
	})
	t.Run("Fail of a done delivery keeps it done", func(t *testing.T) {
		if err := s.Fail(ctx, seqs[0], "late"); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Delivery(ctx, seqs[0]); d.State != StateDone {
			t.Fatalf("state = %s, want done", d.State)
		}
	})
	t.Run("PruneInbox deletes only old done deliveries", func(t *testing.T) {
		n, err := s.PruneInbox(ctx, c.Now().Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PruneInbox = %d, %v; want 1", n, err)
		}
		if p, _ := s.Pending(ctx, 0, 0); len(p) != 2 {
			t.Fatalf("pending after prune = %d, want 2", len(p))
		}
	})
}

func TestCompleteIsExactlyOnce(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	seq, _, err := s.Accept(ctx, Delivery{ID: "gh-1", Event: "pull_request"})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Kind: KindDecision, Outcome: "escalate", Repository: "o/r", PullRequest: 3, Rules: []string{"agent_self_merge"}}
	t.Run("first Complete appends and marks done", func(t *testing.T) {
		out, err := s.Complete(ctx, seq, rec, rec)
		if err != nil || len(out) != 2 {
			t.Fatalf("Complete = %d records, %v", len(out), err)
		}
		if out[0].DeliveryID != "gh-1" || out[0].Seq != 1 || out[1].PrevHash != out[0].Hash {
			t.Fatalf("stored records = %+v", out)
		}
	})
	t.Run("second Complete (crash replay) appends nothing", func(t *testing.T) {
		out, err := s.Complete(ctx, seq, rec)
		if err != nil || len(out) != 0 {
			t.Fatalf("second Complete = %v, %v; want nothing", out, err)
		}
	})
	t.Run("a redelivery after completion is not processed", func(t *testing.T) {
		if _, fresh, _ := s.Accept(ctx, Delivery{ID: "gh-1", Event: "pull_request"}); fresh {
			t.Fatal("redelivery was fresh")
		}
	})
	t.Run("the trail holds the records once", func(t *testing.T) {
		if res, err := s.Verify(ctx, ""); err != nil || res.Records != 2 {
			t.Fatalf("Verify = %+v, %v; want 2 records", res, err)
		}
	})
	t.Run("a bad record rolls back and leaves the delivery pending", func(t *testing.T) {
		seq2, _, _ := s.Accept(ctx, Delivery{ID: "gh-2", Event: "pull_request"})
		if _, err := s.Complete(ctx, seq2, rec, Record{Kind: "bogus", Outcome: "x"}); err == nil {
			t.Fatal("Complete with a bad record succeeded")
		}
		if d, _ := s.Delivery(ctx, seq2); d.State != StatePending {
			t.Fatalf("state = %s, want pending", d.State)
		}
		if res, _ := s.Verify(ctx, ""); res.Records != 2 {
			t.Fatalf("trail has %d records after the rollback, want 2", res.Records)
		}
	})
	t.Run("Complete of an unknown seq is ErrNotFound", func(t *testing.T) {
		if _, err := s.Complete(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Complete(999) = %v", err)
		}
	})
}

func TestPendingRange(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, ok, err := s.PendingRange(ctx); err != nil || ok {
		t.Fatalf("empty inbox: ok %v err %v", ok, err)
	}
	var seqs []int64
	for _, id := range []string{"a", "b", "c"} {
		seq, _, err := s.Accept(ctx, Delivery{ID: id, Event: "pull_request", Payload: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if _, err := s.Complete(ctx, seqs[0]); err != nil {
		t.Fatal(err)
	}
	lo, hi, ok, err := s.PendingRange(ctx)
	if err != nil || !ok || lo != seqs[1] || hi != seqs[2] {
		t.Fatalf("range %d..%d ok %v err %v, want %d..%d", lo, hi, ok, err, seqs[1], seqs[2])
	}
}

// Payloads are stored S2-compressed; rows written by schema 1 hold
// compress/flate output and must still read back.
func TestDecompress(t *testing.T) {
	payload := bytes.Repeat([]byte(`{"action":"opened","number":1,"pull_request":{"title":"x"}},`), 200)
	var buf bytes.Buffer
	w, err := stdflate.NewWriter(&buf, stdflate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(payload)
	w.Close()
	for _, c := range []struct {
		encoding string
		stored   []byte
	}{{"deflate", buf.Bytes()}, {"s2", compress(payload)}, {"", payload}} {
		got, err := decompress(c.encoding, c.stored)
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("decompress(%q) = %d bytes, %v; want the %d payload bytes", c.encoding, len(got), err, len(payload))
		}
	}
	if n := len(compress(payload)); n*4 > len(payload) {
		t.Errorf("compress: %d of %d bytes, want at least 4x smaller", n, len(payload))
	}
	for _, enc := range []string{"deflate", "s2", "zstd"} {
		if _, err := decompress(enc, []byte("not compressed at all")); err == nil {
			t.Errorf("decompress(%q) of garbage succeeded", enc)
		}
	}
}

// linger waits for the Accepts under way (counted in arriving: started, not
// handed to the writer yet) to join the batch, at most lingerMax, and not at
// all when none is, however many Accepts wait for their answer (intake).
func TestLinger(t *testing.T) {
	s := &Store{accepts: make(chan acceptReq), quit: make(chan struct{}), lingerMax: 10 * time.Second}
	one := []acceptReq{{d: Delivery{ID: "a"}}}
	timer := time.NewTimer(time.Hour)
	timer.Stop()

	s.intake.Store(4) // the one in the batch, and three answered that have not returned yet
	start := time.Now()
	if got := s.linger(one, timer); len(got) != 1 || time.Since(start) > time.Second {
		t.Fatalf("nothing under way: linger = %d requests after %v, want 1 at once", len(got), time.Since(start))
	}

	s.arriving.Store(2) // two more are compressing
	// They are handed over as Accept does it.
	go func() {
		time.Sleep(time.Millisecond)
		s.arriving.Add(-1)
		s.accepts <- acceptReq{d: Delivery{ID: "b"}}
		time.Sleep(time.Millisecond)
		s.arriving.Add(-1)
		s.accepts <- acceptReq{d: Delivery{ID: "c"}}
	}()
	if got := s.linger(one, timer); len(got) != 3 {
		t.Fatalf("two under way: linger = %d requests, want 3", len(got))
	}

	s.arriving.Store(2) // under way but too slow: the batch goes without them
	s.lingerMax = 20 * time.Millisecond
	start = time.Now()
	if got := s.linger(one, timer); len(got) != 1 || time.Since(start) < s.lingerMax {
		t.Fatalf("none arriving: linger = %d requests after %v, want 1 after %v", len(got), time.Since(start), s.lingerMax)
	}
}

// gather lets Accepts join the batch until pace has passed since the last
// commit started, and returns at once when it has (a lone delivery after a
// pause, or the next batch after a slow commit, is committed without
// waiting).
func TestGather(t *testing.T) {
	s := &Store{accepts: make(chan acceptReq), quit: make(chan struct{}), pace: 200 * time.Millisecond}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	one := []acceptReq{{d: Delivery{ID: "a"}}}

	start := time.Now()
	if got := s.gather(one, time.Now().Add(-time.Second), timer); len(got) != 1 || time.Since(start) > s.pace/2 {
		t.Fatalf("pace passed: gather = %d requests after %v, want 1 at once", len(got), time.Since(start))
	}

	go func() {
		s.accepts <- acceptReq{d: Delivery{ID: "b"}}
		s.accepts <- acceptReq{d: Delivery{ID: "c"}}
	}()
	start = time.Now()
	got := s.gather(one, start, timer)
	if len(got) != 3 || got[1].d.ID != "b" || got[2].d.ID != "c" {
		t.Fatalf("right after a commit started: gather = %d requests, want a, b, c", len(got))
	}
	if el := time.Since(start); el < s.pace-time.Millisecond {
		t.Fatalf("right after a commit started: gather returned after %v, want the pace (%v)", el, s.pace)
	}

	// The timer is left stopped and drained: the next pace is whole.
	start = time.Now()
	if got := s.gather(one, start, timer); len(got) != 1 || time.Since(start) < s.pace-time.Millisecond {
		t.Fatalf("second pace: gather = %d requests after %v, want 1 after %v", len(got), time.Since(start), s.pace)
	}

	close(s.quit) // closing cuts the pace short
	start = time.Now()
	if got := s.gather(one, start, timer); len(got) != 1 || time.Since(start) > s.pace/2 {
		t.Fatalf("closed: gather = %d requests after %v, want 1 at once", len(got), time.Since(start))
	}
}

// A failed delivery is pending again once the pause after its last attempt
// is over (1, 2, 4... minutes, at most 30), for a day after its receipt.
func TestRetryFailed(t *testing.T) {
	ctx := context.Background()
	c := newClock(t0)
	s := mustOpen(t, WithClock(c.Now))
	accept := func(id string) int64 {
		seq, _, err := s.Accept(ctx, Delivery{ID: id, Event: "pull_request", Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	fail := func(seq int64) {
		if err := s.Fail(ctx, seq, "GitHub 503"); err != nil {
			t.Fatal(err)
		}
	}
	retry := func(at time.Duration) []int64 {
		t.Helper()
		c.Set(t0.Add(at))
		ds, err := s.RetryFailed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, d := range ds {
			if d.State != StatePending || d.Payload != nil {
				t.Fatalf("retried %+v: want pending, without payload", d)
			}
			seqs = append(seqs, d.Seq)
		}
		return seqs
	}
	a, b, done := accept("a"), accept("b"), accept("done")
	fail(b)
	fail(a)
	if _, err := s.Complete(ctx, done); err != nil {
		t.Fatal(err)
	}
	if got := retry(59 * time.Second); got != nil {
		t.Fatalf("retried %v before the first pause was over", got)
	}
	if got := retry(time.Minute); fmt.Sprint(got) != fmt.Sprint([]int64{a, b}) {
		t.Fatalf("retried %v after a minute, want %v in order", got, []int64{a, b})
	}
	if ps, _ := s.Pending(ctx, 0, 0); len(ps) != 2 {
		t.Fatalf("%d pending after the retry, want 2", len(ps))
	}
	if got := retry(time.Hour); got != nil {
		t.Fatalf("retried %v again while pending", got)
	}

	// Attempt 2 fails at 1m: the next pause is 2 minutes.
	c.Set(t0.Add(time.Minute))
	fail(a)
	if got := retry(time.Minute + 119*time.Second); got != nil {
		t.Fatalf("retried %v before the second pause was over", got)
	}
	if got := retry(3 * time.Minute); fmt.Sprint(got) != fmt.Sprint([]int64{a}) {
		t.Fatalf("retried %v, want [%d]", got, a)
	}
	if d, _ := s.Delivery(ctx, a); d.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", d.Attempts)
	}

	// The pause grows to 30 minutes, no more.
	c.Set(t0.Add(time.Hour))
	for range 12 {
		fail(b)
	}
	if got := retry(time.Hour + 29*time.Minute); got != nil {
		t.Fatalf("retried %v before 30 minutes", got)
	}
	if got := retry(time.Hour + 30*time.Minute); fmt.Sprint(got) != fmt.Sprint([]int64{b}) {
		t.Fatalf("retried %v after 30 minutes, want [%d]", got, b)
	}

	// A day after its receipt a delivery stays failed; done ones are never
	// touched.
	c.Set(t0.Add(2 * time.Hour))
	fail(b)
	if got := retry(RetryWithin + time.Second); got != nil {
		t.Fatalf("retried %v more than a day after receipt", got)
	}
	if d, _ := s.Delivery(ctx, b); d.State != StateFailed {
		t.Fatalf("state %s, want failed", d.State)
	}
	if d, _ := s.Delivery(ctx, done); d.State != StateDone {
		t.Fatalf("done delivery is %s", d.State)
	}
}
