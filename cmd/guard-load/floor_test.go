package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/mergeguard/guard/internal/githubtest"
	"github.com/mergeguard/guard/internal/webhook"
)

// TestReceiver: the floor's receiver answers a signed delivery 202 only
// once it is in the journal, and refuses what the guard refuses (a wrong
// signature, a body over 25 MiB, a GET) without writing it.
func TestReceiver(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&receiver{secret: []byte(secret), j: j})
	defer srv.Close()
	post := func(body []byte, sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhook", bytes.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := []byte(`{"action":"opened","number":1}`)
	if code := post(good, webhook.Sign([]byte(secret), good)); code != http.StatusAccepted {
		t.Fatalf("signed delivery: %d, want 202", code)
	}
	if code := post([]byte(`{"action":"closed"}`), webhook.Sign([]byte("other"), good)); code != http.StatusUnauthorized {
		t.Errorf("wrong signature: %d, want 401", code)
	}
	big := bytes.Repeat([]byte(" "), webhook.MaxBody+1) // the guard's limit
	if code := post(big, webhook.Sign([]byte(secret), big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over 25 MiB: %d, want 413", code)
	}
	resp, err := http.Get(srv.URL + "/webhook")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /webhook: %d, want 405", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "guard_queue_depth 0\n") {
		t.Errorf("/metrics = %q: the drain waits for guard_queue_depth 0", metrics)
	}
	if got := readJournal(t, filepath.Join(dir, "journal")); len(got) != 1 || !bytes.Equal(got[0], good) {
		t.Errorf("journal holds %q, want only the signed delivery", got)
	}

	null := httptest.NewServer(&receiver{secret: []byte(secret)})
	defer null.Close()
	srv.URL = null.URL
	if code := post(good, webhook.Sign([]byte(secret), good)); code != http.StatusAccepted {
		t.Errorf("null receiver, signed delivery: %d, want 202", code)
	}
	if code := post(good, "sha256=00"); code != http.StatusUnauthorized {
		t.Errorf("null receiver, wrong signature: %d, want 401", code)
	}
}

// TestJournalGroupCommit: appends from many goroutines each return once
// their record is written, and every record is there, whole, once.
func TestJournalGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.append(s2.Encode(nil, fmt.Appendf(nil, "delivery %d", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, rec := range readJournal(t, path) {
		if seen[string(rec)] {
			t.Errorf("%q written twice", rec)
		}
		seen[string(rec)] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf("delivery %d", i)] {
			t.Errorf("delivery %d acknowledged but not in the journal", i)
		}
	}
}

// readJournal decodes a journal's records (length line, S2 block).
func readJournal(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var out [][]byte
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return out
		}
		if err != nil {
			t.Fatalf("journal: %v", err)
		}
		size, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Fatalf("journal: length %q: %v", line, err)
		}
		rec := make([]byte, size)
		if _, err := io.ReadFull(br, rec); err != nil {
			t.Fatal(err)
		}
		plain, err := s2.Decode(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, plain)
	}
}

// TestMain lets the test binary be the floor's receiver, as the load tool's
// binary is: run starts os.Executable() with receiverEnv set.
func TestMain(m *testing.M) {
	if mode := os.Getenv(receiverEnv); mode != "" { // first: the parent's child has both
		if err := runReceiver(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if dir := os.Getenv(parentEnv); dir != "" {
		beParent(dir)
		return
	}
	os.Exit(m.Run())
}

// TestFloorRun: a whole -floor run starts the receiver as a child process,
// drives it open loop and reports its acknowledgements.
func TestFloorRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process and sends for a second")
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"-webhooks", "../../testdata/webhooks", "-floor", "fsync",
		"-rate", "200", "-conns", "4", "-duration", "1s", "-drain", "1s", "-repos", "2", "-prs", "2"}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"# floor (-floor fsync)", "(0 errors)", "ack latency: p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// 200 due (201 when the last tick falls on the phase's end); a starved
	// CI machine may send fewer before the phase ends.
	var acked, rate int
	_, after, _ := strings.Cut(out.String(), "acknowledgements: ")
	if _, err := fmt.Sscanf(after, "%d in 1s = %d/s", &acked, &rate); err != nil || acked < 100 || acked > 201 {
		t.Errorf("acknowledgements: %d (%v), want ~200:\n%s", acked, err, out.String())
	}
}

// parentEnv makes the test binary a load tool that starts its child
// (a -floor receiver), prints the child's pid and waits to be killed.
const parentEnv = "GUARD_LOAD_TEST_PARENT"

func beParent(dir string) {
	fake := githubtest.Start()
	g, err := startGuard(context.Background(), &options{floor: "null", workers: 1}, fake, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(g.cmd.Process.Pid)
	select {}
}

// TestChildEndsWithTheLoadTool: a load tool killed outright (SIGKILL, or
// SIGPIPE under `| head`) takes its guard or receiver with it, so that no
// orphan holds the CPU and the disk through the next measurement.
func TestChildEndsWithTheLoadTool(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux's")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(self, "-test.run", "^$")
	parent.Env = append(os.Environ(), parentEnv+"="+t.TempDir())
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	parent.Stderr = os.Stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		t.Fatalf("no child pid from the parent: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	// Dead but not reaped (a zombie, where nothing reaps orphans) counts
	// as ended.
	alive := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
	}
	if !alive() {
		t.Fatal("the child is not running")
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive() {
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("the child outlived its killed parent by 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
