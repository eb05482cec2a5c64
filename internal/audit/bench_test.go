package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAccept measures durable webhook acknowledgements closed-loop:
// a fixed number of concurrent callers (like HTTP handlers) each Accepting a
// real 27 KiB pull_request payload on a temp-file database (WAL,
// synchronous=FULL, group commit). It reports acks/s and the p50/p99 latency
// of one Accept. With more callers throughput rises and latency is queueing.
//
//	go test ./internal/audit -run '^$' -bench 'Accept$' -benchtime 30000x
func BenchmarkAccept(b *testing.B) {
	payload, err := os.ReadFile("../../testdata/webhooks/pull_request.reopened.json") // a real 27 KiB payload
	if err != nil {
		b.Fatal(err)
	}
	for _, callers := range []int{8, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s, _ := mustOpenFile(b)
			ctx := context.Background()
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					id := strconv.FormatInt(next.Add(1), 10)
					t := time.Now()
					if _, _, err := s.Accept(ctx, Delivery{ID: "bench-" + id, Event: "pull_request", Action: "synchronize",
						Key: "o/r#" + id[len(id)-1:], Payload: payload}); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "acks/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		})
	}
}

// BenchmarkAcceptRate offers Accepts open-loop at a fixed 3,000/s, each in
// its own goroutine like an HTTP handler, and reports the achieved rate and
// the p99 latency measured from each request's due time (so a stall is not
// hidden by the requests it delays).
//
//	go test ./internal/audit -run '^$' -bench AcceptRate -benchtime 15000x
func BenchmarkAcceptRate(b *testing.B) {
	const rate = 3000
	s, _ := mustOpenFile(b)
	ctx := context.Background()
	payload, err := os.ReadFile("../../testdata/webhooks/pull_request.reopened.json")
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	written := writeBytes()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		due := start.Add(time.Duration(i) * time.Second / rate)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i)
			if _, _, err := s.Accept(ctx, Delivery{ID: "rate-" + id, Event: "pull_request", Action: "synchronize",
				Key: "o/r#" + id[len(id)-1:], Payload: payload}); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(due)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	if w := writeBytes(); w > 0 {
		b.ReportMetric(float64(w-written)/float64(b.N)/1024, "KiB-written/ack")
	}
}

// writeBytes is how many bytes the process has caused to be written to
// storage so far (Linux /proc/self/io write_bytes), or 0 where unknown.
func writeBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// fillTrail appends n realistic decision records in batches.
func fillTrail(tb testing.TB, s *Store, n int) {
	tb.Helper()
	ctx := context.Background()
	details := []byte(`{"input":{"pull_request":{"number":12,"head_sha":"0123456789abcdef0123456789abcdef01234567"}},"result":{"outcome":"escalate","reasons":[{"rule":"agent_self_merge","outcome":"escalate","message":"no human approval"}]},"eval_ns":41234}`)
	const batch = 5000
	recs := make([]Record, 0, batch)
	for i := 0; i < n; i++ {
		recs = append(recs, Record{
			Time: t0.Add(time.Duration(i) * time.Second), Kind: KindDecision, Repository: "acme/service-" + strconv.Itoa(i%50),
			PullRequest: i%5000 + 1, HeadSHA: "0123456789abcdef0123456789abcdef01234567", Actor: "release-agent[bot]",
			Agent: true, Outcome: "escalate", Rules: []string{"agent_self_merge"},
			Reason:     `Agent PR has no approval from a human, "self-merge" attempted, needs a release manager`,
			DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", PolicyRevision: "sha256:9f86d081884c7d65",
			Details: details,
		})
		if len(recs) == batch || i == n-1 {
			if _, err := s.Append(ctx, recs...); err != nil {
				tb.Fatal(err)
			}
			recs = recs[:0]
		}
	}
}

// vmHWM returns the process's peak RSS (VmHWM) in KiB, or 0 where
// /proc/self/status is not available.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the CPU time (user+system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetHWM resets VmHWM to the current RSS (Linux: clear_refs 5).
func resetHWM() bool { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil }

// BenchmarkExport1M exports 1,000,000 records to CSV while another
// goroutine keeps appending, and reports the export time, the peak Go heap
// (sampled), the peak RSS (VmHWM) and the slowest append during the export.
// Filling the trail takes a while; run it once:
//
//	go test ./internal/audit -run '^$' -bench Export1M -benchtime 1x -timeout 20m
func BenchmarkExport1M(b *testing.B) {
	const n = 1_000_000
	s, _ := mustOpenFile(b)
	fillTrail(b, s, n)
	ctx := context.Background()
	runtime.GC()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hwmReset := resetHWM()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap := ms.HeapInuse
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // sample the heap
			defer wg.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					peakHeap = max(peakHeap, ms.HeapInuse)
				}
			}
		}()
		var maxAppend time.Duration
		var appends int
		go func() { // keep appending while the export runs
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				t := time.Now()
				if _, err := s.Append(ctx, Record{Kind: KindDecision, Outcome: "allow", Time: t0.Add(-time.Hour)}); err != nil {
					b.Error(err)
					return
				}
				maxAppend = max(maxAppend, time.Since(t))
				appends++
			}
		}()
		cpu0 := cpuTime()
		start := time.Now()
		_, got, err := s.Export(ctx, t0, t0.Add(n*time.Second), FormatCSV, io.Discard)
		el := time.Since(start)
		cpu := cpuTime() - cpu0
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("exported %d records, want %d", got, n)
		}
		b.ReportMetric(el.Seconds(), "export-s")
		b.ReportMetric(cpu.Seconds(), "process-cpu-s")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		if hwmReset {
			b.ReportMetric(float64(vmHWM())/1024, "peak-RSS-MiB")
		}
		b.ReportMetric(float64(maxAppend.Microseconds())/1000, "max-append-ms")
		b.ReportMetric(float64(appends), "appends")
	}
}

// BenchmarkVerify1M walks a 1,000,000-record chain.
//
//	go test ./internal/audit -run '^$' -bench Verify1M -benchtime 1x -timeout 20m
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	s, _ := mustOpenFile(b)
	fillTrail(b, s, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.Verify(context.Background(), "")
		if err != nil || res.Records != n {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkAppend measures one-record appends (a decision per delivery).
func BenchmarkAppend(b *testing.B) {
	s, _ := mustOpenFile(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(ctx, Record{Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: i%100 + 1,
			Reason: fmt.Sprint("decision ", i)}); err != nil {
			b.Fatal(err)
		}
	}
}
