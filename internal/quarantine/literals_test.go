package quarantine

import (
	"reflect"
	"testing"

	"github.com/gobwas/glob"

	"github.com/mergeguard/guard/internal/config"
)

func TestLiterals(t *testing.T) {
	tests := []struct {
		glob string
		want []string
	}{
		{".github/quarantine.yml", []string{".github/quarantine.yml"}},
		{"{**/,}quarantine*.{txt,yml,yaml,json}", []string{"quarantine", "."}},
		{"{**/,}flaky{-,_}tests*.{txt,yml}", []string{"flaky", "tests", "."}},
		{"**/a?b", []string{"/a", "b"}},
		{`a\*b`, []string{"a*b"}},
		{"a{b,{c,d}}e", []string{"a", "e"}},
		{"ci/[ab].txt", nil},
		{"a{b", nil},
		{`a\`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			if got := literals(tt.glob); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("literals(%q) = %q, want %q", tt.glob, got, tt.want)
			}
		})
	}
}

// FuzzLiterals checks that the prefilter never rejects a path the glob
// matches.
func FuzzLiterals(f *testing.F) {
	f.Add("{**/,}quarantine*.{txt,yml,yaml,json}", "a/quarantine-x.yml")
	f.Add(`a\{b*c`, "a{bxc")
	f.Add("{a,b\\}c}d", "b}cd")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if config.Wildcards(pattern) > config.MaxWildcards {
			t.Skip("guard.yaml refuses this quarantine glob")
		}
		g, err := glob.Compile(pattern, '/')
		if err != nil {
			return
		}
		if g.Match(path) && !containsAll(path, literals(pattern)) {
			t.Fatalf("%q matches %q but lacks one of %q", pattern, path, literals(pattern))
		}
	})
}
