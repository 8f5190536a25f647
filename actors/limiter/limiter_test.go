package limiter

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

	"github.com/anishathalye/porcupine"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func newLimiter(t *testing.T, cfg Config) (*Limiter, *clock) {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(sys.Shutdown)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	cfg.Name, cfg.Now = "test", clk.now
	l, err := New(sys.Root, cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l, clk
}

func TestPerKeyWindow(t *testing.T) {
	l, clk := newLimiter(t, Config{PerKey: Window{Limit: 3, Per: time.Minute}, Global: Window{Limit: 100, Per: time.Minute}, Shards: 4})
	ctx := context.Background()
	for i := range 3 {
		if err := l.Allow(ctx, "203.0.113.1"); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		clk.add(10 * time.Second)
	}
	var le *LimitedError
	if err := l.Allow(ctx, "203.0.113.1"); !errors.As(err, &le) || le.Scope != "ip" || le.RetryAfter != 30*time.Second {
		t.Fatalf("fourth send: %v", err)
	}
	if err := l.Allow(ctx, "203.0.113.2"); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	clk.add(30 * time.Second) // the first grant leaves the window
	if err := l.Allow(ctx, "203.0.113.1"); err != nil {
		t.Fatalf("after the window slid: %v", err)
	}
	if got := testutil.ToFloat64(l.refused.WithLabelValues("ip")); got != 1 {
		t.Fatalf("refused{ip} = %v", got)
	}
}

// TestGlobalBudgetLinearizable: many clients with distinct IPs race for a
// sharded global budget. The recorded history must be linearizable against
// one counter with the whole budget: a grant only while fewer than Limit
// were granted, a refusal only once Limit were. That is stronger than
// counting grants at the end: no refusal may come while budget was left in
// some shard.
func TestGlobalBudgetLinearizable(t *testing.T) {
	const budget = 37
	l, _ := newLimiter(t, Config{PerKey: Window{Limit: 1000, Per: time.Hour}, Global: Window{Limit: budget, Per: time.Hour}, Shards: 5})
	var (
		mu      sync.Mutex
		ops     []porcupine.Operation
		granted atomic.Int64
		start   = time.Now()
		wg      sync.WaitGroup
	)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				call := time.Since(start).Nanoseconds()
				err := l.Allow(context.Background(), fmt.Sprintf("10.0.%d.%d", c, i))
				ret := time.Since(start).Nanoseconds()
				if err != nil && !errors.Is(err, ErrLimited) {
					t.Errorf("client %d: %v", c, err)
					return
				}
				if err == nil {
					granted.Add(1)
				}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: c, Input: nil, Call: call, Output: err == nil, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted.Load() != budget {
		t.Fatalf("%d granted, budget %d", granted.Load(), budget)
	}
	model := porcupine.Model{
		Init: func() any { return 0 },
		Step: func(state, _, output any) (bool, any) {
			n := state.(int)
			if output.(bool) {
				return n < budget, n + 1
			}
			return n >= budget, n
		},
		DescribeOperation: func(_, output any) string { return fmt.Sprintf("allow → %v", output) },
	}
	if res := porcupine.CheckOperationsTimeout(model, ops, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("history of %d operations is not linearizable against one counter: %v", len(ops), res)
	}
	if got := testutil.ToFloat64(l.refused.WithLabelValues("global")); got != float64(len(ops)-budget) {
		t.Fatalf("refused{global} = %v, want %d", got, len(ops)-budget)
	}
}

func TestGlobalRetryAfter(t *testing.T) {
	l, clk := newLimiter(t, Config{PerKey: Window{Limit: 10, Per: time.Minute}, Global: Window{Limit: 2, Per: time.Minute}, Shards: 2})
	ctx := context.Background()
	_ = l.Allow(ctx, "a")
	clk.add(20 * time.Second)
	_ = l.Allow(ctx, "b")
	var le *LimitedError
	if err := l.Allow(ctx, "c"); !errors.As(err, &le) || le.Scope != "global" || le.RetryAfter != 40*time.Second {
		t.Fatalf("over budget: %v", err)
	}
	clk.add(40 * time.Second)
	if err := l.Allow(ctx, "c"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestStopTwice(t *testing.T) {
	l, _ := newLimiter(t, Config{PerKey: Window{Limit: 1, Per: time.Minute}, Global: Window{Limit: 1, Per: time.Minute}})
	l.Stop()
	l.Stop()
	if err := l.Allow(context.Background(), "x"); err == nil {
		t.Fatal("a stopped limiter granted")
	}
}
