package webhook

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// A failed delivery that GitHub redelivers (Receive), or that the
// scheduler retries (Enqueue, audit.Store.RetryFailed), while its failed
// processing has not finished yet (the inbox already holds it as pending)
// is processed again once that processing finishes, instead of being lost
// to the workers until a restart.
func TestDispatcherRunsADeliveryHandedBackWhileItsFailureFinishes(t *testing.T) {
	for _, how := range []string{"Receive", "Enqueue"} {
		t.Run(how, func(t *testing.T) {
			var mu sync.Mutex
			var runs []string
			inFirst, release := make(chan struct{}), make(chan struct{})
			done := make(chan struct{}, 10)
			d := NewDispatcher(DispatcherOptions{
				Workers: 2,
				Refill:  func(context.Context, int64, int) ([]Delivery, error) { return nil, nil },
				Process: func(ctx context.Context, del Delivery) error {
					mu.Lock()
					runs = append(runs, string(del.Payload))
					first := len(runs) == 1
					mu.Unlock()
					if first {
						close(inFirst)
						<-release
						return errors.New("GitHub is down")
					}
					return nil
				},
				Done: func(Delivery, time.Duration) { done <- struct{}{} },
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go d.Run(ctx)
			d.Receive(Delivery{Seq: 7, Key: "o/r#1", Payload: []byte("first")})
			<-inFirst
			again := Delivery{Seq: 7, Key: "o/r#1", Payload: []byte("again")}
			if how == "Receive" {
				d.Receive(again)
			} else {
				d.Enqueue(again)
			}
			close(release)
			for range 2 {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("processed %v; want it processed again after the failure", runs)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(runs, []string{"first", "again"}) {
				t.Fatalf("processed %v", runs)
			}
			if n := d.Len(); n != 0 {
				t.Fatalf("%d still queued", n)
			}
		})
	}
}

// A payload that cannot be read from the inbox for a moment is read again
// rather than failing the delivery.
func TestDispatcherRetriesReadingAPayload(t *testing.T) {
	var loads int
	var failed []error
	done := make(chan Delivery, 1)
	d := NewDispatcher(DispatcherOptions{
		Workers:         1,
		MaxPayloadBytes: 1, // nothing kept in memory: every payload is loaded
		Load: func(ctx context.Context, seq int64) (Delivery, error) {
			if loads++; loads < 3 {
				return Delivery{}, errors.New("database is locked")
			}
			return Delivery{Seq: seq, Payload: []byte("{}")}, nil
		},
		Process: func(ctx context.Context, del Delivery) error {
			if del.Payload == nil {
				return errors.New("payload not available")
			}
			done <- del
			return nil
		},
		Failed: func(ctx context.Context, del Delivery, err error) { failed = append(failed, err) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	d.Enqueue(Delivery{Seq: 3, Key: "k", Payload: []byte("{}")})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("not processed; failures %v", failed)
	}
	if loads != 3 || failed != nil {
		t.Fatalf("%d loads, failures %v; want 3 loads and none", loads, failed)
	}
}

// Queued payloads count with their buffers' capacity: small payloads in
// large recycled buffers must not pin more than MaxPayloadBytes.
func TestDispatcherCountsPayloadBuffers(t *testing.T) {
	d := NewDispatcher(DispatcherOptions{MaxPayloadBytes: 3 << 20})
	for seq := int64(1); seq <= 5; seq++ {
		d.Enqueue(Delivery{Seq: seq, Key: "k", Payload: make([]byte, 100, 1<<20)})
	}
	kept := 0
	for _, del := range d.queues["k"] {
		if del.Payload != nil {
			kept++
		}
	}
	if kept != 3 || d.held != 3<<20 {
		t.Fatalf("%d payloads kept, %d bytes held; want 3 and 3 MiB", kept, d.held)
	}
}

// Two deliveries of one key handed over in the other order (concurrent
// intake handlers) are processed in Seq order.
func TestDispatcherKeepsSeqOrderWithinAKey(t *testing.T) {
	var got []int64
	done := make(chan struct{}, 10)
	d := NewDispatcher(DispatcherOptions{
		Workers: 2,
		Process: func(ctx context.Context, del Delivery) error {
			got = append(got, del.Seq) // one key: never concurrent
			return nil
		},
		Done: func(Delivery, time.Duration) { done <- struct{}{} },
	})
	for _, seq := range []int64{12, 11, 13, 10} {
		d.Receive(Delivery{Seq: seq, Key: "o/r#1", Payload: []byte("{}")})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	for range 4 {
		<-done
	}
	if !slices.Equal(got, []int64{10, 11, 12, 13}) {
		t.Fatalf("processed %v, want Seq order", got)
	}
}

// A delivery processed successfully is not held again when it is handed
// over once more (a refill read it back before its intake handler handed
// it over); a failed one is, since a redelivery makes it pending again.
func TestDispatcherDoesNotRunADoneDeliveryTwice(t *testing.T) {
	var mu sync.Mutex
	runs := map[int64]int{}
	done := make(chan struct{}, 10)
	d := NewDispatcher(DispatcherOptions{
		Workers: 1,
		Refill:  func(context.Context, int64, int) ([]Delivery, error) { return nil, nil },
		Process: func(ctx context.Context, del Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			runs[del.Seq]++
			if del.Seq == 2 && runs[2] == 1 {
				return errors.New("boom")
			}
			return nil
		},
		Done: func(Delivery, time.Duration) { done <- struct{}{} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	d.Receive(Delivery{Seq: 1, Key: "a", Payload: []byte("{}")})
	d.Receive(Delivery{Seq: 2, Key: "b", Payload: []byte("{}")})
	<-done
	<-done
	d.Receive(Delivery{Seq: 1, Key: "a", Payload: []byte("{}")})
	d.Receive(Delivery{Seq: 2, Key: "b", Payload: []byte("{}")})
	<-done
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if runs[1] != 1 || runs[2] != 2 {
		t.Fatalf("runs %v: want seq 1 once (done), seq 2 twice (failed, then redelivered)", runs)
	}
}

// At shutdown a delivery being processed has ShutdownGrace to finish. One
// that finishes within it is done as usual; one still running after it (a
// GitHub call retrying against an outage) is canceled, and is neither
// failed nor done: it stays pending in the inbox for the next start.
func TestDispatcherShutdownGrace(t *testing.T) {
	type outcome struct {
		failed, done []string
	}
	run := func(t *testing.T, work time.Duration) (outcome, time.Duration) {
		t.Helper()
		var mu sync.Mutex
		var o outcome
		started := make(chan struct{})
		d := NewDispatcher(DispatcherOptions{
			Workers:       1,
			ShutdownGrace: time.Second,
			Process: func(ctx context.Context, del Delivery) error {
				close(started)
				select {
				case <-time.After(work):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			},
			Failed: func(_ context.Context, del Delivery, _ error) {
				mu.Lock()
				o.failed = append(o.failed, del.ID)
				mu.Unlock()
			},
			Done: func(del Delivery, _ time.Duration) {
				mu.Lock()
				o.done = append(o.done, del.ID)
				mu.Unlock()
			},
		})
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { d.Run(ctx); close(ran) }()
		d.Receive(Delivery{Seq: 1, ID: "d1", Key: "o/r#1", Payload: []byte("{}")})
		<-started
		start := time.Now()
		cancel()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return 10 s after its context ended")
		}
		mu.Lock()
		defer mu.Unlock()
		return o, time.Since(start)
	}
	t.Run("finishes within the grace", func(t *testing.T) {
		o, _ := run(t, 50*time.Millisecond)
		if !slices.Equal(o.done, []string{"d1"}) || len(o.failed) != 0 {
			t.Errorf("done %v, failed %v: want d1 done", o.done, o.failed)
		}
	})
	t.Run("cut short past it", func(t *testing.T) {
		o, took := run(t, time.Hour)
		if len(o.done) != 0 || len(o.failed) != 0 {
			t.Errorf("done %v, failed %v: want neither (pending for the next start)", o.done, o.failed)
		}
		if took < time.Second {
			t.Errorf("canceled after %s, before the grace", took)
		}
	})
}
