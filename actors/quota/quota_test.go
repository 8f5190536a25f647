package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
	"github.com/spa-engine/spa/persistence/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// stores runs fn on SQLite, and on PostgreSQL when TEST_DATABASE_URL is
// set.
func stores(t *testing.T, fn func(t *testing.T, st persistence.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqlitetest.Open(t, persistence.Options{})) })
	if pgtest.Wanted() {
		t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Open(t, "quota", persistence.Options{})) })
	}
}

// node is one node's quota directory over a shared store and clock.
type node struct {
	dir *Directory
	met *Metrics
	q   *Client
}

type fixture struct {
	t     *testing.T
	store persistence.Store
	clock *clock
	root  *actor.RootContext
}

func newFixture(t *testing.T, st persistence.Store) *fixture {
	f := &fixture{t: t, store: st, clock: &clock{}}
	f.clock.ns.Store(t0.UnixNano())
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(sys.Shutdown)
	f.root = sys.Root
	return f
}

var names atomic.Int64

// start starts a node: a fresh directory on the shared store (a restart,
// or a second node that believes it owns the keys).
func (f *fixture) start() *node {
	f.t.Helper()
	met, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		f.t.Fatal(err)
	}
	dir, err := newDirectoryNamed(f.root, Deps{Store: f.store, Now: f.clock.now, Metrics: met,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, 5*time.Second, fmt.Sprintf("quotas-%d", names.Add(1)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { dir.Stop(5 * time.Second) })
	return &node{dir: dir, met: met, q: NewClient(dir)}
}

func (n *node) take(key, lease string, units, limit int64, ttl time.Duration) *Reply {
	return n.q.Take(context.Background(), key, &Take{Lease: lease, Units: units, Limit: limit, TTL: ttl})
}

// TestWindowCountsEventsForTheWindowAndSurvivesARestart: a 3-per-hour
// window grants three events, refuses the fourth with the wait until the
// first lapses, refuses it still after the node restarts (the count is in
// the store, not the node), and grants again once the first event is an
// hour old.
func TestWindowCountsEventsForTheWindowAndSurvivesARestart(t *testing.T) {
	stores(t, func(t *testing.T, st persistence.Store) {
		f := newFixture(t, st)
		n := f.start()
		for i := range 3 {
			if r := n.take("otp/ip/a", "", 1, 3, time.Hour); !r.OK || r.Err != nil || r.Used != int64(i+1) {
				t.Fatalf("event %d: %+v", i, r)
			}
			f.clock.add(10 * time.Minute)
		}
		r := n.take("otp/ip/a", "", 1, 3, time.Hour)
		// The first event lapses an hour after it (rounded up to the next
		// minute), 30 minutes from now.
		if r.OK || r.Err != nil || r.Used != 3 || r.RetryAfter <= 30*time.Minute-time.Second || r.RetryAfter > 31*time.Minute {
			t.Fatalf("fourth: %+v", r)
		}
		if got := testutil.ToFloat64(n.met.decisions.WithLabelValues("refused")); got != 1 {
			t.Fatalf("refused metric %v", got)
		}
		n.dir.Stop(5 * time.Second)
		n = f.start()
		if r := n.take("otp/ip/a", "", 1, 3, time.Hour); r.OK || r.Err != nil || r.Used != 3 {
			t.Fatalf("after restart: %+v", r)
		}
		// Another key is not affected.
		if r := n.take("otp/ip/b", "", 1, 3, time.Hour); !r.OK {
			t.Fatalf("other key: %+v", r)
		}
		f.clock.add(31 * time.Minute)
		if r := n.take("otp/ip/a", "", 1, 3, time.Hour); !r.OK || r.Used != 3 {
			t.Fatalf("after the first lapsed: %+v", r)
		}
	})
}

// TestNamedLeasesCountWhileTheyLive: a lease is set, not added to (a
// retry or a changed quantity), lowering is always granted, a release
// frees it at once, and a lease never released lapses at its TTL.
func TestNamedLeasesCountWhileTheyLive(t *testing.T) {
	stores(t, func(t *testing.T, st persistence.Store) {
		f := newFixture(t, st)
		n := f.start()
		const k, ttl = "hold/client/ana", 10 * time.Minute
		for _, id := range []string{"ap1", "ap2", "ap1"} { // ap1 twice: a retry
			if r := n.take(k, id, 1, 2, ttl); !r.OK || r.Err != nil {
				t.Fatalf("%s: %+v", id, r)
			}
		}
		r := n.take(k, "ap3", 1, 2, ttl)
		if r.OK || r.Used != 2 || r.RetryAfter != ttl {
			t.Fatalf("third hold: %+v", r)
		}
		if r := n.q.Release(context.Background(), k, &Release{Leases: []string{"ap2", "nope"}}); !r.OK || r.Used != 1 {
			t.Fatalf("release: %+v", r)
		}
		if r := n.take(k, "ap3", 1, 2, ttl); !r.OK || r.Used != 2 {
			t.Fatalf("after release: %+v", r)
		}
		// Units: a cart line of 5 of 6, raised to 7 (refused), lowered to 2.
		const u = "cart/ip/x"
		if r := n.take(u, "line1", 5, 6, ttl); !r.OK {
			t.Fatalf("5 units: %+v", r)
		}
		if r := n.take(u, "line1", 7, 6, ttl); r.OK || r.Used != 5 {
			t.Fatalf("7 units: %+v", r)
		}
		if r := n.take(u, "line2", 2, 6, ttl); r.OK || r.Used != 5 {
			t.Fatalf("2 more on another line: %+v", r)
		}
		if r := n.take(u, "line1", 2, 6, ttl); !r.OK || r.Used != 2 || r.Prev != 5 {
			t.Fatalf("lowered: %+v", r)
		}
		if r := n.take(u, "line2", 4, 6, ttl); !r.OK || r.Used != 6 {
			t.Fatalf("other line: %+v", r)
		}
		if r := n.take(u, "line2", 0, 6, ttl); !r.OK || r.Used != 2 {
			t.Fatalf("removed line: %+v", r)
		}
		f.clock.add(ttl)
		if r := n.take(k, "ap4", 1, 2, ttl); !r.OK || r.Used != 1 {
			t.Fatalf("after the TTL every earlier hold lapsed: %+v", r)
		}
		if r := n.take(k, "", -1, 2, ttl); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("negative units: %+v", r)
		}
	})
}

// TestTwoActivationsNeverGrantMoreThanTheLimit: two nodes each holding an
// activation of the same key (split ownership during a lease hand-over)
// race for it; the row's version check fences the stale writer, which
// reloads and decides on the truth, so together they grant exactly the
// limit.
func TestTwoActivationsNeverGrantMoreThanTheLimit(t *testing.T) {
	stores(t, func(t *testing.T, st persistence.Store) {
		f := newFixture(t, st)
		a, b := f.start(), f.start()
		const limit = 7
		var granted atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			n := a
			if i%2 == 1 {
				n = b
			}
			wg.Go(func() {
				r := n.take("otp/global/0", "", 1, limit, time.Hour)
				if r.OK {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		// Some answers may be ErrUnavailable (a second conflict in a row):
		// never a grant over the limit.
		if g := granted.Load(); g > limit || g == 0 {
			t.Fatalf("granted %d of %d", g, limit)
		}
		for granted.Load() < limit {
			if r := a.take("otp/global/0", "", 1, limit, time.Hour); r.OK {
				granted.Add(1)
			} else if r.Err == nil {
				t.Fatalf("refused at %d of %d: %+v", granted.Load(), limit, r)
			}
		}
		for _, n := range []*node{a, b} {
			if r := n.take("otp/global/0", "", 1, limit, time.Hour); r.OK {
				t.Fatalf("granted over the limit: %+v", r)
			}
		}
	})
}

// TestStoreDownGrantsNothing: fail closed.
// TestRetriedTransactionsKeepTheVersion: every transaction run twice, the
// first rolled back (PostgreSQL's serialization failure at COMMIT, retried
// by the driver): each grant is written from the version the actor holds,
// none meets a conflict, and a restart counts them all.
func TestRetriedTransactionsKeepTheVersion(t *testing.T) {
	f := newFixture(t, storetest.Retried{Store: sqlitetest.Open(t, persistence.Options{})})
	n := f.start()
	for i := range 3 {
		if r := n.take("k", "", 1, 3, time.Hour); r.Err != nil || !r.OK {
			t.Fatalf("take %d: %+v", i, r)
		}
	}
	if r := f.start().take("k", "", 1, 3, time.Hour); r.Err != nil || r.OK {
		t.Fatalf("a fourth take after a restart: %+v, want refused", r)
	}
}

func TestStoreDownGrantsNothing(t *testing.T) {
	f := newFixture(t, &downStore{Store: sqlitetest.Open(t, persistence.Options{})})
	n := f.start()
	if r := n.take("k", "", 1, 5, time.Hour); r.OK || !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("store down: %+v", r)
	}
}

type downStore struct{ persistence.Store }

func (downStore) InTx(context.Context, func(persistence.Tx) error) error {
	return persistence.ErrUnavailable
}

// TestLimiterSplitsTheGlobalBudgetOverShards: the global budget is the
// sum of its shards' shares whichever shard a request starts at, each
// key keeps its own window, and refusals are counted by scope.
func TestLimiterSplitsTheGlobalBudgetOverShards(t *testing.T) {
	stores(t, func(t *testing.T, st persistence.Store) {
		f := newFixture(t, st)
		n := f.start()
		reg := prometheus.NewRegistry()
		l, err := NewLimiter(n.q, LimiterConfig{Name: "otp", PerKey: limiter.Window{Limit: 2, Per: time.Hour},
			Global: limiter.Window{Limit: 5, Per: time.Hour}, Shards: 3}, reg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var le *limiter.LimitedError
		if err := l.Allow(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := l.Allow(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := l.Allow(ctx, "a"); !errors.As(err, &le) || le.Scope != "ip" || le.RetryAfter <= 0 {
			t.Fatalf("third from a: %v", err)
		}
		for _, k := range []string{"b", "c", "d"} {
			if err := l.Allow(ctx, k); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
		}
		if err := l.Allow(ctx, "e"); !errors.As(err, &le) || le.Scope != "global" {
			t.Fatalf("sixth in total: %v", err)
		}
		if got := testutil.ToFloat64(l.refused.WithLabelValues("global")); got != 1 {
			t.Fatalf("global refusals %v", got)
		}
	})
}

// TestMemoryKeysWriteNothing: a key under MemoryPrefix counts like any
// other while its actor lives, but no grant reaches the store (no row is
// written) and a restart forgets its leases.
func TestMemoryKeysWriteNothing(t *testing.T) {
	stores(t, func(t *testing.T, st persistence.Store) {
		f := newFixture(t, st)
		n := f.start()
		const k, ttl = MemoryPrefix + "hold/ip/198.51.100.7", 10 * time.Minute
		for i, want := range []bool{true, true, false} {
			if r := n.take(k, fmt.Sprintf("ap%d", i), 1, 2, ttl); r.OK != want || r.Err != nil {
				t.Fatalf("take %d: %+v", i, r)
			}
		}
		err := st.InTx(context.Background(), func(tx persistence.Tx) error {
			_, err := tx.QuotaGet(context.Background(), k)
			return err
		})
		if !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("a memory key was stored: %v", err)
		}
		n.dir.Stop(5 * time.Second)
		n = f.start()
		if r := n.take(k, "ap9", 1, 2, ttl); !r.OK || r.Used != 1 {
			t.Fatalf("after a restart the memory key forgot its leases: %+v", r)
		}
	})
}
