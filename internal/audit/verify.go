package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// VerifyResult summarises a walk of the chain.
type VerifyResult struct {
	Records int    // records walked
	Head    string // hash of the last record ("" for an empty trail)
}

// Reasons a chain is broken (ChainError.Reason).
const (
	BrokenEdited    = "edited"    // the record's content does not match its hash
	BrokenDeleted   = "deleted"   // a predecessor is missing: seq gap, or prev hash names no record
	BrokenReordered = "reordered" // prev hash names a record that is not the predecessor
	BrokenTruncated = "truncated" // the anchor hash is not in the chain: records after it were removed
)

// ChainError names the first record at which the chain is broken.
type ChainError struct {
	Seq    int64  // the first bad record (for truncated: the last record, 0 if none)
	ID     string // its id
	Reason string // edited, deleted, reordered or truncated
	Detail string // what exactly did not match
}

func (e *ChainError) Error() string {
	if e.Reason == BrokenTruncated {
		return fmt.Sprintf("audit trail truncated: %s", e.Detail)
	}
	return fmt.Sprintf("audit chain broken at record %d (id %s): %s: %s", e.Seq, e.ID, e.Reason, e.Detail)
}

// Verify walks the chain in Seq order on a consistent snapshot. Intact ->
// nil. Otherwise a *ChainError naming the first bad record's Seq and ID and
// why: "edited" (content hash mismatch), "deleted" (seq gap / prev hash
// points to a missing record), "reordered" (prev hash points to another
// record). With anchor != "" (a chain head printed by an earlier export)
// it also detects a truncated tail: the anchor must be the hash of a record
// in the chain. Memory stays flat; it runs beside a serving guard.
func (s *Store) Verify(ctx context.Context, anchor string) (VerifyResult, error) {
	res, err := s.verify(ctx, anchor)
	if cerr := s.readConsistent(); cerr != nil {
		// what was read may be torn: neither "intact" nor "broken" holds
		return VerifyResult{}, fmt.Errorf("verify: %w", cerr)
	}
	return res, err
}

func (s *Store) verify(ctx context.Context, anchor string) (VerifyResult, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback()
	w, bad, err := walk(ctx, tx, anchor)
	res := w.VerifyResult
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	if bad != nil {
		if bad.Reason == BrokenDeleted && bad.Detail == "" {
			// prev hash names no predecessor: decide between a missing
			// record and a moved one (the walk's rows are closed now).
			var seq int64
			err := tx.QueryRowContext(ctx, "SELECT seq FROM records WHERE hash = ? LIMIT 1", bad.prev).Scan(&seq)
			switch {
			case err == nil:
				bad.Reason = BrokenReordered
				bad.Detail = fmt.Sprintf("its predecessor (hash %.12s…) is record %d, not record %d", bad.prev, seq, bad.prevSeq)
			case errors.Is(err, sql.ErrNoRows):
				bad.Detail = fmt.Sprintf("its predecessor (hash %.12s…) is missing", bad.prev)
			default:
				return res, fmt.Errorf("verify: %w", err)
			}
		}
		return res, &bad.ChainError
	}
	if anchor != "" && !w.anchorFound {
		return res, &ChainError{Seq: w.lastSeq, ID: w.lastID, Reason: BrokenTruncated,
			Detail: fmt.Sprintf("anchor %s is not in the chain (%d records, head %s): the trail was cut or rewritten after it, or the anchor belongs to another trail",
				anchor, res.Records, orNone(res.Head))}
	}
	return res, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

type walkResult struct {
	VerifyResult
	anchorFound bool
	lastSeq     int64
	lastID      string
}

type badRecord struct {
	ChainError
	prev    string // the record's prev hash
	prevSeq int64  // the seq walked before it
}

// walk streams the chain and stops at the first bad record.
func walk(ctx context.Context, tx *sql.Tx, anchor string) (walkResult, *badRecord, error) {
	var res walkResult
	rows, err := tx.QueryContext(ctx, "SELECT "+recordCols+" FROM records ORDER BY seq")
	if err != nil {
		return res, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return res, nil, err
		}
		bad := func(reason, detail string) (walkResult, *badRecord, error) {
			return res, &badRecord{ChainError: ChainError{Seq: r.Seq, ID: r.ID, Reason: reason, Detail: detail},
				prev: r.PrevHash, prevSeq: res.lastSeq}, nil
		}
		if h := hashRecord(&r); h != r.Hash {
			return bad(BrokenEdited, fmt.Sprintf("content hashes to %.12s…, stored hash is %.12s…", h, r.Hash))
		}
		if r.Seq != res.lastSeq+1 {
			return bad(BrokenDeleted, fmt.Sprintf("records %d to %d are missing", res.lastSeq+1, r.Seq-1))
		}
		if r.PrevHash != res.Head {
			if res.Records == 0 {
				return bad(BrokenDeleted, "it names a predecessor but is the first record: earlier records are missing")
			}
			return bad(BrokenDeleted, "") // classified by Verify
		}
		res.Records++
		res.Head, res.lastSeq, res.lastID = r.Hash, r.Seq, r.ID
		if anchor != "" && r.Hash == anchor {
			res.anchorFound = true
		}
	}
	return res, nil, rows.Err()
}
