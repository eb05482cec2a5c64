package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	"github.com/mergeguard/guard/internal/policy"
	"github.com/mergeguard/guard/policies"
)

// policyTestFailed is a run of policy tests with failures; it exits 1.
type policyTestFailed struct{ passed, failed int }

func (e policyTestFailed) Error() string {
	return fmt.Sprintf("%d of %d policy tests failed", e.failed, e.passed+e.failed)
}

// runPolicy dispatches "guard policy <subcommand>"; only "test" exists.
func runPolicy(ctx context.Context, args []string, s stdio) error {
	if len(args) == 0 {
		return usageErr("missing subcommand: guard policy test [-v] [DIR]")
	}
	switch args[0] {
	case "test":
		return runPolicyTest(ctx, args[1:], s)
	case "-h", "--help", "help":
		fmt.Fprintln(s.err, "Usage: guard policy test [-v] [DIR]\n\nRuns the Rego unit tests (*_test.rego) of the embedded policies, or of DIR.")
		return nil
	}
	return usageErr("unknown subcommand %q: guard policy test [-v] [DIR]", args[0])
}

// runPolicyTest runs the Rego unit tests of the embedded policies or of DIR,
// printing a PASS/FAIL line per test and "N passed, N failed". It fails when
// a test fails, none ran, or the policies do not compile (file:line:col).
func runPolicyTest(ctx context.Context, args []string, s stdio) error {
	fl := newFlagSet("policy test", "policy test [-v] [DIR]", s)
	verbose := fl.Bool("v", false, "also print print() output, every case of data-driven tests, and traces of failures")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	var fsys fs.FS = policies.FS
	switch fl.NArg() {
	case 0:
	case 1:
		dir := fl.Arg(0)
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("policy directory: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("policy directory %s is not a directory", dir)
		}
		fsys = os.DirFS(dir)
	default:
		return usageErr("want at most one DIR, got %d arguments", fl.NArg())
	}
	passed, failed, err := policy.Test(ctx, fsys, s.out, *verbose)
	if err != nil {
		return err
	}
	if passed+failed == 0 {
		return fmt.Errorf("no policy tests found (rules named test_* in *_test.rego files)")
	}
	if failed > 0 {
		return policyTestFailed{passed, failed}
	}
	return nil
}
