// Package dirtest helps tests with directories: what a directory holds,
// to show that a command changed nothing in it, and a policy directory
// made of the embedded policies with files added or replaced.
package dirtest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/mergeguard/guard/policies"
)

// State is every entry of dir with the SHA-256 of its content, sorted, e.g.
// "guard.db 1a2b…" (a subdirectory is "name/"): equal states mean nothing
// in dir was created, removed or written.
func State(tb testing.TB, dir string) []string {
	tb.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.IsDir() {
			out = append(out, e.Name()+"/")
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %x", e.Name(), sha256.Sum256(b)))
	}
	sort.Strings(out)
	return out
}

// Policies writes the embedded policies and files (name → text) to a new
// temporary directory and returns it.
func Policies(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		tb.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
