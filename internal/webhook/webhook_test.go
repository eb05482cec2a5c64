package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var secret = []byte("It's a Secret to Everybody")

// memInbox is an in-memory Inbox with the same dedupe rules as the store.
type memInbox struct {
	mu     sync.Mutex
	byID   map[string]string // id -> state
	stored []Delivery
	err    error
}

func newMemInbox() *memInbox { return &memInbox{byID: map[string]string{}} }

func (m *memInbox) Accept(_ context.Context, d Delivery) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, false, m.err
	}
	switch m.byID[d.ID] {
	case "pending", "done":
		return 0, false, nil
	}
	m.byID[d.ID] = "pending"
	d.Payload = bytes.Clone(d.Payload) // the intake reuses its buffer once Accept returns
	m.stored = append(m.stored, d)
	return int64(len(m.stored)), true, nil
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/webhooks/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends a delivery signed with sig ("" = sign correctly with secret).
func post(t *testing.T, h http.Handler, event, id string, body []byte, sig string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	if id != "" {
		req.Header.Set("X-GitHub-Delivery", id)
	}
	if sig == "" {
		sig = Sign(secret, body)
	} else if sig == "-" {
		sig = ""
	}
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newTestHandler(inbox Inbox, enq *[]Delivery) *Handler {
	return NewHandler(Options{
		Secrets: func() [][]byte { return [][]byte{secret, []byte("previous-secret")} },
		Inbox:   inbox,
		Enqueue: func(d Delivery) { *enq = append(*enq, d) },
		Interested: func(event, action string) bool {
			return event == "pull_request" || event == "pull_request_review"
		},
	})
}

func TestIntake(t *testing.T) {
	pr := fixture(t, "pull_request.opened")
	tests := []struct {
		name     string
		event    string
		id       string
		body     []byte
		sig      string
		wantCode int
		stored   bool
	}{
		{"signed pull_request is stored and enqueued", "pull_request", "d1", pr, "", 202, true},
		{"previous secret is accepted while rotating", "pull_request", "d1", pr, Sign([]byte("previous-secret"), pr), 202, true},
		{"missing signature is 401", "pull_request", "d1", pr, "-", 401, false},
		{"wrong secret is 401", "pull_request", "d1", pr, Sign([]byte("nope"), pr), 401, false},
		{"signature of another body is 401", "pull_request", "d1", pr, Sign(secret, []byte("{}")), 401, false},
		{"sha1 style signature is 401", "pull_request", "d1", pr, "sha1=0123456789abcdef0123456789abcdef01234567", 401, false},
		{"garbage signature is 401", "pull_request", "d1", pr, "sha256=zz", 401, false},
		{"malformed JSON is 400", "pull_request", "d1", []byte(`{"action": "opened",`), "", 400, false},
		{"JSON that is not an object is 400", "pull_request", "d1", []byte(`[1,2]`), "", 400, false},
		{"missing event header is 400", "", "d1", pr, "", 400, false},
		{"missing delivery header is 400", "pull_request", "", pr, "", 400, false},
		{"unused event is 200 and not stored", "star", "d1", []byte(`{"action":"created"}`), "", 200, false},
		{"ping is 200 and not stored", "ping", "d1", fixture(t, "ping"), "", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inbox := newMemInbox()
			var enq []Delivery
			rec := post(t, newTestHandler(inbox, &enq), tt.event, tt.id, tt.body, tt.sig)
			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d (%s), want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if got := len(inbox.stored) == 1; got != tt.stored {
				t.Fatalf("stored = %v, want %v", got, tt.stored)
			}
			if tt.stored {
				d := enq[0]
				if d.Key != "Codertocat/Hello-World#2" || d.Action != "opened" || d.Seq != 1 || !bytes.Equal(d.Payload, tt.body) {
					t.Fatalf("enqueued %+v", d)
				}
			} else if len(enq) != 0 {
				t.Fatalf("enqueued %d deliveries for a refused request", len(enq))
			}
			if strings.Contains(rec.Body.String(), string(secret)) {
				t.Fatal("response leaks the secret")
			}
		})
	}
}

func TestIntakeOversizedBody(t *testing.T) {
	inbox := newMemInbox()
	var enq []Delivery
	h := newTestHandler(inbox, &enq)
	big := bytes.Repeat([]byte(" "), MaxBody+1)
	t.Run("declared length over the limit", func(t *testing.T) {
		if rec := post(t, h, "pull_request", "d1", big, ""); rec.Code != 413 {
			t.Fatalf("code = %d, want 413", rec.Code)
		}
	})
	t.Run("chunked body over the limit", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/webhook", struct{ *bytes.Reader }{bytes.NewReader(big)})
		req.ContentLength = -1
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", "d2")
		req.Header.Set("X-Hub-Signature-256", Sign(secret, big))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 413 {
			t.Fatalf("code = %d, want 413", rec.Code)
		}
	})
	if len(inbox.stored) != 0 {
		t.Fatal("oversized body stored")
	}
}

func TestIntakeDuplicateDelivery(t *testing.T) {
	inbox := newMemInbox()
	var enq []Delivery
	h := newTestHandler(inbox, &enq)
	body := fixture(t, "pull_request.opened")
	if rec := post(t, h, "pull_request", "same", body, ""); rec.Code != 202 {
		t.Fatalf("first: %d", rec.Code)
	}
	if rec := post(t, h, "pull_request", "same", body, ""); rec.Code != 200 {
		t.Fatalf("duplicate: %d, want 200", rec.Code)
	}
	if len(enq) != 1 || len(inbox.stored) != 1 {
		t.Fatalf("duplicate processed again: enqueued %d stored %d", len(enq), len(inbox.stored))
	}
	// A failed delivery redelivered by GitHub is processed again.
	inbox.byID["same"] = "failed"
	if rec := post(t, h, "pull_request", "same", body, ""); rec.Code != 202 {
		t.Fatalf("redelivery of failed: %d, want 202", rec.Code)
	}
	if len(enq) != 2 {
		t.Fatal("redelivery of a failed delivery not processed")
	}
}

func TestIntakeInboxDownIsNotAcknowledged(t *testing.T) {
	inbox := newMemInbox()
	inbox.err = errors.New("disk full")
	var enq []Delivery
	rec := post(t, newTestHandler(inbox, &enq), "pull_request", "d1", fixture(t, "pull_request.opened"), "")
	if rec.Code < 500 {
		t.Fatalf("code = %d; a delivery that was not stored must not be acknowledged", rec.Code)
	}
	if len(enq) != 0 {
		t.Fatal("enqueued a delivery that was not stored")
	}
}

func TestEnvelopeKey(t *testing.T) {
	tests := map[string]string{
		"pull_request.opened":             "Codertocat/Hello-World#2",
		"pull_request_review.submitted":   "Codertocat/Hello-World#2",
		"issue_comment.created":           "Codertocat/Hello-World#1",
		"check_run.rerequested":           "github/hello-world@",
		"merge_group.checks_requested":    "octo-org/octo-repo@",
		"installation.created":            "installation/",
		"installation_repositories.added": "installation/",
	}
	for name, prefix := range tests {
		t.Run(name, func(t *testing.T) {
			env, err := ParseEnvelope(fixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := env.Key(strings.Split(name, ".")[0]); !strings.HasPrefix(got, prefix) || got == prefix && strings.HasSuffix(prefix, "@") {
				t.Fatalf("key = %q, want prefix %q", got, prefix)
			}
		})
	}
}

func TestDispatcherOrdersPerKey(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]int64{}
	active := map[string]int{}
	overlap := false
	done := make(chan struct{})
	const n = 200
	count := 0
	d := NewDispatcher(DispatcherOptions{
		Workers: 4,
		Process: func(ctx context.Context, del Delivery) error {
			mu.Lock()
			active[del.Key]++
			if active[del.Key] > 1 {
				overlap = true
			}
			mu.Unlock()
			time.Sleep(50 * time.Microsecond)
			mu.Lock()
			active[del.Key]--
			got[del.Key] = append(got[del.Key], del.Seq)
			count++
			if count == n {
				close(done)
			}
			mu.Unlock()
			return nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { d.Run(ctx); close(runDone) }()
	for i := int64(1); i <= n; i++ {
		d.Enqueue(Delivery{Seq: i, Key: []string{"a#1", "a#2", "b#1"}[i%3], Payload: []byte("{}")})
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deliveries not processed")
	}
	cancel()
	<-runDone
	if overlap {
		t.Fatal("two deliveries of one key ran at once")
	}
	for key, seqs := range got {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				t.Fatalf("key %s processed out of order: %v", key, seqs)
			}
		}
	}
	if d.Len() != 0 {
		t.Fatalf("Len = %d after all processed", d.Len())
	}
}

func TestDispatcherReloadsDroppedPayloadsAndReportsFailures(t *testing.T) {
	var failed []int64
	var mu sync.Mutex
	done := make(chan struct{}, 10)
	d := NewDispatcher(DispatcherOptions{
		Workers:         1,
		MaxPayloadBytes: 1,
		Load: func(ctx context.Context, seq int64) (Delivery, error) {
			return Delivery{Seq: seq, Payload: []byte(`{"reloaded":true}`)}, nil
		},
		Process: func(ctx context.Context, del Delivery) error {
			if string(del.Payload) != `{"reloaded":true}` {
				return errors.New("payload not reloaded")
			}
			if del.Seq == 2 {
				return errors.New("boom")
			}
			return nil
		},
		Failed: func(ctx context.Context, del Delivery, err error) {
			mu.Lock()
			failed = append(failed, del.Seq)
			mu.Unlock()
		},
		Done: func(Delivery, time.Duration) { done <- struct{}{} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	d.Enqueue(Delivery{Seq: 1, Key: "k", Payload: []byte("{}")})
	d.Enqueue(Delivery{Seq: 2, Key: "k", Payload: []byte("{}")})
	<-done
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 1 || failed[0] != 2 {
		t.Fatalf("failed = %v, want [2]", failed)
	}
}

func FuzzVerify(f *testing.F) {
	body := []byte(`{"action":"opened"}`)
	f.Add(Sign(secret, body), body)
	f.Add("sha256=", []byte{})
	f.Add("", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := Verify(header, body, secret)
		if err == nil && !strings.EqualFold(header, Sign(secret, body)) {
			t.Fatalf("accepted a signature that is not the HMAC: %q", header)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	for _, name := range []string{"pull_request.opened", "issue_comment.created", "merge_group.checks_requested"} {
		b, _ := os.ReadFile("../../testdata/webhooks/" + name + ".json")
		f.Add(b)
	}
	f.Add([]byte(`{"pull_request":null,"issue":{"number":0}}`))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"a":"\q"}`))
	for _, body := range envelopeCases {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseEnvelope(body)
		if err == nil {
			_ = env.Key("pull_request")
		}
		// Exactly the JSON objects encoding/json (processing) takes.
		var obj map[string]json.RawMessage
		want := json.Valid(body) && json.Unmarshal(body, &obj) == nil
		if (err == nil) != want {
			t.Fatalf("ParseEnvelope(%q) error %v; encoding/json takes it as an object: %v", body, err, want)
		}
		// The one-pass scanner reads the routing fields as fastjson does.
		if err == nil {
			if slow, serr := parseEnvelopeSlow(body); serr != nil || slow != env {
				t.Fatalf("ParseEnvelope(%q) = %+v; with fastjson %+v, %v", body, env, slow, serr)
			}
		}
	})
}

// envelopeCases are payloads whose routing fields are easy to misread:
// repeated keys (the first counts), routing values of other types, numbers
// as fastjson reads them, keys and values with escapes, and nesting.
var envelopeCases = []string{
	`{"action":"a","action":"b","installation":{"id":1,"id":2},"installation":{"id":3}}`,
	`{"action":1,"action":"b","repository":[],"repository":{"full_name":"o/r"}}`,
	`{"pull_request":null,"issue":{"number":5}}`,
	`{"issue":{"number":5},"pull_request":{"number":0}}`,
	`{"issue":{"number":5},"pull_request":{"number":7}}`,
	`{"pull_request":{"number":7.9},"installation":{"id":-3e2},"issue":{"number":1e30}}`,
	`{"pull_request":{"number":"7"},"installation":{"id":"9"},"repository":{"full_name":7}}`,
	`{"check_suite":{"head_sha":"b"},"check_run":{"head_sha":""},"merge_group":{"head_sha":"c"}}`,
	`{"check_run":{"head_sha":"a"},"check_run":{"head_sha":"z"}}`,
	`{"act\u0069on":"x","action":"y"}`,
	`{"action":"op\u0065ned","repository":{"full_n\u0061me":"o/r","full_name":"p/q"}}`,
	`{"repository":{"full_name":"o/r\"x"},"merge_group":{"head_sha":"\u0061"}}`,
	`{"x":{"action":"no","installation":{"id":1}},"action":"yes"}`,
	`{"a":[[[{"action":"deep"}]]],"pull_request":{"x":{"number":4},"number":3}}`,
	` {"action" : "s" ,"issue": {"number" :-0 } } `,
	`{"action":"\u00e9\ud83d\ude00"}`,
	`{}`,
}

// A payload nested deeper than encoding/json takes is refused with its own
// message, whatever follows (recursing into 25 MiB of brackets would have
// exhausted the stack).
func TestParseEnvelopeRefusesDeepNesting(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
	}
	if _, err := ParseEnvelope(deep(maxDepth - 2)); err != nil {
		t.Errorf("nesting of %d: %v", maxDepth-1, err)
	}
	for _, body := range [][]byte{deep(maxDepth), []byte(`{"a":` + strings.Repeat(`[{"b":`, 1_000_000))} {
		_, err := ParseEnvelope(body)
		if err == nil || !strings.Contains(err.Error(), "nested deeper than 10000 levels") {
			t.Errorf("nesting of %d bytes: %v", len(body), err)
		}
		if json.Valid(body) {
			t.Errorf("encoding/json takes what the intake refuses")
		}
	}
}

// The scanner reads the routing fields of the cases above as fastjson does.
func TestEnvelopeScannerMatchesFastjson(t *testing.T) {
	for _, body := range envelopeCases {
		got, err := ParseEnvelope([]byte(body))
		want, werr := parseEnvelopeSlow([]byte(body))
		if err != nil || werr != nil || got != want {
			t.Errorf("ParseEnvelope(%s) = %+v, %v; with fastjson %+v, %v", body, got, err, want, werr)
		}
	}
	// And the fixtures, all without escapes in their routing fields, on
	// the fast path.
	for _, name := range []string{"pull_request.opened", "issue_comment.created", "merge_group.checks_requested", "pull_request_review.submitted", "check_run.rerequested"} {
		b, err := os.ReadFile("../../testdata/webhooks/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		s := envScanner{b: b}
		if !s.scan() {
			t.Errorf("%s: the scanner left it to fastjson", name)
		}
		if want, _ := parseEnvelopeSlow(b); s.envelope() != want {
			t.Errorf("%s: %+v, with fastjson %+v", name, s.envelope(), want)
		}
	}
}

func TestParseEnvelopeRejectsWhatEncodingJSONRejects(t *testing.T) {
	for _, body := range []string{
		``, `{`, `{"action":"opened",}`, `{"a":1} trailing`, `[1]`, `"str"`, `null`, `{"a":tru}`, "{\"a\":\"\x01\"}",
		"{\"a\":\"x\ty\"}", `{"a":01}`, `{"a":+1}`, `{"a":.5}`, `{"a":1e}`, `{"a":1.2.3}`, `{"a":NaN}`, `{"a":inf}`,
		`{"a":"\q"}`, `{"a":"\u00zz"}`, "{\"a\":\"\x00\\n\"}",
	} {
		if _, err := ParseEnvelope([]byte(body)); err == nil {
			t.Errorf("ParseEnvelope(%q) accepted malformed or non-object JSON", body)
		}
	}
	env, err := ParseEnvelope([]byte(`{"action":"opened","pull_request":{"number":7},"repository":{"full_name":"o/r"},"installation":{"id":9}}`))
	if err != nil || env.Action != "opened" || env.Key("pull_request") != "o/r#7" || env.Installation != 9 {
		t.Fatalf("env %+v, err %v", env, err)
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	body, err := os.ReadFile("../../testdata/webhooks/pull_request.opened.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

// nextSpecial must find exactly what a byte loop finds, wherever the byte
// sits in its word, after any start, and with other special bytes above it.
func TestNextSpecial(t *testing.T) {
	naive := func(b []byte, i int) int {
		for ; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
				return i
			}
		}
		return len(b)
	}
	alphabet := []byte{0x00, 0x01, '\t', '\n', 0x1f, 0x20, 0x21, '"', '#', '\\', ']', 0x5b, 0x7f, 0x80, 0xa2, 0xdc, 0xff, 'a'}
	probe(3, alphabet, 'y', func(b []byte) {
		for from := 0; from <= len(b); from++ {
			if got, want := nextSpecial(b, from), naive(b, from); got != want {
				t.Fatalf("nextSpecial(%q, %d) = %d, want %d", b, from, got, want)
			}
		}
	})
}

// probe calls check with random strings of up to 40 bytes, mostly 'x' with
// bytes of alphabet among them, and then with every byte value at every
// position of 17 bytes of filler: the word tricks must hold wherever a byte
// sits in its word of eight, next to any other.
func probe(seed uint64, alphabet []byte, filler byte, check func(b []byte)) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for n := range 5000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = 'x'
			if rng.IntN(4) == 0 || n%7 == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		check(b)
	}
	for c := range 256 {
		for pos := range 17 {
			b := bytes.Repeat([]byte{filler}, 17)
			b[pos] = byte(c)
			check(b)
		}
	}
}

// While deliveries arrive at FloodRate or faster, processing yields to the
// intake: one delivery at a time, each followed by a pause of about
// (1/FloodShare - 1) times its processing time. Deliveries resumed with
// Enqueue do not count as arrivals, and when the flood is over the workers
// run in parallel again. Every delivery is processed, flood or not.
func TestDispatcherYieldsToTheIntakeDuringAFlood(t *testing.T) {
	const work = 3 * time.Millisecond
	type run struct{ start, end time.Time }
	var mu sync.Mutex
	var runs []run
	active, maxActive := 0, 0
	processed := make(chan int64, 1000)
	newDispatcher := func() *Dispatcher {
		mu.Lock()
		runs, maxActive = nil, 0
		mu.Unlock()
		return NewDispatcher(DispatcherOptions{
			Workers:    4,
			FloodRate:  20,
			FloodShare: 0.5, // pause as long as the work
			Process: func(ctx context.Context, del Delivery) error {
				mu.Lock()
				active++
				maxActive = max(maxActive, active)
				start := time.Now()
				mu.Unlock()
				time.Sleep(work)
				mu.Lock()
				active--
				runs = append(runs, run{start, time.Now()})
				mu.Unlock()
				processed <- del.Seq
				return nil
			},
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waitFor := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-processed:
			case <-time.After(20 * time.Second):
				t.Fatal("deliveries not processed")
			}
		}
	}
	maxRunning := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := maxActive
		runs, maxActive = nil, 0
		return n
	}

	// Resumed deliveries are no flood: four keys run in parallel.
	d := newDispatcher()
	for i := range int64(40) {
		d.Enqueue(Delivery{Seq: i, Key: fmt.Sprint("k", i%4)})
	}
	if d.Flooding() {
		t.Fatal("Enqueue counted as arrivals")
	}
	go d.Run(ctx)
	waitFor(40)
	if n := maxRunning(); n < 2 {
		t.Errorf("without a flood at most %d worker ran at once, want parallel workers", n)
	}

	// A flood: 40 arrivals within the second (the clock stands still, so
	// the flood lasts as long as the test needs it to).
	d = newDispatcher()
	at := time.Now()
	d.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	for i := range int64(40) {
		d.Receive(Delivery{Seq: 100 + i, Key: fmt.Sprint("k", i%4)})
	}
	if !d.Flooding() {
		t.Fatal("40 arrivals at FloodRate 20 are not a flood")
	}
	if d.KeepPayload(1) {
		t.Error("KeepPayload during a flood: the workers reload payloads then, the intake should recycle them")
	}
	go d.Run(ctx)
	waitFor(40)
	mu.Lock()
	if maxActive != 1 {
		t.Errorf("during a flood %d deliveries ran at once, want 1", maxActive)
	}
	slices.SortFunc(runs, func(a, b run) int { return a.start.Compare(b.start) })
	paused := 0
	for i := 1; i < len(runs); i++ {
		if runs[i].start.Sub(runs[i-1].end) >= work*8/10 {
			paused++
		}
	}
	if paused < len(runs)*3/4 {
		t.Errorf("only %d of %d deliveries during the flood were followed by a pause of about their work", paused, len(runs)-1)
	}
	runs, maxActive = nil, 0
	// A second later, with no new arrival, the flood is over.
	at = at.Add(1100 * time.Millisecond)
	mu.Unlock()
	if d.Flooding() {
		t.Fatal("still flooding a second after the last arrival")
	}
	if !d.KeepPayload(1) {
		t.Error("KeepPayload after the flood refuses a 1-byte payload")
	}
	for i := range int64(8) {
		d.Enqueue(Delivery{Seq: 200 + i, Key: fmt.Sprint("k", i%4)})
	}
	waitFor(8)
	if n := maxRunning(); n < 2 {
		t.Errorf("after the flood at most %d worker ran at once, want parallel workers", n)
	}
}

// Body buffers are reused only when nothing can read them any more: a
// payload the workers keep stays intact while later requests come in, one
// they do not keep is recycled, and one an inbox failed on is left alone
// (the store may still be reading it).
func TestIntakeReusesBodiesOnlyWhenDone(t *testing.T) {
	keep := true
	var enq []Delivery
	inbox := newMemInbox()
	h := NewHandler(Options{
		Secrets:     func() [][]byte { return [][]byte{secret} },
		Inbox:       inbox,
		Enqueue:     func(d Delivery) { enq = append(enq, d) },
		KeepPayload: func(int) bool { return keep },
	})
	body := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"action":"opened","pull_request":{"number":%d},"repository":{"full_name":"o/r"},"pad":%q}`, i, strings.Repeat("x", 2000+i)))
	}
	for i := range 20 {
		keep = i%2 == 0
		if rec := post(t, h, "pull_request", fmt.Sprint("d", i), body(i), ""); rec.Code != http.StatusAccepted {
			t.Fatalf("delivery %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	for i, d := range enq {
		if i%2 == 0 && !bytes.Equal(d.Payload, body(i)) {
			t.Fatalf("kept payload %d was overwritten by a later request: %.60q", i, d.Payload)
		}
		if i%2 == 1 && d.Payload != nil {
			t.Fatalf("payload %d kept although KeepPayload said no", i)
		}
		if !bytes.Equal(inbox.stored[i].Payload, body(i)) {
			t.Fatalf("stored payload %d differs", i)
		}
	}

	// An inbox that fails may still hold the body; it must stay intact.
	var held []byte
	keep = false
	failing := inboxFunc(func(_ context.Context, d Delivery) (int64, bool, error) {
		held = d.Payload
		return 0, false, errors.New("commit timed out")
	})
	h = NewHandler(Options{Secrets: func() [][]byte { return [][]byte{secret} }, Inbox: failing, KeepPayload: func(int) bool { return false }})
	if rec := post(t, h, "pull_request", "f1", body(1), ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("failing inbox: %d", rec.Code)
	}
	h2 := NewHandler(Options{Secrets: func() [][]byte { return [][]byte{secret} }, Inbox: newMemInbox(), KeepPayload: func(int) bool { return false }})
	for i := range 10 {
		post(t, h2, "pull_request", fmt.Sprint("g", i), body(100+i), "")
	}
	if !bytes.Equal(held, body(1)) {
		t.Fatalf("a body the inbox failed on was reused: %.60q", held)
	}
}

type inboxFunc func(ctx context.Context, d Delivery) (int64, bool, error)

func (f inboxFunc) Accept(ctx context.Context, d Delivery) (int64, bool, error) { return f(ctx, d) }

// With Refill set, the dispatcher holds at most MaxQueued deliveries; the
// others stay in the inbox and are read back in Seq order, so that every
// delivery is processed once, in order per key, however long the backlog,
// and a failing Refill is retried.
func TestDispatcherSpillsBeyondMaxQueued(t *testing.T) {
	const n, maxQueued = 300, 10
	var mu sync.Mutex
	inbox := map[int64]Delivery{} // pending, as the store has them
	var order = map[string][]int64{}
	seen := map[int64]int{}
	maxHeld := 0
	refillFailures := 2
	done := make(chan struct{})
	var d *Dispatcher
	d = NewDispatcher(DispatcherOptions{
		Workers:   3,
		MaxQueued: maxQueued,
		FloodRate: 1 << 30, // no flood pauses here
		Refill: func(_ context.Context, from int64, limit int) ([]Delivery, error) {
			mu.Lock()
			defer mu.Unlock()
			if refillFailures > 0 {
				refillFailures--
				return nil, errors.New("database is locked")
			}
			var out []Delivery
			for seq := from; seq <= n && len(out) < limit; seq++ {
				if del, ok := inbox[seq]; ok {
					del.Payload = nil
					out = append(out, del)
				}
			}
			return out, nil
		},
		Load: func(_ context.Context, seq int64) (Delivery, error) {
			mu.Lock()
			defer mu.Unlock()
			return inbox[seq], nil
		},
		Process: func(_ context.Context, del Delivery) error {
			if held := d.Len(); held > maxQueued {
				mu.Lock()
				maxHeld = max(maxHeld, held)
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			if string(del.Payload) != fmt.Sprint(del.Seq) {
				return fmt.Errorf("delivery %d processed with payload %q", del.Seq, del.Payload)
			}
			seen[del.Seq]++
			order[del.Key] = append(order[del.Key], del.Seq)
			delete(inbox, del.Seq) // done
			if len(seen) == n {
				close(done)
			}
			return nil
		},
		Failed: func(_ context.Context, del Delivery, err error) { t.Error(err) },
	})
	// The first 100 were pending at start (resumed), the rest arrive.
	for seq := int64(1); seq <= 100; seq++ {
		del := Delivery{Seq: seq, Key: fmt.Sprint("k", seq%7), Payload: []byte(fmt.Sprint(seq))}
		mu.Lock()
		inbox[seq] = del
		mu.Unlock()
		d.Enqueue(del)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	for seq := int64(101); seq <= n; seq++ {
		del := Delivery{Seq: seq, Key: fmt.Sprint("k", seq%7), Payload: []byte(fmt.Sprint(seq))}
		mu.Lock()
		inbox[seq] = del // stored before it is handed over, as Accept does
		mu.Unlock()
		d.Receive(del)
		if seq%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d deliveries processed; %d left in the inbox", len(seen), n, len(inbox))
	}
	mu.Lock()
	defer mu.Unlock()
	if maxHeld > 0 {
		t.Errorf("the dispatcher held %d deliveries, MaxQueued is %d", maxHeld, maxQueued)
	}
	for seq, c := range seen {
		if c != 1 {
			t.Errorf("delivery %d processed %d times", seq, c)
		}
	}
	for key, seqs := range order {
		if !slices.IsSorted(seqs) {
			t.Errorf("key %s processed out of order: %v", key, seqs)
		}
	}
	if refillFailures != 0 {
		t.Errorf("Refill was not retried after failing")
	}
}
