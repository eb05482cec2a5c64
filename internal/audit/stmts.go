package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmts prepares each query once per database handle and reuses it: the
// SQLite driver otherwise parses and plans every statement on every call,
// which was ~10 % of the guard's CPU while processing deliveries. Only the
// fixed queries of hot paths go through it (the set of query strings must
// stay finite).
//
// The writer's handle has one connection, held by whichever transaction runs:
// preparing on it from inside a transaction would wait for itself. Its
// statements are prepared up front (prepare) and a query missing from the
// cache runs unprepared in the transaction instead (errNotPrepared).
type stmts struct {
	db     *sql.DB
	onMiss bool     // prepare a missing query (readers' pool), or not (writer)
	m      sync.Map // query -> *sql.Stmt
}

var errNotPrepared = errors.New("statement not prepared")

// prepare prepares queries now; for the writer, before any transaction.
func (c *stmts) prepare(ctx context.Context, queries ...string) error {
	for _, q := range queries {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", q, err)
		}
		c.m.Store(q, st)
	}
	return nil
}

func (c *stmts) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	if !c.onMiss {
		return nil, errNotPrepared
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// close closes every cached statement (before the handle closes).
func (c *stmts) close() {
	c.m.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		c.m.Delete(k)
		return true
	})
}

func (c *stmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return c.db.QueryRowContext(ctx, query, args...) // reports the same error through Scan
	}
	return st.QueryRowContext(ctx, args...)
}

// in is c for the statements of tx, a transaction on c's handle.
func (c *stmts) in(tx *sql.Tx) txStmts { return txStmts{c: c, tx: tx} }

// txStmts runs cached statements inside one transaction.
type txStmts struct {
	c  *stmts
	tx *sql.Tx
}

func (t txStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.c.stmt(ctx, query)
	if err != nil {
		return t.tx.ExecContext(ctx, query, args...)
	}
	return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (t txStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.c.stmt(ctx, query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

func (t txStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.c.stmt(ctx, query)
	if err != nil {
		return t.tx.QueryContext(ctx, query, args...)
	}
	return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}
