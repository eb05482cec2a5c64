package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	allowPolicy = "package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n"
	blockPolicy = "package guard\n\ndecision := {\"outcome\": \"block\", \"reasons\": [{\"rule\": \"r\", \"outcome\": \"block\", \"message\": \"m\"}]}\n"
	brokenRego  = "package guard\n\ndecision := {\"outcome\": \"allow\", \"reasons\": []}\n\nbroken if {\n"
)

// writePolicy writes decision.rego into dir with a distinct mtime, so that
// a poll notices the change even on coarse-grained file systems.
func writePolicy(t *testing.T, dir, text string, age time.Duration) {
	t.Helper()
	p := filepath.Join(dir, "decision.rego")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(-age)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func outcomeOf(t *testing.T, e *Engine) string {
	t.Helper()
	d, err := e.Decide(context.Background(), agentInput())
	if err != nil {
		t.Fatal(err)
	}
	return string(d.Outcome)
}

// allowDir is a policy directory holding allowPolicy, written 3 hours ago,
// and the engine compiled from it.
func allowDir(t *testing.T) (string, *Engine) {
	t.Helper()
	dir := t.TempDir()
	writePolicy(t, dir, allowPolicy, 3*time.Hour)
	e, err := Compile(context.Background(), os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	return dir, e
}

func TestReloaderKeepsLastGoodSet(t *testing.T) {
	ctx := context.Background()
	dir, first := allowDir(t)
	var reloaded []*Engine
	r := NewReloader(first, dir, nil, func(e *Engine) { reloaded = append(reloaded, e) })

	steps := []struct {
		name    string
		text    string
		age     time.Duration
		swapped bool
		errHas  string
		outcome string
	}{
		{"unchanged directory keeps the engine", "", 0, false, "", "allow"},
		{"broken policy is refused with file and line", brokenRego, 2 * time.Hour, false, "decision.rego:6:", "allow"},
		{"same broken policy is reported once", brokenRego, 90 * time.Minute, false, "", "allow"},
		{"fixed policy is swapped in", blockPolicy, time.Hour, true, "", "block"},
		{"touch without change keeps the engine", blockPolicy, 30 * time.Minute, false, "", "block"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.text != "" {
				writePolicy(t, dir, s.text, s.age)
			}
			swapped, err := r.Reload(ctx)
			if swapped != s.swapped {
				t.Errorf("swapped = %v, want %v", swapped, s.swapped)
			}
			switch {
			case s.errHas == "" && err != nil:
				t.Errorf("Reload: %v", err)
			case s.errHas != "" && (err == nil || !strings.Contains(err.Error(), s.errHas)):
				t.Errorf("Reload error = %v, want one containing %q", err, s.errHas)
			}
			if got := outcomeOf(t, r.Current()); got != s.outcome {
				t.Errorf("current engine decides %q, want %q", got, s.outcome)
			}
		})
	}
	if len(reloaded) != 1 || reloaded[0] != r.Current() {
		t.Errorf("onReload called %d times, want once with the current engine", len(reloaded))
	}
}

func TestReloaderMissingDirectory(t *testing.T) {
	r := NewReloader(mustCompile(t), filepath.Join(t.TempDir(), "gone"), nil, nil)
	if _, err := r.Reload(context.Background()); err == nil {
		t.Fatal("Reload of a missing directory succeeded")
	}
	if r.Current() == nil {
		t.Fatal("engine dropped")
	}
}

func TestWatchReportsAndReloads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	writePolicy(t, dir, allowPolicy, 3*time.Hour)
	first, err := Compile(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	reloads := make(chan *Engine, 10)
	r := NewReloader(first, dir, func(err error) { errs <- err }, func(e *Engine) { reloads <- e })
	done := make(chan struct{})
	go func() { r.Watch(ctx, 5*time.Millisecond); close(done) }()

	writePolicy(t, dir, brokenRego, 2*time.Hour)
	select {
	case err := <-errs:
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Problems[0].File != "decision.rego" {
			t.Errorf("onError got %v, want a *PolicyError in decision.rego", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported for a broken policy")
	}
	if r.Current() != first {
		t.Error("broken policy replaced the engine")
	}

	writePolicy(t, dir, blockPolicy, time.Hour)
	select {
	case e := <-reloads:
		if e != r.Current() || outcomeOf(t, e) != "block" {
			t.Error("reloaded engine is not the current one or not the new policy")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fixed policy not reloaded")
	}
	cancel()
	<-done
}

// A policy directory that is a symbolic link, with files that are links
// into a directory swapped on update (a Kubernetes ConfigMap mount), is
// reloaded when the content changes, though no name, size or time of the
// links does.
func TestReloaderFollowsSymlinks(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	v1, v2 := filepath.Join(base, "..2026_01"), filepath.Join(base, "..2026_02")
	for dir, text := range map[string]string{v1: allowPolicy, v2: blockPolicy} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "decision.rego"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mount := filepath.Join(base, "mount")
	if err := os.Mkdir(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(v1, filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "decision.rego"), filepath.Join(mount, "decision.rego")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "policies") // the flag names a link to the mount
	if err := os.Symlink(mount, dir); err != nil {
		t.Fatal(err)
	}
	first, err := Compile(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReloader(first, dir, nil, nil)
	if swapped, err := r.Reload(ctx); swapped || err != nil {
		t.Fatalf("first look: swapped %v, %v", swapped, err)
	}
	// The update: ..data now points at the new version.
	tmp := filepath.Join(mount, "..data_tmp")
	if err := os.Symlink(v2, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	if swapped, err := r.Reload(ctx); !swapped || err != nil {
		t.Fatalf("after the update: swapped %v, %v", swapped, err)
	}
	if got := outcomeOf(t, r.Current()); got != "block" {
		t.Fatalf("outcome %s after the update, want block", got)
	}
}

// A new set whose own tests fail, or that gives no decision, is refused;
// the set in service stays.
func TestReloaderRefusesSetsThatFailTheirTestsOrDecideNothing(t *testing.T) {
	ctx := context.Background()
	dir, first := allowDir(t)
	r := NewReloader(first, dir, nil, nil)
	failing := "package guard\n\ntest_blocks if decision.outcome == \"block\"\n"
	if err := os.WriteFile(filepath.Join(dir, "decision_test.rego"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, allowPolicy+"\nchanged := true\n", 2*time.Hour)
	if swapped, err := r.Reload(ctx); swapped || err == nil || !strings.Contains(err.Error(), "1 of its tests fail") {
		t.Fatalf("set failing its tests: swapped %v, %v", swapped, err)
	}
	// Fixing only the tests lets the same policies in.
	passing := "package guard\n\ntest_allows if decision.outcome == \"allow\"\n"
	if err := os.WriteFile(filepath.Join(dir, "decision_test.rego"), []byte(passing), 0o644); err != nil {
		t.Fatal(err)
	}
	if swapped, err := r.Reload(ctx); !swapped || err != nil {
		t.Fatalf("after the tests were fixed: swapped %v, %v", swapped, err)
	}
	second := r.Current()
	os.Remove(filepath.Join(dir, "decision_test.rego"))
	writePolicy(t, dir, "package guard\n", time.Hour) // half-written
	if swapped, err := r.Reload(ctx); swapped || err == nil || !strings.Contains(err.Error(), "no valid decision") {
		t.Fatalf("set without a decision: swapped %v, %v", swapped, err)
	}
	if r.Current() != second || second == first {
		t.Fatal("the engine in service changed, or the set with fixed tests was not swapped in")
	}
}
