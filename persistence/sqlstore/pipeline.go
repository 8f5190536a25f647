package sqlstore

import (
	"context"
)

// Pipeline is a Querier that can send several statements in one round
// trip (PostgreSQL's extended protocol, pgx's batches). SQLite's
// in-process calls gain nothing from it, so its driver does not offer it
// and every statement runs when written.
type Pipeline interface {
	// SendBatch runs stmts in order, in one round trip, handing each one's
	// result to its callback, and returns the first error (a statement's
	// or a callback's); the statements after an error have no effect that
	// outlives the transaction, which the caller rolls back.
	SendBatch(ctx context.Context, stmts []Stmt) error
}

// Stmt is one statement of a pipeline: a query whose one row Row reads,
// or a statement whose affected-row count Affected checks (either may be
// nil).
type Stmt struct {
	Query    string // in the driver's placeholder style
	Args     []any
	Row      func(Row) error
	Affected func(int64) error
	// Insert, when set, is the statement instead of Query: a one-row
	// INSERT a pipeline may send with other held inserts of its shape as
	// one statement (merge).
	Insert *Insert
}

// Pipelined implements persistence.Pipeliner.
func (t *txn) Pipelined(ctx context.Context, fn func() error) error {
	if _, ok := t.q.(Pipeline); !ok || t.holding {
		return fn()
	}
	t.holding = true
	err := fn()
	t.holding = false
	// Flushed even when fn failed: a caller that goes on despite fn's
	// error must find its writes made, as without pipelining.
	if ferr := t.flush(ctx); err == nil {
		err = ferr
	}
	return err
}

// later runs s now, or, inside Pipelined on a driver that pipelines, with
// the statements held until the next flush. A Row callback maps its own
// errors; an execution error is mapped before Affected sees the count.
func (t *txn) later(ctx context.Context, s Stmt) error {
	if s.Insert != nil {
		s.Query = s.Insert.one
	}
	s.Query = t.rebind(s.Query)
	if t.holding {
		t.held = append(t.held, s)
		return nil
	}
	if s.Row != nil {
		return s.Row(t.q.QueryRow(ctx, s.Query, s.Args...))
	}
	n, err := t.q.Exec(ctx, s.Query, s.Args...)
	if err != nil || s.Affected == nil {
		return t.mapErr(err)
	}
	return s.Affected(n)
}

// flush sends the held statements; every other statement calls it first,
// so reads see the held writes and statements keep their order.
func (t *txn) flush(ctx context.Context) error {
	if len(t.held) == 0 {
		return nil
	}
	stmts := merge(t.held, t.rebind)
	t.held = nil
	return t.mapErr(t.q.(Pipeline).SendBatch(ctx, stmts))
}

// errRow is a Row that fails: a read whose held writes failed first.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
