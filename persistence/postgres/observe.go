package postgres

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spa-engine/spa/persistence/sqlstore"
)

// tally counts by a small set of names (retry causes, store operations):
// read whole by PoolStats on each scrape.
type tally struct {
	mu sync.Mutex
	n  map[string]int64
}

func (t *tally) add(name string) {
	t.mu.Lock()
	if t.n == nil {
		t.n = map[string]int64{}
	}
	t.n[name]++
	t.mu.Unlock()
}

func (t *tally) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.n))
	for k, v := range t.n {
		out[k] = v
	}
	return out
}

// crdbReasonRE finds CockroachDB's retry reason in a 40001's message
// ("... TransactionRetryError: retry txn (RETRY_SERIALIZABLE - ...)"): a
// closed set of names, safe as a label.
var crdbReasonRE = regexp.MustCompile(`RETRY_[A-Z_]+|ABORT_REASON_[A-Z_]+|ReadWithinUncertaintyInterval|WriteTooOld`)

// retryCause names why an attempt was retried, from the error that ended
// it: PostgreSQL's kind of serialization failure, or CockroachDB's retry
// reason. nil: the attempt's function succeeded and the failure came at
// CockroachDB's RELEASE, which the retry helper does not show us.
func retryCause(err error) string {
	if err == nil {
		return "at_release"
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "other"
	}
	switch pgErr.Code {
	case "40001":
		if m := crdbReasonRE.FindString(pgErr.Message); m != "" {
			return strings.ToLower(m)
		}
		switch msg := pgErr.Message; {
		case strings.Contains(msg, "read/write dependencies"):
			return "rw_dependency"
		case strings.Contains(msg, "concurrent update"):
			return "concurrent_update"
		case strings.Contains(msg, "concurrent delete"):
			return "concurrent_delete"
		}
		return "serialization_failure"
	case "40P01":
		return "deadlock"
	}
	return "other"
}

// conn is a pgx transaction as sqlstore's Querier. With a store, each
// statement slower than the store's threshold is counted under the store
// operation that ran it (its name, never its text: no values, bounded
// labels).
type conn struct {
	tx pgx.Tx
	s  *Store // nil: not observed (Tx)
}

func (c conn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	began := time.Now()
	tag, err := c.tx.Exec(ctx, query, args...)
	c.observe(began)
	return tag.RowsAffected(), err
}

func (c conn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	began := time.Now()
	rows, err := c.tx.Query(ctx, query, args...)
	c.observe(began) // until the first answer; reading the rows is the caller's time
	return rows, err
}

func (c conn) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	// pgx runs the statement at Scan.
	return timedRow{row: c.tx.QueryRow(ctx, query, args...), c: c}
}

type timedRow struct {
	row pgx.Row
	c   conn
}

func (r timedRow) Scan(dest ...any) error {
	began := time.Now()
	err := r.row.Scan(dest...)
	r.c.observe(began)
	return err
}

func (c conn) observe(began time.Time) {
	if c.s == nil || c.s.slow <= 0 || time.Since(began) < c.s.slow {
		return
	}
	c.s.slowStatements.add(operation())
}

// operation is the store operation running the statement: the outermost
// caller in package sqlstore (e.g. "AppointmentCreate"), or "other".
// Only slow statements pay for the stack walk.
func operation() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	name := ""
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, "/persistence/sqlstore.") {
			name = f.Function
		} else if name != "" {
			break // left sqlstore: name is its entry point
		}
		if !more {
			break
		}
	}
	if name == "" {
		return "other"
	}
	name = name[strings.LastIndex(name, ".")+1:]
	return strings.TrimSuffix(name, "-fm")
}
