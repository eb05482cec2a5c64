package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// ManualFreeze is an incident freeze declared by a human (guard freeze, or
// a /guard freeze comment).
type ManualFreeze struct {
	ID      int64
	Scope   string // "repo" or "org"
	Target  string // owner/name or org
	Branch  string // glob, "" = every branch
	Reason  string
	By      string
	From    time.Time
	Until   time.Time // zero: until ended
	EndedAt time.Time // zero: not ended
	EndedBy string
	// Source names what declared it, once ("comment:ID"): StartFreeze with
	// a Source already used returns that freeze and starts none.
	Source string
}

// Freeze scopes.
const (
	ScopeRepo = "repo"
	ScopeOrg  = "org"
)

// CheckFreezeTarget reports whether target names a repository (scope repo:
// OWNER/NAME) or an organization (scope org) as GitHub spells them.
func CheckFreezeTarget(scope, target string) error {
	switch scope {
	case ScopeRepo:
		owner, name, ok := strings.Cut(target, "/")
		if !ok || !isName(owner) || !isName(name) || name == "." || name == ".." {
			return fmt.Errorf("repo freeze target %q: want OWNER/NAME, like octo-org/shop", target)
		}
	case ScopeOrg:
		if !pr.ValidOrgLogin(target) {
			return fmt.Errorf("org freeze target %q: want an organization login, like octo-org", target)
		}
	default:
		return fmt.Errorf("freeze scope %q: want repo or org", scope)
	}
	return nil
}

// isName reports whether s is made of the characters GitHub allows in
// logins and repository names (letters, digits, '-', '_', '.'; underscores
// for Enterprise Managed Users), at most 100 of them.
func isName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// FreezeRecord is the trail record of a declared freeze starting or ending
// (outcome started or ended) at at, by actor.
func FreezeRecord(f ManualFreeze, at time.Time, actor, outcome string) Record {
	repo := ""
	reason := f.Reason
	if f.Scope == ScopeRepo {
		repo = f.Target
	} else {
		reason = "org " + f.Target + ": " + reason
	}
	details := map[string]any{"freeze_id": f.ID, "scope": f.Scope, "target": f.Target, "branch": f.Branch,
		"from": f.From.UTC().Format(time.RFC3339Nano)}
	if !f.Until.IsZero() {
		details["until"] = f.Until.UTC().Format(time.RFC3339Nano)
	}
	d, _ := json.Marshal(details) // plain values: cannot fail
	return Record{Time: at, Kind: KindFreeze, Repository: repo, BaseRef: f.Branch, Actor: actor,
		Outcome: outcome, Rules: []string{"incident_freeze"}, Reason: reason, Details: d}
}

// StartFreeze stores a manual freeze and appends its freeze record (outcome
// started) in the same transaction. From defaults to now; Until, if set,
// must be after From. It returns the freeze with its ID; when f.Source
// declared a freeze before, that freeze, unchanged (a command processed
// again declares nothing more).
func (s *Store) StartFreeze(ctx context.Context, f ManualFreeze) (ManualFreeze, error) {
	if err := CheckFreezeTarget(f.Scope, f.Target); err != nil {
		return ManualFreeze{}, fmt.Errorf("start freeze: %w", err)
	}
	now := s.nowUTC()
	if f.From.IsZero() {
		f.From = now
	}
	f.From = f.From.UTC().Round(0)
	if !f.Until.IsZero() {
		f.Until = f.Until.UTC().Round(0)
		if !f.Until.After(f.From) {
			return ManualFreeze{}, fmt.Errorf("start freeze: until %s is not after from %s",
				f.Until.Format(time.RFC3339), f.From.Format(time.RFC3339))
		}
	}
	f.EndedAt, f.EndedBy = time.Time{}, ""
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if f.Source != "" {
			fs, err := queryFreezes(ctx, tx, "WHERE source = ?", f.Source)
			if err != nil {
				return err
			}
			if len(fs) > 0 {
				fs[0].Source = f.Source
				f = fs[0]
				return nil
			}
		}
		out, err := tx.ExecContext(ctx, `INSERT INTO freezes (scope, target, branch, reason, started_by, from_ns, until_ns, source)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, f.Scope, f.Target, f.Branch, f.Reason, f.By, ns(f.From), nullTime(f.Until), f.Source)
		if err != nil {
			return err
		}
		if f.ID, err = out.LastInsertId(); err != nil {
			return err
		}
		if _, err := s.appendTx(ctx, tx, []Record{FreezeRecord(f, now, f.By, "started")}); err != nil {
			return err
		}
		return bumpFreezeVersion(ctx, tx)
	})
	if err != nil {
		return ManualFreeze{}, fmt.Errorf("start freeze: %w", err)
	}
	return f, nil
}

func bumpFreezeVersion(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "UPDATE meta SET value = value + 1 WHERE key = 'freeze_version'")
	return err
}

// EndFreezes ends every freeze of that scope and target that has not ended
// and has not run out (including ones that start later), appending a freeze
// record (outcome ended) for each in the same transaction. It returns how
// many it ended.
func (s *Store) EndFreezes(ctx context.Context, scope, target, by string) (int, error) {
	return s.EndFreezesFrom(ctx, scope, target, by, time.Time{})
}

// EndFreezesFrom is EndFreezes for the freezes whose From is not after
// before (zero: all): a command given at before, processed later (its
// delivery retried), does not end a freeze declared after it. (Comment
// times have whole seconds: one declared in the same second is ended.)
func (s *Store) EndFreezesFrom(ctx context.Context, scope, target, by string, before time.Time) (int, error) {
	if err := CheckFreezeTarget(scope, target); err != nil {
		return 0, fmt.Errorf("end freezes: %w", err)
	}
	now := s.nowUTC()
	limit := int64(math.MaxInt64)
	if !before.IsZero() {
		limit = ns(before)
	}
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// GitHub's logins and repository names ignore case, as the freezes'
		// matching does (--repo Octo/Shop is ended by octo/shop).
		fs, err := queryFreezes(ctx, tx, `WHERE scope = ? AND target = ? COLLATE NOCASE AND ended_at IS NULL
			AND (until_ns IS NULL OR until_ns > ?) AND from_ns <= ? ORDER BY id`, scope, target, ns(now), limit)
		if err != nil {
			return err
		}
		n = len(fs)
		if n == 0 {
			return nil
		}
		recs := make([]Record, 0, n)
		for _, f := range fs {
			if _, err := tx.ExecContext(ctx, "UPDATE freezes SET ended_at = ?, ended_by = ? WHERE id = ?", ns(now), by, f.ID); err != nil {
				return err
			}
			recs = append(recs, FreezeRecord(f, now, by, "ended"))
		}
		if _, err := s.appendTx(ctx, tx, recs); err != nil {
			return err
		}
		return bumpFreezeVersion(ctx, tx)
	})
	if err != nil {
		return 0, fmt.Errorf("end freezes of %s %s: %w", scope, target, err)
	}
	return n, nil
}

// ActiveFreezes returns the freezes active at at: From <= at < Until (or no
// Until), and not ended by then; ordered by ID.
func (s *Store) ActiveFreezes(ctx context.Context, at time.Time) ([]ManualFreeze, error) {
	t := ns(at)
	fs, err := queryFreezes(ctx, &s.rq, `WHERE from_ns <= ? AND (until_ns IS NULL OR until_ns > ?)
		AND (ended_at IS NULL OR ended_at > ?) ORDER BY id`, t, t, t)
	if err == nil {
		err = s.readConsistent()
	}
	if err != nil {
		return nil, fmt.Errorf("active freezes: %w", err)
	}
	return fs, nil
}

// FreezesRanOut returns the freezes whose Until is in (after, upTo] and that
// nobody ended; ordered by ID. The scheduler records their end with it, also
// for a freeze that started and ran out between two of its looks (or while
// the guard was down).
func (s *Store) FreezesRanOut(ctx context.Context, after, upTo time.Time) ([]ManualFreeze, error) {
	fs, err := queryFreezes(ctx, &s.rq, `WHERE until_ns > ? AND until_ns <= ? AND ended_at IS NULL ORDER BY id`, ns(after), ns(upTo))
	if err == nil {
		err = s.readConsistent()
	}
	if err != nil {
		return nil, fmt.Errorf("freezes that ran out: %w", err)
	}
	return fs, nil
}

// Freeze returns the freeze with that ID.
func (s *Store) Freeze(ctx context.Context, id int64) (ManualFreeze, bool, error) {
	fs, err := queryFreezes(ctx, &s.rq, "WHERE id = ?", id)
	if err != nil {
		return ManualFreeze{}, false, fmt.Errorf("freeze %d: %w", id, err)
	}
	if len(fs) == 0 {
		return ManualFreeze{}, false, nil
	}
	return fs[0], true, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryFreezes(ctx context.Context, q querier, where string, args ...any) ([]ManualFreeze, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, scope, target, branch, reason, started_by, from_ns, until_ns,
		ended_at, ended_by FROM freezes `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ManualFreeze
	for rows.Next() {
		var f ManualFreeze
		var from int64
		var until, ended sql.NullInt64
		if err := rows.Scan(&f.ID, &f.Scope, &f.Target, &f.Branch, &f.Reason, &f.By, &from, &until, &ended, &f.EndedBy); err != nil {
			return nil, err
		}
		f.From, f.Until, f.EndedAt = fromNS(from), timeOrZero(until), timeOrZero(ended)
		out = append(out, f)
	}
	return out, rows.Err()
}

// FreezeVersion returns a counter that changes whenever any freeze starts
// or ends, also from another process. It is one indexed read.
func (s *Store) FreezeVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'freeze_version'").Scan(&v); err != nil {
		return 0, fmt.Errorf("freeze version: %w", err)
	}
	return v, nil
}
