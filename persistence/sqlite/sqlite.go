// Package sqlite is the embedded, single-node driver of package
// persistence: pure Go SQLite (modernc.org/sqlite, no cgo) in WAL mode with
// synchronous=FULL, so a committed write survives a killed process. The
// transaction methods and their SQL live in persistence/sqlstore; this
// package holds what is SQLite's own: the file and its pragmas, BEGIN
// IMMEDIATE, the migrations' table, and the dialect (integer microseconds,
// SQLite result codes). Behaviour is specified by persistence and checked by
// persistence/storetest.
//
// Write transactions start with BEGIN IMMEDIATE and wait up to the busy
// timeout for the write lock, so they serialize instead of failing midway.
// Within the process they queue before that, for the one writer's turn
// (Store.writer), where waiting follows the caller's context and the
// store's deadline: a burst of writers queues in Go instead of spinning
// in SQLite's busy handler until some give up with SQLITE_BUSY. A write
// lock held elsewhere (another process) for longer than the busy timeout
// is ErrUnavailable, as a transaction past the store's deadline is.
// Times are stored as INTEGER unix microseconds, UTC.
//
// The file holds personal data (sealed, but also ids, times and what
// anonymisation leaves), so it is private to the server's user: the
// database, its -wal and -shm files are 0600, and secure_delete overwrites
// the bytes of deleted rows with zeros instead of leaving them in free
// pages, where an anonymised client's data would otherwise survive.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlstore"
)

// BusyTimeout is how long a transaction waits for another connection's
// write lock before failing.
const BusyTimeout = 10 * time.Second

// Store is a SQLite database handle; it implements persistence.Store.
type Store struct {
	db     *sql.DB
	opts   persistence.Options
	closed atomic.Bool
	watch  *persistence.TxWatch
	// writer is the one writer's turn: a transaction takes it before
	// BEGIN IMMEDIATE (every transaction here is a write transaction).
	writer chan struct{}
}

var (
	_ persistence.Store       = (*Store)(nil)
	_ persistence.PoolStatser = (*Store)(nil)
)

// Open opens (creating if needed) the SQLite database file at path. It does
// not migrate; call Migrate.
func Open(ctx context.Context, path string, opts persistence.Options) (*Store, error) {
	if err := privateFiles(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w: %w", path, persistence.ErrUnavailable, err)
	}
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"+
		"&_pragma=secure_delete(ON)&_txlock=immediate",
		path, busyTimeout(opts).Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w: %w", path, persistence.ErrUnavailable, err)
	}
	s := &Store{db: db, opts: opts, watch: persistence.NewTxWatch(opts), writer: make(chan struct{}, 1)}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// busyTimeout is BusyTimeout, or the store's deadline when that is
// shorter: waiting on another process's lock past it is of no use.
func busyTimeout(opts persistence.Options) time.Duration {
	if opts.TxDeadline > 0 {
		return min(BusyTimeout, opts.TxDeadline)
	}
	return BusyTimeout
}

// FileMode is the permission of the database file and its -wal and -shm
// files: the server's user only.
const FileMode fs.FileMode = 0o600

// privateFiles creates the database file as FileMode before SQLite opens
// it (SQLite gives the -wal and -shm files the mode of the database file)
// and tightens the files of a database created before, which were 0644.
func privateFiles(path string) error {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
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
	if err := s.watch.Stuck(); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Migrate applies the embedded SQLite migrations not yet applied.
func (s *Store) Migrate(ctx context.Context) ([]persistence.Migration, error) {
	return sqlstore.Migrate(ctx, dialect{}, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)))`, s.begin)
}

// InTx runs fn in one BEGIN IMMEDIATE transaction and commits it, all
// within the store's deadline.
func (s *Store) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	ctx, end := s.watch.Begin(ctx)
	return end(sqlstore.InTx(ctx, dialect{}, s.begin, s.opts, fn))
}

// begin is inTx for the shared SQL.
func (s *Store) begin(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return fn(sqlstore.SQLTx(tx)) })
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: %w", persistence.ErrUnavailable)
	}
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return fmt.Errorf("sqlite: waiting for the writer's turn: %w", ctx.Err())
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
	case errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_CANTOPEN || se.Code()&0xff == sqlite3.SQLITE_IOERR ||
		se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED):
		// BUSY and LOCKED: another process held the write lock past the
		// busy timeout; the client may retry.
		return fmt.Errorf("sqlite: %w: %w", persistence.ErrUnavailable, err)
	case errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed"):
		return fmt.Errorf("sqlite: %w: %w", persistence.ErrUnavailable, err)
	}
	return err
}

// dialect is SQLite's sqlstore.Dialect: times are INTEGER unix
// microseconds, NULL standing for the zero time.
type dialect struct{}

func (dialect) Kind() persistence.Dialect { return persistence.DialectSQLite }
func (dialect) Time(t time.Time) any      { return persistence.CanonicalTime(t).UnixMicro() }
func (dialect) ScanTime(t *time.Time) any { return micros{t} }
func (dialect) MapErr(err error) error    { return mapErr(err) }

// micros reads a time stored as unix microseconds.
type micros struct{ t *time.Time }

func (m micros) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*m.t = time.Time{}
	case int64:
		*m.t = persistence.CanonicalTime(time.UnixMicro(v))
	default:
		return fmt.Errorf("sqlite: a time stored as %T, not as integer microseconds", src)
	}
	return nil
}

// PoolStats reports database/sql's counters (persistence.PoolStatser).
func (s *Store) PoolStats() persistence.PoolStats {
	st := s.db.Stats()
	return persistence.PoolStats{InUse: int64(st.InUse), Idle: int64(st.Idle), Max: int64(st.MaxOpenConnections),
		Waits: st.WaitCount, WaitTime: st.WaitDuration}
}
