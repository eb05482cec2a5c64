package webhook

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
)

// Processor processes one delivery. It is responsible for recording the
// outcome (and marking the delivery done) durably before returning nil; an
// error is passed to DispatcherOptions.Failed.
type Processor func(ctx context.Context, d Delivery) error

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Workers int // default 8
	Process Processor
	// Load returns a delivery whose payload was not kept in memory.
	Load func(ctx context.Context, seq int64) (Delivery, error)
	// Failed is told about a delivery whose processing failed; it records
	// that durably so a redelivery or the reconcile picks it up again.
	Failed func(ctx context.Context, d Delivery, err error)
	// MaxPayloadBytes bounds the payload bytes held in the queue; beyond it
	// payloads are dropped from memory and loaded again when their turn
	// comes. Default 64 MiB.
	MaxPayloadBytes int
	Logger          *slog.Logger
	// Done, if set, is called after each delivery with the time since it
	// was received (metrics).
	Done func(d Delivery, took time.Duration)
	// FloodRate is the intake rate (deliveries passed to Receive in the
	// last second) from which processing yields to the intake: one delivery
	// at a time, each followed by a pause so that processing is at work
	// FloodShare of the time, and so takes at most that share of one core.
	// (The pause follows the delivery's wall time, waits included: on a
	// busy machine processing gets less. Under the open-loop load of 3,000
	// deliveries/s on two cores it decided ~7/s, BENCHMARKS.md.)
	// Acknowledging within GitHub's 10 s matters more than deciding at
	// once; the inbox holds the backlog and it drains in order when the
	// flood ends. Default 500/s.
	FloodRate int
	// FloodShare is the share of the time processing is at work during a
	// flood (0 < FloodShare <= 1). Default 0.25.
	FloodShare float64
	// MaxQueued bounds the deliveries held in memory (default 20,000, a few
	// MiB). Beyond it a delivery stays only in the inbox, and Refill reads
	// the inbox back, in Seq order, when the queue has room again: a flood
	// of a minute at 3,000/s leaves 180,000 pending. Without Refill every
	// delivery is held.
	MaxQueued int
	// Refill returns up to limit pending deliveries with Seq >= from, in
	// Seq order, without payloads.
	Refill func(ctx context.Context, from int64, limit int) ([]Delivery, error)
	// ShutdownGrace is how long, once Run's context is done, the
	// deliveries being processed have to finish (default 5 s). Past it
	// their context is canceled: one retrying an unreachable GitHub would
	// otherwise hold the shutdown for its whole retry budget. A delivery
	// cut short that way is neither failed nor done: it stays pending in
	// the inbox and is processed again at the next start (GitHub writes
	// are idempotent, SPEC §8).
	ShutdownGrace time.Duration
}

// floodBuckets split the last second of arrivals into 100 ms buckets.
const floodBuckets = 10

// maxFloodPause bounds the pause after one delivery during a flood.
const maxFloodPause = 100 * time.Millisecond

// Dispatcher runs deliveries on a bounded set of workers, one at a time per
// ordering key, in the order they were enqueued. It is safe for concurrent
// use.
type Dispatcher struct {
	o DispatcherOptions

	mu       sync.Mutex
	cond     *sync.Cond
	queues   map[string][]Delivery // pending deliveries per key
	ready    []string              // keys with pending work and no worker on them
	busy     map[string]bool       // keys a worker is processing
	held     int                   // payload bytes held in queues
	pending  int
	closed   bool
	inflight sync.WaitGroup

	// Spilling, with Refill set: deliveries not held in memory.
	known     map[int64]bool // Seqs held (queued or being processed)
	spilled   bool           // some pending deliveries are only in the inbox
	spillFrom int64          // lowest Seq not held since the last refill
	spillLow  int64          // lowest Seq spilled while a refill reads
	spills    int            // count of spilled deliveries, to see new ones during a refill
	refilling bool
	finished  map[int64]bool // Seqs finished while a refill reads: not to be held again
	roomMade  chan struct{}  // wakes the refiller

	// A failed delivery redelivered while its failure is still being
	// processed: queued again when that processing finishes.
	active map[int64]bool     // Seqs being processed
	again  map[int64]Delivery // received again while active

	// Seqs processed successfully lately: a refill can read a delivery
	// back between its Accept and its intake's Receive, and it may be done
	// before that Receive; it is not held a second time. (A done delivery
	// never becomes fresh again; a failed one does, and is not listed.)
	done     map[int64]bool
	doneRing [doneRemembered]int64
	doneNext int

	now      func() time.Time  // time.Now; tests set it
	arrivals [floodBuckets]int // Receive calls per 100 ms bucket, ring
	bucket   int64             // index of the newest bucket (Unix time / 100 ms)
	flood    sync.Mutex        // held by the one worker processing during a flood
}

// NewDispatcher returns a dispatcher; call Run to start its workers.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.MaxPayloadBytes <= 0 {
		o.MaxPayloadBytes = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FloodRate <= 0 {
		o.FloodRate = 500
	}
	if o.FloodShare <= 0 || o.FloodShare > 1 {
		o.FloodShare = 0.25
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 20000
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 5 * time.Second
	}
	d := &Dispatcher{o: o, queues: map[string][]Delivery{}, busy: map[string]bool{}, known: map[int64]bool{}, roomMade: make(chan struct{}, 1), now: time.Now,
		active: map[int64]bool{}, again: map[int64]Delivery{}, done: map[int64]bool{}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// Receive enqueues a delivery that just arrived through the intake; its
// arrival counts towards FloodRate.
func (d *Dispatcher) Receive(del Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.advance(d.now())
	d.arrivals[b%floodBuckets]++
	d.enqueueAgain(del)
}

// Enqueue adds a delivery behind the others of its key (resumed or retried
// from the inbox: it does not count as an arrival).
func (d *Dispatcher) Enqueue(del Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enqueueAgain(del)
}

// enqueueAgain enqueues del, or, while a worker is still finishing its
// failed processing (the inbox already holds it as pending again: GitHub
// redelivered it, or the scheduler retries it), keeps it to enqueue when
// that worker finishes. d.mu must be held.
func (d *Dispatcher) enqueueAgain(del Delivery) {
	if del.Seq != 0 && d.active[del.Seq] {
		d.again[del.Seq] = del
		return
	}
	d.enqueue(del)
}

// advance moves the arrival ring to now's bucket, clearing the buckets it
// passes, and returns that bucket. d.mu must be held.
func (d *Dispatcher) advance(now time.Time) int64 {
	b := now.UnixNano() / int64(time.Second/floodBuckets)
	if b <= d.bucket {
		return d.bucket
	}
	for i := d.bucket + 1; i <= b && i <= d.bucket+floodBuckets; i++ {
		d.arrivals[i%floodBuckets] = 0
	}
	d.bucket = b
	return b
}

// Flooding reports whether deliveries arrived in the last second at
// FloodRate or faster.
func (d *Dispatcher) Flooding() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flooding()
}

// flooding is Flooding with d.mu held.
func (d *Dispatcher) flooding() bool {
	d.advance(d.now())
	n := 0
	for _, a := range d.arrivals {
		n += a
	}
	return n >= d.o.FloodRate
}

// KeepPayload reports whether a payload of n bytes is worth keeping in
// memory until its turn: not during a flood (processing is slow then, and
// the payload is read back from the inbox), nor beyond MaxPayloadBytes.
func (d *Dispatcher) KeepPayload(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.flooding() && d.held+n <= d.o.MaxPayloadBytes
}

func (d *Dispatcher) enqueue(del Delivery) {
	if d.o.Refill != nil && del.Seq != 0 {
		if d.spilled || d.pending >= d.o.MaxQueued {
			// Leave it in the inbox; a refill reads it back in turn.
			if !d.spilled || del.Seq < d.spillFrom {
				d.spillFrom = del.Seq
			}
			d.spillLow = min(d.spillLow, del.Seq)
			d.spilled = true
			d.spills++
			return
		}
		d.hold(del)
		return
	}
	d.queue(del)
}

// hold queues del unless it is held already (a refill overlapping what
// the intake queued). d.mu must be held.
func (d *Dispatcher) hold(del Delivery) {
	if d.known[del.Seq] || d.done[del.Seq] {
		return
	}
	d.known[del.Seq] = true
	d.queue(del)
}

// refill reads spilled deliveries back from the inbox once the queue is
// down to half of MaxQueued. An error is logged and the refiller tries
// again.
func (d *Dispatcher) refill(ctx context.Context) {
	d.mu.Lock()
	if !d.spilled || d.refilling || d.pending > d.o.MaxQueued/2 {
		d.mu.Unlock()
		return
	}
	d.refilling = true
	d.finished = map[int64]bool{}
	from, spills, room := d.spillFrom, d.spills, d.o.MaxQueued-d.pending
	d.spillLow = math.MaxInt64
	d.mu.Unlock()

	ds, err := d.o.Refill(ctx, from, room)

	d.mu.Lock()
	defer d.mu.Unlock()
	d.refilling = false
	finished := d.finished
	d.finished = nil
	if err != nil {
		d.o.Logger.Error("read spilled deliveries back from the inbox", "from_seq", from, "err", err)
		return
	}
	for _, del := range ds {
		// One held when the inbox was read may have finished since; the
		// page still shows it pending.
		if !finished[del.Seq] {
			d.hold(del)
		}
	}
	next := from
	if len(ds) > 0 {
		next = ds[len(ds)-1].Seq + 1
	}
	// Everything pending from `from` on was read, unless the page was full
	// or deliveries were spilled meanwhile (they may not be in the page).
	if len(ds) < room && d.spills == spills {
		d.spilled = false
		return
	}
	d.spillFrom = min(next, d.spillLow)
}

// queue puts del in its key's queue, in Seq order: concurrent intake
// handlers may hand over two deliveries of one pull request in the other
// order. d.mu must be held.
func (d *Dispatcher) queue(del Delivery) {
	// A payload holds its whole buffer (the intake's are recycled and may
	// be larger than the payload): count its capacity.
	if d.held+cap(del.Payload) > d.o.MaxPayloadBytes {
		del.Payload = nil
	}
	d.held += cap(del.Payload)
	q := d.queues[del.Key]
	i := len(q)
	for del.Seq != 0 && i > 0 && q[i-1].Seq > del.Seq {
		i--
	}
	d.queues[del.Key] = slices.Insert(q, i, del)
	d.pending++
	if len(q) == 0 && !d.busy[del.Key] {
		d.ready = append(d.ready, del.Key)
		d.cond.Signal()
	}
}

// Len is the number of deliveries queued or being processed.
func (d *Dispatcher) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending
}

// Run starts the workers and blocks until ctx is done and the deliveries
// being processed have finished, or ShutdownGrace has passed and they have
// been canceled. Queued ones stay in the inbox for the next start.
func (d *Dispatcher) Run(ctx context.Context) {
	// Processing outlives ctx by at most ShutdownGrace: a delivery
	// half-published is finished if it can be.
	proc, cutShort := context.WithCancel(context.WithoutCancel(ctx))
	defer cutShort()
	var grace *time.Timer
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.closed = true
		d.cond.Broadcast()
		grace = time.AfterFunc(d.o.ShutdownGrace, cutShort)
		d.mu.Unlock()
	})
	defer func() {
		stop()
		d.mu.Lock()
		if grace != nil {
			grace.Stop()
		}
		d.mu.Unlock()
	}()
	var wg sync.WaitGroup
	if d.o.Refill != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.refiller(ctx)
		}()
	}
	for range d.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx, proc)
		}()
	}
	wg.Wait()
}

// next blocks until a key is ready and takes its first delivery.
func (d *Dispatcher) next() (Delivery, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.ready) == 0 && !d.closed {
		d.cond.Wait()
	}
	if d.closed {
		return Delivery{}, false
	}
	key := d.ready[0]
	d.ready = d.ready[1:]
	q := d.queues[key]
	del := q[0]
	d.queues[key] = q[1:]
	d.busy[key] = true
	d.held -= cap(del.Payload)
	if del.Seq != 0 {
		d.active[del.Seq] = true
	}
	return del, true
}

// doneRemembered is how many successfully processed Seqs are remembered.
const doneRemembered = 4096

// finish releases the key of del and makes it ready again if more waits;
// ok tells that del was processed successfully.
func (d *Dispatcher) finish(del Delivery, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok && del.Seq != 0 && d.o.Refill != nil {
		old := d.doneRing[d.doneNext]
		delete(d.done, old)
		d.doneRing[d.doneNext] = del.Seq
		d.doneNext = (d.doneNext + 1) % doneRemembered
		d.done[del.Seq] = true
	}
	d.pending--
	delete(d.busy, del.Key)
	delete(d.known, del.Seq)
	if d.refilling {
		d.finished[del.Seq] = true
	}
	if d.spilled && d.pending <= d.o.MaxQueued/2 {
		select {
		case d.roomMade <- struct{}{}:
		default:
		}
	}
	if len(d.queues[del.Key]) > 0 {
		d.ready = append(d.ready, del.Key)
		d.cond.Signal()
	} else {
		delete(d.queues, del.Key)
	}
	delete(d.active, del.Seq)
	if a, ok := d.again[del.Seq]; ok {
		delete(d.again, del.Seq)
		d.enqueue(a)
	}
}

// work processes deliveries until the dispatcher closes. ctx is Run's;
// proc, the processing's, ends ShutdownGrace after it.
func (d *Dispatcher) work(ctx, proc context.Context) {
	for {
		del, ok := d.next()
		if !ok {
			return
		}
		log := d.o.Logger.With("delivery", del.ID, "event", del.Event, "action", del.Action, "key", del.Key)
		pctx := WithLogger(proc, log)
		if del.Payload == nil && d.o.Load != nil {
			full, err := d.load(ctx, pctx, del.Seq)
			if err != nil && ctx.Err() != nil {
				// Shutting down: the delivery stays pending in the inbox
				// for the next start.
				d.finish(del, false)
				continue
			}
			if err != nil {
				log.Error("delivery payload could not be read from the inbox", "err", err)
			}
			del.Payload = full.Payload
		}
		var err error
		if d.Flooding() {
			err = d.processDuringFlood(ctx, pctx, del)
		} else {
			err = d.o.Process(pctx, del)
		}
		if err != nil && proc.Err() != nil {
			// Cut short by a shutdown past its grace: not a failure of
			// the delivery, which stays pending for the next start.
			log.Warn("delivery cut short by shutdown; it stays pending for the next start", "err", err)
			d.finish(del, false)
			continue
		}
		if err != nil {
			log.Error("delivery failed", "err", err)
			if d.o.Failed != nil {
				d.o.Failed(pctx, del, err)
			}
		}
		if d.o.Done != nil {
			d.o.Done(del, time.Since(del.ReceivedAt))
		}
		d.finish(del, err == nil)
	}
}

// loadAttempts and loadBackoff bound how a payload read from the inbox is
// retried: a read that fails for a moment must not fail the delivery
// (GitHub got its 2xx and does not redeliver it on its own).
const (
	loadAttempts = 5
	loadBackoff  = 100 * time.Millisecond
)

// load reads del's payload from the inbox, retrying with a doubling pause
// (~3 s in all). Shutdown (ctx) ends the pauses.
func (d *Dispatcher) load(ctx, pctx context.Context, seq int64) (Delivery, error) {
	wait := loadBackoff
	for attempt := 1; ; attempt++ {
		full, err := d.o.Load(pctx, seq)
		if err == nil || attempt == loadAttempts {
			return full, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Delivery{}, ctx.Err()
		}
		wait *= 2
	}
}

// refiller runs refill when a finished delivery makes room and, to retry
// after an error, every refillEvery.
func (d *Dispatcher) refiller(ctx context.Context) {
	t := time.NewTicker(refillEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.roomMade:
		case <-t.C:
		}
		d.refill(ctx)
	}
}

const refillEvery = 250 * time.Millisecond

// processDuringFlood processes del while no other worker does, then, if the
// flood goes on, pauses (up to maxFloodPause) so that processing is at
// work about FloodShare of the time, leaving the rest to the intake.
// Shutdown cuts the pause short.
func (d *Dispatcher) processDuringFlood(ctx, pctx context.Context, del Delivery) error {
	d.flood.Lock()
	defer d.flood.Unlock()
	start := time.Now()
	err := d.o.Process(pctx, del)
	if !d.Flooding() {
		return err
	}
	pause := time.Duration(float64(time.Since(start)) * (1/d.o.FloodShare - 1))
	t := time.NewTimer(min(pause, maxFloodPause))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return err
}
