package policy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Test runs the Rego unit tests (rules named test_* in *_test.rego files) of
// the policies in fsys with OPA's tester, under the same capabilities as
// Compile. It writes one line per test, "PASS name (file:line)" or
// "FAIL name (file:line)" (ERROR when the test could not be evaluated), in
// file and line order, and returns the counts. verbose adds the output of
// print() calls and, for failures, an evaluation trace. Data-driven tests
// (test_x[name] if …) list their failing cases by name, all cases when
// verbose. A policy set that
// does not parse or compile is an error naming file:line:col.
func Test(ctx context.Context, fsys fs.FS, w io.Writer, verbose bool) (passed, failed int, err error) {
	srcs, err := readSources(fsys, true)
	if err != nil {
		return 0, 0, err
	}
	modules := make(map[string]*ast.Module, len(srcs))
	for _, s := range srcs {
		m, err := parseModule(s)
		if err != nil {
			return 0, 0, err
		}
		modules[s.name] = m
	}
	compiler := ast.NewCompiler().
		WithCapabilities(deterministicCapabilities()).
		WithEnablePrintStatements(verbose).
		WithDefaultRegoVersion(ast.RegoV1)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetDefaultRegoVersion(ast.RegoV1).
		SetModules(modules).
		CapturePrintOutput(verbose).
		EnableTracing(verbose)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("compile policy tests: %w", describe(err))
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i].Location, results[j].Location
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Row < b.Row
	})
	for _, r := range results {
		status := "PASS"
		switch {
		case r.Error != nil:
			status = "ERROR"
		case r.Fail:
			status = "FAIL"
		case r.Skip:
			status = "SKIP"
		}
		fmt.Fprintf(w, "%s %s (%s:%d)\n", status, r.Name, r.Location.File, r.Location.Row)
		if r.Error != nil {
			fmt.Fprintf(w, "    %v\n", r.Error)
		}
		for name, sub := range r.SubResults.Iter {
			if sub.Fail || verbose {
				fmt.Fprintf(w, "    %s %s\n", map[bool]string{true: "FAIL", false: "PASS"}[sub.Fail], strings.Join(name, " / "))
			}
		}
		if verbose && len(r.Output) > 0 {
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(strings.TrimRight(string(r.Output), "\n"), "\n", "\n    "))
		}
		if verbose && !r.Pass() && !r.Skip && len(r.Trace) > 0 {
			topdown.PrettyTraceWithLocation(indent{w}, r.Trace)
		}
		switch {
		case r.Pass():
			passed++
		case r.Skip:
		default:
			failed++
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed, nil
}

// indent prefixes every write with four spaces (traces are written line by
// line).
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := io.WriteString(i.w, "    "); err != nil {
		return 0, err
	}
	return i.w.Write(p)
}

// FailedTests picks the failing tests out of Test's report: their FAIL or
// ERROR lines, with a data-driven test's failing cases in brackets.
func FailedTests(report string) []string {
	var lines []string
	for l := range strings.Lines(report) {
		l = strings.TrimRight(l, "\n")
		switch {
		case strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "ERROR "):
			lines = append(lines, l)
		case strings.HasPrefix(l, "    FAIL ") && len(lines) > 0:
			lines[len(lines)-1] += " [" + strings.TrimSpace(l) + "]"
		}
	}
	return lines
}

// TestsPass runs the tests of fsys (see Test) and returns an error naming
// those that fail, or nil when none does. guard serve and a reload refuse a
// policy directory whose tests fail.
func TestsPass(ctx context.Context, fsys fs.FS) error {
	var out bytes.Buffer
	_, failed, err := Test(ctx, fsys, &out, false)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of its tests fail: %s", failed, strings.Join(FailedTests(out.String()), "; "))
	}
	return nil
}
