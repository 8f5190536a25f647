// Package totp is the second factor for staff, receptionists and admins:
// RFC 6238 time-based one-time passwords (through pquerna/otp) with replay
// protection, plus single-use recovery codes.
//
// Its place: the identity endpoints enrol a user (Enrol, then a first Verify
// to confirm the authenticator app works) and the session actor of that user
// keeps the secret (encrypted with actors/auth/pii), the State and the
// RecoverySet, calling Verify or Redeem at login. Like the rest of
// actors/auth, nothing here does I/O or reads the clock: time and
// randomness are passed in, and State and RecoverySet are plain values with
// exported fields for the actor to persist.
//
// Replay protection follows RFC 6238 section 5.2: once a code for a time
// step has been accepted, no code for that step or an earlier one is
// accepted again. State records that step.
package totp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// Skew is the number of time steps accepted either side of the current one,
// to absorb clock drift between the server and the user's phone.
const Skew = 1

// Algorithm is the HMAC hash of the codes. Authenticator apps widely support
// only SHA1, which RFC 6238 uses by default and which is sound inside HMAC.
type Algorithm int

// The algorithms of RFC 6238.
const (
	SHA1 Algorithm = iota
	SHA256
	SHA512
)

func (a Algorithm) lib() (otp.Algorithm, bool) {
	switch a {
	case SHA1:
		return otp.AlgorithmSHA1, true
	case SHA256:
		return otp.AlgorithmSHA256, true
	case SHA512:
		return otp.AlgorithmSHA512, true
	}
	return 0, false
}

// Errors returned by this package. None of them carries a secret or a code.
var (
	// ErrInvalidConfig: New was given an unusable Config.
	ErrInvalidConfig = errors.New("totp: invalid config")
	// ErrMissingAccount: Enrol was called without an account name.
	ErrMissingAccount = errors.New("totp: account name is required")
	// ErrInvalidSecret: the stored secret is not valid base32.
	ErrInvalidSecret = errors.New("totp: invalid secret")
	// ErrInvalidCode: the code is malformed or matches no accepted step.
	ErrInvalidCode = errors.New("totp: invalid code")
	// ErrReplayed: the code matches a step at or before the last accepted
	// one; it (or a later code) has been used already.
	ErrReplayed = errors.New("totp: code already used")
	// ErrRandom: the random source failed.
	ErrRandom = errors.New("totp: random source failed")
)

// Config configures an Authenticator. Zero fields take the defaults that
// every authenticator app understands: 30-second steps, 6 digits, SHA1, a
// 20-byte (160-bit) secret, crypto/rand.
type Config struct {
	// Issuer is shown by authenticator apps next to the account; required.
	Issuer string
	// Period is the step length in seconds.
	Period uint
	// Digits is the code length, 6 or 8.
	Digits int
	// Algorithm is the HMAC hash.
	Algorithm Algorithm
	// SecretSize is the secret length in bytes, at least 16.
	SecretSize int
	// Rand is the source of secrets.
	Rand io.Reader
}

// Authenticator enrols users and verifies their codes. It holds only
// configuration and is safe for concurrent use when Rand is.
type Authenticator struct {
	cfg  Config
	alg  otp.Algorithm
	opts hotp.ValidateOpts
}

// New validates cfg, fills in defaults and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Issuer == "" || strings.Contains(cfg.Issuer, ":") {
		return nil, fmt.Errorf("%w: Issuer must be set and contain no ':'", ErrInvalidConfig)
	}
	if cfg.Period == 0 {
		cfg.Period = 30
	}
	if cfg.Digits == 0 {
		cfg.Digits = 6
	}
	if cfg.Digits != 6 && cfg.Digits != 8 {
		return nil, fmt.Errorf("%w: Digits must be 6 or 8", ErrInvalidConfig)
	}
	if cfg.SecretSize == 0 {
		cfg.SecretSize = 20
	}
	if cfg.SecretSize < 16 {
		return nil, fmt.Errorf("%w: SecretSize must be at least 16 bytes", ErrInvalidConfig)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	alg, ok := cfg.Algorithm.lib()
	if !ok {
		return nil, fmt.Errorf("%w: unknown Algorithm", ErrInvalidConfig)
	}
	return &Authenticator{
		cfg:  cfg,
		alg:  alg,
		opts: hotp.ValidateOpts{Digits: otp.Digits(cfg.Digits), Algorithm: alg},
	}, nil
}

// Enrolment is what a user needs to add the account to an authenticator
// app. Both fields contain the secret: show them to the user once, store the
// secret only encrypted, and never log either.
type Enrolment struct {
	// Secret is the shared secret, base32 without padding.
	Secret string
	// URL is the otpauth://totp/ key URI (for a QR code), carrying the
	// issuer, the account, the secret and the parameters.
	URL string
}

// Enrol generates a new secret for account (e.g. the staff member's email
// or masked phone). The enrolment should be confirmed by a successful Verify
// before the second factor is switched on.
func (a *Authenticator) Enrol(account string) (Enrolment, error) {
	if account == "" {
		return Enrolment{}, ErrMissingAccount
	}
	secret := make([]byte, a.cfg.SecretSize)
	if _, err := io.ReadFull(a.cfg.Rand, secret); err != nil {
		return Enrolment{}, ErrRandom
	}
	return a.enrolment(account, secret)
}

// Again rebuilds the enrolment of an existing secret (base32, as Enrol
// gave it): the answer to a retried enrolment request, which must show the
// pending secret again rather than issue another.
func (a *Authenticator) Again(account, secret string) (Enrolment, error) {
	if account == "" {
		return Enrolment{}, ErrMissingAccount
	}
	raw, err := b32.DecodeString(secret)
	if err != nil || len(raw) < 16 {
		return Enrolment{}, fmt.Errorf("%w: not a secret this package made", ErrInvalidConfig)
	}
	return a.enrolment(account, raw)
}

func (a *Authenticator) enrolment(account string, secret []byte) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      a.cfg.Issuer,
		AccountName: account,
		Period:      a.cfg.Period,
		Secret:      secret,
		Digits:      otp.Digits(a.cfg.Digits),
		Algorithm:   a.alg,
	})
	if err != nil {
		// The library's errors name only missing fields, never the secret.
		return Enrolment{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

// Step returns the RFC 6238 time step containing t.
func (a *Authenticator) Step(t time.Time) uint64 {
	u := t.Unix()
	if u < 0 {
		return 0
	}
	return uint64(u) / uint64(a.cfg.Period)
}

// CodeAt returns the code for secret at t. The server never needs it to
// verify; it exists for tests, the RFC vectors and development tools.
func (a *Authenticator) CodeAt(secret string, t time.Time) (string, error) {
	return a.codeForStep(secret, a.Step(t))
}

func (a *Authenticator) codeForStep(secret string, step uint64) (string, error) {
	code, err := hotp.GenerateCodeCustom(secret, step, a.opts)
	if err != nil {
		return "", ErrInvalidSecret
	}
	return code, nil
}

// State is the per-user replay record the actor persists. The zero value
// means no code has been accepted yet.
type State struct {
	// LastStep is the time step of the last accepted code.
	LastStep uint64 `json:"last_step"`
}

// Verify checks code (spaces ignored, as apps display "123 456") against
// secret at now, accepting the current step and Skew steps either side, and
// returns the new State on success. It fails with ErrReplayed when the code
// is for a step at or before s.LastStep, with ErrInvalidCode when it matches
// nothing, and with ErrInvalidSecret when the secret is corrupt. Every
// candidate step is compared, in constant time, whatever matched first.
func (a *Authenticator) Verify(secret string, s State, code string, now time.Time) (State, error) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != a.cfg.Digits || strings.Trim(code, "0123456789") != "" {
		return s, ErrInvalidCode
	}
	cur := a.Step(now)
	var accepted uint64
	found, replayed := false, false
	for step := cur - min(cur, Skew); step <= cur+Skew; step++ {
		want, err := a.codeForStep(secret, step)
		if err != nil {
			return s, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		// Steps are visited in increasing order, so the first fresh match
		// is the oldest, which leaves later steps' codes usable.
		switch {
		case step <= s.LastStep:
			replayed = true
		case !found:
			found, accepted = true, step
		}
	}
	switch {
	case found:
		return State{LastStep: accepted}, nil
	case replayed:
		return s, ErrReplayed
	}
	return s, ErrInvalidCode
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// SecretFromBytes encodes raw secret bytes in the base32 form the rest of
// the package uses; for importing secrets and for test vectors.
func SecretFromBytes(b []byte) string { return b32.EncodeToString(b) }
