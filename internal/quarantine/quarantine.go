// Package quarantine recognises test files, quarantine-list files and the
// skip/quarantine markers a diff adds.
//
// Contract:
//   - Annotate sets, in place, File.Test, File.QuarantineList and
//     File.Markers for every changed file of a policy input, lists the files
//     with markers in Input.MarkedFiles, and keeps
//     File.AddedLines only for test and quarantine-list files (every other
//     file gets an empty list; Additions and Deletions are untouched). A file
//     whose AddedLines is nil has them parsed from its Patch first.
//   - Annotate is deterministic and idempotent: annotating twice gives the
//     same input. It reads nothing but its argument; the patterns it uses
//     are compiled once (its own at package initialisation, each
//     quarantine_files list the first time it is seen) and never change, so
//     it is safe to call from any number of goroutines on different inputs.
//   - Only added lines count: a marker on a context or removed line of the
//     diff is not a marker. Within a line, comments and the contents of
//     string literals are ignored, so a line that merely mentions a skip
//     ("// we no longer skip this", it('does not skip')) is no marker.
//     Multi-line comments and strings are not tracked across lines.
//   - Test files are recognised by path the way policies/README.md
//     documents; quarantine-list files by Input.QuarantineFiles, globs in
//     OPA's glob.match syntax with "/" as the separator (* stays within a
//     path segment, ** crosses them). A pattern that does not compile (the
//     configuration refuses those) matches only the path equal to it.
package quarantine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/gobwas/glob"

	"github.com/mergeguard/guard/internal/pr"
)

// KindQuarantineList is the kind of the markers of a quarantine-list file:
// each non-blank added line is an entry.
const KindQuarantineList = "quarantine-list"

// Kinds of the whole-file markers (line 0).
const (
	KindRemovedTest     = "removed-test"
	KindRenamedTest     = "renamed-test"
	KindUnreadablePatch = "unreadable-patch"
)

// Annotate marks the test files, quarantine-list files and added
// skip/quarantine markers of in.Files, and drops the added lines of the other
// files. A nil in is left alone.
func Annotate(in *pr.Input) {
	if in == nil {
		return
	}
	lists := compiledGlobs(in.QuarantineFiles)
	in.MarkedFiles = []int{}
	for i := range in.Files {
		f := &in.Files[i]
		if f.AddedLines == nil && f.Patch != "" {
			f.AddedLines = pr.AddedLines(f.Patch)
		}
		f.Test = IsTest(f.Filename)
		f.QuarantineList = matchAny(lists, f.Filename)
		f.Markers = []pr.Marker{}
		// Deleting a test, or renaming it to a name no runner picks up,
		// quarantines it as surely as a skip marker.
		if f.Status == "renamed" && !f.Test && f.PreviousFilename != "" && IsTest(f.PreviousFilename) {
			f.AddedLines = []pr.Line{}
			f.Markers = append(f.Markers, pr.Marker{Kind: KindRenamedTest, Text: "test file " + f.PreviousFilename + " renamed to " + f.Filename + ", which is no test file"})
			in.MarkedFiles = append(in.MarkedFiles, i)
			continue
		}
		if !f.Test && !f.QuarantineList {
			f.AddedLines = []pr.Line{}
			continue
		}
		if f.Test && f.Status == "removed" {
			f.Markers = append(f.Markers, pr.Marker{Kind: KindRemovedTest, Text: "test file " + f.Filename + " deleted"})
		}
		if f.Additions > 0 && len(f.AddedLines) == 0 && f.Patch == "" {
			// GitHub leaves out the patch of large diffs: what they add
			// cannot be checked, so it is not taken as clean.
			f.Markers = append(f.Markers, pr.Marker{Kind: KindUnreadablePatch,
				Text: fmt.Sprintf("%d added line(s) GitHub sent no patch for (a large diff): not checked for skipped tests", f.Additions)})
		}
		if f.AddedLines == nil {
			f.AddedLines = []pr.Line{}
		}
		var lang *language
		if f.Test {
			lang = languageOf(f.Filename)
		}
		for _, l := range f.AddedLines {
			kind := ""
			if lang != nil {
				kind = lang.marker(l.Text)
			}
			if kind == "" && f.QuarantineList && strings.TrimSpace(l.Text) != "" {
				kind = KindQuarantineList
			}
			if kind != "" {
				f.Markers = append(f.Markers, pr.Marker{Line: l.Number, Text: l.Text, Kind: kind})
			}
		}
		if len(f.Markers) > 0 {
			in.MarkedFiles = append(in.MarkedFiles, i)
		}
	}
}

// IsTest reports whether path names a test file: Go/Python/Ruby *_test.*,
// Ruby *_spec.rb, Python/Ruby test_*.py/.rb, Python tests.py (Django) and
// conftest.py (pytest, which can skip tests from there), *.test.*, *.spec.*
// and Cypress *.cy.* (JS/TS and others), Deno *_test.js/ts (and .jsx, .tsx,
// .mjs), Java/Kotlin/C# *Test, *Tests (and Java/Kotlin *IT, Kotest *Spec.kt),
// anything under a test/, tests/, spec/, __tests__/, e2e/ or cypress/
// directory or a .NET test project's directory (*.Tests/, *.Test/,
// *.UnitTests/, *.IntegrationTests/, *.Specs/), and every Rust file
// (#[ignore] only means something on tests, and Rust unit tests live in
// #[cfg(test)] modules of ordinary files). Matching is case-sensitive.
func IsTest(path string) bool {
	base := path[strings.LastIndexByte(path, '/')+1:]
	switch {
	case hasAnySuffix(path, "_test.go", "_test.py", "_test.rb", "_spec.rb", ".rs"):
	case strings.HasPrefix(base, "test_") && hasAnySuffix(base, ".py", ".rb"):
	case base == "tests.py" || base == "conftest.py":
	case strings.Contains(base, ".test.") || strings.Contains(base, ".spec.") || strings.Contains(base, ".cy."):
	case hasAnySuffix(path, "_test.js", "_test.jsx", "_test.ts", "_test.tsx", "_test.mjs"):
	case hasAnySuffix(path, "Test.java", "Tests.java", "IT.java", "Test.kt", "Tests.kt", "IT.kt", "Spec.kt", "Test.cs", "Tests.cs"):
	case inDir(path, "test") || inDir(path, "tests") || inDir(path, "spec") || inDir(path, "__tests__") ||
		inDir(path, "e2e") || inDir(path, "cypress"):
	case inDotNetTestProject(path):
	default:
		return false
	}
	return true
}

// dotNetTestProjects are the name endings of .NET test project directories
// (Shop.Tests/CartShould.cs: xUnit and NUnit test classes need not end in
// Test).
var dotNetTestProjects = []string{".Tests", ".Test", ".UnitTests", ".IntegrationTests", ".Specs"}

// inDotNetTestProject reports whether a directory on path is named
// <project><ending> for an ending of dotNetTestProjects.
func inDotNetTestProject(path string) bool {
	for {
		i := strings.IndexByte(path, '/')
		if i < 0 {
			return false // the rest is the file name
		}
		dir := path[:i]
		for _, s := range dotNetTestProjects {
			if len(dir) > len(s) && strings.HasSuffix(dir, s) {
				return true
			}
		}
		path = path[i+1:]
	}
}

func hasAnySuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

// inDir reports whether path lies under a directory named dir, at any depth.
func inDir(path, dir string) bool {
	if len(path) > len(dir) && path[len(dir)] == '/' && strings.HasPrefix(path, dir) {
		return true
	}
	return strings.Contains(path, "/"+dir+"/")
}

// pattern is one compiled quarantine_files glob, or the literal path of one
// that does not compile.
type pattern struct {
	re      *regexp.Regexp // the glob as a regular expression (globRegexp)
	g       *glob.Pattern  // the glob, for one globRegexp does not translate
	literal string
	// needs are literal pieces of the glob that every matching path
	// contains: a cheap test before the backtracking match.
	needs []string
}

// compiled keeps the compiled quarantine_files lists seen, by their globs:
// a guard has one list, or one per repository that overrides it, and
// compiling a list on every evaluation (gobwas and regexp, a few dozen
// allocations per glob) cost more CPU than the policy's decision (perf of
// the backlog's drain: 3.4 % against 2.2 %). Compiled patterns are only
// read, so goroutines share them. Bounded: past maxCompiled lists (a
// configuration reloaded with ever new globs) it starts again.
var compiled struct {
	sync.Mutex
	lists map[string][]pattern
}

const maxCompiled = 64

// compiledGlobs is compileGlobs through the compiled cache.
func compiledGlobs(globs []string) []pattern {
	var k strings.Builder
	for _, g := range globs {
		k.WriteString(strconv.Itoa(len(g)))
		k.WriteByte(':')
		k.WriteString(g)
	}
	key := k.String()
	compiled.Lock()
	ps, ok := compiled.lists[key]
	compiled.Unlock()
	if ok {
		return ps
	}
	ps = compileGlobs(globs)
	compiled.Lock()
	if compiled.lists == nil || len(compiled.lists) >= maxCompiled {
		compiled.lists = make(map[string][]pattern)
	}
	compiled.lists[key] = ps
	compiled.Unlock()
	return ps
}

func compileGlobs(globs []string) []pattern {
	out := make([]pattern, 0, len(globs))
	for _, s := range globs {
		g, err := glob.Compile(s, '/')
		if err != nil {
			out = append(out, pattern{literal: s})
			continue
		}
		p := pattern{g: g, needs: literals(s)}
		if re, err := globRegexp(s); err == nil {
			p.re = re
		}
		out = append(out, p)
	}
	return out
}

func matchAny(ps []pattern, path string) bool {
	for _, p := range ps {
		if p.g == nil {
			if p.literal == path {
				return true
			}
			continue
		}
		if !containsAll(path, p.needs) {
			continue
		}
		if p.re != nil {
			if p.re.MatchString(path) {
				return true
			}
		} else if p.g.Match(path) {
			return true
		}
	}
	return false
}

func containsAll(s string, needs []string) bool {
	for _, n := range needs {
		if !strings.Contains(s, n) {
			return false
		}
	}
	return true
}

// literals returns the pieces of a glob outside *, ?, and {...} (with
// \-escapes resolved): text that every path the glob matches contains. For
// a pattern with a character class ([...]) or unbalanced braces it returns
// none.
func literals(g string) []string {
	if strings.IndexByte(g, '[') >= 0 {
		return nil
	}
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '\\':
			if i+1 == len(g) {
				return nil
			}
			i++
			cur.WriteByte(g[i])
		case '*', '?':
			flush()
		case '{':
			flush()
			end := closingBrace(g, i)
			if end < 0 {
				return nil
			}
			i = end
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// closingBrace returns the index of the brace closing the one at g[open],
// or -1.
func closingBrace(g string, open int) int {
	depth := 0
	for i := open; i < len(g); i++ {
		switch g[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}
