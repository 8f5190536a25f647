package persistence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestTxWatchDeadlineIsUnavailable: a transaction ended by the store's
// deadline fails with ErrUnavailable (a 503), one ended by its caller
// keeps the caller's error.
func TestTxWatchDeadlineIsUnavailable(t *testing.T) {
	w := NewTxWatch(Options{TxDeadline: time.Nanosecond})
	ctx, end := w.Begin(context.Background())
	<-ctx.Done()
	if err := end(ctx.Err()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past the deadline: %v, want ErrUnavailable", err)
	}

	w = NewTxWatch(Options{TxDeadline: time.Hour})
	caller, cancel := context.WithCancel(context.Background())
	ctx, end = w.Begin(caller)
	cancel()
	<-ctx.Done()
	if err := end(ctx.Err()); errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled by the caller: %v, want context.Canceled only", err)
	}
}

// TestTxWatchStuck: the store is stuck while a transaction is in flight
// for half the deadline or more, and for a deadline after one hit it; it
// recovers by itself.
func TestTxWatchStuck(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w := NewTxWatch(Options{TxDeadline: 3 * time.Second})
	w.now = clock.now

	_, endQuick := w.Begin(context.Background())
	if err := w.Stuck(); err != nil {
		t.Fatalf("a fresh transaction: %v", err)
	}
	clock.add(1600 * time.Millisecond)
	if err := w.Stuck(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a transaction in flight for 1.6s of a 3s deadline: %v, want stuck", err)
	}
	if err := endQuick(nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Stuck(); err != nil {
		t.Fatalf("after it ended: %v", err)
	}

	// One that hits the deadline keeps the store unready for a deadline.
	w2 := NewTxWatch(Options{TxDeadline: time.Nanosecond})
	w2.now = clock.now
	ctx, end := w2.Begin(context.Background())
	<-ctx.Done()
	_ = end(ctx.Err())
	w2.deadline = 3 * time.Second // the window the test reasons about
	clock.add(time.Second)
	if err := w2.Stuck(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("1s after a transaction hit the deadline: %v, want stuck", err)
	}
	clock.add(3 * time.Second)
	if err := w2.Stuck(); err != nil {
		t.Fatalf("a deadline later: %v, want recovered", err)
	}
}
