// Package sqlite is the embedded, single-node driver of package
// persistence: pure Go SQLite (modernc.org/sqlite, no cgo) in WAL mode with
// synchronous=FULL, so a committed write survives a killed process. It holds
// SQL and row mapping only; behaviour is specified by persistence and checked
// by persistence/storetest.
//
// Write transactions start with BEGIN IMMEDIATE and wait up to the busy
// timeout for the write lock, so they serialize instead of failing midway.
// Times are stored as INTEGER unix microseconds, UTC.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/spa-engine/spa/persistence"
)

// BusyTimeout is how long a transaction waits for another connection's
// write lock before failing.
const BusyTimeout = 10 * time.Second

// Store is a SQLite database handle; it implements persistence.Store.
type Store struct {
	db     *sql.DB
	after  func()
	closed atomic.Bool
}

var _ persistence.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database file at path. It does
// not migrate; call Migrate.
func Open(ctx context.Context, path string, opts persistence.Options) (*Store, error) {
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate",
		path, BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w: %w", path, persistence.ErrUnavailable, err)
	}
	s := &Store{db: db, after: opts.AfterOutboxCommit}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect returns persistence.DialectSQLite.
func (s *Store) Dialect() persistence.Dialect { return persistence.DialectSQLite }

// Close closes the database; calling it again does nothing.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: ping: %w", persistence.ErrUnavailable)
	}
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w: %w", persistence.ErrUnavailable, err)
	}
	return nil
}

// Migrate applies the embedded SQLite migrations not yet applied.
func (s *Store) Migrate(ctx context.Context) ([]persistence.Migration, error) {
	return persistence.RunMigrations(ctx, persistence.MigrationDriver{
		FS: persistence.MigrationsFS(persistence.DialectSQLite),
		TableDDL: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)))`,
		InTx: func(ctx context.Context, fn func(persistence.ScriptTx) error) error {
			return s.inTx(ctx, func(tx *sql.Tx) error { return fn(scriptTx{tx}) })
		},
	})
}

// InTx runs fn in one BEGIN IMMEDIATE transaction and commits it.
func (s *Store) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	var appended bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t := &txn{tx: tx}
		err := fn(t)
		appended = t.appended
		return err
	})
	if err == nil && appended && s.after != nil {
		s.after()
	}
	return err
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: %w", persistence.ErrUnavailable)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			// database/sql may have rolled back already and say only
			// "transaction has already been committed or rolled back".
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				err = fmt.Errorf("%w: %w", cerr, err)
			}
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return mapErr(tx.Commit())
}

// mapErr translates driver errors into the persistence sentinels, keeping
// the original in the chain.
func mapErr(err error) error {
	var se *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: %w", persistence.ErrNotFound)
	case errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return fmt.Errorf("sqlite: %w: %w", persistence.ErrConflict, err)
	case errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		// The referenced row (e.g. the staff member) does not exist.
		return fmt.Errorf("sqlite: %w: %w", persistence.ErrNotFound, err)
	case errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_CANTOPEN || se.Code()&0xff == sqlite3.SQLITE_IOERR):
		return fmt.Errorf("sqlite: %w: %w", persistence.ErrUnavailable, err)
	case errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed"):
		return fmt.Errorf("sqlite: %w: %w", persistence.ErrUnavailable, err)
	}
	return err
}

// scriptTx runs migration scripts.
type scriptTx struct{ tx *sql.Tx }

func (t scriptTx) Exec(ctx context.Context, script string) error {
	_, err := t.tx.ExecContext(ctx, script)
	return mapErr(err)
}

func (t scriptTx) QueryInts(ctx context.Context, query string) ([]int64, error) {
	rows, err := t.tx.QueryContext(ctx, query)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, mapErr(err)
		}
		out = append(out, v)
	}
	return out, mapErr(rows.Err())
}

// Times are unix microseconds; NULL stands for the zero time.

func toMicros(t time.Time) int64 { return persistence.CanonicalTime(t).UnixMicro() }

func fromMicros(us int64) time.Time { return persistence.CanonicalTime(time.UnixMicro(us)) }

func toNullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toMicros(t), Valid: true}
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}
