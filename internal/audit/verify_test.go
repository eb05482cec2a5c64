package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// chain builds a file store with n decision records and returns it, its
// path and the records.
func chain(t *testing.T, n int) (*Store, string, []Record) {
	t.Helper()
	s, path := mustOpenFile(t)
	var recs []Record
	for i := 1; i <= n; i++ {
		recs = append(recs, Record{ID: fmt.Sprint("r", i), Kind: KindDecision, Outcome: "allow", Repository: "o/r", PullRequest: i})
	}
	out, err := s.Append(context.Background(), recs...)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, out
}

// tamper drops the append-only triggers, as someone with file access can,
// and runs the statements.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db := rawDB(t, path)
	exec(t, db, "DROP TRIGGER records_no_update")
	exec(t, db, "DROP TRIGGER records_no_delete")
	for _, q := range stmts {
		exec(t, db, q)
	}
	db.Close()
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	t.Run("an empty trail is intact", func(t *testing.T) {
		s := mustOpen(t)
		res, err := s.Verify(ctx, "")
		if err != nil || res.Records != 0 || res.Head != "" {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
	t.Run("an intact chain verifies and names its head", func(t *testing.T) {
		s, _, recs := chain(t, 5)
		res, err := s.Verify(ctx, recs[2].Hash)
		if err != nil || res.Records != 5 || res.Head != recs[4].Hash {
			t.Fatalf("Verify = %+v, %v; want 5 records, head %s", res, err, recs[4].Hash)
		}
	})
	for _, tc := range []struct {
		name    string
		stmts   []string
		anchor  int // index of the record whose hash is the anchor; -1 none
		wantSeq int64
		wantID  string
		reason  string
	}{
		{"an edited reason", []string{"UPDATE records SET reason = 'nothing to see' WHERE seq = 3"}, -1, 3, "r3", BrokenEdited},
		{"an edited outcome with a recomputed-looking hash", []string{"UPDATE records SET outcome = 'block', hash = 'x' WHERE seq = 2"}, -1, 2, "r2", BrokenEdited},
		{"a deleted record in the middle", []string{"DELETE FROM records WHERE seq = 3"}, -1, 4, "r4", BrokenDeleted},
		{"a deleted first record", []string{"DELETE FROM records WHERE seq = 1"}, -1, 2, "r2", BrokenDeleted},
		{"a deleted record with the rest renumbered", []string{
			"DELETE FROM records WHERE seq = 3",
			"UPDATE records SET seq = seq - 1 WHERE seq > 3"}, -1, 3, "r4", BrokenDeleted},
		{"two records swapped", []string{
			"UPDATE records SET seq = -1 WHERE seq = 3",
			"UPDATE records SET seq = 3 WHERE seq = 4",
			"UPDATE records SET seq = 4 WHERE seq = -1"}, -1, 3, "r4", BrokenReordered},
		{"a truncated tail with an anchor", []string{"DELETE FROM records WHERE seq >= 4"}, 4, 3, "r3", BrokenTruncated},
	} {
		t.Run("detects "+tc.name, func(t *testing.T) {
			s, path, recs := chain(t, 5)
			anchor := ""
			if tc.anchor >= 0 {
				anchor = recs[tc.anchor].Hash
			}
			tamper(t, path, tc.stmts...)
			_, err := s.Verify(ctx, anchor)
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want a *ChainError", err)
			}
			if ce.Seq != tc.wantSeq || ce.ID != tc.wantID || ce.Reason != tc.reason {
				t.Fatalf("ChainError = %+v (%v), want seq %d id %s reason %s", ce, err, tc.wantSeq, tc.wantID, tc.reason)
			}
		})
	}
	t.Run("a truncated tail goes unnoticed without an anchor", func(t *testing.T) {
		s, path, _ := chain(t, 5)
		tamper(t, path, "DELETE FROM records WHERE seq >= 4")
		if res, err := s.Verify(ctx, ""); err != nil || res.Records != 3 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
	t.Run("a rewritten history with recomputed hashes is caught by the anchor", func(t *testing.T) {
		s, path, recs := chain(t, 4)
		// Rewrite record 2 and re-chain everything after it, as a careful
		// forger would.
		prev := recs[0].Hash
		var stmts []string
		for _, r := range recs[1:] {
			if r.Seq == 2 {
				r.Outcome = "block"
			}
			r.PrevHash = prev
			r.Hash = hashRecord(&r)
			prev = r.Hash
			stmts = append(stmts, fmt.Sprintf("UPDATE records SET outcome = '%s', prev_hash = '%s', hash = '%s' WHERE seq = %d",
				r.Outcome, r.PrevHash, r.Hash, r.Seq))
		}
		tamper(t, path, stmts...)
		if _, err := s.Verify(ctx, ""); err != nil {
			t.Fatalf("without an anchor the rewritten chain should look intact: %v", err)
		}
		var ce *ChainError
		if _, err := s.Verify(ctx, recs[3].Hash); !errors.As(err, &ce) || ce.Reason != BrokenTruncated {
			t.Fatalf("Verify with the old head = %v, want truncated", err)
		}
	})
	t.Run("an anchor from another trail is reported as truncation", func(t *testing.T) {
		s, _, _ := chain(t, 2)
		var ce *ChainError
		if _, err := s.Verify(ctx, "deadbeef"); !errors.As(err, &ce) || ce.Reason != BrokenTruncated {
			t.Fatalf("Verify = %v, want truncated", err)
		}
	})
}
