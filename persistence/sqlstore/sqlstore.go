// Package sqlstore is the one implementation of persistence.Tx: every
// transaction method and every query of the engine, written once for
// PostgreSQL/CockroachDB and SQLite alike. The drivers (persistence/postgres,
// persistence/sqlite) keep only what really differs between them: opening
// and pooling, BEGIN/COMMIT and retries, their migrations, and a Dialect
// that says how their database/driver pair encodes times and reports
// errors. Behaviour is specified by package persistence and checked against
// both drivers by persistence/storetest.
//
// Queries are written with ? placeholders in the SQL both databases accept
// (ON CONFLICT upserts, RETURNING, true/false, CAST(... AS BIGINT)). The few
// spellings that differ are chosen here by the dialect's Kind: $n
// placeholders and = ANY($n) lists on PostgreSQL, IN (?, ...) lists and
// instr() on SQLite (see flavour.go).
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Dialect is what a driver tells the shared SQL about itself.
type Dialect interface {
	// Kind selects the SQL spelling (placeholders, lists, byte search) and
	// prefixes error messages ("postgres: ...", "sqlite: ...").
	Kind() persistence.Dialect
	// Time is t as a query argument, stored in UTC to the microsecond
	// (persistence.CanonicalTime).
	Time(t time.Time) any
	// ScanTime is a scan destination that reads a stored time into *dst:
	// canonical, and the zero time for NULL.
	ScanTime(dst *time.Time) any
	// MapErr translates a driver error into the persistence sentinels
	// (ErrNotFound for no rows or a missing referenced row, ErrConflict
	// for a unique violation, ErrUnavailable for a lost connection),
	// keeping the original in the chain.
	MapErr(err error) error
}

// Querier runs SQL in one open transaction of the driver underneath; the
// query text it gets is already in the driver's placeholder style.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query returning rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query returning at most one row.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Row is one row of a result. Scan returns an error wrapping sql.ErrNoRows
// when there is none (pgx.ErrNoRows does).
type Row interface{ Scan(dest ...any) error }

// Rows is a result set, read with Next and Scan and closed with Close.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Begin runs fn in one transaction of the driver, with the driver's own
// BEGIN, COMMIT and retry rules, and returns fn's error or the commit's.
type Begin func(ctx context.Context, fn func(Querier) error) error

// InTx runs fn as one persistence.Tx through begin, sealing personal text
// with opts.Personal. When the transaction appended outbox events and
// committed, it calls opts.AfterOutboxCommit (if set) with their ids.
func InTx(ctx context.Context, d Dialect, begin Begin, opts persistence.Options, fn func(persistence.Tx) error) error {
	var appended []string
	after := opts.AfterOutboxCommit
	err := begin(ctx, func(q Querier) error {
		t := &txn{q: q, d: d, flavour: flavourOf(d.Kind()), personal: opts.Personal}
		err := fn(t)
		appended = t.appended
		return err
	})
	if err == nil && len(appended) > 0 && after != nil {
		after(appended)
	}
	return err
}

// Wrap is q, one open transaction of the driver, as a persistence.Tx, for
// code that runs its own transactions (the lock baseline engine). Outbox
// events it appends wake no relay.
func Wrap(d Dialect, q Querier) persistence.Tx {
	return &txn{q: q, d: d, flavour: flavourOf(d.Kind())}
}

// Migrate applies the dialect's embedded migrations not yet applied, each
// in its own transaction through begin. tableDDL creates the
// schema_migrations table (persistence.MigrationDriver.TableDDL).
func Migrate(ctx context.Context, d Dialect, tableDDL string, begin Begin) ([]persistence.Migration, error) {
	return persistence.RunMigrations(ctx, persistence.MigrationDriver{
		FS:       persistence.MigrationsFS(d.Kind()),
		TableDDL: tableDDL,
		InTx: func(ctx context.Context, fn func(persistence.ScriptTx) error) error {
			return begin(ctx, func(q Querier) error { return fn(scriptTx{q, d}) })
		},
	})
}

// scriptTx runs migration scripts: as written, without rebinding, since
// they take no parameters.
type scriptTx struct {
	q Querier
	d Dialect
}

func (s scriptTx) Exec(ctx context.Context, script string) error {
	_, err := s.q.Exec(ctx, script) // no arguments: several statements allowed
	return s.d.MapErr(err)
}

func (s scriptTx) QueryInts(ctx context.Context, query string) ([]int64, error) {
	rows, err := s.q.Query(ctx, query)
	if err != nil {
		return nil, s.d.MapErr(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, s.d.MapErr(err)
		}
		out = append(out, v)
	}
	return out, s.d.MapErr(rows.Err())
}

// txn is one transaction's persistence.Tx.
type txn struct {
	q        Querier
	d        Dialect
	flavour  flavour
	appended []string // ids of the outbox events appended, in order

	// personal seals personal text about clients (nil: stored as it is);
	// dataKeys are the client keys this transaction opened, by client id.
	personal persistence.PersonalSealer
	dataKeys map[string][]byte
	// sealedShipping holds the stored form of sealed shipping addresses
	// scanned in this transaction, by order id, until openOrders opens
	// them (a query cannot run while rows are read on PostgreSQL).
	sealedShipping map[string]string

	// held are the writes waiting for the next flush while holding
	// (inside Pipelined on a driver that pipelines: pipeline.go).
	held    []Stmt
	holding bool
}

var _ persistence.Tx = (*txn)(nil)

func (t *txn) exec(ctx context.Context, query string, args ...any) (int, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	n, err := t.q.Exec(ctx, t.rebind(query), args...)
	return int(n), t.d.MapErr(err)
}

func (t *txn) queryRow(ctx context.Context, query string, args ...any) Row {
	if err := t.flush(ctx); err != nil {
		return errRow{err}
	}
	return t.q.QueryRow(ctx, t.rebind(query), args...)
}

func (t *txn) query(ctx context.Context, query string, args ...any) (Rows, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	rows, err := t.q.Query(ctx, t.rebind(query), args...)
	return rows, t.d.MapErr(err)
}

// queryList runs query and maps every row with scan; no rows is an empty
// slice, not nil.
func queryList[T any](ctx context.Context, t *txn, scan func(row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, t.mapErr(err)
		}
		out = append(out, v)
	}
	return out, t.mapErr(rows.Err())
}

// row is a Row or the current row of Rows.
type row interface{ Scan(dest ...any) error }

func (t *txn) mapErr(err error) error { return t.d.MapErr(err) }

// notFound is the error for an addressed row that is not there, as the
// drivers report a query without rows.
func (t *txn) notFound() error { return fmt.Errorf("%s: %w", t.d.Kind(), persistence.ErrNotFound) }

// errorf formats an error message prefixed with the dialect's name.
func (t *txn) errorf(format string, args ...any) error {
	return fmt.Errorf(string(t.d.Kind())+": "+format, args...)
}

// ts is x as a query argument; nullTS maps the zero time to NULL.
func (t *txn) ts(x time.Time) any { return t.d.Time(x) }

func (t *txn) nullTS(x time.Time) any {
	if x.IsZero() {
		return nil
	}
	return t.d.Time(x)
}

// at is a scan destination for a time column (NULL: the zero time).
func (t *txn) at(dst *time.Time) any { return t.d.ScanTime(dst) }

// SQLTx is a database/sql transaction as a Querier.
func SQLTx(tx *sql.Tx) Querier { return sqlTx{tx} }

type sqlTx struct{ tx *sql.Tx }

func (s sqlTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s sqlTx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := s.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (s sqlTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.tx.QueryRowContext(ctx, query, args...)
}

// sqlRows is *sql.Rows with a Close that returns nothing, as pgx's.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
