package guard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/pr"
)

// pageGuard serves DecisionPage over a fresh in-memory store whose clock
// and the guard's are c.
func pageGuard(t *testing.T, c *pageClock) (*httptest.Server, *audit.Store, []byte) {
	t.Helper()
	clock := c.Now
	st, err := audit.Open(context.Background(), ":memory:", audit.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := []byte("page-test-link-secret")
	cfg := config.Default()
	g := New(Options{Store: st, Config: func() *config.Config { return cfg }, Now: clock, LinkSecret: secret, PublicURL: "https://guard.example.com"})
	mux := http.NewServeMux()
	mux.Handle("GET /decisions/{id}", g.DecisionPage())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, st, secret
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// local points a details link at the test server.
func local(t *testing.T, srv *httptest.Server, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL + u.RequestURI()
}

func TestDecisionPage(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	clock := &pageClock{now: now}
	srv, st, secret := pageGuard(t, clock)
	ctx := context.Background()
	const repo = "octo-org/widgets"
	details, _ := json.Marshal(map[string]any{"result": pr.Decision{Outcome: pr.Escalate, Reasons: []pr.Reason{{
		Rule: "agent_self_merge", Outcome: pr.Escalate, Message: `held <script>alert("x")</script>`,
	}}}})
	recs, err := st.Append(ctx,
		audit.Record{ID: "dec1", Kind: "decision", Repository: repo, PullRequest: 7, HeadSHA: strings.Repeat("a", 40),
			Actor: "ci-agent[bot]", Agent: true, Outcome: "escalate", Rules: []string{"agent_self_merge"}, Reason: "held", Details: details},
		audit.Record{ID: "ovr1", Kind: "override", Repository: repo, PullRequest: 7, Actor: "mona", Outcome: "refused", Reason: "approve refused: write"},
	)
	if err != nil || len(recs) != 2 {
		t.Fatalf("append: %v", err)
	}

	t.Run("a signed link shows the decision, escaped, with no-referrer and no-store", func(t *testing.T) {
		resp, body := get(t, local(t, srv, DecisionLink("https://guard.example.com", secret, "dec1", repo, now)))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		for h, want := range map[string]string{"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		if strings.Contains(body, "<script>") {
			t.Fatal("a rule message is rendered as HTML")
		}
		for _, want := range []string{`id="outcome"`, `id="reasons"`, `id="history"`, `id="need"`, `id="who"`, "agent_self_merge", "/guard approve", "approve refused: write"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	exp := now.Add(LinkTTL).Unix()
	good := DecisionLink("", secret, "dec1", repo, now)
	bad := []struct{ name, path string }{
		{"no signature", "/decisions/dec1?exp=" + itoa(exp)},
		{"a wrong signature", "/decisions/dec1?exp=" + itoa(exp) + "&sig=" + strings.Repeat("0", 64)},
		{"another secret", DecisionLink("", []byte("other"), "dec1", repo, now)},
		{"another repository", DecisionLink("", secret, "dec1", "octo-org/other", now)},
		{"an unknown id", DecisionLink("", secret, "nope", repo, now)},
		{"a record that is not a decision", DecisionLink("", secret, "ovr1", repo, now)},
		{"an expiry beyond the TTL", DecisionLink("", secret, "dec1", repo, now.Add(48*time.Hour))},
		{"a malformed expiry", strings.Replace(good, "exp=", "exp=x", 1)},
	}
	for _, tt := range bad {
		t.Run("404 for "+tt.name, func(t *testing.T) {
			if resp, _ := get(t, srv.URL+tt.path); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
		})
	}
	t.Run("404 after 90 days", func(t *testing.T) {
		link := local(t, srv, good)
		clock.Add(LinkTTL)
		if resp, _ := get(t, link); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// pageClock is a settable clock safe to read from the server's goroutines.
type pageClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *pageClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *pageClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }
