package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// exportColumns are the columns of an export, in order (SPEC §7).
var exportColumns = [...]string{"time", "kind", "repository", "pull_request", "head_sha", "actor", "agent",
	"outcome", "rules", "reason", "delivery_id", "policy_revision", "hash"}

// ExportColumns returns the columns of an export, in order (SPEC §7).
func ExportColumns() []string { return append([]string(nil), exportColumns[:]...) }

// Export formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Export streams the records with from <= time < to, in chain (Seq) order,
// as CSV with a header or as JSONL (one object per line), with
// exactly the columns
//
//	time,kind,repository,pull_request,head_sha,actor,agent,outcome,rules,reason,delivery_id,policy_revision,hash
//
// time is RFC 3339 UTC, agent true/false, rules ';'-separated (a string in
// JSONL too), pull_request a number in JSONL. It returns the chain head (the
// hash of the last record of the whole chain, read in the same snapshot as
// the span's Seq range) and the number of records written. A zero from or
// to leaves that side open.
//
// Memory stays flat: on a file database the Seq range is read in chunks of
// exportChunk records by up to exportWorkers reader connections and written
// in order, with at most 2*exportWorkers chunks buffered. Appends by others
// proceed meanwhile; records are immutable, so chunks read in later
// snapshots hold exactly what the first one saw for that Seq range.
func (s *Store) Export(ctx context.Context, from, to time.Time, format string, w io.Writer) (head string, n int, err error) {
	head, n, err = s.export(ctx, from, to, format, w)
	if cerr := s.readConsistent(); cerr != nil {
		return "", n, fmt.Errorf("export: %w", cerr)
	}
	return head, n, err
}

func (s *Store) export(ctx context.Context, from, to time.Time, format string, w io.Writer) (head string, n int, err error) {
	if format == "" {
		format = FormatCSV
	}
	if format != FormatCSV && format != FormatJSONL {
		return "", 0, fmt.Errorf("export: unknown format %q: want csv or jsonl", format)
	}
	if !to.IsZero() && !from.IsZero() && to.Before(from) {
		return "", 0, fmt.Errorf("export: --to %s is before --from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	span := exportQuery{lo: ns(from), hi: ns(to), cond: "time >= ? AND time < ?", csv: format == FormatCSV}
	if to.IsZero() {
		span.hi, span.cond = maxTime.UnixNano(), "time >= ? AND time <= ?"
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return "", 0, fmt.Errorf("export: %w", err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, "SELECT hash FROM records ORDER BY seq DESC LIMIT 1").Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("export: read chain head: %w", err)
	}
	// The Seq range that holds the span, from the time index: the table is
	// then read in Seq order, sequentially, instead of one index lookup per
	// record.
	var loSeq, hiSeq sql.NullInt64
	err = tx.QueryRowContext(ctx, "SELECT min(seq), max(seq) FROM records WHERE "+span.cond, span.lo, span.hi).Scan(&loSeq, &hiSeq)
	if err != nil {
		return "", 0, fmt.Errorf("export: %w", err)
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	if span.csv {
		if _, err := bw.WriteString(strings.Join(exportColumns[:], ",") + "\n"); err != nil {
			return "", 0, fmt.Errorf("export: write: %w", err)
		}
	}
	if loSeq.Valid {
		if s.r == s.w || hiSeq.Int64-loSeq.Int64 < 2*exportChunk {
			// one connection (":memory:") or a small span: stream it here
			n, err = span.scan(ctx, tx, loSeq.Int64, hiSeq.Int64, func(line []byte) error {
				_, err := bw.Write(line)
				return err
			})
		} else {
			// The chunks are read in transactions of their own; this one
			// ends now, since a read transaction held through a long
			// export would keep every checkpoint from copying past it.
			tx.Rollback()
			n, err = s.exportChunks(ctx, span, loSeq.Int64, hiSeq.Int64, bw)
		}
		if err != nil {
			return "", n, fmt.Errorf("export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return "", n, fmt.Errorf("export: write: %w", err)
	}
	return head, n, nil
}

// Chunked export: records per chunk and reader goroutines.
const (
	exportChunk   = 4096
	exportWorkers = 2
)

// exportQuery is the time span of an export and its output format.
type exportQuery struct {
	lo, hi int64  // Unix ns
	cond   string // SQL condition on time with two parameters
	csv    bool   // else JSONL
}

type chunk struct {
	lo, hi int64
	buf    []byte
	n      int
	err    error
	done   chan struct{}
}

// exportChunks reads [loSeq, hiSeq] in chunks on several reader
// connections and writes them to w in order.
func (s *Store) exportChunks(ctx context.Context, span exportQuery, loSeq, hiSeq int64, w io.Writer) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *chunk)
	ordered := make(chan *chunk, exportWorkers) // in Seq order; bounds the chunks in flight
	free := make(chan []byte, 2*exportWorkers+1)
	var wg sync.WaitGroup
	for i := 0; i < exportWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				select {
				case c.buf = <-free:
				default:
				}
				c.n, c.err = span.scan(ctx, s.r, c.lo, c.hi, func(line []byte) error {
					c.buf = append(c.buf, line...)
					return nil
				})
				close(c.done)
			}
		}()
	}
	go func() { // hand out chunks in order
		defer close(ordered)
		defer close(jobs)
		for lo := loSeq; lo <= hiSeq; lo += exportChunk {
			c := &chunk{lo: lo, hi: min(lo+exportChunk-1, hiSeq), done: make(chan struct{})}
			select {
			case ordered <- c:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- c:
			case <-ctx.Done():
				close(c.done)
				return
			}
		}
	}()
	defer wg.Wait()
	n := 0
	for c := range ordered {
		<-c.done
		if c.err == nil {
			c.err = ctx.Err()
		}
		if c.err != nil {
			cancel()
			return n, c.err
		}
		if _, err := w.Write(c.buf); err != nil {
			cancel()
			return n, fmt.Errorf("write: %w", err)
		}
		n += c.n
		select {
		case free <- c.buf[:0]:
		default:
		}
	}
	return n, ctx.Err()
}

// scan formats the records with loSeq <= seq <= hiSeq in the span, in Seq
// order, and hands each line to emit (valid only during the call).
func (e exportQuery) scan(ctx context.Context, q querier, loSeq, hiSeq int64, emit func([]byte) error) (int, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+strings.Join(exportColumns[:], ", ")+
		" FROM records WHERE seq BETWEEN ? AND ? AND "+e.cond+" ORDER BY seq", loSeq, hiSeq, e.lo, e.hi)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		t, number, agent int64
		str              [10]sql.RawBytes // kind, repository, head_sha, actor, outcome, rules, reason, delivery_id, policy_revision, hash
		line             []byte
		n                int
	)
	dest := []any{&t, &str[0], &str[1], &number, &str[2], &str[3], &agent, &str[4], &str[5], &str[6], &str[7], &str[8], &str[9]}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, err
		}
		line = line[:0]
		tm := fromNS(t)
		if e.csv {
			line = tm.AppendFormat(line, time.RFC3339Nano)
			line = append(line, ',')
			line = appendCSV(line, str[0])
			line = append(line, ',')
			line = appendCSV(line, str[1])
			line = append(line, ',')
			line = strconv.AppendInt(line, number, 10)
			line = append(line, ',')
			line = appendCSV(line, str[2])
			line = append(line, ',')
			line = appendCSV(line, str[3])
			line = append(line, ',')
			line = strconv.AppendBool(line, agent != 0)
			for _, v := range str[4:] {
				line = append(line, ',')
				line = appendCSV(line, v)
			}
			line = append(line, '\n')
		} else {
			line = append(line, `{"time":"`...)
			line = tm.AppendFormat(line, time.RFC3339Nano)
			line = append(line, `","kind":`...)
			line = appendJSONString(line, str[0])
			line = append(line, `,"repository":`...)
			line = appendJSONString(line, str[1])
			line = append(line, `,"pull_request":`...)
			line = strconv.AppendInt(line, number, 10)
			line = append(line, `,"head_sha":`...)
			line = appendJSONString(line, str[2])
			line = append(line, `,"actor":`...)
			line = appendJSONString(line, str[3])
			line = append(line, `,"agent":`...)
			line = strconv.AppendBool(line, agent != 0)
			for i, name := range [...]string{"outcome", "rules", "reason", "delivery_id", "policy_revision", "hash"} {
				line = append(line, `,"`...)
				line = append(line, name...)
				line = append(line, `":`...)
				line = appendJSONString(line, str[4+i])
			}
			line = append(line, "}\n"...)
		}
		if err := emit(line); err != nil {
			return n, fmt.Errorf("write: %w", err)
		}
		n++
	}
	return n, rows.Err()
}

// appendCSV appends a CSV field, quoted like encoding/csv does when it
// contains a comma, quote, CR or LF, or starts with a space or tab.
func appendCSV(b, v []byte) []byte {
	quote := len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || string(v) == `\.`)
	if !quote {
		for _, c := range v {
			if c == ',' || c == '"' || c == '\r' || c == '\n' {
				quote = true
				break
			}
		}
	}
	if !quote {
		return append(b, v...)
	}
	b = append(b, '"')
	for _, c := range v {
		if c == '"' {
			b = append(b, '"', '"')
		} else {
			b = append(b, c)
		}
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends v as a JSON string. Invalid UTF-8 becomes
// U+FFFD; U+2028 and U+2029 are escaped like encoding/json does.
func appendJSONString(b, v []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, v[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, v[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, v[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

// WeekFile is the file name of a weekly export: audit-YYYY-Www.csv.
func WeekFile(year, week int) string { return "audit-" + FormatWeek(year, week) + ".csv" }

// exportGrace is how long after a week closes ExportWeeks writes it (SPEC:
// within 10 minutes).
const exportGrace = 5 * time.Minute

// ExportWeeks writes audit-YYYY-Www.csv and audit-YYYY-Www.csv.sha256
// (sha256sum format) into dir for every complete ISO week in loc, from the
// week of the first record up to the last complete one, that is not written
// yet. Each file is written to a temporary file, synced and renamed, so a
// crash leaves either nothing or the whole file; a week whose .sha256 is
// missing is written again. Idempotent; after downtime it catches up. It
// returns the paths it wrote. A week is written exportGrace after it
// closes.
func (s *Store) ExportWeeks(ctx context.Context, dir string, loc *time.Location, now time.Time) (written []string, err error) {
	if loc == nil {
		loc = time.UTC
	}
	var first sql.NullInt64
	if err := s.r.QueryRowContext(ctx, "SELECT min(time) FROM records").Scan(&first); err != nil {
		return nil, fmt.Errorf("weekly export: %w", err)
	}
	if !first.Valid {
		return nil, nil
	}
	// A record carries the time it was decided and is appended after the
	// GitHub calls that publish it (retries included): a week is written
	// only exportGrace after it closes, so that its last records are in.
	ly, lw := LastCompleteWeek(now.Add(-exportGrace), loc)
	y, w := fromNS(first.Int64).In(loc).ISOWeek()
	if weekBefore(ly, lw, y, w) {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("weekly export: %w", err)
	}
	removeStaleTemps(dir)
	for ; !weekBefore(ly, lw, y, w); y, w = nextWeek(y, w) {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		name := filepath.Join(dir, WeekFile(y, w))
		if exists(name) && exists(name+".sha256") {
			continue
		}
		from, to := WeekBounds(y, w, loc)
		h := sha256.New()
		err := WriteFileAtomic(name, func(f io.Writer) error {
			_, _, err := s.Export(ctx, from, to, FormatCSV, io.MultiWriter(f, h))
			return err
		})
		if err != nil {
			return written, fmt.Errorf("weekly export %s: %w", FormatWeek(y, w), err)
		}
		written = append(written, name)
		sum := hex.EncodeToString(h.Sum(nil)) + "  " + filepath.Base(name) + "\n"
		err = WriteFileAtomic(name+".sha256", func(f io.Writer) error {
			_, err := io.WriteString(f, sum)
			return err
		})
		if err != nil {
			return written, fmt.Errorf("weekly export %s: %w", FormatWeek(y, w), err)
		}
		written = append(written, name+".sha256")
	}
	return written, nil
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// staleTemp is the age from which a weekly export's temporary file is left
// over from a crash (another process may be writing a younger one).
const staleTemp = time.Hour

// removeStaleTemps removes the temporary files of weekly exports that a
// crash left in dir (best effort).
func removeStaleTemps(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, ".audit-*.tmp"))
	for _, n := range names {
		if fi, err := os.Stat(n); err == nil && time.Since(fi.ModTime()) > staleTemp {
			os.Remove(n)
		}
	}
}

// WriteFileAtomic writes name through a synced temporary file in the same
// directory and renames it into place (mode 0640).
func WriteFileAtomic(name string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o640); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}
