package otp

import (
	"io"
	"time"
)

// Result is the answer to a verification attempt. Endpoints should answer
// every non-OK result with the same generic "invalid or expired code" so the
// response is no oracle; the distinction is for logs and metrics.
type Result int

// Verification results.
const (
	// ResultOK: the code matched an unexpired, unused challenge.
	ResultOK Result = iota + 1
	// ResultWrong: the code did not match.
	ResultWrong
	// ResultExpired: the challenge's lifetime had ended (or there was none).
	ResultExpired
	// ResultUsed: the challenge had already been redeemed.
	ResultUsed
	// ResultLocked: the phone, or the phone from the caller's network, is
	// locked out; the code was not even checked.
	ResultLocked
	// ResultCaptchaRequired: the phone saw so many wrong codes that every
	// attempt must come with a passed CAPTCHA; the code was not checked
	// and nothing was counted.
	ResultCaptchaRequired
)

// String returns the result's name, suitable as a metric label.
func (r Result) String() string {
	switch r {
	case ResultOK:
		return "ok"
	case ResultWrong:
		return "wrong"
	case ResultExpired:
		return "expired"
	case ResultUsed:
		return "used"
	case ResultLocked:
		return "locked"
	case ResultCaptchaRequired:
		return "captcha_required"
	}
	return "unknown"
}

// Challenge is one issued code, as the session actor keeps it. It holds no
// secret a reader of the persisted state could use: the code exists only in
// the message sent to the phone. The zero Challenge is expired.
type Challenge struct {
	// Hash is Hasher.Sum(phone, code).
	Hash []byte `json:"hash"`
	// IssuedAt is when the code was drawn.
	IssuedAt time.Time `json:"issued_at"`
	// ExpiresAt is the first instant at which the code is no longer valid.
	ExpiresAt time.Time `json:"expires_at"`
	// Used is set once the code has been accepted.
	Used bool `json:"used"`
}

// NewChallenge draws a code from r for phone and returns it together with
// the Challenge to keep. The code goes to the Sender and nowhere else. ttl
// must be in (0, MaxTTL].
func NewChallenge(h *Hasher, r io.Reader, phone string, now time.Time, ttl time.Duration) (code string, c Challenge, err error) {
	if ttl <= 0 || ttl > MaxTTL {
		return "", Challenge{}, ErrInvalidTTL
	}
	code, err = NewCode(r)
	if err != nil {
		return "", Challenge{}, err
	}
	return code, Challenge{
		Hash:      h.Sum(phone, code),
		IssuedAt:  now,
		ExpiresAt: now.Add(ttl),
	}, nil
}

// Expired reports whether the challenge can no longer be redeemed at now.
// A code is valid on [IssuedAt, ExpiresAt): at exactly ExpiresAt it is
// expired. A persisted challenge claiming a lifetime beyond MaxTTL is treated
// as expired rather than trusted.
func (c Challenge) Expired(now time.Time) bool {
	if c.ExpiresAt.Sub(c.IssuedAt) > MaxTTL {
		return true
	}
	return !now.Before(c.ExpiresAt)
}

// Verify checks code against the challenge for phone at now and, on
// success, marks the challenge used so it can never be redeemed again.
// State is checked before the code, so an expired or used challenge answers
// the same whatever code is given. Verify does not count failures: that is
// Policy.Attempt's job, which also refuses to call Verify during a lockout.
func (c *Challenge) Verify(h *Hasher, phone, code string, now time.Time) Result {
	switch {
	case c.Used:
		return ResultUsed
	case c.Expired(now):
		return ResultExpired
	case len(c.Hash) == 0 || len(code) != CodeLen:
		return ResultWrong
	case !h.Equal(c.Hash, phone, code):
		return ResultWrong
	}
	c.Used = true
	return ResultOK
}
