package guard

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
	"github.com/mergeguard/guard/internal/gh"
	"github.com/mergeguard/guard/internal/githubtest"
)

func TestRedeliverFailed(t *testing.T) {
	ctx := context.Background()
	fake := githubtest.New(t)
	now := time.Now()
	ok := fake.AddDelivery(githubtest.Delivery{GUID: "ok", Event: "pull_request", StatusCode: 202, Status: "OK", DeliveredAt: now.Add(-time.Hour)})
	failed := fake.AddDelivery(githubtest.Delivery{GUID: "failed", Event: "pull_request", StatusCode: 503, Status: "Service Unavailable", DeliveredAt: now.Add(-time.Hour)})
	recoveredFirst := fake.AddDelivery(githubtest.Delivery{GUID: "recovered", Event: "pull_request", StatusCode: 0, Status: "timeout", DeliveredAt: now.Add(-2 * time.Hour)})
	fake.AddDelivery(githubtest.Delivery{GUID: "recovered", Event: "pull_request", StatusCode: 202, Status: "OK", Redelivery: true, DeliveredAt: now.Add(-time.Hour)})
	tooOld := fake.AddDelivery(githubtest.Delivery{GUID: "ancient", Event: "pull_request", StatusCode: 500, DeliveredAt: now.Add(-100 * time.Hour)})

	g := redeliverGuard(t, fake, nil)

	n, err := g.RedeliverFailed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := fake.Redeliveries()
	if n != 1 || !slices.Equal(got, []int64{failed}) {
		t.Fatalf("redelivered %v (n=%d), want only the failed delivery %d (not ok=%d, recovered=%d, too old=%d)",
			got, n, failed, ok, recoveredFirst, tooOld)
	}
	// A second pass does not ask again.
	if n, err := g.RedeliverFailed(ctx); err != nil || n != 0 {
		t.Fatalf("second pass redelivered %d (err %v), want 0", n, err)
	}
}

// busyDeliveries adds, oldest first (GitHub lists newest first): ancient
// failed deliveries outside the window, one failed delivery inside it
// (48 hours old), then recent successful ones. It returns the failed one.
func busyDeliveries(fake *githubtest.Server, now time.Time, ancient, recent int) int64 {
	for i := range ancient {
		fake.AddDelivery(githubtest.Delivery{GUID: fmt.Sprint("ancient-", i), Event: "pull_request", StatusCode: 500, Status: "Internal Server Error",
			DeliveredAt: now.Add(-100*time.Hour + time.Duration(i)*time.Second)})
	}
	failed := fake.AddDelivery(githubtest.Delivery{GUID: "failed", Event: "pull_request", StatusCode: 503, Status: "Service Unavailable", DeliveredAt: now.Add(-48 * time.Hour)})
	for i := range recent {
		fake.AddDelivery(githubtest.Delivery{GUID: fmt.Sprint("ok-", i), Event: "pull_request", StatusCode: 202, Status: "OK",
			DeliveredAt: now.Add(-47*time.Hour + time.Duration(i)*time.Minute)})
	}
	return failed
}

// TestRedeliverFailedBeyondTheNewest2000: a failed delivery inside the
// window but behind 2,100 newer ones (page 22 of 100) is redelivered, and
// the listing stops at the first page that reaches past the window.
func TestRedeliverFailedBeyondTheNewest2000(t *testing.T) {
	ctx := context.Background()
	fake := githubtest.New(t)
	now := time.Now()
	failed := busyDeliveries(fake, now, 150, 2100)

	g := redeliverGuard(t, fake, nil)

	n, err := g.RedeliverFailed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.Redeliveries(); n != 1 || !slices.Equal(got, []int64{failed}) {
		t.Fatalf("redelivered %v (n=%d), want only the failed delivery %d behind 2,100 newer ones", got, n, failed)
	}
	// 2,251 deliveries are 23 pages; the 22nd already reaches past the window.
	if pages := fake.CallCount("GET", "/app/hook/deliveries"); pages != 22 {
		t.Errorf("listed %d pages of deliveries, want 22", pages)
	}

	// The next passes read only what came since the last one: a page.
	fake.ResetCalls()
	if n, err := g.RedeliverFailed(ctx); err != nil || n != 0 {
		t.Fatalf("second pass: %d, %v", n, err)
	}
	late := fake.AddDelivery(githubtest.Delivery{GUID: "late", Event: "pull_request", StatusCode: 502, Status: "Bad Gateway", DeliveredAt: now})
	if n, err := g.RedeliverFailed(ctx); err != nil || n != 1 || !slices.Contains(fake.Redeliveries(), late) {
		t.Fatalf("third pass: %d, %v; redelivered %v, want the new failure %d", n, err, fake.Redeliveries(), late)
	}
	if pages := fake.CallCount("GET", "/app/hook/deliveries"); pages != 2 {
		t.Errorf("the later passes listed %d pages, want one each", pages)
	}
}

// TestRedeliverFailedWarnsAtTheBound: a pass that hits the page bound says
// so, naming it.
func TestRedeliverFailedWarnsAtTheBound(t *testing.T) {
	defer func(old int) { redeliverMaxPages = old }(redeliverMaxPages)
	redeliverMaxPages = 2
	ctx := context.Background()
	fake := githubtest.New(t)
	busyDeliveries(fake, time.Now(), 0, 250)

	var logs bytes.Buffer
	g := redeliverGuard(t, fake, slog.New(slog.NewTextHandler(&logs, nil)))

	if n, err := g.RedeliverFailed(ctx); err != nil || n != 0 {
		t.Fatalf("redelivered %d (err %v), want 0: the failed delivery is on page 3", n, err)
	}
	if pages := fake.CallCount("GET", "/app/hook/deliveries"); pages != 2 {
		t.Errorf("listed %d pages, want the bound, 2", pages)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "safety bound") || !strings.Contains(out, "max_pages=2") || !strings.Contains(out, "deliveries_read=200") {
		t.Fatalf("no warning naming the bound: %q", out)
	}
}

// redeliverGuard is a guard on an in-memory store and the fake GitHub.
func redeliverGuard(t *testing.T, fake *githubtest.Server, log *slog.Logger) *Guard {
	t.Helper()
	store, err := audit.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	app, err := gh.New(gh.Options{BaseURL: fake.URL(), AppID: fake.AppID(), PrivateKey: fake.PrivateKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Store: store, GitHub: app, Config: config.Default, Logger: log})
}
