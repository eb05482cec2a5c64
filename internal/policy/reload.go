package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader serves the last policy set that compiled and swaps in a new one
// when the policy directory changes and the new set compiles. A set that
// does not compile is reported through onError (file:line:col: reason) and
// the previous engine stays in service; it is reported once per change of
// the directory, not on every poll. Current is safe for concurrent use;
// Watch and Reload serialize among themselves.
type Reloader struct {
	dir      string
	onError  func(error)
	onReload func(*Engine)

	current atomic.Pointer[Engine]

	mu     sync.Mutex // guards stamp and the check-compile-swap sequence
	stamp  string     // hash of the names and contents of the *.rego files last looked at
	failed string     // stamp (tests included) of the last set that was refused
}

// NewReloader returns a Reloader of the policies in dir that serves e until
// a changed set compiles. onError and onReload may be nil.
func NewReloader(e *Engine, dir string, onError func(error), onReload func(*Engine)) *Reloader {
	r := &Reloader{dir: dir, onError: onError, onReload: onReload}
	r.current.Store(e)
	return r
}

// Current returns the engine in service.
func (r *Reloader) Current() *Engine { return r.current.Load() }

// Watch polls the directory every interval until ctx is done, reloading when
// it changed (see Reload).
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := r.Reload(ctx); err != nil && r.onError != nil {
				r.onError(err)
			}
		}
	}
}

// Reload checks the directory now. When the names or contents of its
// *.rego files changed since the last look and the policies differ from the
// engine in service, it compiles them, runs their tests and, when both
// succeed, swaps the new engine in (and calls onReload). It reports whether
// it swapped. An error means the directory could not be read, the new set
// does not compile, gives no valid decision for a sample PR (see Compile) or
// fails its tests; the engine in service is kept. The same broken set is
// reported once.
func (r *Reloader) Reload(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := dirStamp(r.dir)
	if err != nil {
		return false, fmt.Errorf("reload policies from %s: %w", r.dir, err)
	}
	if stamp == r.stamp {
		return false, nil
	}
	fsys := os.DirFS(r.dir)
	srcs, err := readSources(fsys, false)
	if err != nil {
		return false, fmt.Errorf("reload policies from %s: %w", r.dir, err)
	}
	r.stamp = stamp
	rev := revision(srcs)
	if cur := r.Current(); cur != nil && rev == cur.Revision() {
		return false, nil
	}
	if stamp == r.failed {
		return false, nil
	}
	e, err := Compile(ctx, fsys)
	if err == nil {
		// The set's own tests must pass too, as `guard policy test` shows.
		if err = TestsPass(ctx, fsys); err != nil {
			err = fmt.Errorf("%w (guard policy test -v %s shows why)", err, r.dir)
		}
	}
	if err != nil {
		r.failed = stamp // a fix of the tests alone is looked at again
		return false, fmt.Errorf("reload policies from %s (keeping revision %s): %w", r.dir, r.Current().Revision(), err)
	}
	r.failed = ""
	r.current.Store(e)
	if r.onReload != nil {
		r.onReload(e)
	}
	return true, nil
}

// dirStamp summarizes the *.rego files under dir (tests included) by name
// and content. It follows symbolic links, the directory's own included: a
// policy directory is often a link, or a Kubernetes ConfigMap whose files
// link into a directory that is swapped on update, and their names, sizes
// and times would not change. Policy files are small enough to hash every
// few seconds.
func dirStamp(dir string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var names []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if filepath.Ext(p) == ".rego" {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, p := range names {
		b, err := os.ReadFile(p) // through a link
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
