package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// The rate limit left is not shown until GitHub has said it: a 0 for "not
// known" would read as an exhausted limit.
func TestRateLimitShownOnceKnown(t *testing.T) {
	m := New(func() (int, time.Duration) { return 3, 2 * time.Second })
	if out := scrape(t, m); strings.Contains(out, "guard_github_rate_limit_remaining") {
		t.Fatalf("rate limit shown before any answer:\n%s", out)
	}
	m.APICall(0, false, -1) // a network error: nothing known
	if out := scrape(t, m); strings.Contains(out, "guard_github_rate_limit_remaining") {
		t.Fatal("rate limit shown after a network error only")
	}
	m.APICall(200, false, 4999)
	m.APICall(304, true, 4998)
	out := scrape(t, m)
	for _, want := range []string{
		"guard_github_rate_limit_remaining 4998",
		`guard_github_api_calls_total{cached="false",status="network_error"} 1`,
		`guard_github_api_calls_total{cached="true",status="304"} 1`,
		"guard_queue_depth 3",
		"guard_queue_oldest_seconds 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.APICall(200, false, 10)
	m.Delivery("pull_request", "accepted")
	m.Processed(time.Second)
}
