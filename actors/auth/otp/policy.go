package otp

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors wrapped in a *RetryError when a send or a verification is refused.
var (
	// ErrLockedOut: too many failed attempts; the phone may neither verify
	// nor request codes until the lockout ends.
	ErrLockedOut = errors.New("otp: locked out after too many failed attempts")
	// ErrSendRateLimited: the phone asked for codes too often.
	ErrSendRateLimited = errors.New("otp: too many codes requested")
)

// ErrInvalidPolicy is returned by Policy.Validate.
var ErrInvalidPolicy = errors.New("otp: invalid policy")

// RetryError is a refusal that ends by itself; RetryAfter is how long until
// the caller may try again (the Retry-After of a 429).
type RetryError struct {
	// Err is ErrLockedOut or ErrSendRateLimited.
	Err error
	// RetryAfter is positive.
	RetryAfter time.Duration
}

// Error implements error.
func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter)
}

// Unwrap lets errors.Is match Err.
func (e *RetryError) Unwrap() error { return e.Err }

// Policy is the configuration of the attempt and send limits. It is a value:
// every method is a pure function of the policy, a State and the time, and
// returns the new State instead of changing anything.
type Policy struct {
	// MaxFailures is the number of failed verifications (across codes) that
	// triggers a lockout.
	MaxFailures int
	// Lockouts is the lockout ladder: the first lockout lasts Lockouts[0],
	// the second Lockouts[1], and so on; the last step repeats.
	Lockouts []time.Duration
	// ForgetAfter is how long a phone must go without a failure for its
	// failure count and ladder position to be forgotten. It must exceed the
	// longest lockout.
	ForgetAfter time.Duration
	// SendLimit is the number of codes a phone may be sent within any
	// SendWindow (a sliding window).
	SendLimit int
	// SendWindow is the length of the sliding send window.
	SendWindow time.Duration
	// ResendAfter is the minimum gap between two sends; zero disables it.
	ResendAfter time.Duration
}

// DefaultPolicy returns the limits the identity endpoints start from: five
// failures per lockout, lockouts of 1 min, 5 min, 15 min and then 1 h each,
// forgotten after a day without failures; at most five codes an hour, 30 s
// apart.
func DefaultPolicy() Policy {
	return Policy{
		MaxFailures: 5,
		Lockouts:    []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour},
		ForgetAfter: 24 * time.Hour,
		SendLimit:   5,
		SendWindow:  time.Hour,
		ResendAfter: 30 * time.Second,
	}
}

// Validate reports whether the policy is usable; the error names the field.
func (p Policy) Validate() error {
	switch {
	case p.MaxFailures < 1:
		return fmt.Errorf("%w: MaxFailures must be at least 1", ErrInvalidPolicy)
	case len(p.Lockouts) == 0:
		return fmt.Errorf("%w: Lockouts must not be empty", ErrInvalidPolicy)
	case p.SendLimit < 1:
		return fmt.Errorf("%w: SendLimit must be at least 1", ErrInvalidPolicy)
	case p.SendWindow <= 0:
		return fmt.Errorf("%w: SendWindow must be positive", ErrInvalidPolicy)
	case p.ResendAfter < 0:
		return fmt.Errorf("%w: ResendAfter must not be negative", ErrInvalidPolicy)
	}
	for i, d := range p.Lockouts {
		if d <= 0 {
			return fmt.Errorf("%w: Lockouts[%d] must be positive", ErrInvalidPolicy, i)
		}
		if i > 0 && d < p.Lockouts[i-1] {
			return fmt.Errorf("%w: Lockouts must not shrink (index %d)", ErrInvalidPolicy, i)
		}
	}
	if p.ForgetAfter <= p.Lockouts[len(p.Lockouts)-1] {
		return fmt.Errorf("%w: ForgetAfter must exceed the longest lockout", ErrInvalidPolicy)
	}
	return nil
}

// State is the per-phone record the session actor persists. Its fields are
// exported (with JSON tags) so any codec can store it; the zero value is a
// phone with no history. Treat it as a value: Policy methods return a new
// State and never modify the one passed in.
type State struct {
	// Failures counts failed verifications since the last success, lockout
	// or forgetting. Issuing a new code does not reset it.
	Failures int `json:"failures"`
	// Lockouts counts the lockouts so far: the position on the ladder.
	Lockouts int `json:"lockouts"`
	// LockedUntil is the end of the current lockout (zero if never locked).
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// LastFailure is the instant of the latest failed verification.
	LastFailure time.Time `json:"last_failure,omitzero"`
	// Sends holds the instants of recent sends, oldest first, trimmed to
	// those that can still matter.
	Sends []time.Time `json:"sends,omitempty"`
}

// LockedFor returns how long the phone stays locked out after now, or zero.
// The lockout covers [start, LockedUntil): at exactly LockedUntil it is over.
func (s State) LockedFor(now time.Time) time.Duration {
	if now.Before(s.LockedUntil) {
		return s.LockedUntil.Sub(now)
	}
	return 0
}

// Compact returns s with what no longer matters at now dropped: failures and
// ladder position after ForgetAfter without a failure, sends outside the
// window. Every other method compacts first; the actor may call it before
// persisting to keep the record small.
func (p Policy) Compact(s State, now time.Time) State {
	if !s.LastFailure.IsZero() && now.Sub(s.LastFailure) >= p.ForgetAfter && s.LockedFor(now) == 0 {
		s.Failures, s.Lockouts, s.LastFailure = 0, 0, time.Time{}
	}
	keep := make([]time.Time, 0, len(s.Sends))
	for _, t := range s.Sends {
		if now.Sub(t) < p.SendWindow {
			keep = append(keep, t)
		}
	}
	// Only the last SendLimit sends can decide the window or the resend gap.
	if len(keep) > p.SendLimit {
		keep = keep[len(keep)-p.SendLimit:]
	}
	if len(keep) == 0 {
		keep = nil
	}
	s.Sends = slices.Clip(keep)
	return s
}

// CheckSend reports whether a code may be sent to the phone at now: nil, or
// a *RetryError wrapping ErrLockedOut or ErrSendRateLimited. A locked phone
// gets no codes: it could not use them.
func (p Policy) CheckSend(s State, now time.Time) error {
	s = p.Compact(s, now)
	if d := s.LockedFor(now); d > 0 {
		return &RetryError{Err: ErrLockedOut, RetryAfter: d}
	}
	var wait time.Duration
	if n := len(s.Sends); n > 0 && p.ResendAfter > 0 {
		wait = max(wait, s.Sends[n-1].Add(p.ResendAfter).Sub(now))
	}
	if n := len(s.Sends); n >= p.SendLimit {
		wait = max(wait, s.Sends[n-p.SendLimit].Add(p.SendWindow).Sub(now))
	}
	if wait > 0 {
		return &RetryError{Err: ErrSendRateLimited, RetryAfter: wait}
	}
	return nil
}

// RecordSend returns s with a send at now counted. Call it once the code has
// been handed to the Sender (after CheckSend allowed it).
func (p Policy) RecordSend(s State, now time.Time) State {
	s = p.Compact(s, now)
	s.Sends = append(slices.Clone(s.Sends), now)
	return p.Compact(s, now)
}

// RecordFailure returns s with one failed verification at now counted; the
// MaxFailures-th failure starts the next lockout on the ladder and clears
// the count, so after the lockout the phone has MaxFailures attempts again
// and the next lockout is longer.
func (p Policy) RecordFailure(s State, now time.Time) State {
	s = p.Compact(s, now)
	s.Failures++
	s.LastFailure = now
	if s.Failures >= p.MaxFailures {
		step := p.Lockouts[min(s.Lockouts, len(p.Lockouts)-1)]
		s.LockedUntil = now.Add(step)
		s.Lockouts++
		s.Failures = 0
	}
	return s
}

// RecordSuccess returns s after a successful verification: the failure count
// and the ladder are cleared, since only the phone's owner can produce the
// code. Send history is kept; the send limit is independent of success.
func (p Policy) RecordSuccess(s State, now time.Time) State {
	s = p.Compact(s, now)
	s.Failures, s.Lockouts, s.LastFailure = 0, 0, time.Time{}
	return s
}

// Attempt is the whole verification step of the login flow: during a
// lockout it answers ResultLocked without looking at the code (so even the
// right code fails); otherwise it verifies the code against c (nil means no
// outstanding challenge, answered as expired) and records a success or a
// failure. Every non-OK result counts as a failure: the endpoint answers them
// alike, and a guess at an expired code is still a guess. Locked attempts are
// not counted, so an attacker hammering a locked phone cannot extend its
// owner's lockout indefinitely.
//
// c is modified only on success (marked used). To learn when a lockout
// started by this attempt ends, call LockedFor on the returned State.
func (p Policy) Attempt(s State, c *Challenge, h *Hasher, phone, code string, now time.Time) (State, Result) {
	s = p.Compact(s, now)
	if s.LockedFor(now) > 0 {
		return s, ResultLocked
	}
	r := ResultExpired
	if c != nil {
		r = c.Verify(h, phone, code, now)
	}
	if r == ResultOK {
		return p.RecordSuccess(s, now), r
	}
	return p.RecordFailure(s, now), r
}
