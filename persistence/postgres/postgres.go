// Package postgres is the networked driver of package persistence, for
// PostgreSQL and CockroachDB through pgx/v5. The transaction methods and
// their SQL live in persistence/sqlstore; this package holds what is
// PostgreSQL's own: the pool, BEGIN/COMMIT and retries, the migrations'
// table, and the dialect (timestamptz values, SQLSTATE codes). Behaviour is
// specified by persistence and checked by persistence/storetest.
//
// Transactions run at SERIALIZABLE and are retried on serialization
// failures (SQLSTATE 40001). On CockroachDB the retry uses
// crdbpgx.ExecuteTx (SAVEPOINT cockroach_restart, where RELEASE is the
// commit). On PostgreSQL that helper is unsound: RELEASE is not the commit,
// the 40001 often arrives at COMMIT, and crdb.ExecuteInTx ignores Commit's
// error, so a transaction that did not commit would be reported as
// committed; and ROLLBACK TO SAVEPOINT keeps the old snapshot, so in-place
// retries cannot succeed. There the whole transaction (BEGIN, fn, COMMIT with
// its error checked) is retried through crdb.ExecuteCtx, with a small
// jittered backoff between attempts.
//
// Query parameters the URL does not reserve for pgx are sent as run-time
// parameters, so search_path=... selects the schema; pool_max_conns sets
// the pool size. Times come back in UTC, truncated to microseconds.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	crdbpgx "github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlstore"
)

// Store is a PostgreSQL or CockroachDB connection pool; it implements
// persistence.Store.
type Store struct {
	pool    *pgxpool.Pool
	crdb    bool
	opts    persistence.Options
	closed  atomic.Bool
	retries atomic.Int64
	watch   *persistence.TxWatch
	// Retried attempts by cause, and statements slower than slow by the
	// store operation that ran them (observe.go); read by PoolStats.
	retryCauses, slowStatements tally
	slow                        time.Duration
}

var (
	_ persistence.Store       = (*Store)(nil)
	_ persistence.PoolStatser = (*Store)(nil)
)

// Open connects to the database at url (a postgres:// URL or DSN) and tells
// PostgreSQL from CockroachDB. It does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts persistence.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (the CPU count) starves a node whose requests
		// each hold a connection for a short transaction.
		cfg.MaxConns = int32(max(16, 4*runtime.GOMAXPROCS(0)))
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{pool: p, opts: opts, watch: persistence.NewTxWatch(opts), slow: opts.SlowStatement}
	var version string
	if err := p.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		p.Close()
		return nil, fmt.Errorf("postgres: open: %w", mapErr(err))
	}
	s.crdb = strings.Contains(version, "CockroachDB")
	return s, nil
}

// Dialect returns persistence.DialectPostgres.
func (s *Store) Dialect() persistence.Dialect { return persistence.DialectPostgres }

// CockroachDB reports whether the server is CockroachDB rather than
// PostgreSQL.
func (s *Store) CockroachDB() bool { return s.crdb }

// Retries returns how many transaction attempts have been retried since
// Open, for metrics and tests.
func (s *Store) Retries() int64 { return s.retries.Load() }

// Close closes the pool; calling it again does nothing.
func (s *Store) Close() error {
	if !s.closed.Swap(true) {
		s.pool.Close()
	}
	return nil
}

// Ping checks that the server answers and that transactions go through:
// a server that answers while every transaction waits on a lock is stuck
// (persistence.TxWatch).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Reachable(ctx); err != nil {
		return err
	}
	if err := s.watch.Stuck(); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Reachable is Ping without the stuck-transaction check: whether this
// node can reach the database at all (a cluster node on standby while it
// cannot, cmd/spa). A stuck database is stuck for every node alike, and
// moving partitions would not help.
func (s *Store) Reachable(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: ping: %w", persistence.ErrUnavailable)
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", unavailable(err))
	}
	return nil
}

func unavailable(err error) error {
	if errors.Is(err, persistence.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", persistence.ErrUnavailable, err)
}

// Migrate applies the embedded PostgreSQL migrations not yet applied.
func (s *Store) Migrate(ctx context.Context) ([]persistence.Migration, error) {
	return sqlstore.Migrate(ctx, dialect{}, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INT8        NOT NULL PRIMARY KEY,
			name       TEXT        NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`, s.begin)
}

// InTx runs fn in one SERIALIZABLE transaction, retrying it on
// serialization failures, and commits it, all within the store's deadline.
func (s *Store) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	ctx, end := s.watch.Begin(ctx)
	return end(sqlstore.InTx(ctx, dialect{}, s.begin, s.opts, fn))
}

// begin is inTx for the shared SQL.
func (s *Store) begin(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return fn(conn{tx: tx, s: s}) })
}

var serializable = pgx.TxOptions{IsoLevel: pgx.Serializable}

func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: %w: store closed", persistence.ErrUnavailable)
	}
	attempt := 0
	var last error // what ended the previous attempt: the retry's cause
	run := func(tx pgx.Tx) error {
		if attempt++; attempt > 1 {
			s.retries.Add(1)
			s.retryCauses.add(retryCause(last))
		}
		last = fn(tx)
		return last
	}
	if s.crdb {
		return mapErr(crdbpgx.ExecuteTx(ctx, s.pool, serializable, run))
	}
	return mapErr(crdb.ExecuteCtx(ctx, func(ctx context.Context, _ ...any) error {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		err := commitTx(ctx, s.pool, run)
		if err != nil {
			last = err // COMMIT's failure, where PostgreSQL reports most
		}
		return err
	}))
}

// commitTx runs one whole attempt: BEGIN, fn, COMMIT, checking COMMIT's
// error (where PostgreSQL often reports serialization failures).
func commitTx(ctx context.Context, c crdbpgx.Conn, fn func(pgx.Tx) error) error {
	tx, err := c.BeginTx(ctx, serializable)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// backoff sleeps a random duration below 1ms·2^attempt, capped at 100ms.
func backoff(ctx context.Context, attempt int) error {
	d := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	t := time.NewTimer(rand.N(d) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mapErr translates pgx errors into the persistence sentinels, keeping the
// original in the chain. Serialization failures and context errors pass
// through unchanged.
//
// Everything that says the server cannot serve us now is ErrUnavailable
// (a 503 the client may retry): a failed connection attempt whatever its
// reason (refused, too many connections, the database not accepting
// connections, starting up or shutting down: pgconn wraps the server's
// PgError in a ConnectError, so that is checked first), and the SQLSTATEs
// of an outage on an open connection (unavailableState).
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	var netErr net.Error
	var connErr *pgconn.ConnectError
	switch {
	case err == nil, errors.Is(err, persistence.ErrNotFound), errors.Is(err, persistence.ErrConflict),
		errors.Is(err, persistence.ErrUnavailable), errors.Is(err, persistence.ErrInvalid),
		errors.Is(err, persistence.ErrFenced), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %w", persistence.ErrNotFound)
	case errors.As(err, &connErr):
		return fmt.Errorf("postgres: %w: %w", persistence.ErrUnavailable, err)
	case errors.As(err, &pgErr):
		switch {
		// 42P07/42710: a table or other object of that name exists, which a
		// migration applied by another process at the same time causes.
		case pgErr.Code == "23505", pgErr.Code == "42P07", pgErr.Code == "42710":
			return fmt.Errorf("postgres: %w: %w", persistence.ErrConflict, err)
		case pgErr.Code == "23503": // foreign key: the referenced row does not exist
			return fmt.Errorf("postgres: %w: %w", persistence.ErrNotFound, err)
		case unavailableState(pgErr.Code):
			return fmt.Errorf("postgres: %w: %w", persistence.ErrUnavailable, err)
		}
		return err
	case errors.As(err, &netErr), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		// A pooled connection found dead (the server went away while it
		// sat idle), or any failure pgconn says happened before the
		// statement was sent.
		errors.Is(err, pgconn.ErrConnClosed), pgconn.SafeToRetry(err):
		return fmt.Errorf("postgres: %w: %w", persistence.ErrUnavailable, err)
	}
	return err
}

// unavailableState reports whether SQLSTATE code says the server cannot
// serve the request now, though it may soon: class 08 (connection
// exception), class 53 (insufficient resources: 53300 too many
// connections, out of memory, disk full), 57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now, 57P04 database_dropped, 57P05
// idle_session_timeout, 57014 query_canceled (a statement timeout) and
// 55P03 lock_not_available (a lock timeout). A database that does not
// allow connections answers 55000 while connecting: a ConnectError.
func unavailableState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "57P"):
		return true
	}
	switch code {
	case "57014", "55P03":
		return true
	}
	return false
}

// dialect is PostgreSQL's sqlstore.Dialect: times are timestamptz.
type dialect struct{}

func (dialect) Kind() persistence.Dialect { return persistence.DialectPostgres }
func (dialect) Time(t time.Time) any      { return persistence.CanonicalTime(t) }
func (dialect) ScanTime(t *time.Time) any { return scanTime{t} }
func (dialect) MapErr(err error) error    { return mapErr(err) }

// scanTime reads a timestamptz, NULL as the zero time.
type scanTime struct{ t *time.Time }

func (s scanTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	*s.t = time.Time{}
	if v.Valid {
		*s.t = persistence.CanonicalTime(v.Time)
	}
	return nil
}

// Tx is tx, a transaction the caller runs on its own pool, as a
// persistence.Tx (see sqlstore.Wrap).
func Tx(tx pgx.Tx) persistence.Tx { return sqlstore.Wrap(dialect{}, conn{tx: tx}) }

// SendBatch sends stmts as one pgx batch: one round trip, each result
// handed to its statement's callback in order (sqlstore.Pipeline).
func (c conn) SendBatch(ctx context.Context, stmts []sqlstore.Stmt) error {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts))}
	for _, s := range stmts {
		q := b.Queue(s.Query, s.Args...)
		switch {
		case s.Row != nil:
			q.QueryRow(func(r pgx.Row) error { return s.Row(r) })
		case s.Affected != nil:
			q.Exec(func(tag pgconn.CommandTag) error { return s.Affected(tag.RowsAffected()) })
		}
	}
	began := time.Now()
	err := c.tx.SendBatch(ctx, b).Close()
	c.observe(began) // a slow batch counts once, under the operation that sent it
	return err
}

// PoolStats reports pgxpool's counters (persistence.PoolStatser).
func (s *Store) PoolStats() persistence.PoolStats {
	st := s.pool.Stat()
	return persistence.PoolStats{InUse: int64(st.AcquiredConns()), Idle: int64(st.IdleConns()), Max: int64(st.MaxConns()),
		Waits: st.EmptyAcquireCount(), WaitTime: st.EmptyAcquireWaitTime(),
		TxRetries: s.retryCauses.snapshot(), SlowStatements: s.slowStatements.snapshot()}
}
