package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
	"github.com/spa-engine/spa/actors/testwait"
)

var errBoom = errors.New("boom")

// recorder replaces Caller.Sleep: it records the waits and returns at once.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func newCaller(t *testing.T, p Policy) (*Caller, *Metrics, *recorder) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := New("test", p, m)
	rec := &recorder{}
	c.Sleep = rec.sleep
	c.Jitter = func(n int64) int64 { return n - 1 } // the top of the window
	return c, m, rec
}

// failing returns fn that fails with errs in order, then succeeds, counting calls.
func failing(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestRetriesTransientFailuresWithBackoff(t *testing.T) {
	c, m, rec := newCaller(t, Policy{Attempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond})
	calls := 0
	err := c.Do(context.Background(), failing(&calls, Transient(errBoom, 0), Transient(errBoom, 0), Transient(errBoom, 0)))
	if err != nil {
		t.Fatalf("Do = %v, want success on the 4th try", err)
	}
	if calls != 4 {
		t.Fatalf("calls = %d, want 4", calls)
	}
	// Full jitter pinned at its top: 100ms, 200ms, then capped at 300ms.
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	if len(rec.waits) != len(want) {
		t.Fatalf("waits = %v, want %v", rec.waits, want)
	}
	for i := range want {
		if rec.waits[i] != want[i] {
			t.Fatalf("waits = %v, want %v", rec.waits, want)
		}
	}
	if got := testutil.ToFloat64(m.retries.WithLabelValues("test")); got != 3 {
		t.Fatalf("retries metric = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("test", "ok")); got != 1 {
		t.Fatalf("ok requests = %v, want 1", got)
	}
}

func TestJitterStaysInsideWindow(t *testing.T) {
	c2 := New("real", Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}, nil)
	for n := range 8 {
		ceil := min(time.Second, (10*time.Millisecond)<<n)
		for range 50 {
			if d := c2.backoff(n); d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, ceil)
			}
		}
	}
}

func TestFinalErrorIsNotRetriedAndKeepsBreakerClosed(t *testing.T) {
	c, m, rec := newCaller(t, Policy{Attempts: 3, FailuresToOpen: 2})
	for range 5 {
		calls := 0
		err := c.Do(context.Background(), failing(&calls, errBoom))
		if !errors.Is(err, errBoom) || IsTransient(err) {
			t.Fatalf("Do = %v, want the final error unchanged", err)
		}
		if calls != 1 {
			t.Fatalf("calls = %d, want 1 (final errors are not retried)", calls)
		}
	}
	if len(rec.waits) != 0 {
		t.Fatalf("slept %v for a final error", rec.waits)
	}
	if c.State() != "closed" {
		t.Fatalf("breaker %s after final errors, want closed", c.State())
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("test", "rejected")); got != 5 {
		t.Fatalf("rejected requests = %v, want 5", got)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	c, _, rec := newCaller(t, Policy{Attempts: 2, BaseDelay: time.Millisecond, MaxRetryAfter: 10 * time.Second})
	calls := 0
	if err := c.Do(context.Background(), failing(&calls, Transient(errBoom, 7*time.Second))); err != nil {
		t.Fatal(err)
	}
	if len(rec.waits) != 1 || rec.waits[0] != 7*time.Second {
		t.Fatalf("waits = %v, want [7s] from Retry-After", rec.waits)
	}

	// A pause longer than MaxRetryAfter ends the call now, as transient.
	calls = 0
	err := c.Do(context.Background(), failing(&calls, Transient(errBoom, time.Minute)))
	if !IsTransient(err) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want a transient error after 1 call", err, calls)
	}
}

func TestDeadlineShorterThanBackoffGivesUpAtOnce(t *testing.T) {
	c, _, rec := newCaller(t, Policy{Attempts: 3, BaseDelay: time.Hour, MaxDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	calls := 0
	err := c.Do(ctx, failing(&calls, Transient(errBoom, 0), Transient(errBoom, 0)))
	if !errors.Is(err, errBoom) || !IsTransient(err) {
		t.Fatalf("Do = %v, want the transient error", err)
	}
	if calls != 1 || len(rec.waits) != 0 {
		t.Fatalf("calls=%d waits=%v, want 1 call and no wait", calls, rec.waits)
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	c, _, _ := newCaller(t, Policy{Attempts: 2, AttemptTimeout: 20 * time.Millisecond, BaseDelay: time.Millisecond})
	calls := 0
	err := c.Do(context.Background(), func(ctx context.Context) error {
		calls++
		if calls == 1 {
			<-ctx.Done() // a provider that never answers
			return ctx.Err()
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Do = %v after %d calls, want success on the retry", err, calls)
	}
}

func TestCancelStopsRetriesWithoutTrippingBreaker(t *testing.T) {
	c, m, _ := newCaller(t, Policy{Attempts: 5, FailuresToOpen: 1})
	ctx, cancel := context.WithCancel(context.Background())
	c.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel() // the caller gives up while we wait
		<-ctx.Done()
		return ctx.Err()
	}
	calls := 0
	err := c.Do(ctx, func(context.Context) error {
		calls++
		return Transient(errBoom, 0)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Fatalf("calls = %d, want 1", calls)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("test", "canceled")); got != 1 {
		t.Fatalf("canceled requests = %v, want 1", got)
	}

	// A cancellation seen by the attempt itself is not a provider failure.
	c2, _, _ := newCaller(t, Policy{Attempts: 1, FailuresToOpen: 1})
	ctx2, cancel2 := context.WithCancel(context.Background())
	_ = c2.Do(ctx2, func(context.Context) error { cancel2(); return context.Canceled })
	if c2.State() != "closed" {
		t.Fatalf("breaker %s after a cancelled call, want closed", c2.State())
	}
}

func TestCallerDeadlineDoesNotTripBreaker(t *testing.T) {
	c, _, _ := newCaller(t, Policy{Attempts: 1, FailuresToOpen: 1, AttemptTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := c.Do(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || !IsTransient(err) {
		t.Fatalf("Do = %v, want a transient DeadlineExceeded", err)
	}
	if c.State() != "closed" {
		t.Fatalf("breaker %s after the caller's own deadline, want closed", c.State())
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := New("lint", Policy{Attempts: 1}, m)
	_ = c.Do(context.Background(), func(context.Context) error { return nil })
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("promlint: %+v", problems)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 3 {
		t.Fatalf("series = %d (%v), want 3 (requests, latency, breaker state)", n, err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}

func TestBreakerOpensAndRecoversThroughHalfOpen(t *testing.T) {
	c, m, _ := newCaller(t, Policy{Attempts: 1, FailuresToOpen: 3, OpenFor: 30 * time.Millisecond})
	gauge := func() float64 { return testutil.ToFloat64(m.state.WithLabelValues("test")) }
	for range 3 {
		if err := c.Do(context.Background(), func(context.Context) error { return Transient(errBoom, 0) }); !IsTransient(err) {
			t.Fatalf("Do = %v, want transient", err)
		}
	}
	if c.State() != "open" || gauge() != 2 {
		t.Fatalf("state %s gauge %v, want open/2 after 3 transient failures", c.State(), gauge())
	}
	called := false
	err := c.Do(context.Background(), func(context.Context) error { called = true; return nil })
	if !errors.Is(err, ErrOpen) || !IsTransient(err) || called {
		t.Fatalf("Do on open breaker = %v (called=%v), want ErrOpen without calling", err, called)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("test", "breaker_open")); got != 1 {
		t.Fatalf("breaker_open requests = %v, want 1", got)
	}

	waitState(t, c, "half-open")
	// A failing probe opens it again.
	_ = c.Do(context.Background(), func(context.Context) error { return Transient(errBoom, 0) })
	if c.State() != "open" {
		t.Fatalf("state %s after failed probe, want open", c.State())
	}
	waitState(t, c, "half-open")
	if gauge() != 1 {
		t.Fatalf("gauge %v in half-open, want 1", gauge())
	}
	if err := c.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("probe = %v", err)
	}
	if c.State() != "closed" || gauge() != 0 {
		t.Fatalf("state %s gauge %v after good probe, want closed/0", c.State(), gauge())
	}
}

// waitState polls (bounded) until the breaker reports want.
func waitState(t *testing.T, c *Caller, want string) {
	t.Helper()
	testwait.Until(t, 5*time.Second, "the breaker to be "+want, func() error {
		if s := c.State(); s != want {
			return fmt.Errorf("breaker still %s, want %s", s, want)
		}
		return nil
	})
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		if got := RetryAfter(h, now); got != tc.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestHTTPClassifiesReplies(t *testing.T) {
	var faults fakefault.Injector
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if faults.Apply(w, r) {
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":1}`))
	}))
	defer srv.Close()
	defer faults.Close()
	get := func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	}

	faults.Next(fakefault.Fault{Status: 429, RetryAfter: "4"}, fakefault.Fault{Status: 503})
	_, err := HTTP(context.Background(), srv.Client(), get)
	var te *TransientError
	if !errors.As(err, &te) || te.RetryAfter != 4*time.Second {
		t.Fatalf("429: err = %v, want transient with Retry-After 4s", err)
	}
	if _, err := HTTP(context.Background(), srv.Client(), get); !IsTransient(err) {
		t.Fatalf("503: err = %v, want transient", err)
	}
	r, err := HTTP(context.Background(), srv.Client(), get)
	if err != nil || r.Status != 400 || string(r.Body) != `{"code":1}` {
		t.Fatalf("400: reply %+v err %v, want the reply for the client to map", r, err)
	}

	// A refused connection is transient.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err = HTTP(context.Background(), http.DefaultClient, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, dead.URL, nil)
	})
	if !IsTransient(err) {
		t.Fatalf("refused connection: err = %v, want transient", err)
	}
}

// TestHealthReportsEveryCallerSorted: Health lists each Caller made with
// the metrics, its breaker state and its last success.
func TestHealthReportsEveryCallerSorted(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ok := New("wompi", Policy{Attempts: 1}, m)
	down := New("twilio", Policy{Attempts: 1, FailuresToOpen: 1, OpenFor: time.Hour}, m)
	before := time.Now()
	if err := ok.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_ = down.Do(context.Background(), func(context.Context) error { return Transient(errors.New("503"), 0) })
	h := m.Health()
	if len(h) != 2 || h[0].Provider != "twilio" || h[1].Provider != "wompi" {
		t.Fatalf("health %+v", h)
	}
	if h[0].State != "open" || !h[0].LastSuccess.IsZero() {
		t.Errorf("twilio %+v: want open, never succeeded", h[0])
	}
	if h[1].State != "closed" || h[1].LastSuccess.Before(before) {
		t.Errorf("wompi %+v: want closed, succeeded just now", h[1])
	}
	if (*Metrics)(nil).Health() != nil {
		t.Error("nil metrics report providers")
	}
}
