package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/calendar"
)

func runFreeze(ctx context.Context, args []string, s stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(s.err, "Usage:\n  guard freeze start --reason TEXT [--for DURATION] [--repo OWNER/NAME | --org ORG] [--branch GLOB]\n  guard freeze end [--repo OWNER/NAME | --org ORG]\n  guard freeze list\n\nA running 'guard serve' on the same database notices within seconds. list only reads the database.")
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

// scope reads --repo / --org into a freeze scope.
func scope(repo, org string) (string, string, error) {
	switch {
	case repo != "" && org != "":
		return "", "", usageErr("pass either --repo or --org, not both")
	case repo != "":
		if strings.Count(repo, "/") != 1 || strings.HasPrefix(repo, "/") || strings.HasSuffix(repo, "/") {
			return "", "", usageErr("--repo %q: want OWNER/NAME", repo)
		}
		return "repo", repo, nil
	case org != "":
		if strings.Contains(org, "/") {
			return "", "", usageErr("--org %q: want an organization login, without a slash", org)
		}
		return "org", org, nil
	}
	return "", "", usageErr("name what to freeze: --repo OWNER/NAME or --org ORG")
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
	fs := newFlagSet("freeze start", "freeze start --reason TEXT [--for DURATION] [--repo OWNER/NAME | --org ORG] [--branch GLOB]", s)
	reason := fs.String("reason", "", "why (shown on every check run it blocks)")
	dur := fs.Duration("for", 0, "how long, like 2h or 30m (default: until 'guard freeze end')")
	repo := fs.String("repo", "", "freeze one repository `OWNER/NAME`")
	org := fs.String("org", "", "freeze every repository of an `ORG`")
	branch := fs.String("branch", "", "only branches matching `GLOB` (default every branch)")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageErr("--reason is required: say why the freeze is declared")
	}
	if *dur < 0 {
		return usageErr("--for %s: a duration must be positive", *dur)
	}
	if *branch != "" {
		if err := calendar.CheckBranchGlob(*branch); err != nil {
			return usageErr("--branch %q is not a valid branch pattern: %v", *branch, err)
		}
	}
	sc, target, err := scope(*repo, *org)
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
	if *dur > 0 {
		f.Until = now.Add(*dur)
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
	fs := newFlagSet("freeze end", "freeze end [--repo OWNER/NAME | --org ORG]", s)
	repo := fs.String("repo", "", "end the freezes of `OWNER/NAME`")
	org := fs.String("org", "", "end the org-wide freezes of `ORG`")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sc, target, err := scope(*repo, *org)
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
	fs := newFlagSet("freeze list", "freeze list", s)
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
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
