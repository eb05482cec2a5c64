package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mergeguard/guard/internal/webhook"
)

func TestParse(t *testing.T) {
	hooks := "../../testdata/webhooks"
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults with a guard binary", []string{"-guard", "/tmp/guard", "-webhooks", hooks}, ""},
		{"open loop", []string{"-guard", "/tmp/guard", "-webhooks", hooks, "-rate", "3000", "-conns", "64"}, ""},
		{"no guard binary", []string{"-webhooks", hooks}, "-guard is required"},
		{"no repositories", []string{"-guard", "g", "-webhooks", hooks, "-repos", "0"}, "-repos and -prs"},
		{"agent share above one", []string{"-guard", "g", "-webhooks", hooks, "-agent-share", "1.5"}, "-agent-share"},
		{"too many connections", []string{"-guard", "g", "-webhooks", hooks, "-conns", "5000"}, "-conns"},
		{"unbounded duration", []string{"-guard", "g", "-webhooks", hooks, "-duration", "2h"}, "-duration"},
		{"unbounded count", []string{"-guard", "g", "-webhooks", hooks, "-max", "0"}, "-max"},
		{"negative rate", []string{"-guard", "g", "-webhooks", hooks, "-rate", "-1"}, "-rate"},
		{"payloads not found", []string{"-guard", "g", "-webhooks", t.TempDir()}, "run from the repository root"},
		{"unknown flag", []string{"-guard", "g", "-bogus"}, "bogus"},
		{"floor needs no guard binary", []string{"-webhooks", hooks, "-floor", "fsync", "-rate", "3000"}, ""},
		{"unknown floor", []string{"-webhooks", hooks, "-floor", "disk"}, "want null or fsync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parse: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parse: error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"median of 1..100 ms", ds, .5, 50 * time.Millisecond},
		{"p99 of 1..100 ms", ds, .99, 99 * time.Millisecond},
		{"max", ds, 1, 100 * time.Millisecond},
		{"nothing measured", nil, .5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pct(tt.in, tt.p); got != tt.want {
				t.Fatalf("pct(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("pct sorted its input in place")
	}
}

func TestProcReadings(t *testing.T) {
	pid := os.Getpid()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	t.Run("this process has a peak RSS", func(t *testing.T) {
		if rss := procStatus(pid, "VmHWM:"); rss <= 0 {
			t.Fatalf("VmHWM %d", rss)
		}
	})
	t.Run("an unknown field reads as zero", func(t *testing.T) {
		if v := procStatus(pid, "NoSuchField:"); v != 0 {
			t.Fatalf("got %d", v)
		}
	})
	t.Run("a process that does not exist reads as zero", func(t *testing.T) {
		if v := procStatus(1<<30, "VmHWM:"); v != 0 {
			t.Fatalf("got %d", v)
		}
		if v := cpuTime(1 << 30); v != 0 {
			t.Fatalf("got %v", v)
		}
	})
	t.Run("CPU time grows with work", func(t *testing.T) {
		before := cpuTime(0)
		deadline := time.Now().Add(300 * time.Millisecond)
		x := 0
		for time.Now().Before(deadline) {
			x++
		}
		if after := cpuTime(0); after <= before {
			t.Fatalf("CPU time %v then %v after busy work (%d)", before, after, x)
		}
	})
}

func TestBodies(t *testing.T) {
	o := &options{repos: 2, prs: 3, agentShare: 0.5}
	w := newWorld(o)
	for ri := range o.repos {
		for n := 1; n <= o.prs; n++ {
			w.pulls = append(w.pulls, &pull{repo: "load-org/repo-" + string(rune('0'+ri)), number: n,
				author: agentAccount, agent: true, head: shaOf(ri, n, "head")})
		}
	}
	ds, err := w.bodies("../../testdata/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3*len(w.pulls) {
		t.Fatalf("%d deliveries for %d PRs, want 3 each", len(ds), len(w.pulls))
	}
	for _, d := range ds {
		if !strings.Contains(string(d.body), d.p.head) || !strings.Contains(string(d.body), `"id":7`) {
			t.Fatalf("%s body lacks the PR head or the installation", d.event)
		}
		if !strings.HasPrefix(d.sig, "sha256=") {
			t.Fatalf("signature %q", d.sig)
		}
	}
	if _, err := w.bodies(t.TempDir()); err == nil {
		t.Fatal("no error for a directory without payloads")
	}
}

// TestConnSend: the throughput phase's hand-written requests are what
// net/http's server reads as GitHub's: method, path, the four headers and
// the body; the connection is kept alive, and after the server closes it
// the next send dials again.
func TestConnSend(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		n := len(got)
		mu.Unlock()
		if n == 2 {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	c := (&sender{base: srv.URL}).conn()
	defer c.close()
	body := []byte(`{"action":"opened"}`)
	d := delivery{event: "pull_request", body: body, sig: webhook.Sign([]byte(secret), body)}
	var remotes []string
	for i := range 3 {
		code, err := c.send(d)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("send %d: %d, %v", i, code, err)
		}
		mu.Lock()
		remotes = append(remotes, got[i].RemoteAddr)
		mu.Unlock()
	}
	for i, r := range got {
		if r.Method != http.MethodPost || r.URL.Path != "/webhook" || bodies[i] != string(body) ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-GitHub-Event") != "pull_request" ||
			r.Header.Get("X-Hub-Signature-256") != d.sig {
			t.Errorf("request %d: %s %s %v %q", i, r.Method, r.URL.Path, r.Header, bodies[i])
		}
		if err := webhook.Verify(r.Header.Get("X-Hub-Signature-256"), []byte(bodies[i]), []byte(secret)); err != nil {
			t.Errorf("request %d: signature: %v", i, err)
		}
	}
	// Delivery ids as GitHub's: time-based UUIDs, sorting in sending order
	// (unless the clock's low 32 bits wrapped between two, every ~7 min).
	var ids []string
	for i, r := range got {
		id := r.Header.Get("X-GitHub-Delivery")
		if u, err := uuid.Parse(id); err != nil || u.Version() != 1 || u.Variant() != uuid.RFC4122 || id != u.String() {
			t.Errorf("request %d: X-GitHub-Delivery %q is not a lower-case version-1 UUID (%v)", i, id, err)
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		if u, _ := uuid.Parse(ids[0]); u.Time()&0xffffffff < 0xfff00000 { // not a wrap
			t.Errorf("delivery ids %v: want distinct ids sorting in sending order", ids)
		}
	}
	if remotes[0] != remotes[1] || remotes[1] == remotes[2] {
		t.Errorf("connections %v: want the first kept alive and a new one after the server closed it", remotes)
	}
}

// TestMissingGuardBinary: a -guard that is not there is named in the error.
func TestMissingGuardBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "no-such-guard")
	err := run(t.Context(), []string{"-guard", bin, "-webhooks", "../../testdata/webhooks", "-repos", "1", "-prs", "1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "start "+bin) {
		t.Fatalf("run = %v, want an error naming %s", err, bin)
	}
}
