package testwait

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// fakeTB records a failure instead of failing the real test. Like
// testing.T, its Fatalf ends the calling goroutine.
type fakeTB struct {
	testing.TB
	failed atomic.Bool
	msg    atomic.Value // string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg.Store(fmt.Sprintf(format, args...))
	f.failed.Store(true)
	runtime.Goexit()
}

// run calls wait with a fake TB on a goroutine of its own (Fatalf ends
// it) and returns the fake once wait has returned or failed.
func run(wait func(t testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait(f)
	}()
	<-done
	return f
}

func TestForFailsNamingWhatAfterTheBound(t *testing.T) {
	var calls atomic.Int64
	began := time.Now()
	f := run(func(tb testing.TB) {
		For(tb, 100*time.Millisecond, "the kettle to boil", func() bool { calls.Add(1); return false })
	})
	if !f.failed.Load() {
		t.Fatal("a condition that never holds did not fail the test")
	}
	if msg := f.msg.Load().(string); !strings.Contains(msg, "the kettle to boil") || !strings.Contains(msg, "100ms") {
		t.Fatalf("failure %q does not name what was awaited and the bound", msg)
	}
	if took := time.Since(began); took < 100*time.Millisecond {
		t.Fatalf("gave up after %v, before its bound", took)
	}
	if calls.Load() < 3 { // at once, on some tick, at the bound
		t.Fatalf("the condition was checked %d times in 100ms", calls.Load())
	}
}

func TestUntilFailsWithTheLastError(t *testing.T) {
	n := 0
	f := run(func(tb testing.TB) {
		Until(tb, 20*time.Millisecond, "the queue to drain", func() error { n++; return fmt.Errorf("%d left", 10-n) })
	})
	if !f.failed.Load() {
		t.Fatal("a check that never passes did not fail the test")
	}
	if msg, last := f.msg.Load().(string), fmt.Sprintf("%d left", 10-n); !strings.Contains(msg, "the queue to drain") || !strings.HasSuffix(msg, last) {
		t.Fatalf("failure %q does not name what was awaited and the last error %q", msg, last)
	}
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var calls int
	var took time.Duration
	f := run(func(tb testing.TB) {
		took = For(tb, time.Minute, "the fifth check", func() bool { calls++; return calls == 5 })
	})
	if f.failed.Load() {
		t.Fatalf("failed: %v", f.msg.Load())
	}
	if calls != 5 {
		t.Fatalf("the condition was checked %d times, want 5 (stop once it holds)", calls)
	}
	if took <= 0 || took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestForChecksAtOnce(t *testing.T) {
	calls := 0
	For(t, time.Minute, "true", func() bool { calls++; return true })
	if calls != 1 {
		t.Fatalf("a condition that holds was checked %d times", calls)
	}
}

// TestForSeesAnotherGoroutine: the usual use, a condition set elsewhere.
func TestForSeesAnotherGoroutine(t *testing.T) {
	var set atomic.Bool
	timer := time.AfterFunc(20*time.Millisecond, func() { set.Store(true) })
	defer timer.Stop()
	if took := For(t, time.Minute, "the flag", set.Load); took < 20*time.Millisecond {
		t.Fatalf("saw the flag after %v, before it was set", took)
	}
}

func TestUntilPassesThroughNil(t *testing.T) {
	errs := []error{errors.New("a"), errors.New("b"), nil}
	i := 0
	Until(t, time.Minute, "the third check", func() error { e := errs[i]; i++; return e })
	if i != 3 {
		t.Fatalf("checked %d times, want 3", i)
	}
}
