package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one entry of the audit trail.
type Record struct {
	Seq            int64     // set by the store
	ID             string    // unique id (decision id); generated if empty
	Time           time.Time // stored and exported as RFC 3339 UTC; the store's clock if zero
	Kind           string    // decision, override, merge, freeze, installation
	Repository     string    // owner/name ("" for org-wide)
	PullRequest    int
	HeadSHA        string
	Actor          string
	Agent          bool
	Outcome        string // per SPEC §7 table
	Rules          []string
	Reason         string
	DeliveryID     string
	PolicyRevision string
	Installation   int64
	CheckRunID     int64
	BaseRef        string
	Details        json.RawMessage // decisions: {"input":…, "result":…, "eval_ns":…} for replay with guard eval
	PrevHash, Hash string          // set by the store: SHA-256 hex of predecessor / of canonical content incl. PrevHash
}

// Record kinds.
const (
	KindDecision     = "decision"
	KindOverride     = "override"
	KindMerge        = "merge"
	KindFreeze       = "freeze"
	KindInstallation = "installation"
)

func validKind(k string) bool {
	switch k {
	case KindDecision, KindOverride, KindMerge, KindFreeze, KindInstallation:
		return true
	}
	return false
}

// normalize validates r and fills in what the store sets before hashing.
// Strings are made valid UTF-8 so that the hash covers exactly what an
// export shows.
func (s *Store) normalize(r *Record) error {
	if !validKind(r.Kind) {
		return fmt.Errorf("record kind %q: want decision, override, merge, freeze or installation", r.Kind)
	}
	if r.Outcome == "" {
		return fmt.Errorf("%s record: empty outcome", r.Kind)
	}
	if r.PullRequest < 0 {
		return fmt.Errorf("%s record: negative pull request number %d", r.Kind, r.PullRequest)
	}
	for _, rule := range r.Rules {
		if rule == "" || strings.ContainsAny(rule, ";\r\n") {
			return fmt.Errorf("%s record: rule id %q must be non-empty without ';' or line breaks", r.Kind, rule)
		}
	}
	if len(r.Details) > 0 && !json.Valid(r.Details) {
		return fmt.Errorf("%s record: details are not valid JSON", r.Kind)
	}
	if len(r.Details) == 0 {
		r.Details = nil
	}
	if r.ID == "" {
		r.ID = newID()
	}
	if r.Time.IsZero() {
		r.Time = s.nowUTC()
	}
	r.Time = r.Time.UTC().Round(0)
	if r.Time.Before(minTime) || r.Time.After(maxTime) {
		return fmt.Errorf("%s record: time %s out of range", r.Kind, r.Time)
	}
	for _, p := range []*string{&r.ID, &r.Repository, &r.HeadSHA, &r.Actor, &r.Outcome, &r.Reason,
		&r.DeliveryID, &r.PolicyRevision, &r.BaseRef} {
		if !utf8.ValidString(*p) {
			*p = strings.ToValidUTF8(*p, "\uFFFD")
		}
	}
	for i, rule := range r.Rules {
		r.Rules[i] = strings.ToValidUTF8(rule, "\uFFFD")
	}
	return nil
}

// newID returns a random 128-bit id in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// hashRecord is the SHA-256 hex of r's canonical content, which includes
// PrevHash but not Seq or Hash: every field as "name:len:value\n" in a
// fixed order, times as RFC 3339 with nanoseconds in UTC.
func hashRecord(r *Record) string {
	b := make([]byte, 0, 512+len(r.Details)+len(r.Reason))
	b = append(b, "mergeguard-audit-v1\n"...)
	field := func(name, v string) {
		b = append(b, name...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
		b = append(b, '\n')
	}
	field("id", r.ID)
	field("time", r.Time.UTC().Format(time.RFC3339Nano))
	field("kind", r.Kind)
	field("repository", r.Repository)
	field("pull_request", strconv.Itoa(r.PullRequest))
	field("head_sha", r.HeadSHA)
	field("actor", r.Actor)
	field("agent", strconv.FormatBool(r.Agent))
	field("outcome", r.Outcome)
	field("rules", strings.Join(r.Rules, ";"))
	field("reason", r.Reason)
	field("delivery_id", r.DeliveryID)
	field("policy_revision", r.PolicyRevision)
	field("installation", strconv.FormatInt(r.Installation, 10))
	field("check_run_id", strconv.FormatInt(r.CheckRunID, 10))
	field("base_ref", r.BaseRef)
	field("details", string(r.Details))
	field("prev_hash", r.PrevHash)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Append appends recs to the trail in one transaction, serialized with
// every other append (also of other processes), and returns them as stored
// (Seq, ID, Time, PrevHash and Hash set).
func (s *Store) Append(ctx context.Context, recs ...Record) ([]Record, error) {
	var out []Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.appendTx(ctx, tx, recs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append audit records: %w", err)
	}
	return out, nil
}

const (
	qChainHead    = "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
	qInsertRecord = `INSERT INTO records (seq, id, time, kind, repository, pull_request, head_sha,
		actor, agent, outcome, rules, reason, delivery_id, policy_revision, installation, check_run_id, base_ref,
		details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// appendTx appends recs inside tx, which must be a write transaction.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, recs []Record) ([]Record, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Rules = append([]string(nil), r.Rules...)
		if err := s.normalize(&r); err != nil {
			return nil, err
		}
		out[i] = r
	}
	w := s.wq.in(tx)
	var seq int64
	var prev string
	err := w.QueryRowContext(ctx, qChainHead).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read chain head: %w", err)
	}
	for i := range out {
		r := &out[i]
		seq++
		r.Seq = seq
		r.PrevHash = prev
		r.Hash = hashRecord(r)
		var details any
		if r.Details != nil {
			details = []byte(r.Details)
		}
		_, err := w.ExecContext(ctx, qInsertRecord, r.Seq, r.ID, r.Time.UnixNano(), r.Kind, r.Repository, r.PullRequest, r.HeadSHA,
			r.Actor, b2i(r.Agent), r.Outcome, strings.Join(r.Rules, ";"), r.Reason, r.DeliveryID, r.PolicyRevision,
			r.Installation, r.CheckRunID, r.BaseRef, details, r.PrevHash, r.Hash)
		if err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint failed: records.id") {
				return nil, fmt.Errorf("record id %q is already in the trail", r.ID)
			}
			return nil, fmt.Errorf("insert record: %w", err)
		}
		prev = r.Hash
	}
	return out, nil
}

const recordCols = `seq, id, time, kind, repository, pull_request, head_sha, actor, agent, outcome, rules, reason,
	delivery_id, policy_revision, installation, check_run_id, base_ref, details, prev_hash, hash`

func scanRecord(sc interface{ Scan(...any) error }) (Record, error) {
	var r Record
	var t int64
	var agent int
	var rules string
	var details []byte
	err := sc.Scan(&r.Seq, &r.ID, &t, &r.Kind, &r.Repository, &r.PullRequest, &r.HeadSHA, &r.Actor, &agent,
		&r.Outcome, &rules, &r.Reason, &r.DeliveryID, &r.PolicyRevision, &r.Installation, &r.CheckRunID,
		&r.BaseRef, &details, &r.PrevHash, &r.Hash)
	if err != nil {
		return Record{}, err
	}
	r.Time = fromNS(t)
	r.Agent = agent != 0
	if rules != "" {
		r.Rules = strings.Split(rules, ";")
	}
	if len(details) > 0 {
		r.Details = json.RawMessage(details)
	}
	return r, nil
}

// Record returns the record with that id, or ErrNotFound.
func (s *Store) Record(ctx context.Context, id string) (Record, error) {
	r, err := scanRecord(s.r.QueryRowContext(ctx, "SELECT "+recordCols+" FROM records WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("audit record %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("audit record %q: %w", id, err)
	}
	return r, nil
}

// PRHistory returns the records of every kind for that pull request, newest
// first, at most limit of them (limit <= 0: all).
func (s *Store) PRHistory(ctx context.Context, repo string, number, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+recordCols+` FROM records
		WHERE repository = ? AND pull_request = ? AND pull_request <> 0 ORDER BY seq DESC LIMIT ?`, repo, number, limit)
	if err != nil {
		return nil, fmt.Errorf("history of %s#%d: %w", repo, number, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("history of %s#%d: %w", repo, number, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of %s#%d: %w", repo, number, err)
	}
	return out, nil
}

// LastDecision returns the newest decision record of that pull request
// that was published as its check run (CheckRunID set): a decision recorded
// for a head that was no longer the PR's is not what GitHub shows.
func (s *Store) LastDecision(ctx context.Context, repo string, number int) (Record, bool, error) {
	r, err := scanRecord(s.r.QueryRowContext(ctx, "SELECT "+recordCols+` FROM records
		WHERE repository = ? AND pull_request = ? AND pull_request <> 0 AND kind = 'decision' AND check_run_id <> 0
		ORDER BY seq DESC LIMIT 1`, repo, number))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("last decision of %s#%d: %w", repo, number, err)
	}
	return r, true, nil
}
