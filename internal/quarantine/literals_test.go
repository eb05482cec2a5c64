package quarantine

import (
	"reflect"
	"strings"
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
		// As the guard matches (the glob's backtracking takes minutes on
		// some long inputs the fuzzer finds; see globRegexp).
		match := g.Match
		if re, err := globRegexp(pattern); err == nil {
			match = re.MatchString
		}
		if match(path) && !containsAll(path, literals(pattern)) {
			t.Fatalf("%q matches %q but lacks one of %q", pattern, path, literals(pattern))
		}
	})
}

// FuzzGlobRegexpMatchesGlob: the regular expression globRegexp makes of a
// glob matches exactly the paths the glob matches, on inputs short enough
// for the glob's backtracking; and it translates every glob that compiles
// and guard.yaml accepts.
func FuzzGlobRegexpMatchesGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"{**/,}quarantine*.{txt,yml,yaml,json}", "a/quarantine-x.yml"},
		{"**/flaky-tests.txt", "x/y/flaky-tests.txt"},
		{"a?c/*.go", "abc/x.go"}, {"a?c/*.go", "a/c/x.go"},
		{"[a-c]x[!/]y", "bx/y"}, {"[!a-c]x", "/x"}, {"[ab-]z", "-z"},
		{"{a,{b,c*}}d", "cxd"}, {"{,x}y", "y"}, {`a\*b\{`, "a*b{"},
		{"*{,*}{*}{7,0}", "00000k00000007"}, {"é?*", "éé/"}, {"a**b", "a/x/b"},
		{"a,b}", "a,b}"}, {"x]", "x]"}, {"[]]", "]"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		if len(pattern) > 24 || len(path) > 48 {
			t.Skip("long inputs take the glob too long")
		}
		g, err := glob.Compile(pattern, '/')
		if err != nil {
			return
		}
		re, err := globRegexp(pattern)
		if err != nil {
			if config.Wildcards(pattern) <= config.MaxWildcards {
				t.Fatalf("globRegexp(%q): %v; the glob compiles", pattern, err)
			}
			return
		}
		if got, want := re.MatchString(path), g.Match(path); got != want {
			t.Fatalf("%q on %q: regexp %s says %v, the glob %v", pattern, path, re, got, want)
		}
	})
}

// TestGlobOnLongPathsIsLinear: a glob guard.yaml accepts, with three
// wildcards arranged as FuzzLiterals found them, against file names as long
// as GitHub allows. The glob's backtracking took ~35 s on 1,300 bytes; as a
// regular expression it is a linear scan (this test takes milliseconds).
func TestGlobOnLongPathsIsLinear(t *testing.T) {
	const glob = "*{,*}{*}{7,0}"
	if config.Wildcards(glob) > config.MaxWildcards {
		t.Fatalf("%q is refused by guard.yaml; the test needs one it accepts", glob)
	}
	ps := compileGlobs([]string{glob})
	if ps[0].re == nil {
		t.Fatalf("%q was not translated to a regular expression", glob)
	}
	long := "00000k0000000" + strings.Repeat("\u0548", 2000) // 4 kB, no 7 or 0 at the end
	if matchAny(ps, long) {
		t.Errorf("%q matches a path that does not end in 7 or 0", glob)
	}
	if !matchAny(ps, long+"7") {
		t.Errorf("%q does not match a path ending in 7", glob)
	}
}
