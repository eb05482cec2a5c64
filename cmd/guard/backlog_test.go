package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/pr"
)

// A backlog larger than the dispatcher holds in memory (here 4) is resumed
// from the inbox in Seq order: the first deliveries at start, the rest read
// back as room is made, deliveries arriving meanwhile behind them; every one
// is decided once and its check run published.
func TestBacklogBeyondWhatTheDispatcherHolds(t *testing.T) {
	fake := newFake(t)
	db := filepath.Join(t.TempDir(), "guard.db")
	const backlog, live = 30, 6
	human := pr.Account{Login: "alice", Type: "User"}
	head := func(n int) string { return fmt.Sprintf("%040x", 0xbac10900+n) }
	for n := 1; n <= backlog+live; n++ {
		addPull(fake, n, human, head(n))
	}
	// Acknowledged before a stop, never processed.
	st, err := audit.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= backlog; n++ {
		_, _, err := st.Accept(context.Background(), audit.Delivery{
			ID: fmt.Sprintf("backlog-%d", n), Event: "pull_request", Action: "opened",
			Key: fmt.Sprintf("%s#%d", testRepo, n), Payload: prEvent(t, "opened", n, human, head(n), human),
			ReceivedAt: time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	h := startGuardWith(t, fake, "", func(c *serveConfig) {
		c.DB = db
		c.maxQueued = 4
	})
	for n := backlog + 1; n <= backlog+live; n++ {
		if code := postWebhook(t, h.base, "pull_request", fmt.Sprintf("live-%d", n), prEvent(t, "opened", n, human, head(n), human)); code != 202 {
			t.Fatalf("live delivery %d answered %d", n, code)
		}
	}
	for n := 1; n <= backlog+live; n++ {
		h.waitCheckOn(t, head(n), "success")
	}
	// Each delivery decided exactly once, from the trail.
	var decided map[string][]map[string]any
	waitFor(t, "a decision record for every delivery", func() bool {
		decided = decisionsByDelivery(t, db)
		return len(decided) == backlog+live
	})
	for id, recs := range decided {
		if len(recs) != 1 {
			t.Errorf("delivery %s decided %d times", id, len(recs))
		}
	}
	for n := 1; n <= backlog+live; n++ {
		if runs := fake.CheckRuns(testRepo, head(n)); len(runs) != 1 {
			t.Errorf("PR %d has %d check runs, want 1", n, len(runs))
		}
	}
}
