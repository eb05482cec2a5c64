package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Bodies being read count against MaxBodiesInFlight by their
// Content-Length: a slow sender holding most of it makes the next request
// a 503 before its body is read; once it is done, deliveries are accepted
// again. One request alone may exceed the budget.
func TestIntakeBoundsBodiesInFlight(t *testing.T) {
	body := fixture(t, "pull_request.opened")
	var enq []Delivery
	h := newTestHandler(newMemInbox(), &enq)
	h.o.MaxBodiesInFlight = int64(len(body)) + 1000

	pr, pw := io.Pipe()
	slow := httptest.NewRequest(http.MethodPost, "/webhook", pr)
	slow.ContentLength = int64(len(body))
	slow.Header.Set("X-GitHub-Event", "pull_request")
	slow.Header.Set("X-GitHub-Delivery", "slow")
	slow.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	slowRec := httptest.NewRecorder()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.ServeHTTP(slowRec, slow)
	}()
	if _, err := pw.Write(body[:100]); err != nil { // the handler is reading now
		t.Fatal(err)
	}

	rec := post(t, h, "pull_request", "second", body, "")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("second request while the first is read: %d %q, want 503 with Retry-After", rec.Code, rec.Body.String())
	}

	pw.Write(body[100:])
	pw.Close()
	wg.Wait()
	if slowRec.Code != http.StatusAccepted {
		t.Fatalf("slow request: %d %q", slowRec.Code, slowRec.Body.String())
	}
	if rec := post(t, h, "pull_request", "third", body, ""); rec.Code != http.StatusAccepted {
		t.Fatalf("after the slow one: %d %q", rec.Code, rec.Body.String())
	}
	if len(enq) != 2 || h.inFlight != 0 {
		t.Fatalf("%d enqueued, %d bytes still reserved", len(enq), h.inFlight)
	}
	h.o.MaxBodiesInFlight = 10 // smaller than one body: alone, it still passes
	if rec := post(t, h, "pull_request", "fourth", body, ""); rec.Code != http.StatusAccepted {
		t.Fatalf("a body over the budget alone: %d %q", rec.Code, rec.Body.String())
	}
}

// slowInbox stores a delivery only once released, like a store whose
// group commit is slow.
type slowInbox struct {
	*memInbox
	entered chan struct{}
	release chan struct{}
	ctxErr  error
}

func (s *slowInbox) Accept(ctx context.Context, d Delivery) (int64, bool, error) {
	close(s.entered)
	<-s.release
	s.ctxErr = ctx.Err()
	return s.memInbox.Accept(ctx, d)
}

// A sender that gives up while its delivery is being stored (GitHub waits
// 10 s) does not leave the stored delivery unknown to the workers: the
// store is not asked to abandon it, and the delivery is enqueued.
func TestIntakeFinishesAcceptWhenTheSenderGivesUp(t *testing.T) {
	body := fixture(t, "pull_request.opened")
	inbox := &slowInbox{memInbox: newMemInbox(), entered: make(chan struct{}), release: make(chan struct{})}
	var enq []Delivery
	h := newTestHandler(inbox, &enq)
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", "gave-up")
	req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	<-inbox.entered
	cancel()
	time.Sleep(10 * time.Millisecond)
	close(inbox.release)
	<-done
	if inbox.ctxErr != nil {
		t.Fatalf("Accept's context ended with the sender's: %v", inbox.ctxErr)
	}
	if len(enq) != 1 || enq[0].ID != "gave-up" || enq[0].Seq != 1 {
		t.Fatalf("enqueued %+v, want the stored delivery", enq)
	}
}
