// Package testwait is how a test waits for something that happens
// elsewhere — on another goroutine, in another process, at a timer: it
// polls a condition until the condition holds and fails the test, naming
// what it waited for, if it never does.
//
// It exists so that tests do not sleep. A sleep of a guessed length is slow
// (the guess must cover the slowest machine) and flaky all the same (some
// machine is slower still). A wait here returns as soon as its condition
// holds; its bound only turns a hang into a failure that says what did not
// happen, so it is generous and is not a timing goal. A test that must see
// that something does NOT happen waits instead for a positive count of the
// events that had their chance to cause it (reconcile passes, connection
// attempts, requests answered), then checks. Waits for a signal (a channel
// closed by a hook in a fixture) need no helper: receive from it.
//
// One package for all tests, instead of a copy of the loop in each.
package testwait

import (
	"errors"
	"testing"
	"time"
)

// The polling interval starts short, so a condition that holds almost at
// once is seen almost at once, and doubles up to a cap, so a long wait on a
// costly condition (an HTTP round trip, a query) does not hog the CPU.
const (
	firstTick = time.Millisecond
	maxTick   = 50 * time.Millisecond
)

// errNotYet is For's condition not holding; For's failure leaves it out.
var errNotYet = errors.New("not yet")

// For polls cond until it returns true and returns how long that took. If
// cond still does not hold after within, For fails the test (t.Fatalf)
// naming what. cond runs on the caller's goroutine, so it may use t.
func For(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// Until polls check until it returns nil and returns how long that took.
// If check still fails after within, Until fails the test (t.Fatalf)
// naming what and check's last error, which should say what it saw.
func Until(t testing.TB, within time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	err := check()
	if err == nil {
		return time.Since(start)
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := firstTick
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-deadline.C:
			if err = check(); err == nil {
				return time.Since(start)
			}
			if errors.Is(err, errNotYet) {
				t.Fatalf("gave up after %v waiting for %s", within, what)
			} else {
				t.Fatalf("gave up after %v waiting for %s: %v", within, what, err)
			}
			return time.Since(start)
		}
		if err = check(); err == nil {
			return time.Since(start)
		}
		if tick < maxTick {
			tick = min(2*tick, maxTick)
			ticker.Reset(tick)
		}
	}
}
