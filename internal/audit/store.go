// Package audit is the one SQLite store of Merge Guard: the durable webhook
// inbox, the append-only hash-chained audit trail, manual freezes and the
// small pieces of state the guard keeps beside them.
//
// Contract:
//   - Open sets WAL mode, a busy timeout and synchronous=FULL, and applies the
//     embedded migrations, each in its own transaction. A database written by
//     a newer guard (schema version above SchemaVersion) is refused and left
//     untouched.
//   - Each process holds one writer connection; readers use their own
//     connections and see a consistent snapshot (WAL), so `guard audit
//     export|verify` and `guard freeze` can run beside `guard serve` on the
//     same file. Writers of different processes wait for each other (busy
//     timeout); every write transaction begins IMMEDIATE.
//   - Accept returns only after the delivery is committed (fsync'd WAL).
//     Concurrent Accepts are batched by one writer goroutine into a single
//     transaction (group commit).
//   - The trail is append-only: the code has no update or delete path, and
//     triggers refuse UPDATE and DELETE on it. Appends are serialized; each
//     record carries the SHA-256 of its predecessor (see Verify).
//   - Complete appends a delivery's records and marks it done in one
//     transaction, so each delivery is recorded exactly once.
//   - Times are stored as Unix nanoseconds in UTC; the clock is injectable
//     (WithClock).
//   - OpenReadOnly reads an existing database without ever writing to it:
//     no migration, no change of journal mode, no writer or checkpointer;
//     writes return ErrReadOnly. `guard audit export|verify` and `guard
//     freeze list` use it, on the live database beside `guard serve` or on
//     a backup copy.
//
// A Store is safe for concurrent use. ":memory:" opens a private in-memory
// database on a single connection (for tests).
package audit

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // driver "sqlite"
)

//go:embed *.sql
var migrationFS embed.FS

// ErrNotFound is returned when a record, delivery or other row does not exist.
var ErrNotFound = errors.New("not found")

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("audit store is closed")

// busyTimeout is how long a writer waits for another process's write
// transaction before giving up.
const busyTimeout = 10 * time.Second

// maxBatch bounds how many Accepts share one transaction.
const maxBatch = 512

// Store is the guard's SQLite database. Create it with Open, or with
// OpenReadOnly to read it without ever writing to it.
type Store struct {
	w   *sql.DB // the one writer connection (and, for ":memory:", the only one); nil if readOnly
	r   *sql.DB // readers; == w for ":memory:"
	wq  stmts   // prepared statements of w (hot write paths, prepared at Open)
	rq  stmts   // prepared statements of r (hot reads, prepared on first use)
	now func() time.Time

	accepts    chan acceptReq
	intake     atomic.Int64  // Accepts waiting for their commit
	arriving   atomic.Int64  // Accepts not handed to the writer yet (see linger)
	lingerMax  time.Duration // see linger; lingerMax, tests change it
	pace       time.Duration // see gather; commitPace, tests change it
	quit       chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	ckpt       *checkpointer // nil for ":memory:"
	wrote      atomic.Bool   // a transaction committed since the checkpointer last looked
	closeErr   error

	readOnly bool        // opened by OpenReadOnly: no writer, writes return ErrReadOnly
	frozen   *frozenFile // the file as it was when opened immutable (see OpenReadOnly), or nil
}

// Option configures Open.
type Option func(*Store)

// WithClock makes the store read the time from now instead of time.Now
// (record times, delivery receipt, freeze starts and ends).
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// SchemaVersion is the schema version this build of the guard writes: the
// number of the last embedded migration (a test keeps them in step).
const SchemaVersion = 4

// loadMigrations reads NNNN_name.sql files, ordered and numbered 1, 2, 3...
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		num, _, ok := strings.Cut(n, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", n)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: n, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", m.name, i+1)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return out, nil
}

// Open opens (creating if needed) the database at path, sets its pragmas and
// migrates it to SchemaVersion. path ":memory:" opens a private in-memory
// database on a single connection. To read a database without ever writing
// to it, use OpenReadOnly.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	s, err := newStore(path, opts)
	if err != nil {
		return nil, err
	}
	memory := path == ":memory:"
	conn := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(%d)&_txlock=immediate",
		busyTimeout.Milliseconds(), safetyCheckpointPages)
	w, err := sql.Open("sqlite", path+"?"+conn)
	if err != nil {
		return nil, fmt.Errorf("open audit store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s.w = w
	if err := s.setup(ctx, memory); err != nil {
		w.Close()
		return nil, fmt.Errorf("open audit store %s: %w", path, err)
	}
	if memory {
		s.r = w
	} else {
		r, err := openReaders(readerDSN(path))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open audit store %s: %w", path, err)
		}
		s.r = r
	}
	s.wq = stmts{db: s.w}
	s.rq = stmts{db: s.r, onMiss: true}
	if err := s.wq.prepare(ctx, qInsertDelivery, qDeliveryState, qDeliveryDone, qChainHead, qInsertRecord,
		qSaveCheckRun, qSaveCheckRunPR, qTrackPR); err != nil {
		s.wq.close()
		if s.r != s.w {
			s.r.Close()
		}
		w.Close()
		return nil, fmt.Errorf("open audit store %s: %w", path, err)
	}
	if !memory {
		c, err := startCheckpointer(path, &s.wrote)
		if err != nil {
			s.wq.close()
			s.r.Close()
			w.Close()
			return nil, fmt.Errorf("open audit store %s: %w", path, err)
		}
		s.ckpt = c
	}
	go s.writer()
	return s, nil
}

// newStore checks path and makes a Store with opts applied, not yet
// connected to its database (Open and OpenReadOnly connect it).
func newStore(path string, opts []Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("open audit store: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open audit store: database path %q must not contain '?' or '#'", path)
	}
	s := &Store{
		now:        time.Now,
		lingerMax:  lingerMax,
		pace:       commitPace,
		accepts:    make(chan acceptReq),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// readerDSN is the data source of the readers' connections: name (a file
// path, or a "file:" URI whose SQLite parameters are uriParams) with a busy
// timeout, and query_only so that a reader never writes by mistake.
func readerDSN(name string, uriParams ...string) string {
	q := slices.Concat(uriParams, []string{fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()), "_pragma=query_only(1)"})
	return name + "?" + strings.Join(q, "&")
}

// openReaders opens the readers' pool on dsn.
func openReaders(dsn string) (*sql.DB, error) {
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(2)
	return r, nil
}

// setup checks the schema version, switches to WAL and migrates.
func (s *Store) setup(ctx context.Context, memory bool) error {
	v, err := userVersion(ctx, s.w)
	if err != nil {
		return err
	}
	if err := checkVersion(v); err != nil {
		return err
	}
	if !memory {
		var mode string
		if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
			return fmt.Errorf("set WAL mode: %w", err)
		}
		if !strings.EqualFold(mode, "wal") {
			return fmt.Errorf("set WAL mode: database stays in %s mode", mode)
		}
		if _, err := s.w.ExecContext(ctx, "PRAGMA journal_size_limit=67108864"); err != nil {
			return fmt.Errorf("set journal size limit: %w", err)
		}
	}
	return s.migrate(ctx)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func userVersion(ctx context.Context, q queryRower) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func checkVersion(v int) error {
	if v > SchemaVersion {
		return fmt.Errorf("database schema version %d is newer than this guard (%d); upgrade guard or restore a backup", v, SchemaVersion)
	}
	return nil
}

// migrate applies every migration above the current version, each in one
// IMMEDIATE transaction that re-reads the version (another process may be
// migrating the same file).
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return err
	}
	if last := ms[len(ms)-1].version; last != SchemaVersion {
		return fmt.Errorf("embedded migrations end at version %d, want SchemaVersion %d", last, SchemaVersion)
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, m migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	v, err := userVersion(ctx, tx)
	if err != nil {
		return err
	}
	if err := checkVersion(v); err != nil {
		return err
	}
	if v >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return fmt.Errorf("migration %s: set version: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return nil
}

// Close stops the group-commit writer and closes the database. Accepts
// waiting for it return ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.writerDone
		var errs []error
		if s.ckpt != nil {
			errs = append(errs, s.ckpt.close())
		}
		s.rq.close()
		s.wq.close()
		if s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			errs = append(errs, s.w.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Ping reports whether the database is writable: it takes the write lock
// and releases it without changing anything.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	if s.readOnly {
		return fmt.Errorf("ping database: %w", ErrReadOnly)
	}
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: needs write access
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return tx.Rollback()
}

// maxYield bounds how long a write transaction gives way to waiting
// acknowledgements, so that processing still progresses under a flood.
const maxYield = 25 * time.Millisecond

// yield lets waiting webhook acknowledgements have the one writer
// connection first: the intake must stay fast while processing (which may
// fall behind and drain later) waits. It waits at most maxYield.
func (s *Store) yield(ctx context.Context) {
	if s.intake.Load() == 0 {
		return
	}
	deadline := time.Now().Add(maxYield)
	for s.intake.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(250 * time.Microsecond)
	}
}

// inTx runs fn in one write transaction (BEGIN IMMEDIATE) and commits,
// after giving way to acknowledgements waiting for the writer.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	if s.readOnly {
		return ErrReadOnly
	}
	s.yield(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.wrote.Store(true)
	return nil
}

// nowUTC is the store's clock in UTC without a monotonic reading.
func (s *Store) nowUTC() time.Time { return s.now().UTC().Round(0) }

// ns converts t to stored Unix nanoseconds, clamping to the representable
// range (the zero time means "the beginning").
func ns(t time.Time) int64 {
	switch {
	case t.IsZero() || t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// fromNS converts stored Unix nanoseconds to a UTC time.
func fromNS(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ns(t)
}

// timeOrZero reads a nullable time column.
func timeOrZero(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNS(n.Int64)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
