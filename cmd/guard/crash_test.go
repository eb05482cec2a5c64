package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mergeguard/guard/internal/githubtest"
)

// buildGuard builds the real binary once per test run.
var buildGuard = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "guard-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "guard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// child is a `guard serve` process.
type child struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan struct{}
}

var listenRE = regexp.MustCompile(`merge-guard listening"? addr=(\S+)`)

func startChild(t *testing.T, bin string, fake *githubtest.Server, db string) *child {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db, "--workers", "4")
	cmd.Dir = filepath.Dir(db)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("GUARD_APP_ID=%d", fake.AppID()),
		"GUARD_PRIVATE_KEY="+string(fake.PrivateKeyPEM()),
		"GUARD_PRIVATE_KEY_FILE=",
		"GUARD_WEBHOOK_SECRET="+testSecret,
		"GUARD_GITHUB_URL="+fake.URL(),
		"GUARD_PUBLIC_URL=https://guard.example.com",
		"GUARD_CONFIG=", "GUARD_CREDENTIALS=", "GUARD_POLICY_DIR=", "GUARD_LOG_LEVEL=info",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.log.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		c.addr = "http://" + a
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("guard did not start:\n%s", c.log)
	}
	return c
}

func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
	<-c.done
}

// TestCrashRecovery acknowledges deliveries, kills the real binary with
// SIGKILL while they are being processed, restarts it on the same database
// and checks that every acknowledged delivery is decided exactly once.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildGuard()
	if err != nil {
		t.Fatal(err)
	}
	fake := newFake(t)
	fake.SetLatency(15 * time.Millisecond) // processing lags behind intake
	db := filepath.Join(t.TempDir(), "guard.db")

	const n = 40
	ids := map[string]bool{}
	for i := 1; i <= n; i++ {
		author := alice
		if i%2 == 0 {
			author = agent
		}
		addPull(fake, 100+i, author, fmt.Sprintf("%040x", 0xc0ffee00+i))
	}
	first := startChild(t, bin, fake, db)
	for i := 1; i <= n; i++ {
		author := alice
		if i%2 == 0 {
			author = agent
		}
		id := fmt.Sprintf("crash-%d", i)
		body := prEvent(t, "opened", 100+i, author, fmt.Sprintf("%040x", 0xc0ffee00+i), author)
		if code := postWebhook(t, first.addr, "pull_request", id, body); code != 202 {
			t.Fatalf("delivery %s answered %d", id, code)
		}
		ids[id] = true
	}
	first.kill9(t)
	done := 0
	for i := 1; i <= n; i++ {
		if len(fake.CheckRuns(testRepo, fmt.Sprintf("%040x", 0xc0ffee00+i))) > 0 {
			done++
		}
	}
	t.Logf("killed with %d of %d deliveries published", done, n)

	second := startChild(t, bin, fake, db)
	// Decisions are counted from the trail (the restarted guard's reconcile
	// may publish check runs before the resumed deliveries are recorded).
	waitFor(t, "every acknowledged delivery to be decided after the restart", func() bool {
		seen := decisionsByDelivery(t, db)
		for id := range ids {
			if len(seen[id]) == 0 {
				return false
			}
		}
		return true
	})
	// Stop cleanly so the export reads a quiet database.
	second.cmd.Process.Signal(syscall.SIGTERM)
	second.cmd.Wait()
	<-second.done

	for i := 1; i <= n; i++ {
		if runs := fake.CheckRuns(testRepo, fmt.Sprintf("%040x", 0xc0ffee00+i)); len(runs) != 1 {
			t.Errorf("PR %d has %d check runs, want exactly 1", 100+i, len(runs))
		}
	}
	seen := decisionsByDelivery(t, db)
	for id := range ids {
		if len(seen[id]) != 1 {
			t.Errorf("delivery %s decided %d times, want exactly once", id, len(seen[id]))
		}
	}
	if code, _, errOut := runGuard(t, "audit", "verify", "--db", db); code != 0 {
		t.Fatalf("chain broken after the crash: %s", errOut)
	}
}
