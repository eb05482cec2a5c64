// Command guard is Merge Guard: a GitHub App that evaluates pull requests
// written by agents against Rego policies and publishes the merge-guard check.
//
// main stays thin: each subcommand parses its flags into a config struct and
// calls a function that returns an error, so tests can run the whole guard
// in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of guard.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdio stdio) error
}

// stdio are the streams a command writes to.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the app: webhook intake, workers, scheduler, HTTP endpoints", runServe},
		{"eval", "offline dry run: print the decision JSON for a webhook payload", runEval},
		{"policy", "policy tools: 'guard policy test [DIR]' runs the Rego unit tests", runPolicy},
		{"audit", "audit trail: 'guard audit export' and 'guard audit verify'", runAudit},
		{"freeze", "incident freezes: 'guard freeze start|end|list'", runFreeze},
		{"setup", "create the GitHub App from app-manifest.yml (manifest flow)", runSetup},
		{"doctor", "check an installed guard: credentials, required check, permissions, config, teams, policies", runDoctor},
	}
}

// errUsage marks an error whose message is a usage problem; it exits with 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}

// run runs guard with args and returns the exit code.
func run(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(s.err)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], s)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(s.err, "guard %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(s.err, "guard %s: %v\n", c.name, err)
			var ec interface{ ExitCode() int }
			if errors.As(err, &ec) {
				return ec.ExitCode()
			}
			return 1
		}
	}
	fmt.Fprintf(s.err, "guard: unknown command %q\n\n", args[0])
	usage(s.err)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: guard <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'guard <command> --help' for the flags of a command.")
}

// usageErr wraps a message as a usage error (exit 2).
func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// newFlagSet returns a flag set for "guard name" that prints its usage to
// s.err and returns errors instead of exiting.
func newFlagSet(name, synopsis string, s stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("guard "+name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(s.err, "Usage: guard %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v (see 'guard %s --help')", errUsage, err, fs.Name()[len("guard "):])
	}
	return nil
}
