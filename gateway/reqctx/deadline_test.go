package reqctx

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
)

// waitDone fails the test if ctx is not done within a generous bound: the
// bound catches a context that never ends, it is not a timing goal.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context never ended")
	}
}

func TestWithDeadlineCancel(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	d := time.Now().Add(time.Hour)
	ctx, cancel := WithDeadline(parent, d)
	if _, lazy := ctx.(*lazyDeadline); !lazy {
		t.Fatalf("a background parent got %T", ctx)
	}
	if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
		t.Fatalf("Deadline = %v, %v", got, ok)
	}
	if ctx.Value(key{}) != "v" {
		t.Fatal("values of the parent are lost")
	}
	if ctx.Err() != nil {
		t.Fatalf("Err before the end: %v", ctx.Err())
	}
	done := ctx.Done()
	select {
	case <-done:
		t.Fatal("done before the end")
	default:
	}
	cancel()
	waitDone(t, ctx)
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatalf("after cancel: %v, cause %v", ctx.Err(), context.Cause(ctx))
	}
	cancel() // twice is harmless
	if ctx.Done() != done {
		t.Fatal("Done changed")
	}
}

// TestWithDeadlinePassesWithoutTimer: nobody asked for Done, yet Err and a
// late Done both see the deadline.
func TestWithDeadlinePassesWithoutTimer(t *testing.T) {
	deadline := time.Now().Add(time.Millisecond)
	ctx, cancel := WithDeadline(context.Background(), deadline)
	defer cancel()
	// Wait on the clock, not on ctx: asking ctx for Done would start its
	// timer.
	testwait.For(t, 10*time.Second, "the deadline to pass", func() bool { return time.Now().After(deadline) })
	if c := ctx.(*lazyDeadline); c.timer != nil {
		t.Fatal("a timer started although nobody waited")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", ctx.Err())
	}
	waitDone(t, ctx)
	cancel()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("cancel after the end changed Err to %v", ctx.Err())
	}

	late, cancel2 := WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	waitDone(t, late)
	if !errors.Is(late.Err(), context.DeadlineExceeded) {
		t.Fatalf("a past deadline: %v", late.Err())
	}
}

// TestWithDeadlineTimerEndsWaiters: whoever waits on Done is woken at the
// deadline.
func TestWithDeadlineTimerEndsWaiters(t *testing.T) {
	ctx, cancel := WithDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	waitDone(t, ctx)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", ctx.Err())
	}
}

// TestWithDeadlineChildren: contexts derived from it end with it, through
// AfterFunc (no goroutine each), and context.AfterFunc's stop works.
func TestWithDeadlineChildren(t *testing.T) {
	ctx, cancel := WithDeadline(context.Background(), time.Now().Add(time.Hour))
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	timed, cancelTimed := context.WithTimeout(ctx, time.Hour)
	defer cancelTimed()
	var ran, stopped atomic.Int32
	context.AfterFunc(ctx, func() { ran.Add(1) })
	stop := context.AfterFunc(ctx, func() { stopped.Add(1) })
	if !stop() {
		t.Fatal("stop before the end did not prevent the call")
	}
	if stop() {
		t.Fatal("stop twice reported true")
	}
	if n := len(ctx.(*lazyDeadline).afters); n != 3 { // child, timed, ran
		t.Fatalf("%d functions registered, want 3", n)
	}
	cancel()
	waitDone(t, child)
	waitDone(t, timed)
	if !errors.Is(child.Err(), context.Canceled) || !errors.Is(timed.Err(), context.Canceled) {
		t.Fatalf("children: %v, %v", child.Err(), timed.Err())
	}
	// The function runs in its own goroutine.
	testwait.For(t, 10*time.Second, "the AfterFunc function to run", func() bool { return ran.Load() >= 1 })
	after := context.AfterFunc(ctx, func() { ran.Add(1) })
	// Registered after the end: it runs at once (in its own goroutine).
	testwait.For(t, 10*time.Second, "the late AfterFunc function to run", func() bool { return ran.Load() >= 2 })
	if after() || stopped.Load() != 0 {
		t.Fatalf("stop after the run = true, or a stopped function ran (%d)", stopped.Load())
	}
}

// TestWithDeadlineCancellableParent: a parent that can end by itself gets
// context.WithDeadline, so its end reaches the child.
func TestWithDeadlineCancellableParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := WithDeadline(parent, time.Now().Add(time.Hour))
	defer cancel()
	if _, lazy := ctx.(*lazyDeadline); lazy {
		t.Fatal("a cancellable parent got the lazy context")
	}
	cancelParent()
	waitDone(t, ctx)

	early, cancelEarly := context.WithDeadline(context.Background(), time.Now().Add(time.Millisecond))
	defer cancelEarly()
	ctx2, cancel2 := WithDeadline(early, time.Now().Add(time.Hour))
	defer cancel2()
	if d, _ := ctx2.Deadline(); d.After(time.Now().Add(time.Minute)) {
		t.Fatalf("the parent's earlier deadline was lost: %v", d)
	}
}

// TestWithDeadlineConcurrent exercises every method at once (run with
// -race).
func TestWithDeadlineConcurrent(t *testing.T) {
	for range 50 {
		ctx, cancel := WithDeadline(context.Background(), time.Now().Add(time.Duration(1+time.Now().UnixNano()%3)*time.Millisecond))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				switch i % 4 {
				case 0:
					<-ctx.Done()
				case 1:
					// Poll Err (the point: Err racing the others) until
					// the deadline or a cancel ends ctx.
					tick := time.NewTicker(100 * time.Microsecond)
					for ctx.Err() == nil {
						<-tick.C
					}
					tick.Stop()
				case 2:
					c, cc := context.WithCancel(ctx)
					<-c.Done()
					cc()
				case 3:
					cancel()
				}
			})
		}
		wg.Wait()
		if ctx.Err() == nil {
			t.Fatal("ended without an error")
		}
	}
}
