package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence/pgtest"

	crdbpgx "github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/postgres"
	"github.com/spa-engine/spa/persistence/storetest"
)

// freshSchema is a schema of its own in the test server (persistence/pgtest).
func freshSchema(t *testing.T) string { return pgtest.SchemaURL(t, "storetest") }

func open(t *testing.T, url string, opts persistence.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	pgtest.BaseURL(t)
	var mu sync.Mutex
	urls := map[*testing.T]string{} // one schema per subtest
	storetest.Exercise(t, func(t *testing.T, opts persistence.Options) persistence.Store {
		mu.Lock()
		u, ok := urls[t]
		if !ok {
			u = freshSchema(t)
			urls[t] = u
		}
		mu.Unlock()
		return open(t, u, opts)
	}, nil)
}

func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", persistence.Options{})
	if !errors.Is(err, persistence.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
}

// skew runs two transactions that each read a row set and then write
// based on it: classic write skew, which SERIALIZABLE must refuse. Both
// first attempts read before either writes, and the second commits only
// after the first has committed, so PostgreSQL reports the failure at the
// second one's COMMIT. first and second run one transaction attempt each
// call; step is called by them and returns after its synchronisation.
type skew struct {
	readA, readB, wroteB, doneA chan struct{}
	once                        [4]sync.Once
}

func newSkew() *skew {
	return &skew{make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{}), [4]sync.Once{}}
}

// afterRead is called by A (a=true) or B after their read.
func (k *skew) afterRead(a bool) {
	if a {
		k.once[0].Do(func() { close(k.readA); <-k.readB })
	} else {
		k.once[1].Do(func() { close(k.readB); <-k.readA })
	}
}

// afterWrite is called by A or B after their write, before commit.
func (k *skew) afterWrite(a bool) {
	if a {
		k.once[2].Do(func() { <-k.wroteB })
	} else {
		k.once[3].Do(func() { close(k.wroteB); <-k.doneA })
	}
}

// TestCommitTimeSerializationFailureIsRetried provokes a real 40001 at
// COMMIT on PostgreSQL and checks that InTx re-runs the whole transaction.
func TestCommitTimeSerializationFailureIsRetried(t *testing.T) {
	s := open(t, freshSchema(t), persistence.Options{})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	const subject = "studio/skew"
	k := newSkew()
	// The rule both follow: append an entry numbered by how many the
	// subject already has. Serially, the numbers are 0 and 1.
	type result struct {
		err    error
		fnErrs []error // fn's result, per attempt
	}
	run := func(a bool) (r result) {
		r.err = s.InTx(t.Context(), func(tx persistence.Tx) error {
			ctx := t.Context()
			es, err := tx.AuditList(ctx, persistence.AuditListParams{Subject: subject, Limit: 100})
			if err == nil {
				k.afterRead(a)
				err = tx.AuditAppend(ctx, persistence.AuditEntry{ID: ulid.Make().String(), Subject: subject,
					Reason: fmt.Sprint(len(es))})
			}
			if err == nil {
				k.afterWrite(a)
			}
			r.fnErrs = append(r.fnErrs, err)
			return err
		})
		return r
	}
	var ra, rb result
	var wg sync.WaitGroup
	wg.Go(func() { ra = run(true); close(k.doneA) })
	wg.Go(func() { rb = run(false) })
	wg.Wait()
	if ra.err != nil || rb.err != nil {
		t.Fatalf("InTx: A %v, B %v", ra.err, rb.err)
	}
	t.Logf("attempts: A %d %v, B %d %v; retries %d", len(ra.fnErrs), ra.fnErrs, len(rb.fnErrs), rb.fnErrs, s.Retries())
	if len(ra.fnErrs)+len(rb.fnErrs) < 3 {
		t.Fatal("no transaction was retried: the write skew was not detected")
	}
	// CockroachDB reports the failure at RELEASE, which also ends fn's attempt.
	if !s.CockroachDB() && (len(rb.fnErrs) < 2 || rb.fnErrs[0] != nil) {
		t.Fatalf("B's first attempt: fn returned %v; want nil, failing only at COMMIT, then a retry", rb.fnErrs)
	}
	var reasons []string
	if err := s.InTx(t.Context(), func(tx persistence.Tx) error {
		es, err := tx.AuditList(t.Context(), persistence.AuditListParams{Subject: subject, Limit: 100})
		for _, e := range es {
			reasons = append(reasons, e.Reason)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(reasons)
	if !slices.Equal(reasons, []string{"0", "1"}) {
		t.Fatalf("entries numbered %v, want [0 1]", reasons)
	}
	// The retry is counted under its cause: PostgreSQL's write skew is a
	// read/write dependency; CockroachDB names its own reason.
	causes := s.PoolStats().TxRetries
	var total int64
	for _, n := range causes {
		total += n
	}
	if total != s.Retries() || total == 0 {
		t.Fatalf("retries by cause %v (total %d), want the %d retries", causes, total, s.Retries())
	}
	if !s.CockroachDB() && causes["rw_dependency"] == 0 {
		t.Fatalf("retries by cause %v, want rw_dependency", causes)
	}
}

// TestCRDBExecuteTxLosesCommitOnPostgres documents why InTx does not use
// crdbpgx.ExecuteTx on PostgreSQL: in the same write skew, it reports
// success for B although B's COMMIT failed and B's row is not there.
func TestCRDBExecuteTxLosesCommitOnPostgres(t *testing.T) {
	u := freshSchema(t)
	ctx := t.Context()
	conns := make([]*pgx.Conn, 3)
	for i := range conns {
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		conns[i] = c
	}
	var version string
	if err := conns[0].QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Exec(ctx, "CREATE TABLE skew (who TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	k := newSkew()
	body := func(a bool, who string) func(pgx.Tx) error {
		return func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM skew").Scan(&n); err != nil {
				return err
			}
			k.afterRead(a)
			if _, err := tx.Exec(ctx, "INSERT INTO skew VALUES ($1)", who); err != nil {
				return err
			}
			k.afterWrite(a)
			return nil
		}
	}
	serializable := pgx.TxOptions{IsoLevel: pgx.Serializable}
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(k.doneA)
		errA = pgx.BeginTxFunc(ctx, conns[0], serializable, body(true, "A"))
	})
	wg.Go(func() { errB = crdbpgx.ExecuteTx(ctx, conns[1], serializable, body(false, "B")) })
	wg.Wait()
	if errA != nil {
		t.Fatalf("A: %v", errA)
	}
	var rows []string
	r, _ := conns[2].Query(ctx, "SELECT who FROM skew ORDER BY who")
	rows, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crdbpgx.ExecuteTx returned %v; committed rows %v", errB, rows)
	if strings.Contains(version, "CockroachDB") {
		// RELEASE is the commit there: B is retried and committed.
		if errB != nil || !slices.Equal(rows, []string{"A", "B"}) {
			t.Fatalf("CockroachDB: crdbpgx.ExecuteTx = %v with rows %v, want nil and [A B]", errB, rows)
		}
		return
	}
	if errB != nil || slices.Contains(rows, "B") {
		t.Fatalf("crdbpgx.ExecuteTx = %v with rows %v; the defect this test documents seems fixed, revisit InTx", errB, rows)
	}
}

// TestConnectRefusedByServerIsUnavailable: a server that refuses a
// connection with an error of its own (here 53300 too_many_connections,
// a role allowed no connections) is an outage, ErrUnavailable, like a
// closed port; pgconn wraps the server's PgError in a ConnectError, which
// an error mapping that looks for PgErrors first passed through as an
// internal error.
func TestConnectRefusedByServerIsUnavailable(t *testing.T) {
	base := pgtest.BaseURL(t)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	role := "spa_nolimit_" + strings.ToLower(ulid.Make().String()[16:])
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'x' CONNECTION LIMIT 0", role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE "+role) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL must be a postgres:// URL for this test: %v", err)
	}
	u.User = url.UserPassword(role, "x")
	_, err = postgres.Open(ctx, u.String(), persistence.Options{})
	if !errors.Is(err, persistence.ErrUnavailable) {
		t.Fatalf("Open as a role allowed no connections: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "53300") {
		t.Fatalf("Open as a role allowed no connections: %v, want SQLSTATE 53300", err)
	}
}

// TestSlowStatementsByOperation: with a threshold every statement
// exceeds, each is counted under the store operation that ran it, never
// its SQL; without one, nothing is counted.
func TestSlowStatementsByOperation(t *testing.T) {
	u := freshSchema(t)
	for _, threshold := range []time.Duration{time.Nanosecond, 0} {
		s := open(t, u, persistence.Options{SlowStatement: threshold})
		if _, err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		err := s.InTx(t.Context(), func(tx persistence.Tx) error {
			if err := tx.AuditAppend(t.Context(), persistence.AuditEntry{ID: ulid.Make().String(), Subject: "studio/slow", Reason: "x"}); err != nil {
				return err
			}
			_, err := tx.AuditList(t.Context(), persistence.AuditListParams{Subject: "studio/slow", Limit: 10})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		slow := s.PoolStats().SlowStatements
		if threshold == 0 {
			if len(slow) != 0 {
				t.Fatalf("no threshold, yet slow statements %v", slow)
			}
			continue
		}
		if slow["AuditAppend"] == 0 || slow["AuditList"] == 0 {
			t.Fatalf("slow statements %v, want AuditAppend and AuditList", slow)
		}
		for name := range slow {
			if strings.ContainsAny(name, " ()*") {
				t.Errorf("slow statement label %q is not an operation name", name)
			}
		}
	}
}
