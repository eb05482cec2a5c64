package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/config"
)

const auditUsage = `Usage:
  guard audit export (--week YYYY-Www | --week last | --from T --to T) [--format csv|jsonl] [--out FILE] [--db PATH] [--config FILE]
  guard audit verify [--anchor HASH] [--db PATH]

export writes the audit trail of a span: an ISO week (Monday 00:00 to Monday
00:00 in the configured time zone; "last" is the last complete one) or
--from/--to in RFC 3339. Its last line on stderr names the chain head; keep it
and pass it to 'verify --anchor' later to detect a truncated trail.
verify checks the hash chain: exit 0 when intact, 3 naming the first broken
record. Both work while 'guard serve' runs on the same database, and never
modify the database: they open it read-only, without migrating it or
changing its journal mode, so they can check a backup copy kept as evidence.`

func runAudit(ctx context.Context, args []string, s stdio) error {
	return auditCommand(ctx, args, s, time.Now)
}

// auditCommand is runAudit with a clock, for tests.
func auditCommand(ctx context.Context, args []string, s stdio, now func() time.Time) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(s.err, auditUsage)
		if len(args) == 0 {
			return usageErr("missing subcommand: export or verify")
		}
		return nil
	}
	switch args[0] {
	case "export":
		return auditExport(ctx, args[1:], s, now)
	case "verify":
		return auditVerify(ctx, args[1:], s)
	}
	return usageErr("unknown subcommand %q: want export or verify", args[0])
}

// exportSpan is what 'guard audit export' was asked for.
type exportSpan struct {
	week     string // "" or YYYY-Www or "last"
	from, to string // RFC 3339
}

// resolve turns the flags into [from, to) and a label, in loc.
func (e exportSpan) resolve(loc *time.Location, now time.Time) (from, to time.Time, label string, err error) {
	switch {
	case e.week != "" && (e.from != "" || e.to != ""):
		return from, to, "", usageErr("pass either --week or --from/--to, not both")
	case e.week == "last":
		y, w := audit.LastCompleteWeek(now, loc)
		from, to = audit.WeekBounds(y, w, loc)
		return from, to, audit.FormatWeek(y, w), nil
	case e.week != "":
		y, w, err := audit.ParseWeek(e.week)
		if err != nil {
			return from, to, "", usageErr("--week: %v (or --week last)", err)
		}
		from, to = audit.WeekBounds(y, w, loc)
		return from, to, audit.FormatWeek(y, w), nil
	case e.from == "" && e.to == "":
		return from, to, "", usageErr("name the span: --week YYYY-Www, --week last, or --from T --to T")
	case e.from == "" || e.to == "":
		return from, to, "", usageErr("pass both --from and --to (RFC 3339, e.g. 2026-03-02T00:00:00Z)")
	}
	if from, err = time.Parse(time.RFC3339, e.from); err != nil {
		return from, to, "", usageErr("--from %q: want RFC 3339, e.g. 2026-03-02T00:00:00Z", e.from)
	}
	if to, err = time.Parse(time.RFC3339, e.to); err != nil {
		return from, to, "", usageErr("--to %q: want RFC 3339, e.g. 2026-03-09T00:00:00Z", e.to)
	}
	if !to.After(from) {
		return from, to, "", usageErr("--to %s must be after --from %s", e.to, e.from)
	}
	return from, to, e.from + " to " + e.to, nil
}

func auditExport(ctx context.Context, args []string, s stdio, now func() time.Time) error {
	fs := newFlagSet("audit export", "audit export (--week YYYY-Www | --week last | --from T --to T) [--format csv|jsonl] [--out FILE] [--db PATH] [--config FILE]", s)
	var span exportSpan
	fs.StringVar(&span.week, "week", "", "ISO `week` YYYY-Www, or \"last\" for the last complete week in the configured zone")
	fs.StringVar(&span.from, "from", "", "start `time` (RFC 3339, inclusive)")
	fs.StringVar(&span.to, "to", "", "end `time` (RFC 3339, exclusive)")
	format := fs.String("format", "csv", "output `format`: csv or jsonl")
	out := fs.String("out", "", "write to `FILE` (atomically) instead of stdout")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	cfgPath := fs.String("config", envOr("GUARD_CONFIG", ""), "policy settings `file` for the time zone (GUARD_CONFIG; default guard.yaml if present, else UTC)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (see 'guard audit export --help')", fs.Arg(0))
	}
	if *format != audit.FormatCSV && *format != audit.FormatJSONL {
		return usageErr("--format %q: want csv or jsonl", *format)
	}
	loc, err := auditLocation(*cfgPath)
	if err != nil {
		return err
	}
	from, to, label, err := span.resolve(loc, now())
	if err != nil {
		return err
	}
	store, err := openAuditDB(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()

	var head string
	var n int
	write := func(w io.Writer) error {
		var err error
		head, n, err = store.Export(ctx, from, to, *format, w)
		return err
	}
	if *out == "" {
		err = write(s.out)
	} else {
		if err = audit.WriteFileAtomic(*out, write); err != nil {
			err = fmt.Errorf("write %s: %w", *out, err)
		}
	}
	if err != nil {
		return err
	}
	dest := "stdout"
	if *out != "" {
		dest = *out
	}
	fmt.Fprintf(s.err, "exported %d records of %s [%s, %s) to %s\n", n, label,
		from.Format(time.RFC3339), to.Format(time.RFC3339), dest)
	if head == "" {
		head = "none (empty trail)"
	}
	fmt.Fprintf(s.err, "chain head: %s\n", head)
	return nil
}

// chainBroken is the error of a failed verify; it exits with 3.
type chainBroken struct{ err error }

func (e chainBroken) Error() string { return e.err.Error() }
func (e chainBroken) Unwrap() error { return e.err }
func (e chainBroken) ExitCode() int { return 3 }

func auditVerify(ctx context.Context, args []string, s stdio) error {
	fs := newFlagSet("audit verify", "audit verify [--anchor HASH] [--db PATH]", s)
	anchor := fs.String("anchor", "", "a chain head `HASH` printed by an earlier export: also detect a truncated tail")
	db := fs.String("db", envOr("GUARD_DB", "guard.db"), "SQLite database `file` (GUARD_DB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (see 'guard audit verify --help')", fs.Arg(0))
	}
	if a := *anchor; a != "" && (len(a) != 64 || strings.Trim(strings.ToLower(a), "0123456789abcdef") != "") {
		return usageErr("--anchor %q: want the 64 hex digits of a chain head", a)
	}
	store, err := openAuditDB(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	res, err := store.Verify(ctx, strings.ToLower(*anchor))
	var ce *audit.ChainError
	if errors.As(err, &ce) {
		return chainBroken{fmt.Errorf("%w (%d records verified before it); restore the database from a backup and compare it with the last export", err, res.Records)}
	}
	if err != nil {
		return err
	}
	head := res.Head
	if head == "" {
		head = "none (empty trail)"
	}
	fmt.Fprintf(s.out, "audit chain intact: %d records\nchain head: %s\n", res.Records, head)
	return nil
}

// openAuditDB opens an existing database read-only: it never creates,
// migrates or otherwise modifies one (see audit.OpenReadOnly).
func openAuditDB(ctx context.Context, path string) (*audit.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("database %s: %w (pass --db or GUARD_DB; 'guard serve' creates it)", path, err)
	}
	return audit.OpenReadOnly(ctx, path)
}

// auditLocation is the time zone weeks are cut in: timezone of the config
// file (path, else guard.yaml if present), else UTC.
func auditLocation(path string) (*time.Location, error) {
	if path == "" {
		if _, err := os.Stat("guard.yaml"); err != nil {
			return time.UTC, nil
		}
		path = "guard.yaml"
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if cfg.Location == nil {
		return time.UTC, nil
	}
	return cfg.Location, nil
}
