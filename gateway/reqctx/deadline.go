package reqctx

import (
	"context"
	"sync"
	"time"
)

// WithDeadline is context.WithDeadline for a request's context, made cheap
// for what nearly every request is: a parent that is never cancelled
// (fiber's context.Background) and a handler that never waits on Done. Its
// timer starts only when something asks for Done or registers an AfterFunc
// (a database call, a select); an actor's Ask reads only Deadline. Any
// other parent gets context.WithDeadline.
func WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	if _, has := parent.Deadline(); has || parent.Done() != nil {
		return context.WithDeadline(parent, d)
	}
	c := &lazyDeadline{parent: parent, deadline: d}
	return c, c.cancel
}

// lazyDeadline is a context that ends at deadline or when cancelled. It
// implements AfterFunc, so the contexts derived from it (context.WithCancel
// and friends) hook onto it without a goroutine each.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	done   chan struct{} // made on first use; closed when err is set
	err    error
	timer  *time.Timer
	afters map[*func()]struct{}
}

// closedDone is the Done of a context that ended before anyone asked.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *lazyDeadline) Value(key any) any { return c.parent.Value(key) }

func (c *lazyDeadline) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked()
	return c.done
}

// Err reads the clock itself, so a caller that only polls Err sees the
// deadline pass without a timer.
func (c *lazyDeadline) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

// AfterFunc runs f in its own goroutine once c ends, as context.AfterFunc
// does; stop unregisters f and reports whether that prevented it.
func (c *lazyDeadline) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	if c.afters == nil {
		c.afters = map[*func()]struct{}{}
	}
	key := &f
	c.afters[key] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.afters[key]
		delete(c.afters, key)
		return pending
	}
}

func (c *lazyDeadline) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(context.Canceled)
}

// armLocked makes done and starts the timer, once.
func (c *lazyDeadline) armLocked() {
	if c.done != nil {
		return
	}
	left := time.Until(c.deadline)
	if left <= 0 {
		c.endLocked(context.DeadlineExceeded)
		return
	}
	c.done = make(chan struct{})
	c.timer = time.AfterFunc(left, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.endLocked(context.DeadlineExceeded)
	})
}

// endLocked ends c with err unless it has ended already.
func (c *lazyDeadline) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	for f := range c.afters {
		go (*f)()
	}
	c.afters = nil
}

func (c *lazyDeadline) String() string {
	return "reqctx.WithDeadline(" + c.deadline.String() + ")"
}
