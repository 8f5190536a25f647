// Package resilient is the one place outbound provider calls get their
// timeouts, retries (exponential backoff with full jitter, honouring
// Retry-After), circuit breaker (sony/gobreaker) and Prometheus metrics, so the
// Twilio, WhatsApp and reCAPTCHA clients only build requests and map replies.
//
// An attempt function marks a failure as worth retrying by returning
// Transient(err, retryAfter); every other error is final, is returned at once
// and does not count against the breaker (a refused phone number says nothing
// about the provider's health).
package resilient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrOpen is wrapped (as a transient error) when the breaker refuses a call
// without trying the provider.
var ErrOpen = errors.New("resilient: circuit breaker open")

// errCallerGone marks an attempt cut short by the caller's context, so the
// breaker ignores it.
var errCallerGone = errors.New("caller gave up")

// TransientError is a failure that may succeed if tried again: network
// errors, timeouts, 429 and 5xx replies, an open breaker.
type TransientError struct {
	Err error
	// RetryAfter is the provider's requested pause (Retry-After), zero if none.
	RetryAfter time.Duration
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient marks err as retryable, with the provider's Retry-After if any.
func Transient(err error, retryAfter time.Duration) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err, RetryAfter: retryAfter}
}

// IsTransient reports whether err (or anything it wraps) is a TransientError
// or a context deadline: the caller may try again later.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t) || errors.Is(err, context.DeadlineExceeded)
}

// Policy is how hard a Caller tries. Zero fields take the defaults noted.
type Policy struct {
	// Attempts is the total number of tries per call (default 3).
	Attempts int
	// BaseDelay and MaxDelay bound the backoff before retry n, drawn
	// uniformly from [0, min(MaxDelay, BaseDelay*2^n)] (defaults 200ms, 5s).
	BaseDelay, MaxDelay time.Duration
	// AttemptTimeout bounds one try (default 5s).
	AttemptTimeout time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a provider asking
	// for a longer pause ends the call at once as unavailable (default 30s).
	MaxRetryAfter time.Duration
	// FailuresToOpen consecutive transient failures open the breaker (default 5).
	FailuresToOpen uint32
	// OpenFor is how long the breaker stays open before letting a probe
	// through in half-open state (default 30s).
	OpenFor time.Duration
	// HalfOpenProbes successful probes close the breaker again (default 1).
	HalfOpenProbes uint32
}

// withDefaults fills zero fields.
func (p Policy) withDefaults() Policy {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	def(&p.BaseDelay, 200*time.Millisecond)
	def(&p.MaxDelay, 5*time.Second)
	def(&p.AttemptTimeout, 5*time.Second)
	def(&p.MaxRetryAfter, 30*time.Second)
	def(&p.OpenFor, 30*time.Second)
	if p.FailuresToOpen == 0 {
		p.FailuresToOpen = 5
	}
	if p.HalfOpenProbes == 0 {
		p.HalfOpenProbes = 1
	}
	return p
}

// Caller runs calls to one provider through retries and a breaker. It is safe
// for concurrent use; make one per provider and share it.
type Caller struct {
	provider string
	policy   Policy
	cb       *gobreaker.CircuitBreaker[struct{}]
	metrics  *Metrics
	// lastSuccess is the UnixNano of the last call that succeeded.
	lastSuccess atomic.Int64

	// Sleep waits d or until ctx ends; tests replace it to observe delays.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a uniform value in [0, n); tests may pin it.
	Jitter func(n int64) int64
}

// New returns a Caller for provider. m may be nil (no metrics).
func New(provider string, p Policy, m *Metrics) *Caller {
	p = p.withDefaults()
	c := &Caller{provider: provider, policy: p, metrics: m, Sleep: sleep, Jitter: rand.Int64N}
	c.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        provider,
		MaxRequests: p.HalfOpenProbes,
		Timeout:     p.OpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= p.FailuresToOpen },
		// Only provider trouble counts: a final error (bad number, bad
		// token) is the provider answering correctly.
		IsSuccessful: func(err error) bool { return err == nil || !IsTransient(err) },
		// The caller giving up (cancel or its own deadline) says nothing
		// about the provider.
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			m.breaker(provider, to)
		},
	})
	m.breaker(provider, gobreaker.StateClosed)
	m.add(c)
	return c
}

// State is the breaker's current state ("closed", "half-open", "open").
func (c *Caller) State() string { return c.cb.State().String() }

// Do runs fn until it succeeds, fails for good, the attempts run out, the
// breaker opens or ctx ends. Each try gets its own AttemptTimeout. A
// returned error is transient (IsTransient) when trying later may help.
func (c *Caller) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	began := time.Now()
	err := c.do(ctx, fn)
	if err == nil {
		c.lastSuccess.Store(time.Now().UnixNano())
	}
	c.metrics.done(c.provider, outcome(err), time.Since(began))
	return err
}

func (c *Caller) do(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		_, err = c.cb.Execute(func() (struct{}, error) {
			actx, cancel := context.WithTimeout(ctx, c.policy.AttemptTimeout)
			defer cancel()
			err := fn(actx)
			switch {
			case err == nil:
			case ctx.Err() != nil:
				err = fmt.Errorf("%w: %w", errCallerGone, err)
			case actx.Err() != nil && !IsTransient(err):
				// The attempt's own timeout fired: the provider is slow.
				err = Transient(fmt.Errorf("%s: attempt timed out: %w", c.provider, err), 0)
			}
			return struct{}{}, err
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return Transient(fmt.Errorf("%s: %w", c.provider, ErrOpen), 0)
		}
		if err == nil || !IsTransient(err) || ctx.Err() != nil {
			if ctx.Err() != nil && err != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return err
		}
		if attempt+1 >= c.policy.Attempts {
			return err
		}
		wait := c.backoff(attempt)
		var t *TransientError
		if errors.As(err, &t) && t.RetryAfter > 0 {
			if t.RetryAfter > c.policy.MaxRetryAfter {
				return err
			}
			wait = max(wait, t.RetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err // the caller cannot wait that long; say so now
		}
		c.metrics.retry(c.provider)
		if serr := c.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}

// backoff is "full jitter": uniform in [0, min(MaxDelay, BaseDelay*2^n)].
func (c *Caller) backoff(n int) time.Duration {
	ceil := c.policy.MaxDelay
	if n < 30 {
		ceil = min(ceil, c.policy.BaseDelay<<n)
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(c.Jitter(int64(ceil) + 1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome labels a finished call for metrics.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrOpen):
		return "breaker_open"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case IsTransient(err):
		return "unavailable"
	default:
		return "rejected"
	}
}
