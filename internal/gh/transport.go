package gh

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
)

// baseBackoff is the first retry's nominal wait; it doubles per attempt.
const baseBackoff = 500 * time.Millisecond

// secondaryDefaultWait is what GitHub asks for on a secondary rate limit
// that carries no Retry-After.
const secondaryDefaultWait = time.Minute

// maxCachedBody is the largest response body the ETag cache keeps.
const maxCachedBody = 4 << 20

// Error is a classified GitHub failure: errors.Is matches its Kind
// (ErrNotFound, ErrRateLimited, ErrUnavailable) and errors.As/Is reach the
// underlying error.
type Error struct {
	Kind   error
	Status int // HTTP status, 0 when there was no answer
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the kind and the underlying error.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// transport retries, waits out rate limits and serves conditional GETs. It
// sits under ghinstallation, so the Authorization header is already set.
type transport struct {
	base   http.RoundTripper
	o      *Options
	log    *slog.Logger
	prefix string // path of the base URL without trailing slash ("/api/v3" or "")
	cache  *etagCache
}

// scoped is the transport of one identity (the app, or one installation):
// cache entries are never shared between identities.
type scoped struct {
	t     *transport
	scope string
}

func (t *transport) scope(s string) http.RoundTripper { return &scoped{t: t, scope: s} }

func (s *scoped) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.t.roundTrip(req, s.scope)
}

// retrySafe reports whether repeating the request after an unknown outcome
// (5xx, lost connection) cannot do harm.
func retrySafe(method, route string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	case http.MethodPost:
		switch route {
		case "/app/installations/{id}/access_tokens", "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers":
			return true
		}
	}
	return false
}

// dialFailed reports whether err happened before the request was sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (t *transport) report(method, route string, status int, cached bool, h http.Header) int {
	remaining := -1
	if h != nil {
		if v, err := strconv.Atoi(h.Get("X-RateLimit-Remaining")); err == nil {
			remaining = v
		}
	}
	if t.o.OnCall != nil {
		t.o.OnCall(method, route, status, cached, remaining)
	}
	return remaining
}

// backoff is the wait before retry attempt (0-based): exponential with
// jitter in [d/2, d), capped by MaxWait.
func (t *transport) backoff(attempt int) time.Duration {
	d := baseBackoff << min(attempt, 20)
	d = d/2 + rand.N(d/2+1)
	return min(d, t.o.MaxWait)
}

func (t *transport) roundTrip(req *http.Request, scope string) (*http.Response, error) {
	ctx := req.Context()
	route := routeOf(req.URL.EscapedPath(), t.prefix)
	method := req.Method
	if req.Body != nil && req.GetBody == nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	} else if req.Body != nil {
		req.Body.Close()
	}
	safe := retrySafe(method, route)

	var key string
	var cached *cacheEntry
	if method == http.MethodGet && req.Header.Get("If-None-Match") == "" {
		key = scope + "\x00" + req.Header.Get("Accept") + "\x00" + req.URL.String()
		cached = t.cache.get(key)
	}

	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, t.o.RequestTimeout)
		r := req.Clone(actx)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				cancel()
				return nil, fmt.Errorf("rewind request body: %w", err)
			}
			r.Body = body
		}
		if cached != nil {
			r.Header.Set("If-None-Match", cached.etag)
		}
		resp, err := t.base.RoundTrip(r)
		if err == nil {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		} else {
			cancel()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			t.report(method, route, 0, false, nil)
			if (!safe && !dialFailed(err)) || attempt >= t.o.MaxRetries {
				return nil, &Error{Kind: ErrUnavailable, Err: fmt.Errorf("%s %s: %w", method, route, err)}
			}
			if err := t.wait(ctx, method, route, 0, attempt, t.backoff(attempt), "network error"); err != nil {
				return nil, err
			}
			continue
		}
		remaining := t.report(method, route, resp.StatusCode, resp.StatusCode == http.StatusNotModified && cached != nil, resp.Header)

		switch {
		case resp.StatusCode == http.StatusNotModified && cached != nil:
			drain(resp)
			out, err := cached.response(req, resp.Header)
			if err != nil {
				// Not expected (the cache encoded it): forget the entry
				// and ask again without a condition.
				t.cache.remove(key)
				t.log.LogAttrs(ctx, slog.LevelWarn, "GitHub answer cache entry unreadable", slog.String("route", route), slog.String("err", err.Error()))
				cached = nil
				continue
			}
			return out, nil

		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden:
			d, limited, primary := rateLimitWait(resp, remaining)
			if !limited {
				return resp, nil // a plain 403: permissions
			}
			if d > t.o.MaxWait || attempt >= t.o.MaxRetries {
				drain(resp)
				return nil, rateLimitError(method, route, resp, d, primary, t.o.MaxWait)
			}
			drain(resp)
			if err := t.wait(ctx, method, route, resp.StatusCode, attempt, max(d, t.backoff(attempt)), "rate limited"); err != nil {
				return nil, err
			}
			continue

		case resp.StatusCode >= 500:
			if !safe || attempt >= t.o.MaxRetries {
				return resp, nil // go-github turns it into an ErrorResponse; classify makes it ErrUnavailable
			}
			drain(resp)
			if err := t.wait(ctx, method, route, resp.StatusCode, attempt, t.backoff(attempt), "server error"); err != nil {
				return nil, err
			}
			continue
		}

		if key != "" && resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "" {
			body := resp.Body
			b, err := io.ReadAll(io.LimitReader(body, maxCachedBody+1))
			if err != nil {
				body.Close()
				return nil, &Error{Kind: ErrUnavailable, Status: resp.StatusCode, Err: fmt.Errorf("%s %s: read body: %w", method, route, err)}
			}
			if len(b) <= maxCachedBody {
				body.Close()
				t.cache.put(key, newCacheEntry(key, resp.Header, b))
				resp.Body = io.NopCloser(bytes.NewReader(b))
			} else {
				// Too large to keep: the caller reads it whole, uncached.
				resp.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(b), body), body}
			}
		}
		if remaining == 0 {
			// The transport owns rate limiting: keep go-github from refusing
			// the next request on its own (it would not wait).
			resp.Header.Del("X-RateLimit-Reset")
		}
		return resp, nil
	}
}

// wait sleeps d before a retry, logging why.
func (t *transport) wait(ctx context.Context, method, route string, status, attempt int, d time.Duration, why string) error {
	t.log.LogAttrs(ctx, slog.LevelWarn, "GitHub request retried",
		slog.String("method", method), slog.String("route", route), slog.Int("status", status),
		slog.Int("attempt", attempt+1), slog.Duration("wait", d), slog.String("reason", why))
	if err := t.o.Sleep(ctx, d); err != nil {
		return err
	}
	return nil
}

// rateLimitWait tells whether resp (403 or 429) is a rate limit and how
// long to wait.
func rateLimitWait(resp *http.Response, remaining int) (d time.Duration, limited, primary bool) {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true, false
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(time.Until(at), 0), true, false
		}
	}
	if remaining == 0 {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(reset, 0))+time.Second, 0), true, true
		}
		return secondaryDefaultWait, true, true
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		// GitHub: with neither Retry-After nor an exhausted limit, wait
		// at least a minute (retrying sooner can get the app banned).
		return secondaryDefaultWait, true, false
	}
	// A 403 is a secondary limit only if GitHub says so in the body.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if bytes.Contains(bytes.ToLower(b), []byte("secondary rate limit")) || bytes.Contains(bytes.ToLower(b), []byte("abuse")) {
		return secondaryDefaultWait, true, false
	}
	return 0, false, false
}

func rateLimitError(method, route string, resp *http.Response, d time.Duration, primary bool, maxWait time.Duration) error {
	what := "secondary rate limit"
	if primary {
		what = "rate limit exhausted"
		if res := resp.Header.Get("X-RateLimit-Resource"); res != "" {
			what = "rate limit (" + res + ") exhausted"
		}
	}
	until := time.Now().Add(d).UTC().Format(time.RFC3339)
	var msg string
	if d > maxWait {
		msg = fmt.Sprintf("%s %s: GitHub %s until %s, longer than the %s the guard may wait; retry after that", method, route, what, until, maxWait)
	} else {
		msg = fmt.Sprintf("%s %s: GitHub %s (status %d) after retries; retry after %s", method, route, what, resp.StatusCode, until)
	}
	return &Error{Kind: ErrRateLimited, Status: resp.StatusCode, Err: errors.New(msg)}
}

// cancelOnClose ends an attempt's context when its answer's body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// sleep is the default Options.Sleep.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cacheEntry is a cached 200 answer: the headers a client reads from it and
// the body, compressed with S2 (GitHub's JSON shrinks 5-8x; decoding a
// 30 KB answer takes ~10 µs). An agent PR keeps three lists cached
// (reviews, commits, files), so the entry size is what bounds how many
// open agent PRs stay at their GitHub call budget.
type cacheEntry struct {
	etag   string
	header http.Header
	body   []byte // S2-compressed
	size   int    // bytes the entry holds, for the cache's byte bound
}

// cachedHeaders are the headers of a 200 that a cached answer keeps: what
// go-github reads (pagination links, rate limits, token expiry, request id)
// and the entity's own. The rest (security, CORS, caching headers) would
// take more room than the body of a small answer.
var cachedHeaders = []string{
	"Content-Type", "Etag", "Last-Modified", "Link",
	"X-Github-Media-Type", "X-Github-Request-Id", "Github-Authentication-Token-Expiration",
	"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Used", "X-Ratelimit-Resource",
}

// newCacheEntry keeps the answer with body b.
func newCacheEntry(key string, h http.Header, b []byte) *cacheEntry {
	e := &cacheEntry{etag: h.Get("ETag"), header: make(http.Header, 8), body: s2.Encode(nil, b)}
	e.size = len(key) + len(e.body) + entryOverhead
	for _, k := range cachedHeaders {
		if vs, ok := h[k]; ok {
			e.header[k] = vs
			for _, v := range vs {
				e.size += len(k) + len(v) + 16
			}
		}
	}
	return e
}

// entryOverhead approximates an entry's fixed cost (structs, map and list
// slots).
const entryOverhead = 256

// response rebuilds the cached answer for req, with the fresh rate-limit
// headers of the 304 and its Link header when it has one: a list page's
// body can be unchanged while the list grew past it (callers also follow
// a full page that has no next link; see pages).
func (e *cacheEntry) response(req *http.Request, fresh http.Header) (*http.Response, error) {
	body, err := s2.Decode(nil, e.body)
	if err != nil {
		return nil, fmt.Errorf("cached answer: %w", err)
	}
	h := e.header.Clone()
	for k, vs := range fresh {
		if strings.HasPrefix(strings.ToLower(k), "x-ratelimit-") || http.CanonicalHeaderKey(k) == "Link" {
			h[k] = vs
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		h.Del("X-RateLimit-Reset")
	}
	h.Set("X-From-Cache", "1")
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}, nil
}

// etagCache is an LRU of cached answers bounded by count and bytes.
type etagCache struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	lru      *list.List // of *cacheItem, most recent at front
	items    map[string]*list.Element
}

type cacheItem struct {
	key string
	e   *cacheEntry
}

func newETagCache(maxEntries, maxBytes int) *etagCache {
	return &etagCache{max: maxEntries, maxBytes: maxBytes, lru: list.New(), items: map[string]*list.Element{}}
}

func (c *etagCache) get(key string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheItem).e
}

func (c *etagCache) put(key string, e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key)
	c.items[key] = c.lru.PushFront(&cacheItem{key: key, e: e})
	c.bytes += e.size
	for c.lru.Len() > c.max || c.bytes > c.maxBytes {
		c.removeLocked(c.lru.Back().Value.(*cacheItem).key)
	}
}

func (c *etagCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key)
}

func (c *etagCache) removeLocked(key string) {
	if el, ok := c.items[key]; ok {
		c.bytes -= el.Value.(*cacheItem).e.size
		c.lru.Remove(el)
		delete(c.items, key)
	}
}

func (c *etagCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
