package otp

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
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
	// ErrCaptchaRequired: the phone saw so many wrong codes that a code is
	// sent or checked only for a caller who passed a CAPTCHA. Returned
	// bare (no wait: a CAPTCHA, not time, lifts it).
	ErrCaptchaRequired = errors.New("otp: a CAPTCHA is required for this number")
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
	// MaxFailures is the number of failed verifications (across codes)
	// from one source network (NetworkOf) that locks the phone for that
	// network only: a stranger who knows a number cannot lock its owner
	// out by guessing from elsewhere.
	MaxFailures int
	// PhoneMaxFailures is the number of failed verifications from all
	// networks together that locks the phone as a whole (0: 10 ×
	// MaxFailures), the bound on guesses spread over many networks.
	PhoneMaxFailures int
	// CaptchaAfter is the number of failures from all networks from which
	// on (and after any whole-phone lockout, until a success or
	// ForgetAfter) every send and check for the phone needs a passed
	// CAPTCHA (0: 2 × MaxFailures). It lies below PhoneMaxFailures, so a
	// botnet meets the CAPTCHA long before it can lock the owner out.
	CaptchaAfter int
	// MaxNetworks bounds the networks a phone's state remembers (0: 64);
	// the one whose last failure is oldest goes first.
	MaxNetworks int
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
// failures from one network lock the phone for that network, 50 from all
// networks lock it for everyone, and from 10 on a CAPTCHA is required;
// lockouts of 1 min, 5 min, 15 min and then 1 h each, forgotten after a
// day without failures; at most five codes an hour, 30 s apart.
func DefaultPolicy() Policy {
	return Policy{
		MaxFailures:      5,
		PhoneMaxFailures: 50,
		CaptchaAfter:     10,
		MaxNetworks:      64,
		Lockouts:         []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour},
		ForgetAfter:      24 * time.Hour,
		SendLimit:        5,
		SendWindow:       time.Hour,
		ResendAfter:      30 * time.Second,
	}
}

// Validate reports whether the policy is usable; the error names the field.
func (p Policy) Validate() error {
	switch {
	case p.MaxFailures < 1:
		return fmt.Errorf("%w: MaxFailures must be at least 1", ErrInvalidPolicy)
	case p.PhoneMaxFailures < 0 || p.CaptchaAfter < 0 || p.MaxNetworks < 0:
		return fmt.Errorf("%w: PhoneMaxFailures, CaptchaAfter and MaxNetworks must not be negative", ErrInvalidPolicy)
	case p.phoneMax() < p.MaxFailures:
		return fmt.Errorf("%w: PhoneMaxFailures must be at least MaxFailures", ErrInvalidPolicy)
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

func (p Policy) phoneMax() int {
	if p.PhoneMaxFailures > 0 {
		return p.PhoneMaxFailures
	}
	return 10 * p.MaxFailures
}

func (p Policy) captchaAfter() int {
	if p.CaptchaAfter > 0 {
		return p.CaptchaAfter
	}
	return 2 * p.MaxFailures
}

func (p Policy) maxNetworks() int {
	if p.MaxNetworks > 0 {
		return p.MaxNetworks
	}
	return 64
}

// NetworkOf is the source network failures are counted under: the /24 of
// an IPv4 address, the /48 of an IPv6 one (one site's allocation), so an
// attacker does not get a fresh count per address, and the owner on
// another network is not locked out by them. "" for an address that does
// not parse (one bucket for every such caller).
func NetworkOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 48
	}
	return netip.PrefixFrom(a, bits).Masked().String()
}

// State is the per-phone record the session actor persists. Its fields are
// exported (with JSON tags) so any codec can store it; the zero value is a
// phone with no history. Treat it as a value: Policy methods return a new
// State and never modify the one passed in.
type State struct {
	// Failures counts failed verifications from all networks since the
	// last success, whole-phone lockout or forgetting. Issuing a new code
	// does not reset it.
	Failures int `json:"failures"`
	// Lockouts counts the whole-phone lockouts so far: the position on the
	// ladder.
	Lockouts int `json:"lockouts"`
	// LockedUntil is the end of the current whole-phone lockout (zero if
	// never locked).
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// LastFailure is the instant of the latest failed verification.
	LastFailure time.Time `json:"last_failure,omitzero"`
	// Sends holds the instants of recent sends, oldest first, trimmed to
	// those that can still matter.
	Sends []time.Time `json:"sends,omitempty"`
	// Nets holds the failure counts and lockouts of the phone per source
	// network (NetworkOf), at most MaxNetworks of them.
	Nets map[string]NetState `json:"nets,omitempty"`
}

// NetState is the phone's failure record from one source network.
type NetState struct {
	Failures    int       `json:"failures"`
	Lockouts    int       `json:"lockouts"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
}

// LockedFor returns how long the phone as a whole stays locked out after
// now, or zero. The lockout covers [start, LockedUntil): at exactly
// LockedUntil it is over.
func (s State) LockedFor(now time.Time) time.Duration {
	if now.Before(s.LockedUntil) {
		return s.LockedUntil.Sub(now)
	}
	return 0
}

// LockedForNetwork returns how long the phone stays locked out for a
// caller from network after now (the whole-phone lockout or that
// network's, whichever ends later), or zero.
func (s State) LockedForNetwork(network string, now time.Time) time.Duration {
	d := s.LockedFor(now)
	if n, ok := s.Nets[network]; ok && now.Before(n.LockedUntil) {
		d = max(d, n.LockedUntil.Sub(now))
	}
	return d
}

// CaptchaRequired reports whether a send or check for the phone needs a
// passed CAPTCHA at now: CaptchaAfter failures from all networks, or a
// whole-phone lockout not yet forgotten.
func (p Policy) CaptchaRequired(s State, now time.Time) bool {
	s = p.Compact(s, now)
	return s.Failures >= p.captchaAfter() || s.Lockouts > 0
}

// Compact returns s with what no longer matters at now dropped: failures and
// ladder position after ForgetAfter without a failure (per phone and per
// network), sends outside the window, networks beyond MaxNetworks. Every
// other method compacts first; the actor may call it before persisting to
// keep the record small.
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
	if len(s.Nets) > 0 {
		nets := make(map[string]NetState, len(s.Nets))
		for k, n := range s.Nets {
			if now.Sub(n.LastFailure) < p.ForgetAfter || now.Before(n.LockedUntil) {
				nets[k] = n
			}
		}
		for len(nets) > p.maxNetworks() {
			oldest := ""
			for k, n := range nets {
				if o, ok := nets[oldest]; oldest == "" || !ok || n.LastFailure.Before(o.LastFailure) {
					oldest = k
				}
			}
			delete(nets, oldest)
		}
		if len(nets) == 0 {
			nets = nil
		}
		s.Nets = nets
	}
	return s
}

// CheckSend reports whether a code may be sent to the phone at now: nil, or
// a *RetryError wrapping ErrLockedOut or ErrSendRateLimited. A locked phone
// gets no codes: it could not use them. It is CheckSendFrom for a caller of
// network "" who passed a CAPTCHA.
func (p Policy) CheckSend(s State, now time.Time) error {
	return p.CheckSendFrom(s, "", true, now)
}

// CheckSendFrom is CheckSend for a caller from network (NetworkOf), who
// passed a CAPTCHA or not: a phone locked for that network gets no code
// (*RetryError wrapping ErrLockedOut), and one that needs a CAPTCHA gets
// ErrCaptchaRequired without it.
func (p Policy) CheckSendFrom(s State, network string, captcha bool, now time.Time) error {
	s = p.Compact(s, now)
	if d := s.LockedForNetwork(network, now); d > 0 {
		return &RetryError{Err: ErrLockedOut, RetryAfter: d}
	}
	if !captcha && p.CaptchaRequired(s, now) {
		return ErrCaptchaRequired
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

// RecordFailure is RecordFailureFrom for network "".
func (p Policy) RecordFailure(s State, now time.Time) State {
	return p.RecordFailureFrom(s, "", now)
}

// RecordFailureFrom returns s with one failed verification from network at
// now counted. The MaxFailures-th failure from the network starts that
// network's next lockout on the ladder and clears its count; the
// PhoneMaxFailures-th from all networks does the same for the whole phone.
// After a lockout the count starts again, and the next lockout is longer.
func (p Policy) RecordFailureFrom(s State, network string, now time.Time) State {
	s = p.Compact(s, now)
	n := s.Nets[network]
	n.Failures++
	n.LastFailure = now
	if n.Failures >= p.MaxFailures {
		n.LockedUntil = now.Add(p.Lockouts[min(n.Lockouts, len(p.Lockouts)-1)])
		n.Lockouts++
		n.Failures = 0
	}
	nets := maps.Clone(s.Nets)
	if nets == nil {
		nets = map[string]NetState{}
	}
	nets[network] = n
	s.Nets = nets
	s.Failures++
	s.LastFailure = now
	if s.Failures >= p.phoneMax() {
		s.LockedUntil = now.Add(p.Lockouts[min(s.Lockouts, len(p.Lockouts)-1)])
		s.Lockouts++
		s.Failures = 0
	}
	return p.Compact(s, now)
}

// RecordSuccess is RecordSuccessFrom for network "".
func (p Policy) RecordSuccess(s State, now time.Time) State {
	return p.RecordSuccessFrom(s, "", now)
}

// RecordSuccessFrom returns s after a successful verification from
// network: the whole-phone count and ladder, and the network's own, are
// cleared, since only the phone's owner can produce the code. Other
// networks keep theirs (a success must not reopen an attacker's network),
// and so does the send history; the send limit is independent of success.
func (p Policy) RecordSuccessFrom(s State, network string, now time.Time) State {
	s = p.Compact(s, now)
	s.Failures, s.Lockouts, s.LastFailure = 0, 0, time.Time{}
	if _, ok := s.Nets[network]; ok {
		s.Nets = maps.Clone(s.Nets)
		delete(s.Nets, network)
		if len(s.Nets) == 0 {
			s.Nets = nil
		}
	}
	return s
}

// Attempt is AttemptFrom for network "" and a caller who passed a CAPTCHA.
func (p Policy) Attempt(s State, c *Challenge, h *Hasher, phone, code string, now time.Time) (State, Result) {
	return p.AttemptFrom(s, c, h, phone, code, "", true, now)
}

// AttemptFrom is the whole verification step of the login flow for a
// caller from network (NetworkOf) who passed a CAPTCHA or not: during a
// lockout of the phone or of that network it answers ResultLocked without
// looking at the code (so even the right code fails); when the phone needs
// a CAPTCHA and the caller passed none, ResultCaptchaRequired, also
// without looking; otherwise it verifies the code against c (nil means no
// outstanding challenge, answered as expired) and records a success or a
// failure. Every non-OK result counts as a failure: the endpoint answers
// them alike, and a guess at an expired code is still a guess. Locked and
// CAPTCHA-less attempts are not counted, so an attacker hammering a locked
// phone cannot extend its owner's lockout indefinitely.
//
// c is modified only on success (marked used). To learn when a lockout
// started by this attempt ends, call LockedForNetwork on the returned
// State.
func (p Policy) AttemptFrom(s State, c *Challenge, h *Hasher, phone, code, network string, captcha bool, now time.Time) (State, Result) {
	s = p.Compact(s, now)
	if s.LockedForNetwork(network, now) > 0 {
		return s, ResultLocked
	}
	if !captcha && p.CaptchaRequired(s, now) {
		return s, ResultCaptchaRequired
	}
	r := ResultExpired
	if c != nil {
		r = c.Verify(h, phone, code, now)
	}
	if r == ResultOK {
		return p.RecordSuccessFrom(s, network, now), r
	}
	return p.RecordFailureFrom(s, network, now), r
}
