package persistence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultStuckAfter is how old the oldest transaction in flight may grow
// before the store reports itself stuck, when no TxDeadline is set.
const DefaultStuckAfter = 10 * time.Second

// errTxDeadline is the cause of a transaction's context when the store's
// deadline (Options.TxDeadline), not the caller, ended it.
var errTxDeadline = errors.New("persistence: transaction ran past the store deadline")

// TxWatch is what both drivers keep about their transactions in flight:
// it gives each one the store's deadline, turns a deadline it hit into
// ErrUnavailable (the client is told to retry, not that its request took
// too long), and tells readiness whether the store looks stuck (a
// transaction in flight for long, or one that hit the deadline lately).
// A database that accepts connections and answers a ping can still hold
// every request on a lock; only the transactions themselves show it.
type TxWatch struct {
	deadline, stuckAfter time.Duration
	now                  func() time.Time

	mu          sync.Mutex
	next        uint64
	inFlight    map[uint64]time.Time // by ticket, when each began
	lastExpired time.Time            // when a transaction last hit the deadline
}

// NewTxWatch watches the transactions of a store opened with opts.
func NewTxWatch(opts Options) *TxWatch {
	stuck := DefaultStuckAfter
	if opts.TxDeadline > 0 {
		// Well before a transaction would hit the deadline, so readiness
		// turns before the requests of a stuck store start failing.
		stuck = opts.TxDeadline / 2
	}
	return &TxWatch{deadline: opts.TxDeadline, stuckAfter: stuck, now: time.Now, inFlight: map[uint64]time.Time{}}
}

// Begin registers a transaction starting now and returns its context
// (bounded by the store's deadline, if any) and the function that ends it:
// end takes the transaction's error and returns the one to report.
func (w *TxWatch) Begin(ctx context.Context) (context.Context, func(error) error) {
	cancel := context.CancelFunc(func() {})
	if w.deadline > 0 {
		ctx, cancel = context.WithTimeoutCause(ctx, w.deadline, errTxDeadline)
	}
	w.mu.Lock()
	w.next++
	ticket := w.next
	w.inFlight[ticket] = w.now()
	w.mu.Unlock()
	return ctx, func(err error) error {
		expired := err != nil && context.Cause(ctx) == errTxDeadline
		cancel()
		w.mu.Lock()
		delete(w.inFlight, ticket)
		if expired {
			w.lastExpired = w.now()
		}
		w.mu.Unlock()
		if expired && !errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("%w: %w (%s): %w", ErrUnavailable, errTxDeadline, w.deadline, err)
		}
		return err
	}
}

// Stuck returns an error wrapping ErrUnavailable when the oldest
// transaction in flight began more than the stuck threshold ago (half the
// deadline), or when one hit the deadline within the last deadline; nil
// otherwise. It recovers by itself once transactions go through again.
func (w *TxWatch) Stuck() error {
	now := w.now()
	w.mu.Lock()
	var oldest time.Time
	for _, began := range w.inFlight {
		if oldest.IsZero() || began.Before(oldest) {
			oldest = began
		}
	}
	lastExpired := w.lastExpired
	w.mu.Unlock()
	if age := now.Sub(oldest); !oldest.IsZero() && age >= w.stuckAfter {
		return fmt.Errorf("%w: a transaction has been in flight for %s", ErrUnavailable, age.Round(time.Millisecond))
	}
	if ago := now.Sub(lastExpired); !lastExpired.IsZero() && ago < w.deadline {
		return fmt.Errorf("%w: a transaction hit the %s store deadline %s ago", ErrUnavailable, w.deadline, ago.Round(time.Millisecond))
	}
	return nil
}
