package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/calendar"
	guardcmd "github.com/mergeguard/guard/internal/command"
)

func runFreeze(ctx context.Context, args []string, s stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(s.err, "Usage:\n  guard freeze start --reason TEXT [--for DURATION] (--repo OWNER/NAME | --org ORG) [--branch GLOB] [--db FILE]\n  guard freeze end (--repo OWNER/NAME | --org ORG) [--db FILE]\n  guard freeze list [--db FILE]\n\nstart and end need one of --repo or --org. An incident freeze holds agent PRs only; human PRs pass.\nA running 'guard serve' on the same database notices within seconds. list only reads the database.")
		if len(args) == 0 {
			return usageErr("missing subcommand: start, end or list")
		}
		return nil
	}
	switch args[0] {
	case "start":
		return freezeStart(ctx, args[1:], s)
	case "end":
		return freezeEnd(ctx, args[1:], s)
	case "list":
		return freezeList(ctx, args[1:], s)
	}
	return usageErr("unknown subcommand %q: want start, end or list", args[0])
}

// scope reads --repo / --org into a freeze scope; verb says what the
// command does with it ("freeze", "end the freezes of").
func scope(verb, repo, org string) (string, string, error) {
	sc, target := "", ""
	switch {
	case repo != "" && org != "":
		return "", "", usageErr("pass either --repo or --org, not both")
	case repo != "":
		sc, target = audit.ScopeRepo, repo
	case org != "":
		sc, target = audit.ScopeOrg, org
	default:
		return "", "", usageErr("name what to %s: --repo OWNER/NAME or --org ORG", verb)
	}
	if err := audit.CheckFreezeTarget(sc, target); err != nil {
		return "", "", usageErr("--%s: %v", sc, err)
	}
	return sc, target, nil
}

// noArgs refuses the words left after the flags: a reason of several words
// without quotes would lose all but its first, and the flags after it.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	return usageErr("unexpected argument %q: flags go before it, and a value with spaces needs quotes (--reason \"INC-9 database failover\")", fs.Arg(0))
}

// parseFor reads --for: a Go duration (90s, 1h30m) or one with days, as
// /guard freeze takes them (1d, 2d12h); at most 90 days, as there.
func parseFor(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil && s != "" {
		d, err = guardcmd.ParseDuration(s)
	}
	switch {
	case errors.Is(err, guardcmd.ErrTooLong) || err == nil && d > guardcmd.MaxDuration:
		return 0, fmt.Errorf("longer than 90 days: leave --for out and end the freeze with 'guard freeze end'")
	case errors.Is(err, guardcmd.ErrNotPositive) || err == nil && d <= 0:
		return 0, fmt.Errorf("a duration must be positive (leave --for out for a freeze that lasts until ended)")
	case err != nil:
		return 0, fmt.Errorf("want a duration like 30m, 2h or 1d")
	}
	return d, nil
}

func openDB(ctx context.Context, db string) (*audit.Store, error) {
	if db != ":memory:" {
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("database %s: %w (pass --db or GUARD_DB; 'guard serve' creates it)", db, err)
		}
	}
	return audit.Open(ctx, db)
}

// operator names who runs the CLI, for the audit trail.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func freezeStart(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("freeze start", "freeze start --reason TEXT [--for DURATION] (--repo OWNER/NAME | --org ORG) [--branch GLOB] [--db FILE]", s)
	reason := fs.String("reason", "", "why (shown on every check run it blocks)")
	var dur time.Duration
	fs.Func("for", "how long, like 30m, 2h or 1d (default: until 'guard freeze end')", func(v string) (err error) {
		dur, err = parseFor(v)
		return err
	})
	repo := fs.String("repo", "", "freeze one repository `OWNER/NAME`")
	org := fs.String("org", "", "freeze every repository of an `ORG`")
	branch := fs.String("branch", "", "only branches matching `GLOB` (default every branch)")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageErr("--reason is required: say why the freeze is declared")
	}
	if *branch != "" {
		if err := calendar.CheckBranchGlob(*branch); err != nil {
			return usageErr("--branch %q is not a valid branch pattern: %v", *branch, err)
		}
	}
	sc, target, err := scope("freeze", *repo, *org)
	if err != nil {
		return err
	}
	store, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now()
	f := audit.ManualFreeze{Scope: sc, Target: target, Branch: *branch, Reason: *reason, By: operator(), From: now}
	if dur > 0 {
		f.Until = now.Add(dur)
	}
	f, err = store.StartFreeze(ctx, f)
	if err != nil {
		return err
	}
	until := "until ended with 'guard freeze end'"
	if !f.Until.IsZero() {
		until = "until " + f.Until.Format(time.RFC3339)
	}
	fmt.Fprintf(s.out, "freeze incident-%d started on %s %s %s\n", f.ID, sc, target, until)
	return nil
}

func freezeEnd(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("freeze end", "freeze end (--repo OWNER/NAME | --org ORG) [--db FILE]", s)
	repo := fs.String("repo", "", "end the freezes of `OWNER/NAME`")
	org := fs.String("org", "", "end the org-wide freezes of `ORG`")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	sc, target, err := scope("end the freezes of", *repo, *org)
	if err != nil {
		return err
	}
	store, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.EndFreezes(ctx, sc, target, operator())
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no active freeze on %s %s (see 'guard freeze list')", sc, target)
	}
	fmt.Fprintf(s.out, "ended %d freeze(s) on %s %s\n", n, sc, target)
	return nil
}

func freezeList(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("freeze list", "freeze list [--db FILE]", s)
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	store, err := openAuditDB(ctx, *db) // only reads
	if err != nil {
		return err
	}
	defer store.Close()
	active, err := store.ActiveFreezes(ctx, time.Now())
	if err != nil {
		return err
	}
	if len(active) == 0 {
		fmt.Fprintln(s.out, "no active freezes")
		return nil
	}
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tTARGET\tBRANCH\tSINCE\tUNTIL\tBY\tREASON")
	for _, f := range active {
		until := "-"
		if !f.Until.IsZero() {
			until = f.Until.Format(time.RFC3339)
		}
		branch := f.Branch
		if branch == "" {
			branch = "*"
		}
		fmt.Fprintf(tw, "incident-%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Scope, f.Target, branch,
			f.From.Format(time.RFC3339), until, f.By, f.Reason)
	}
	return tw.Flush()
}
