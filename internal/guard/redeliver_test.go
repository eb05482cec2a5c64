package guard

import (
	"context"
	"slices"
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

	store, err := audit.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	app, err := gh.New(gh.Options{BaseURL: fake.URL(), AppID: fake.AppID(), PrivateKey: fake.PrivateKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	g := New(Options{Store: store, GitHub: app, Config: config.Default})

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
