package quarantine

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mergeguard/guard/internal/config"
)

// TestCompiledGlobs: a quarantine_files list is compiled once and its
// patterns reused; lists that join to the same text stay apart; the cache
// is bounded; goroutines share it.
func TestCompiledGlobs(t *testing.T) {
	compiled.Lock()
	compiled.lists = nil
	compiled.Unlock()

	a := compiledGlobs(config.DefaultQuarantineFiles())
	b := compiledGlobs(config.DefaultQuarantineFiles())
	if len(a) != 3 || &a[0] != &b[0] {
		t.Fatalf("the same list compiled twice (%p, %p) or not whole (%d patterns)", &a[0], &b[0], len(a))
	}

	// ["ab", "c"] and ["a", "bc"] (or ["abc"]) must not share an entry.
	for _, tt := range []struct {
		globs []string
		path  string
		want  bool
	}{
		{[]string{"ab", "c"}, "ab", true},
		{[]string{"a", "bc"}, "ab", false},
		{[]string{"a", "bc"}, "bc", true},
		{[]string{"abc"}, "abc", true},
		{[]string{"abc"}, "ab", false},
		{[]string{"ab", "c"}, "bc", false},
	} {
		if got := matchAny(compiledGlobs(tt.globs), tt.path); got != tt.want {
			t.Errorf("globs %q on %q: %v, want %v", tt.globs, tt.path, got, tt.want)
		}
	}

	for i := range 3 * maxCompiled {
		ps := compiledGlobs([]string{fmt.Sprintf("ci/list-%d.txt", i)})
		if !matchAny(ps, fmt.Sprintf("ci/list-%d.txt", i)) || matchAny(ps, "ci/list-x.txt") {
			t.Fatalf("list %d compiled wrong", i)
		}
		compiled.Lock()
		n := len(compiled.lists)
		compiled.Unlock()
		if n > maxCompiled {
			t.Fatalf("%d lists kept, want at most %d", n, maxCompiled)
		}
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				globs := []string{"**/flaky.txt", fmt.Sprintf("ci/%d.txt", (g+i)%5)}
				if !matchAny(compiledGlobs(globs), "a/b/flaky.txt") {
					t.Error("shared patterns stopped matching")
					return
				}
			}
		})
	}
	wg.Wait()
}
