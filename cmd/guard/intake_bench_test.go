package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/guard"
	"github.com/mergeguard/guard/internal/pr"
	"github.com/mergeguard/guard/internal/webhook"
)

// BenchmarkIntake measures webhook acknowledgement as the server does it:
// body read, HMAC check, JSON envelope, durable insert into the SQLite inbox
// (a file in a temp dir, WAL, group commit), for a full-size real payload
// (25 KB), from 64 concurrent senders (closed loop: latency is queueing at saturation; see the load tool for latency at a fixed rate). It reports acknowledgements per
// second and the p50/p99 latency of one acknowledgement.
//
//	go test ./cmd/guard -run XXX -bench BenchmarkIntake -benchtime 20000x
//	GUARD_BENCH_SENDERS=8 go test ./cmd/guard -run XXX -bench BenchmarkIntake -benchtime 20000x
func BenchmarkIntake(b *testing.B) {
	ctx := context.Background()
	store, err := audit.Open(ctx, filepath.Join(b.TempDir(), "guard.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := webhook.NewHandler(webhook.Options{
		Secrets:    func() [][]byte { return [][]byte{[]byte(testSecret)} },
		Inbox:      inboxAdapter{store},
		Interested: guard.Interested,
	})
	body := prEvent(b, "opened", 1, pr.Account{Login: "ci-agent[bot]", Type: "Bot"}, sha('1'), pr.Account{Login: "ci-agent[bot]", Type: "Bot"})
	sig := webhook.Sign([]byte(testSecret), body)
	var n atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	senders := 64
	if v, err := strconv.Atoi(os.Getenv("GUARD_BENCH_SENDERS")); err == nil && v > 0 {
		senders = v
	}
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(p *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for p.Next() {
			req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "pull_request")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", n.Add(1)))
			req.Header.Set("X-Hub-Signature-256", sig)
			rec := httptest.NewRecorder()
			t0 := time.Now()
			h.ServeHTTP(rec, req)
			local = append(local, time.Since(t0))
			if rec.Code != http.StatusAccepted {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "acks/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	depth, _, err := store.InboxStats(ctx)
	if err != nil || depth != len(lat) {
		b.Fatalf("inbox holds %d deliveries (err %v), want every acknowledged one (%d)", depth, err, len(lat))
	}
}
