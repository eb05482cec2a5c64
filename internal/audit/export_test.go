package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var awkwardReasons = []string{
	`plain`,
	`she said "ship it", then left`,
	"line one\nline two\n",
	"commas, everywhere,,",
	"unicode: ünïcödé — 日本語 🚀 \u2028 sep",
	" leading space",
	"\ttab first",
	`\.`,
	``,
	`"`,
	`back\slash and "quotes"`,
	"control \x01 char",
	"=HYPERLINK(\"x\")",
}

// wantRow is a record as an export shows it.
func wantRow(r Record) []string {
	return []string{r.Time.UTC().Format(time.RFC3339Nano), r.Kind, r.Repository, strconv.Itoa(r.PullRequest), r.HeadSHA,
		r.Actor, strconv.FormatBool(r.Agent), r.Outcome, strings.Join(r.Rules, ";"), r.Reason, r.DeliveryID,
		r.PolicyRevision, r.Hash}
}

func awkwardTrail(t *testing.T, s *Store) []Record {
	t.Helper()
	var recs []Record
	for i, reason := range awkwardReasons {
		recs = append(recs, Record{Time: t0.Add(time.Duration(i) * time.Minute), Kind: KindOverride, Outcome: "refused",
			Repository: "o/r", PullRequest: i + 1, HeadSHA: "abc123", Actor: "bob, \"the builder\"", Agent: i%2 == 0,
			Rules: []string{"agent_self_merge", "merge_freeze"}, Reason: reason, DeliveryID: "d-" + strconv.Itoa(i),
			PolicyRevision: "sha256:feed"})
	}
	out, err := s.Append(context.Background(), recs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportCSVRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	recs := awkwardTrail(t, s)
	var buf bytes.Buffer
	head, n, err := s.Export(ctx, time.Time{}, time.Time{}, "csv", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(recs) || head != recs[len(recs)-1].Hash {
		t.Fatalf("Export = head %s, %d records; want %s, %d", head, n, recs[len(recs)-1].Hash, len(recs))
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv cannot read the export: %v", err)
	}
	if !slices.Equal(rows[0], ExportColumns()) {
		t.Fatalf("header = %v", rows[0])
	}
	if len(rows) != len(recs)+1 {
		t.Fatalf("%d rows, want %d", len(rows)-1, len(recs))
	}
	for i, r := range recs {
		t.Run(fmt.Sprintf("reason %q", r.Reason), func(t *testing.T) {
			if want := wantRow(r); !slices.Equal(rows[i+1], want) {
				t.Fatalf("row = %q\nwant  %q", rows[i+1], want)
			}
		})
	}
	t.Run("matches encoding/csv byte for byte", func(t *testing.T) {
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		w.Write(ExportColumns())
		for _, r := range recs {
			w.Write(wantRow(r))
		}
		w.Flush()
		var got bytes.Buffer
		if _, _, err := s.Export(ctx, time.Time{}, time.Time{}, "csv", &got); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("export differs from encoding/csv:\n%s\nwant\n%s", got.String(), want.String())
		}
	})
}

func TestExportJSONLRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	recs := awkwardTrail(t, s)
	var buf bytes.Buffer
	if _, _, err := s.Export(ctx, time.Time{}, time.Time{}, "jsonl", &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d", len(lines), len(recs))
	}
	type row struct {
		Time           string `json:"time"`
		Kind           string `json:"kind"`
		Repository     string `json:"repository"`
		PullRequest    int    `json:"pull_request"`
		HeadSHA        string `json:"head_sha"`
		Actor          string `json:"actor"`
		Agent          bool   `json:"agent"`
		Outcome        string `json:"outcome"`
		Rules          string `json:"rules"`
		Reason         string `json:"reason"`
		DeliveryID     string `json:"delivery_id"`
		PolicyRevision string `json:"policy_revision"`
		Hash           string `json:"hash"`
	}
	for i, r := range recs {
		t.Run(fmt.Sprintf("reason %q", r.Reason), func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(lines[i]))
			dec.DisallowUnknownFields()
			var got row
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("encoding/json cannot read %s: %v", lines[i], err)
			}
			want := row{r.Time.Format(time.RFC3339Nano), r.Kind, r.Repository, r.PullRequest, r.HeadSHA, r.Actor, r.Agent,
				r.Outcome, strings.Join(r.Rules, ";"), r.Reason, r.DeliveryID, r.PolicyRevision, r.Hash}
			if got != want {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			// exactly the columns, in order
			var keys []string
			dec = json.NewDecoder(strings.NewReader(lines[i]))
			dec.Token()
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, k.(string))
				var skip json.RawMessage
				dec.Decode(&skip)
			}
			if !slices.Equal(keys, ExportColumns()) {
				t.Fatalf("keys = %v", keys)
			}
			// matches encoding/json's escaping of the reason
			want2, _ := json.Marshal(r.Reason)
			if !strings.Contains(lines[i], `"reason":`+string(want2)+",") {
				t.Fatalf("reason escaped differently from encoding/json (%s) in %s", want2, lines[i])
			}
		})
	}
}

func TestExportRange(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	var recs []Record
	for i := 0; i < 5; i++ {
		recs = append(recs, Record{ID: strconv.Itoa(i), Time: t0.Add(time.Duration(i) * time.Hour), Kind: KindDecision, Outcome: "allow"})
	}
	// appended out of time order: the export is in chain order
	recs[1], recs[3] = recs[3], recs[1]
	out, err := s.Append(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	head := out[len(out)-1].Hash
	ids := func(from, to time.Time) string {
		var buf bytes.Buffer
		h, _, err := s.Export(ctx, from, to, "jsonl", &buf)
		if err != nil {
			t.Fatal(err)
		}
		if h != head {
			t.Fatalf("head = %s, want the whole chain's head %s", h, head)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			json.Unmarshal([]byte(l), &m)
			for _, r := range out {
				if r.Hash == m["hash"] {
					got = append(got, r.ID)
				}
			}
		}
		return strings.Join(got, ",")
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"everything, in chain order", time.Time{}, time.Time{}, "0,3,2,1,4"},
		{"from is inclusive, to exclusive", t0.Add(time.Hour), t0.Add(3 * time.Hour), "2,1"},
		{"open end", t0.Add(3 * time.Hour), time.Time{}, "3,4"},
		{"open start", time.Time{}, t0.Add(time.Hour), "0"},
		{"an empty span still names the head", t0.Add(-time.Hour), t0, ""},
		{"from == to is empty", t0, t0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(tc.from, tc.to); got != tc.want {
				t.Fatalf("records %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("refuses an unknown format", func(t *testing.T) {
		if _, _, err := s.Export(ctx, time.Time{}, time.Time{}, "xml", io.Discard); err == nil {
			t.Fatal("Export(xml) succeeded")
		}
	})
	t.Run("refuses to before from", func(t *testing.T) {
		if _, _, err := s.Export(ctx, t0, t0.Add(-time.Second), "csv", io.Discard); err == nil {
			t.Fatal("Export with to < from succeeded")
		}
	})
	t.Run("an empty format means csv", func(t *testing.T) {
		var buf bytes.Buffer
		if _, _, err := s.Export(ctx, time.Time{}, time.Time{}, "", &buf); err != nil || !strings.HasPrefix(buf.String(), "time,kind,") {
			t.Fatalf("Export(\"\") = %v, %.20q", err, buf.String())
		}
	})
}

// blockingWriter runs fn once, on the first write, i.e. in the middle of
// the export.
type blockingWriter struct {
	fn   func()
	done bool
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		w.fn()
	}
	return len(p), nil
}

func TestExportDoesNotBlockAppends(t *testing.T) {
	ctx := context.Background()
	s, _ := mustOpenFile(t)
	recs := make([]Record, 3000)
	for i := range recs {
		recs[i] = Record{Time: t0.Add(time.Duration(i) * time.Second), Kind: KindDecision, Outcome: "allow", Reason: strings.Repeat("x", 100)}
	}
	if _, err := s.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	var appendErr error
	var acceptErr error
	w := &blockingWriter{fn: func() {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, appendErr = s.Append(actx, Record{Time: t0, Kind: KindDecision, Outcome: "block"})
		_, _, acceptErr = s.Accept(actx, Delivery{ID: "during-export", Event: "pull_request"})
	}}
	head, n, err := s.Export(ctx, time.Time{}, time.Time{}, "csv", w)
	if err != nil {
		t.Fatal(err)
	}
	if appendErr != nil || acceptErr != nil {
		t.Fatalf("writes during an export failed: append %v, accept %v", appendErr, acceptErr)
	}
	if n != 3000 {
		t.Fatalf("export saw %d records, want the 3000 of its snapshot", n)
	}
	if res, _ := s.Verify(ctx, head); res.Records != 3001 {
		t.Fatalf("trail has %d records, want 3001", res.Records)
	}
}

func TestExportWeeks(t *testing.T) {
	ctx := context.Background()
	loc := mustZone(t, "Europe/Berlin")
	s := mustOpen(t)
	dir := filepath.Join(t.TempDir(), "exports")
	t.Run("an empty trail writes nothing", func(t *testing.T) {
		w, err := s.ExportWeeks(ctx, dir, loc, t0)
		if err != nil || len(w) != 0 {
			t.Fatalf("ExportWeeks = %v, %v", w, err)
		}
	})
	// One record on Sunday 2026-03-22 23:30 Berlin (W12), one on Monday
	// 2026-03-23 00:30 (W13), one on 2026-03-29 23:59 CEST (W13), one in W15.
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tm := range []time.Time{at("2026-03-22 23:30"), at("2026-03-23 00:30"), at("2026-03-29 23:59"), at("2026-04-08 12:00")} {
		if _, err := s.Append(ctx, Record{Time: tm, Kind: KindDecision, Outcome: "allow", Reason: tm.Format(time.RFC3339)}); err != nil {
			t.Fatal(err)
		}
	}
	base := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	t.Run("waits a few minutes after a week closes", func(t *testing.T) {
		// A record decided just before the close may still be on its way.
		w, err := s.ExportWeeks(ctx, dir, loc, at("2026-03-30 00:02"))
		if want := []string{"audit-2026-W12.csv", "audit-2026-W12.csv.sha256"}; err != nil || !slices.Equal(base(w), want) {
			t.Fatalf("ExportWeeks 2 minutes after W13 closed = %v, %v; want %v", base(w), err, want)
		}
		if _, err := s.Append(ctx, Record{Time: at("2026-03-29 23:59").Add(30 * time.Second), Kind: KindDecision, Outcome: "allow", Reason: "late"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("writes every complete week after the last written", func(t *testing.T) {
		w, err := s.ExportWeeks(ctx, dir, loc, at("2026-04-06 00:05")) // Monday of W15: W14 complete
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"audit-2026-W13.csv", "audit-2026-W13.csv.sha256", "audit-2026-W14.csv", "audit-2026-W14.csv.sha256"}
		if !slices.Equal(base(w), want) {
			t.Fatalf("wrote %v, want %v", base(w), want)
		}
	})
	t.Run("each file holds its week and a sha256sum line", func(t *testing.T) {
		for week, n := range map[string]int{"W12": 1, "W13": 3, "W14": 0} { // W13 with the late record
			name := filepath.Join(dir, "audit-2026-"+week+".csv")
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil || len(rows) != n+1 {
				t.Fatalf("%s: %d rows, %v; want %d", week, len(rows)-1, err, n)
			}
			sum, err := os.ReadFile(name + ".sha256")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(data)
			if want := hex.EncodeToString(h[:]) + "  audit-2026-" + week + ".csv\n"; string(sum) != want {
				t.Fatalf("%s.sha256 = %q, want %q", week, sum, want)
			}
		}
	})
	t.Run("is idempotent", func(t *testing.T) {
		w, err := s.ExportWeeks(ctx, dir, loc, at("2026-04-12 23:00"))
		if err != nil || len(w) != 0 {
			t.Fatalf("second ExportWeeks = %v, %v", w, err)
		}
	})
	t.Run("catches up after downtime", func(t *testing.T) {
		w, err := s.ExportWeeks(ctx, dir, loc, at("2026-04-27 09:00")) // W15, W16, W17 closed meanwhile
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"audit-2026-W15.csv", "audit-2026-W15.csv.sha256", "audit-2026-W16.csv", "audit-2026-W16.csv.sha256",
			"audit-2026-W17.csv", "audit-2026-W17.csv.sha256"}
		if !slices.Equal(base(w), want) {
			t.Fatalf("wrote %v, want %v", base(w), want)
		}
	})
	t.Run("rewrites a week whose checksum file is missing", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, "audit-2026-W13.csv.sha256")); err != nil {
			t.Fatal(err)
		}
		w, err := s.ExportWeeks(ctx, dir, loc, at("2026-04-27 09:00"))
		if err != nil || !slices.Equal(base(w), []string{"audit-2026-W13.csv", "audit-2026-W13.csv.sha256"}) {
			t.Fatalf("ExportWeeks = %v, %v", base(w), err)
		}
	})
	t.Run("removes temporary files a crash left, not younger ones", func(t *testing.T) {
		stale, fresh := filepath.Join(dir, ".audit-2026-W30.csv.123.tmp"), filepath.Join(dir, ".audit-2026-W31.csv.456.tmp")
		for _, p := range []string{stale, fresh} {
			if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		old := time.Now().Add(-2 * time.Hour)
		os.Chtimes(stale, old, old)
		if _, err := s.ExportWeeks(ctx, dir, loc, at("2026-04-27 09:00")); err != nil {
			t.Fatal(err)
		}
		if exists(stale) || !exists(fresh) {
			t.Fatalf("stale temp exists %v, fresh temp exists %v; want false, true", exists(stale), exists(fresh))
		}
		os.Remove(fresh)
	})
	t.Run("leaves no temporary files", func(t *testing.T) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Fatalf("left %s behind", e.Name())
			}
		}
	})
	t.Run("fails clearly when the directory cannot be created", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		if _, err := s.ExportWeeks(ctx, filepath.Join(file, "sub"), loc, at("2026-04-27 09:00")); err == nil {
			t.Fatal("ExportWeeks into a path under a file succeeded")
		}
	})
}

// errWriter fails after limit bytes.
type errWriter struct{ limit int }

func (w *errWriter) Write(p []byte) (int, error) {
	if w.limit -= len(p); w.limit < 0 {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestExportChunked(t *testing.T) {
	ctx := context.Background()
	s, _ := mustOpenFile(t)
	const n = 5*exportChunk + 123
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Time: t0.Add(time.Duration(i) * time.Second), Kind: KindDecision, Outcome: "allow",
			PullRequest: i + 1, Reason: fmt.Sprintf("reason %d, \"quoted\"", i)}
	}
	out, err := s.Append(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		first    int
		count    int
	}{
		{"the whole trail", time.Time{}, time.Time{}, 0, n},
		{"a span across chunk boundaries", t0.Add(1000 * time.Second), t0.Add(15000 * time.Second), 1000, 14000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			head, got, err := s.Export(ctx, tc.from, tc.to, "csv", &buf)
			if err != nil || got != tc.count || head != out[n-1].Hash {
				t.Fatalf("Export = %d records, head %s, %v", got, head, err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil || len(rows) != tc.count+1 {
				t.Fatalf("%d rows, %v", len(rows)-1, err)
			}
			for i, row := range rows[1:] {
				if want := wantRow(out[tc.first+i]); !slices.Equal(row, want) {
					t.Fatalf("row %d = %q, want %q", i, row, want)
				}
			}
		})
	}
	t.Run("a failing writer stops the export with its error", func(t *testing.T) {
		_, _, err := s.Export(ctx, time.Time{}, time.Time{}, "jsonl", &errWriter{limit: 300 << 10})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Export = %v, want disk full", err)
		}
	})
	t.Run("a cancelled context stops the export", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		w := &blockingWriter{fn: cancel}
		if _, _, err := s.Export(cctx, time.Time{}, time.Time{}, "csv", w); err == nil {
			t.Fatal("Export after cancel succeeded")
		}
	})
}
