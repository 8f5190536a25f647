package loadgen

import (
	"context"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/schedule/claimcheck"
	"github.com/spa-engine/spa/actors/testwait"
)

// holdingServer answers every request 409 slot_taken, but only once
// release is closed (or the client goes away); arrived counts requests
// that reached it.
func holdingServer(t *testing.T) (srv *httptest.Server, arrived *atomic.Int64, release func()) {
	t.Helper()
	arrived = new(atomic.Int64)
	ch := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":{"code":"slot_taken"}}`))
	}))
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(func() { release(); srv.Close() })
	return srv, arrived, release
}

// testGen is a generator over c with one staff member's day planned.
func testGen(c *client, o Options) (*gen, *worker) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	g := &gen{o: o, c: c, rec: claimcheck.NewRecorder(),
		p: &plan{runID: "lgtest", service: "svc", staff: []string{"s"}, days: []time.Time{day}, slots: 64}}
	return g, &worker{c: c, rng: mrand.New(mrand.NewPCG(1, 2)), st: newStats(), token: "t"}
}

// TestCancelAbortsRequestsInFlight: cancelling the run ends a claim in
// flight at once (its timeout is an hour away) as an ambiguous
// "cancelled", recorded for porcupine; claims after it are not sent and
// stay out of the history.
func TestCancelAbortsRequestsInFlight(t *testing.T) {
	srv, arrived, _ := holdingServer(t)
	o := Options{BaseURL: srv.URL, Workers: 2, Timeout: time.Hour, Scenario: ScenarioHot}
	c := newClient(o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := c.abortWhenDone(ctx)
	defer stop()
	g, w := testGen(c, o)

	done := make(chan struct{})
	go func() { defer close(done); g.claim(ctx, w, time.Now(), 0, 0, 0) }()
	testwait.For(t, 20*time.Second, "the claim to reach the server", func() bool { return arrived.Load() == 1 })
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("cancelling the run did not abort the claim in flight")
	}
	if g.rec.Len() != 1 || w.st.outcomes[OpClaim][outcomeCancelled] != 1 || g.failures.Load() != 1 {
		t.Fatalf("in-flight claim: history %d, outcomes %v", g.rec.Len(), w.st.outcomes[OpClaim])
	}
	if !ambiguousOutcome(outcomeCancelled) {
		t.Fatal("a claim cut off in flight may have reached the server: it must be ambiguous")
	}

	g.claim(ctx, w, time.Now(), 0, 0, 1)
	if g.rec.Len() != 1 || w.st.outcomes[OpClaim][outcomeNotSent] != 1 || arrived.Load() != 1 {
		t.Fatalf("claim after the cancel: history %d, outcomes %v, server saw %d", g.rec.Len(), w.st.outcomes[OpClaim], arrived.Load())
	}
	if ambiguousOutcome(outcomeNotSent) {
		t.Fatal("a claim never sent is not ambiguous")
	}
}

// TestNoFreeConnsIsNotSent: the pool holds a connection for every worker
// (and seeding), so that many claims in flight are all sent; one more
// finds no connection, fails at once as not sent, and is left out of the
// history and the counts of decisions and ambiguous claims.
func TestNoFreeConnsIsNotSent(t *testing.T) {
	srv, arrived, release := holdingServer(t)
	o := Options{BaseURL: srv.URL, Workers: 20, Timeout: time.Hour, Scenario: ScenarioHot}
	c := newClient(o)
	g, _ := testGen(c, o)
	pool := o.Workers + spareConns
	var wg sync.WaitGroup
	workers := make([]*worker, pool)
	for i := range workers {
		_, workers[i] = testGen(c, o)
		workers[i].id = i
		wg.Go(func() { g.claim(context.Background(), workers[i], time.Now(), 0, 0, i) })
	}
	testwait.For(t, 20*time.Second, "every worker's claim to reach the server", func() bool { return arrived.Load() == int64(pool) })

	_, extra := testGen(c, o)
	extra.id = pool
	done := make(chan struct{})
	go func() { defer close(done); g.claim(context.Background(), extra, time.Now(), 0, 0, pool) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the claim beyond the pool waited for a connection instead of failing as not sent")
	}
	release()
	wg.Wait()
	if got := extra.st.outcomes[OpClaim]; got[outcomeNotSent] != 1 {
		t.Fatalf("the claim beyond the pool: %v, want not sent", got)
	}
	if g.rec.Len() != pool || g.refusals.Load() != int64(pool) || g.failures.Load() != 0 {
		t.Fatalf("history %d, refusals %d, failures %d; want %d, %d, 0", g.rec.Len(), g.refusals.Load(), g.failures.Load(), pool, pool)
	}
	for _, w := range workers {
		if w.st.outcomes[OpClaim]["409 slot_taken"] != 1 {
			t.Fatalf("worker %d: %v", w.id, w.st.outcomes[OpClaim])
		}
	}
}

// TestClaimIsNeverResent: a claim whose connection ends without an answer
// (io.EOF) is recorded as ambiguous, not sent again: fasthttp would
// resend even a POST then, and a claim that won the first time would be
// recorded with its resend's refusal.
func TestClaimIsNeverResent(t *testing.T) {
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // taken, never answered
		}
	}))
	defer srv.Close()
	o := Options{BaseURL: srv.URL, Workers: 1, Timeout: 10 * time.Second, Scenario: ScenarioHot}
	g, w := testGen(newClient(o), o)
	g.claim(context.Background(), w, time.Now(), 0, 0, 0)
	if n := arrived.Load(); n != 1 {
		t.Fatalf("the server saw the claim %d times, want once", n)
	}
	if g.rec.Len() != 1 || g.failures.Load() != 1 {
		t.Fatalf("history %d, failures %d, outcomes %v; want one ambiguous claim", g.rec.Len(), g.failures.Load(), w.st.outcomes[OpClaim])
	}
}
