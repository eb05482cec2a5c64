package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrReadOnly is returned by every call that writes on a store opened with
// OpenReadOnly.
var ErrReadOnly = errors.New("audit store is opened read-only")

// oldestReadable is the oldest schema version OpenReadOnly reads as it is.
// Migration 2 only rebuilt the inbox (deliveries): the tables the read-only
// commands read (records, freezes, meta) have kept their columns since
// version 1. A migration that changes what they read must raise it.
const oldestReadable = 1

// OpenReadOnly opens the existing database at path for reading only, as
// `guard audit export|verify` and `guard freeze list` do, on the live
// database beside a running `guard serve` or on a backup copy kept as
// evidence. It never writes to the database file:
//
//   - The file is opened with SQLite's mode=ro (no write can reach it) and
//     readers that are query_only. No migration runs, the journal mode is
//     left as it is, and no checkpointer or writer goroutine starts: every
//     call that writes returns ErrReadOnly at once.
//   - A database written by a newer guard is refused, and so is one without
//     the guard's schema. An older schema (from oldestReadable on) is read
//     as it is, not migrated.
//   - A database in WAL mode with its -wal file beside it (a serving guard,
//     or a guard that crashed) is read through SQLite's WAL: this sees every
//     committed transaction, beside a writer. SQLite then needs the -shm
//     index beside it and creates it if it is missing (it is not part of
//     the database; the database and -wal files are not modified).
//   - A database in WAL mode without a -wal file (a stopped guard's, or a
//     copy) has everything committed in the database file itself. SQLite
//     would create an empty -wal and a -shm beside it to read it in mode=ro,
//     and leave them there, or fail in a read-only directory; it is opened
//     immutable instead: read without locks and without those files. That
//     is safe as long as nothing writes the file, and nothing can without
//     creating the -wal file first (the file is in WAL mode), so Verify,
//     Export and ActiveFreezes (what the read-only commands run) end by
//     checking that no -wal file has appeared and that the file is the
//     same, of the same size and modification time (see unchanged):
//     otherwise their result is refused as possibly inconsistent, and
//     running them again reads through the WAL. Other reads are not
//     checked.
//   - A rollback-journal (e.g. DELETE mode) database is read in mode=ro
//     with SQLite's usual locks: nothing is created beside it.
func OpenReadOnly(ctx context.Context, path string, opts ...Option) (*Store, error) {
	s, err := newStore(path, opts)
	if err != nil {
		return nil, err
	}
	if path == ":memory:" {
		return nil, errors.New("open audit store read-only: needs a database file, not :memory:")
	}
	uri, params, frozen, err := readOnlySource(path)
	if err != nil {
		return nil, fmt.Errorf("open audit store %s read-only: %w", path, err)
	}
	r, err := openReaders(readerDSN(uri, params...))
	if err != nil {
		return nil, fmt.Errorf("open audit store %s read-only: %w", path, err)
	}
	s.r, s.readOnly, s.frozen = r, true, frozen
	s.rq = stmts{db: s.r, onMiss: true}
	close(s.writerDone) // there is no writer goroutine
	v, err := userVersion(ctx, s.r)
	if err != nil && frozen == nil && exists(path+"-wal") && !exists(path+"-shm") {
		err = fmt.Errorf("%w (SQLite reads the -wal file beside the database through a -shm index, which it could not create there: "+
			"run this where it can, e.g. on a copy of the database and its -wal file in a writable directory)", err)
	}
	if err == nil {
		err = checkReadable(v, oldestReadable)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open audit store %s read-only: %w", path, err)
	}
	return s, nil
}

// checkReadable refuses a schema version OpenReadOnly cannot read as it is.
func checkReadable(v, oldest int) error {
	if err := checkVersion(v); err != nil {
		return err
	}
	if v == 0 {
		return errors.New("no guard schema in it (schema version 0): it is not a guard database, or 'guard serve' never opened it")
	}
	if v < oldest {
		return fmt.Errorf("database schema version %d is older than this guard's %d and is not read as it is: "+
			"run 'guard serve' of this version on a copy to upgrade the copy, or use the guard version that wrote it", v, SchemaVersion)
	}
	return nil
}

// readOnlySource is the SQLite URI and parameters that open path without
// writing to it (see OpenReadOnly), and, for an immutable open, what the
// file was like before it.
func readOnlySource(path string) (uri string, params []string, frozen *frozenFile, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, nil, err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, nil, errors.New("the database file does not exist")
	case err != nil:
		return "", nil, nil, err
	case fi.IsDir():
		return "", nil, nil, errors.New("it is a directory, not a database file")
	}
	wal, err := walMode(abs)
	if err != nil {
		return "", nil, nil, err
	}
	// A URI path is the file's absolute path with '%' (and '?', '#', which
	// newStore refuses) escaped; "file:" and one leading slash is a local
	// file.
	uri = "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	params = []string{"mode=ro"}
	if wal && !exists(abs+"-wal") {
		params = append(params, "immutable=1")
		frozen = &frozenFile{path: abs, fi: fi}
	}
	return uri, params, frozen, nil
}

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// walMode reports whether the database file at path is in WAL mode: its
// header's read version (byte 19) is 2. A file too short for a header, or
// not an SQLite file, is not (SQLite reports what it is).
func walMode(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return bytes.HasPrefix(h[:], sqliteMagic) && h[19] == 2, nil
}

// frozenFile is a database file opened immutable, as it was before.
type frozenFile struct {
	path string
	fi   os.FileInfo
}

// unchanged reports an error unless the file is as it was when the store
// was opened: the same file, size and modification time, and still no -wal
// file beside it. A guard that started on it meanwhile has created the
// -wal file; any write to the database file itself changes its
// modification time.
func (f *frozenFile) unchanged() error {
	fi, err := os.Stat(f.path)
	if err == nil && os.SameFile(fi, f.fi) && fi.Size() == f.fi.Size() && fi.ModTime().Equal(f.fi.ModTime()) && !exists(f.path+"-wal") {
		return nil
	}
	return fmt.Errorf("%s was written to while it was read (did a guard start on it?): the result may be inconsistent, run the command again", f.path)
}

// readConsistent reports an error when a read made on s may have seen a
// database file that changed under it (only possible for an immutable open;
// see OpenReadOnly).
func (s *Store) readConsistent() error {
	if s.frozen == nil {
		return nil
	}
	return s.frozen.unchanged()
}
