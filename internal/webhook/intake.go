package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mergeguard/guard/internal/metrics"
)

// MaxBody is the largest payload accepted (GitHub caps payloads at 25 MiB).
const MaxBody = 25 << 20

// Delivery is one accepted webhook delivery.
type Delivery struct {
	Seq        int64 // inbox sequence, assigned when stored
	ID         string
	Event      string
	Action     string
	Key        string
	Payload    []byte // may be nil in the dispatcher's queue; then it is loaded by Seq
	ReceivedAt time.Time
}

// Inbox stores accepted deliveries durably.
type Inbox interface {
	// Accept stores d and returns only once it is durable. fresh is false
	// when a delivery with the same ID is already stored and is processed or
	// pending (nothing changes then); a redelivery of a failed one is fresh.
	// Once it has returned nil it must not read d.Payload again: the
	// intake reuses the buffer.
	Accept(ctx context.Context, d Delivery) (seq int64, fresh bool, err error)
}

// Options configure the intake handler.
type Options struct {
	// Secrets returns the webhook secrets accepted now (current first, then
	// a previous one while rotating). It is called per request.
	Secrets func() [][]byte
	Inbox   Inbox
	// Enqueue hands a freshly stored delivery to the workers.
	Enqueue func(Delivery)
	// KeepPayload reports whether the workers want a payload of n bytes
	// kept in memory; when it says no (say, during a flood, when they
	// reload payloads from the inbox anyway), the body's buffer is reused
	// for a later request. Nil: always keep.
	KeepPayload func(n int) bool
	// Interested reports whether the guard uses event/action; others are
	// answered 200 and not stored.
	Interested func(event, action string) bool
	Metrics    *metrics.Metrics
	Logger     *slog.Logger
	Now        func() time.Time
	// MaxBodiesInFlight bounds the body bytes of the requests being read,
	// checked and stored at once (by Content-Length; one without counts as
	// MaxBody). Beyond it a request is answered 503 before its body is read,
	// so that many slow or large senders (a body is read whole before its
	// signature can be checked) cannot exhaust memory; GitHub's failed
	// delivery is redelivered later. Default 64 MiB.
	MaxBodiesInFlight int64
}

// DefaultMaxBodiesInFlight is Options.MaxBodiesInFlight's default.
const DefaultMaxBodiesInFlight = 64 << 20

// Handler is the POST /webhook endpoint.
type Handler struct {
	o        Options
	mu       sync.Mutex
	inFlight int64 // body bytes reserved by requests under way
}

// NewHandler returns the intake handler.
func NewHandler(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Enqueue == nil {
		o.Enqueue = func(Delivery) {}
	}
	if o.MaxBodiesInFlight <= 0 {
		o.MaxBodiesInFlight = DefaultMaxBodiesInFlight
	}
	return &Handler{o: o}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	id := r.Header.Get("X-GitHub-Delivery")
	// Made only to log (rarely): With formats its attributes at once.
	log := func() *slog.Logger { return h.o.Logger.With("delivery", id, "event", event) }
	reply := func(code int, result, msg string) {
		h.o.Metrics.Delivery(metricEvent(event), result)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		io.WriteString(w, msg+"\n")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(http.StatusMethodNotAllowed, "bad_method", "webhooks are POSTed")
		return
	}
	if r.ContentLength > MaxBody {
		reply(http.StatusRequestEntityTooLarge, "too_large", "payload larger than 25 MiB")
		return
	}
	size := r.ContentLength
	if size < 0 {
		size = MaxBody
	}
	if !h.reserve(size) {
		log().Warn("webhook refused: too many bodies in flight", "bytes", size, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "5")
		reply(http.StatusServiceUnavailable, "busy", "too many webhook bodies in flight; GitHub may redeliver it")
		return
	}
	defer h.release(size)
	body, err := readBody(http.MaxBytesReader(w, r.Body, MaxBody), r.ContentLength)
	reuse := true // unless the store or the workers may still read body
	defer func() {
		if reuse {
			putBody(body)
		}
	}()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			reply(http.StatusRequestEntityTooLarge, "too_large", "payload larger than 25 MiB")
			return
		}
		reply(http.StatusBadRequest, "malformed", "could not read the body")
		return
	}
	if err := Verify(r.Header.Get("X-Hub-Signature-256"), body, h.o.Secrets()...); err != nil {
		log().Warn("webhook refused", "reason", err.Error(), "remote", r.RemoteAddr)
		reply(http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	if event == "" || id == "" {
		reply(http.StatusBadRequest, "malformed", "missing X-GitHub-Event or X-GitHub-Delivery header")
		return
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		reply(http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if event == "ping" {
		reply(http.StatusOK, "ping", "pong")
		return
	}
	if h.o.Interested != nil && !h.o.Interested(event, env.Action) {
		reply(http.StatusOK, "ignored", "event not used by merge-guard; ignored")
		return
	}
	d := Delivery{
		ID:         id,
		Event:      event,
		Action:     env.Action,
		Key:        env.Key(event),
		Payload:    body,
		ReceivedAt: h.o.Now(),
	}
	// Not the request's context: a sender that gives up (GitHub waits 10 s)
	// must not leave a delivery stored but unknown to the workers. Accept
	// always ends (the store answers every batch it takes, and refuses new
	// ones once closed).
	seq, fresh, err := h.o.Inbox.Accept(context.WithoutCancel(r.Context()), d)
	if err != nil {
		reuse = false // the store may still be reading it
		log().Error("webhook not stored", "err", err)
		reply(http.StatusServiceUnavailable, "error", "could not store the delivery; GitHub may redeliver it")
		return
	}
	h.o.Metrics.Ack(time.Since(start))
	if !fresh {
		reply(http.StatusOK, "duplicate", "delivery "+strconv.Quote(id)+" already received")
		return
	}
	d.Seq = seq
	if h.o.KeepPayload == nil || h.o.KeepPayload(len(body)) {
		reuse = false // the workers own it now
	} else {
		d.Payload = nil
	}
	h.o.Enqueue(d)
	reply(http.StatusAccepted, "accepted", "accepted")
}

// reserve takes n bytes of the bodies-in-flight budget, or reports false.
func (h *Handler) reserve(n int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight+n > h.o.MaxBodiesInFlight && h.inFlight > 0 {
		return false
	}
	h.inFlight += n
	return true
}

func (h *Handler) release(n int64) {
	h.mu.Lock()
	h.inFlight -= n
	h.mu.Unlock()
}

// maxUpfront is the most readBody allocates before the bytes arrive: a
// sender announcing 25 MiB gets a buffer that grows as it really sends.
const maxUpfront = 1 << 20

// readBody reads the body into one buffer sized from its Content-Length
// (io.ReadAll starts at 512 bytes and grows, copying a 30 KB payload about
// seven times), taken from bodies when it is small enough. A body longer
// than announced still reads whole; limits are the MaxBytesReader's.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength <= 0 || contentLength > maxUpfront {
		return io.ReadAll(r)
	}
	var b []byte
	if bp, _ := bodies.Get().(*[]byte); bp != nil && int64(cap(*bp)) >= contentLength+bytes.MinRead {
		b = (*bp)[:0]
	} else {
		b = make([]byte, 0, contentLength+bytes.MinRead)
	}
	buf := bytes.NewBuffer(b)
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// bodies recycles request body buffers up to pooledBody bytes: at 3,000
// deliveries/s a fresh 30 KB buffer each was most of the intake's garbage,
// and the collections it caused were the tail of its latency.
var bodies sync.Pool // *[]byte

const pooledBody = 256 << 10

// putBody makes b's buffer available to readBody again; nothing may read b
// afterwards.
func putBody(b []byte) {
	if cap(b) > pooledBody || cap(b) == 0 {
		return
	}
	b = b[:0]
	bodies.Put(&b)
}

// metricEvent bounds the label values of the deliveries metric.
func metricEvent(event string) string {
	switch event {
	case "pull_request", "pull_request_review", "issue_comment", "check_run", "check_suite",
		"merge_group", "installation", "installation_repositories", "ping":
		return event
	}
	return "other"
}
