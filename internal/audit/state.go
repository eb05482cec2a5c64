package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mergeguard/guard/internal/pr"
)

// Statements of the hot paths, prepared once (see stmts).
const (
	qSaveCheckRun = `INSERT INTO check_runs (repo, sha, check_run_id, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo, sha) DO UPDATE SET check_run_id = excluded.check_run_id, updated_at = excluded.updated_at`
	qSaveCheckRunPR = "INSERT OR IGNORE INTO check_run_prs (repo, sha, number) VALUES (?, ?, ?)"
	qTrackPR        = `INSERT INTO tracked_prs (repo, number, installation, head_sha, base_ref, author,
		agent, open, outcome, time_dependent, check_run_id, updated_at, agent_pushed_at, agent_pushed_head, known_head)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repo, number) DO UPDATE SET installation = excluded.installation, head_sha = excluded.head_sha,
		base_ref = excluded.base_ref, author = excluded.author, agent = excluded.agent, open = excluded.open,
		outcome = excluded.outcome, time_dependent = excluded.time_dependent, check_run_id = excluded.check_run_id,
		updated_at = excluded.updated_at,
		agent_pushed_head = CASE WHEN excluded.agent_pushed_at > agent_pushed_at THEN excluded.agent_pushed_head
			WHEN excluded.agent_pushed_at = agent_pushed_at AND excluded.agent_pushed_head <> agent_pushed_head THEN ''
			ELSE agent_pushed_head END,
		agent_pushed_at = max(agent_pushed_at, excluded.agent_pushed_at),
		known_head = CASE WHEN excluded.known_head <> '' THEN excluded.known_head ELSE known_head END`
	// Two pushes in one second (updated_at has no finer grain): which head
	// is the later is unknown, so neither is kept ('').
	qNoteAgentPush = `UPDATE tracked_prs SET
		agent_pushed_head = CASE WHEN ?1 > agent_pushed_at THEN ?2
			WHEN ?1 = agent_pushed_at AND ?2 <> agent_pushed_head THEN '' ELSE agent_pushed_head END,
		agent_pushed_at = max(agent_pushed_at, ?1) WHERE repo = ?3 AND number = ?4`
	qReanchorAgentPush = `UPDATE tracked_prs SET agent_pushed_head = ? WHERE repo = ? AND number = ? AND agent_pushed_at = ?`
	qNoteKnownHead     = `UPDATE tracked_prs SET known_head = ? WHERE repo = ? AND number = ?`
)

// SaveCheckRun remembers the check run the guard created for repo at sha and
// the pull requests it belongs to (added to those already known).
func (s *Store) SaveCheckRun(ctx context.Context, repo, sha string, checkRunID int64, prs []int) error {
	if repo == "" || sha == "" {
		return errors.New("save check run: empty repository or SHA")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w := s.wq.in(tx)
		_, err := w.ExecContext(ctx, qSaveCheckRun, repo, sha, checkRunID, ns(s.nowUTC()))
		if err != nil {
			return err
		}
		for _, n := range prs {
			if _, err := w.ExecContext(ctx, qSaveCheckRunPR, repo, sha, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save check run of %s@%s: %w", repo, sha, err)
	}
	return nil
}

// CheckRunFor returns the check run the guard created for repo at sha.
func (s *Store) CheckRunFor(ctx context.Context, repo, sha string) (int64, bool, error) {
	var id int64
	err := s.rq.QueryRowContext(ctx, "SELECT check_run_id FROM check_runs WHERE repo = ? AND sha = ?", repo, sha).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("check run of %s@%s: %w", repo, sha, err)
	}
	return id, true, nil
}

// PRsForSHA maps a head SHA back to pull requests through the guard's own
// records: the PRs saved with its check run and the tracked PRs whose head
// it is. Ascending, without duplicates.
func (s *Store) PRsForSHA(ctx context.Context, repo, sha string) ([]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT number FROM check_run_prs WHERE repo = ? AND sha = ?
		UNION SELECT number FROM tracked_prs WHERE repo = ? AND head_sha = ? ORDER BY 1`, repo, sha, repo, sha)
	if err != nil {
		return nil, fmt.Errorf("PRs of %s@%s: %w", repo, sha, err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("PRs of %s@%s: %w", repo, sha, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("PRs of %s@%s: %w", repo, sha, err)
	}
	return out, nil
}

// ClaimComment marks a /guard comment as used by the delivery with id
// delivery. mine is true for that delivery, also when it is processed again
// after a failure (its work is not done: the override, the records, the
// reply), and false for any other delivery of the comment.
func (s *Store) ClaimComment(ctx context.Context, commentID int64, delivery string) (mine bool, err error) {
	if delivery == "" {
		return false, fmt.Errorf("claim comment %d: empty delivery id", commentID)
	}
	key := "comment:" + strconv.FormatInt(commentID, 10)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		now := ns(s.nowUTC())
		out, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO used_comments (comment_id, used_at) VALUES (?, ?)", commentID, now)
		if err != nil {
			return err
		}
		if n, err := out.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			mine = true
			return setState(ctx, tx, key, delivery, now)
		}
		var by string
		switch err := tx.QueryRowContext(ctx, "SELECT value FROM state WHERE key = ?", key).Scan(&by); {
		case errors.Is(err, sql.ErrNoRows): // used before deliveries were noted
		case err != nil:
			return err
		default:
			mine = by == delivery
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("claim comment %d: %w", commentID, err)
	}
	return mine, nil
}

// MarkOnce records a generic idempotency key (e.g. one escalation comment
// per head SHA); first is true only the first time for that key.
func (s *Store) MarkOnce(ctx context.Context, key string) (first bool, err error) {
	if key == "" {
		return false, errors.New("mark once: empty key")
	}
	first, err = s.insertOnce(ctx, "INSERT OR IGNORE INTO once_keys (key, done_at) VALUES (?, ?)", key)
	if err != nil {
		return false, fmt.Errorf("mark once %q: %w", key, err)
	}
	return first, nil
}

func (s *Store) insertOnce(ctx context.Context, q string, key any) (bool, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := tx.ExecContext(ctx, q, key, ns(s.nowUTC()))
		if err != nil {
			return err
		}
		n, err = out.RowsAffected()
		return err
	})
	return n == 1, err
}

// AddOverride records a human's approval or override for a pull request.
func (s *Store) AddOverride(ctx context.Context, repo string, number int, o pr.Override) error {
	if o.Kind == "" || o.Actor == "" {
		return fmt.Errorf("add override to %s#%d: kind and actor are required", repo, number)
	}
	rules, _ := json.Marshal(nonNil(o.Rules)) // []string: cannot fail
	freezes, _ := json.Marshal(nonNil(o.Freezes))
	at := o.At
	if at.IsZero() {
		at = s.nowUTC()
	}
	// The same override again (a command processed once more after a
	// failure, at a later time) is not added twice: only its time would
	// differ, and the first one stands.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO overrides (repo, number, kind, actor, reason, head_sha, base_ref, rules, freezes, at)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
			WHERE NOT EXISTS (SELECT 1 FROM overrides WHERE repo = ?1 AND number = ?2 AND kind = ?3 AND actor = ?4
				AND reason = ?5 AND head_sha = ?6 AND base_ref = ?7 AND rules = ?8 AND freezes = ?9)`,
			repo, number, o.Kind, o.Actor, o.Reason, o.HeadSHA, o.BaseRef, string(rules), string(freezes), ns(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("add override to %s#%d: %w", repo, number, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Overrides returns the approvals and overrides of a pull request in the
// order they were added.
func (s *Store) Overrides(ctx context.Context, repo string, number int) ([]pr.Override, error) {
	rows, err := s.rq.QueryContext(ctx, `SELECT kind, actor, reason, head_sha, base_ref, rules, freezes, at
		FROM overrides WHERE repo = ? AND number = ? ORDER BY id`, repo, number)
	if err != nil {
		return nil, fmt.Errorf("overrides of %s#%d: %w", repo, number, err)
	}
	defer rows.Close()
	var out []pr.Override
	for rows.Next() {
		var o pr.Override
		var rules, freezes string
		var at int64
		if err := rows.Scan(&o.Kind, &o.Actor, &o.Reason, &o.HeadSHA, &o.BaseRef, &rules, &freezes, &at); err != nil {
			return nil, fmt.Errorf("overrides of %s#%d: %w", repo, number, err)
		}
		if err := json.Unmarshal([]byte(rules), &o.Rules); err != nil {
			return nil, fmt.Errorf("overrides of %s#%d: rules: %w", repo, number, err)
		}
		if err := json.Unmarshal([]byte(freezes), &o.Freezes); err != nil {
			return nil, fmt.Errorf("overrides of %s#%d: freezes: %w", repo, number, err)
		}
		o.At = fromNS(at)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("overrides of %s#%d: %w", repo, number, err)
	}
	return out, nil
}

// TrackedPR is what the guard remembers about a pull request it evaluated,
// so that time and reconcile can re-evaluate open agent PRs.
type TrackedPR struct {
	Repo          string
	Number        int
	Installation  int64
	HeadSHA       string
	BaseRef       string
	Author        string
	Agent         bool // an agent's PR at its last evaluation
	Open          bool
	Outcome       string
	TimeDependent bool
	CheckRunID    int64
	UpdatedAt     time.Time // the store's clock if zero
	// AgentPushedAt is when an agent last pushed to the PR (a synchronize
	// whose sender is an agent; zero: never seen), AgentPushedHead the head
	// it pushed ("": unknown). Storing keeps the later push of the stored
	// and the given one: it is never cleared.
	AgentPushedAt   time.Time
	AgentPushedHead string
	// KnownHead is the last head whose pusher the guard knows (its
	// synchronize or opened event processed, or the head first seen); ""
	// when storing: keep the stored one.
	KnownHead string
}

// TrackPR inserts or replaces the tracked state of p.Repo#p.Number.
func (s *Store) TrackPR(ctx context.Context, p TrackedPR) error {
	if err := checkTracked(p); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.trackTx(ctx, tx, p) })
	if err != nil {
		return fmt.Errorf("track PR %s#%d: %w", p.Repo, p.Number, err)
	}
	return nil
}

// AppendTracked appends recs to the trail and records p, in one
// transaction: both or neither. An evaluation no inbox delivery stands for
// (a scheduled re-evaluation, a reconcile) stores its record this way, so
// that a crash after publishing cannot leave the PR tracked as decided with
// no record of the decision: untracked, it is evaluated again.
func (s *Store) AppendTracked(ctx context.Context, p TrackedPR, recs ...Record) ([]Record, error) {
	if err := checkTracked(p); err != nil {
		return nil, err
	}
	var out []Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = s.appendTx(ctx, tx, recs); err != nil {
			return err
		}
		return s.trackTx(ctx, tx, p)
	})
	if err != nil {
		return nil, fmt.Errorf("append audit records and track PR %s#%d: %w", p.Repo, p.Number, err)
	}
	return out, nil
}

// checkTracked refuses a tracked PR without its key.
func checkTracked(p TrackedPR) error {
	if p.Repo == "" || p.Number <= 0 {
		return fmt.Errorf("track PR %s#%d: repository and a positive number are required", p.Repo, p.Number)
	}
	return nil
}

// trackTx upserts p inside tx, a write transaction.
func (s *Store) trackTx(ctx context.Context, tx *sql.Tx, p TrackedPR) error {
	at := p.UpdatedAt
	if at.IsZero() {
		at = s.nowUTC()
	}
	_, err := s.wq.in(tx).ExecContext(ctx, qTrackPR,
		p.Repo, p.Number, p.Installation, p.HeadSHA, p.BaseRef, p.Author, b2i(p.Agent), b2i(p.Open), p.Outcome,
		b2i(p.TimeDependent), p.CheckRunID, ns(at), nsOrZero(p.AgentPushedAt), p.AgentPushedHead, p.KnownHead)
	return err
}

// NoteAgentPush records that an agent pushed head to a tracked PR at at
// (kept when later than the push stored); an untracked PR is left alone.
func (s *Store) NoteAgentPush(ctx context.Context, repo string, number int, at time.Time, head string) error {
	return s.execTx(ctx, fmt.Sprintf("note an agent's push to %s#%d", repo, number), qNoteAgentPush, nsOrZero(at), head, repo, number)
}

// NoteKnownHead records head as the last head of a tracked PR whose pusher
// the guard knows (see TrackedPR.KnownHead); an untracked PR is left alone.
func (s *Store) NoteKnownHead(ctx context.Context, repo string, number int, head string) error {
	return s.execTx(ctx, fmt.Sprintf("note the known head of %s#%d", repo, number), qNoteKnownHead, head, repo, number)
}

// ReanchorAgentPush sets the head of the agent's push made at at, if it is
// still the last one stored: the commit a human approved after it when its
// own head was unknown or gone (rebased), so that the commits pushed on top
// of that approved one are known to include the push.
func (s *Store) ReanchorAgentPush(ctx context.Context, repo string, number int, at time.Time, head string) error {
	return s.execTx(ctx, fmt.Sprintf("re-anchor an agent's push to %s#%d", repo, number), qReanchorAgentPush, head, repo, number, nsOrZero(at))
}

// execTx runs one statement in a write transaction; what names it in the
// error.
func (s *Store) execTx(ctx context.Context, what, q string, args ...any) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// nsOrZero is ns, with 0 for the zero time.
func nsOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ns(t)
}

const trackedCols = `repo, number, installation, head_sha, base_ref, author, agent, open, outcome, time_dependent,
	check_run_id, updated_at, agent_pushed_at, agent_pushed_head, known_head`

func scanTracked(sc interface{ Scan(...any) error }) (TrackedPR, error) {
	var p TrackedPR
	var agent, open, td int
	var at, pushed int64
	err := sc.Scan(&p.Repo, &p.Number, &p.Installation, &p.HeadSHA, &p.BaseRef, &p.Author, &agent, &open, &p.Outcome,
		&td, &p.CheckRunID, &at, &pushed, &p.AgentPushedHead, &p.KnownHead)
	p.Agent, p.Open, p.TimeDependent, p.UpdatedAt = agent != 0, open != 0, td != 0, fromNS(at)
	if pushed != 0 {
		p.AgentPushedAt = fromNS(pushed)
	}
	return p, err
}

// OpenWatchedPRs returns the open tracked PRs whose check the scheduler
// watches: agent PRs, and PRs marked time-dependent (a human PR while a
// freeze applies to everyone), by repository and number.
func (s *Store) OpenWatchedPRs(ctx context.Context) ([]TrackedPR, error) {
	return s.openPRs(ctx, "open = 1 AND (agent = 1 OR time_dependent = 1)")
}

// OpenTrackedPRs returns every open tracked PR, by repository and number.
func (s *Store) OpenTrackedPRs(ctx context.Context) ([]TrackedPR, error) {
	return s.openPRs(ctx, "open = 1")
}

func (s *Store) openPRs(ctx context.Context, cond string) ([]TrackedPR, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+trackedCols+" FROM tracked_prs WHERE "+cond+" ORDER BY repo, number")
	if err != nil {
		return nil, fmt.Errorf("open PRs: %w", err)
	}
	defer rows.Close()
	var out []TrackedPR
	for rows.Next() {
		p, err := scanTracked(rows)
		if err != nil {
			return nil, fmt.Errorf("open PRs: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open PRs: %w", err)
	}
	return out, nil
}

// TrackedPR returns the tracked state of repo#number.
func (s *Store) TrackedPR(ctx context.Context, repo string, number int) (TrackedPR, bool, error) {
	p, err := scanTracked(s.rq.QueryRowContext(ctx, "SELECT "+trackedCols+" FROM tracked_prs WHERE repo = ? AND number = ?", repo, number))
	if errors.Is(err, sql.ErrNoRows) {
		return TrackedPR{}, false, nil
	}
	if err != nil {
		return TrackedPR{}, false, fmt.Errorf("tracked PR %s#%d: %w", repo, number, err)
	}
	return p, true, nil
}

// State returns the value stored under key (small key/value for schedulers).
func (s *Store) State(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.r.QueryRowContext(ctx, "SELECT value FROM state WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("state %q: %w", key, err)
	}
	return v, true, nil
}

// StatesWithPrefix returns the state entries whose key starts with prefix
// (non-empty, not ending in byte 0xff), by key.
func (s *Store) StatesWithPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	if prefix == "" || prefix[len(prefix)-1] == 0xff {
		return nil, fmt.Errorf("states with prefix %q: want a non-empty prefix not ending in 0xff", prefix)
	}
	// Keys compare as bytes: those with the prefix are below the prefix
	// with its last byte one higher.
	upper := prefix[:len(prefix)-1] + string([]byte{prefix[len(prefix)-1] + 1})
	rows, err := s.r.QueryContext(ctx, "SELECT key, value FROM state WHERE key >= ? AND key < ?", prefix, upper)
	if err != nil {
		return nil, fmt.Errorf("states with prefix %q: %w", prefix, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("states with prefix %q: %w", prefix, err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("states with prefix %q: %w", prefix, err)
	}
	return out, nil
}

// SetState stores value under key.
func (s *Store) SetState(ctx context.Context, key, value string) error {
	if key == "" {
		return errors.New("set state: empty key")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return setState(ctx, tx, key, value, ns(s.nowUTC())) })
	if err != nil {
		return fmt.Errorf("set state %q: %w", key, err)
	}
	return nil
}

// ErrStateChanged is returned by AppendWithState when the state it was to
// move on from changed meanwhile.
var ErrStateChanged = errors.New("state changed meanwhile")

// AppendWithState appends recs and moves the state under key from from to
// value ("" for no state) in one transaction: work that is recorded and
// remembered as done together (the scheduler's freeze records) happens
// exactly once across crashes, and, when the state is no longer from
// (another guard on the database did that work), not at all: it returns
// ErrStateChanged and writes nothing.
func (s *Store) AppendWithState(ctx context.Context, key, from, value string, recs ...Record) error {
	if key == "" {
		return errors.New("append with state: empty key")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		if err := tx.QueryRowContext(ctx, "SELECT value FROM state WHERE key = ?", key).Scan(&cur); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if cur != from {
			return ErrStateChanged
		}
		if _, err := s.appendTx(ctx, tx, recs); err != nil {
			return err
		}
		return setState(ctx, tx, key, value, ns(s.nowUTC()))
	})
	if err != nil {
		return fmt.Errorf("append with state %q: %w", key, err)
	}
	return nil
}

// setState stores value under key in tx (now: Unix ns).
func setState(ctx context.Context, tx *sql.Tx, key, value string, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, now)
	return err
}
