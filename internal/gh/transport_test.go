package gh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// wrapFiles answers GET …/pulls/1/files with serve, and everything else
// with the fake GitHub.
func wrapFiles(serve func(*http.Request) (*http.Response, error)) func(*Options) {
	return func(o *Options) {
		next := o.Transport
		o.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/pulls/1/files") {
				return serve(r)
			}
			return next.RoundTrip(r)
		})
	}
}

// An answer larger than the ETag cache keeps reaches the caller whole.
func TestLargeAnswerIsNotCut(t *testing.T) {
	patch := "@@ -1,1 +1,1 @@\n+" + strings.Repeat("x", 100<<10)
	var files []map[string]any
	for i := range 60 { // ~6 MiB, more than maxCachedBody
		files = append(files, map[string]any{"filename": "f" + string(rune('a'+i%26)) + ".go", "status": "modified", "patch": patch})
	}
	body, err := json.Marshal(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= maxCachedBody {
		t.Fatalf("body of %d bytes is not over the cache's limit", len(body))
	}
	h := newHarness(t, wrapFiles(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/json"}, "Etag": {`W/"big"`}},
			Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}))
	fs, err := h.c.Facts("acme", "widgets", 1, nil).Files(context.Background())
	if err != nil || len(fs) != 60 || len(fs[59].Patch) != len(patch) {
		t.Fatalf("%d files, %v; want 60 whole", len(fs), err)
	}
}

// An attempt that gets no answer ends after RequestTimeout and counts as
// a network error: retried, then the call fails instead of hanging.
func TestRequestTimeout(t *testing.T) {
	calls := 0
	h := newHarness(t, wrapFiles(func(r *http.Request) (*http.Response, error) {
		calls++
		<-r.Context().Done() // a connection that never answers
		return nil, r.Context().Err()
	}), func(o *Options) { o.RequestTimeout = 20 * time.Millisecond })
	done := make(chan error, 1)
	go func() {
		_, err := h.c.Facts("acme", "widgets", 1, nil).Files(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) || calls != DefaultMaxRetries+1 {
			t.Fatalf("err %v after %d attempts; want ErrUnavailable after %d", err, calls, DefaultMaxRetries+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call still hangs")
	}
}
