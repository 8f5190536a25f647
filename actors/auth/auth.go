// Package auth mints and verifies the API's signed access tokens.
//
// Tokens are HS256 JWTs: the gateway is the only issuer and the only
// verifier, so a shared secret is enough and avoids key distribution. The
// package knows nothing about HTTP; the gateway's middleware reads the
// header and calls Verify.
package auth

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"
)

// Role is what a principal may do. Roles are flat (no hierarchy) so every
// route names exactly the roles it admits.
type Role string

// The roles of the studio.
const (
	RoleClient       Role = "client"
	RoleStaff        Role = "staff"
	RoleReceptionist Role = "receptionist"
	RoleAdmin        Role = "admin"
	// RoleKiosk is a studio device (docs/identity-2fa-kiosk.md): only the
	// kiosk routes admit it.
	RoleKiosk Role = "kiosk"
)

// ErrUnknownRole: a role string is not one of the defined roles.
var ErrUnknownRole = errors.New("auth: unknown role")

// ParseRole validates s as a Role; tokens and config both go through it so
// a typo never becomes a role nobody checks for.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleClient, RoleStaff, RoleReceptionist, RoleAdmin, RoleKiosk:
		return r, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownRole, s)
}

// Valid reports whether r is a defined role.
func (r Role) Valid() bool {
	_, err := ParseRole(string(r))
	return err == nil
}

// Claims is the verified content of a token.
type Claims struct {
	Subject   string // the principal's id
	Role      Role
	TokenID   string // jti, a ULID; lets a future deny-list revoke one token
	IssuedAt  time.Time
	ExpiresAt time.Time
	SessionID string // sid: the session (refresh-token family) minted for; "" for operator tokens
	// SecondFactor is set when the principal proved a second factor: a
	// sign-in that passed the TOTP step (amr "sms", "otp", "mfa"), or an
	// operator token minted by whoever holds the signing secret (amr
	// "mfa"). Staff roles need it for everything but enrolment
	// (docs/identity-2fa-kiosk.md).
	SecondFactor bool
}

// Authentication methods (RFC 8176) a token's amr claim lists.
const (
	AMRSMS = "sms" // a login code sent to the phone
	AMROTP = "otp" // an authenticator (TOTP) or recovery code
	AMRMFA = "mfa" // more than one factor, or an operator's secret
)

// Errors returned by Tokens. Callers map every one of them to 401; they are
// distinct only for logs and tests.
var (
	ErrKeyTooShort  = errors.New("auth: signing key must be at least 32 bytes")
	ErrInvalidToken = errors.New("auth: invalid token")
)

// MinKeyLen is the shortest HS256 key accepted: 256 bits, the hash size, as
// RFC 7518 §3.2 requires.
const MinKeyLen = 32

// Token lifetimes (exp − iat) Mint issues and Verify accepts. Sign-in
// mints 15-minute access tokens and `spa token` operator tokens of an hour
// by default; a kiosk token lives as long as its kiosk (at most 90 days,
// the longest SPA_KIOSK_TTL and ttl_seconds allow). A token claiming a
// longer life was not minted by us, or by a key that leaked: refusing it
// bounds what a stolen key or a careless operator can hand out.
const (
	MaxTokenLifetime      = 24 * time.Hour
	MaxKioskTokenLifetime = 90 * 24 * time.Hour
)

// MaxLifetime is the longest lifetime a token of role may have.
func MaxLifetime(role Role) time.Duration {
	if role == RoleKiosk {
		return MaxKioskTokenLifetime
	}
	return MaxTokenLifetime
}

// ErrLifetime is wrapped (with ErrInvalidToken) when a token claims a
// lifetime beyond MaxLifetime, or no issue time to measure it from.
var ErrLifetime = errors.New("auth: token lifetime over the maximum")

// Leeway tolerates clock skew between the machines of a cluster when
// checking expiry and issue time.
const Leeway = 30 * time.Second

// Tokens mints and verifies tokens with one key. It is safe for concurrent
// use.
type Tokens struct {
	key    []byte
	issuer string
	now    func() time.Time
	parser *jwt.Parser

	// verified remembers tokens whose signature and claims already
	// checked out, until they expire: a client sends the same token with
	// every request, and parsing and verifying it again was a tenth of the
	// cost of a refused booking.
	mu       sync.Mutex
	verified map[string]Claims

	// revoked, when set, is asked about every token with a sid, cached or
	// not, so a revocation takes effect before the token expires.
	revoked Revocations
}

// Revocations answers whether a session was revoked. *RevokedSessions is
// the implementation; it must be safe for concurrent use.
type Revocations interface {
	Revoked(sessionID string) bool
}

// SetRevocations makes Verify refuse tokens whose session r reports
// revoked. Call it before the Tokens is shared.
func (t *Tokens) SetRevocations(r Revocations) { t.revoked = r }

// ForgetSession drops the cached verifications of the session's tokens, so
// the next Verify of each goes through the full check.
func (t *Tokens) ForgetSession(sessionID string) {
	if sessionID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for tok, c := range t.verified {
		if c.SessionID == sessionID {
			delete(t.verified, tok)
		}
	}
}

// maxVerified bounds the cache; when full it starts over.
const maxVerified = 8192

// jwtClaims is the wire form; role rides next to the registered claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	Role string   `json:"role"`
	SID  string   `json:"sid,omitempty"`
	AMR  []string `json:"amr,omitempty"`
}

// NewTokens returns a Tokens signing with key (copied, ≥ MinKeyLen bytes)
// and stamping issuer; now is the clock (nil: time.Now).
func NewTokens(key []byte, issuer string, now func() time.Time) (*Tokens, error) {
	if len(key) < MinKeyLen {
		return nil, ErrKeyTooShort
	}
	if issuer == "" {
		return nil, errors.New("auth: issuer must not be empty")
	}
	if now == nil {
		now = time.Now
	}
	t := &Tokens{key: append([]byte(nil), key...), issuer: issuer, now: now}
	t.parser = jwt.NewParser(
		// Pinning the method is what defeats alg=none and
		// RS256-with-HMAC-key confusion.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	return t, nil
}

// Mint signs an operator token for subject with role, valid for ttl from
// now (`spa token`, load generation). It carries the second factor (amr
// "mfa"): whoever can mint it holds the signing secret, which is more
// than any second factor proves.
func (t *Tokens) Mint(subject string, role Role, ttl time.Duration) (string, Claims, error) {
	return t.mint(subject, role, "", ttl, []string{AMRMFA})
}

// MintSession is Mint for a token bound to a session (the sid claim),
// with no authentication method: a kiosk's token.
func (t *Tokens) MintSession(subject string, role Role, sessionID string, ttl time.Duration) (string, Claims, error) {
	return t.mint(subject, role, sessionID, ttl, nil)
}

// MintSignIn is MintSession for a person's sign-in: the login code (amr
// "sms") and, when secondFactor, the TOTP step too ("otp", "mfa").
func (t *Tokens) MintSignIn(subject string, role Role, sessionID string, ttl time.Duration, secondFactor bool) (string, Claims, error) {
	amr := []string{AMRSMS}
	if secondFactor {
		amr = append(amr, AMROTP, AMRMFA)
	}
	return t.mint(subject, role, sessionID, ttl, amr)
}

func (t *Tokens) mint(subject string, role Role, sessionID string, ttl time.Duration, amr []string) (string, Claims, error) {
	if subject == "" {
		return "", Claims{}, errors.New("auth: subject must not be empty")
	}
	if !role.Valid() {
		return "", Claims{}, fmt.Errorf("%w: %q", ErrUnknownRole, role)
	}
	if ttl <= 0 {
		return "", Claims{}, errors.New("auth: ttl must be positive")
	}
	if ttl > MaxLifetime(role) {
		return "", Claims{}, fmt.Errorf("%w: %s for role %s, at most %s", ErrLifetime, ttl, role, MaxLifetime(role))
	}
	// JWT times are UTC seconds; normalising here makes the returned
	// Claims equal to what Verify will later report.
	now := t.now().UTC().Truncate(time.Second)
	c := Claims{
		Subject:      subject,
		Role:         role,
		TokenID:      ulid.Make().String(),
		IssuedAt:     now,
		ExpiresAt:    now.Add(ttl).Truncate(time.Second),
		SessionID:    sessionID,
		SecondFactor: slices.Contains(amr, AMRMFA),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   c.Subject,
			ID:        c.TokenID,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		Role: string(role),
		SID:  sessionID,
		AMR:  amr,
	})
	s, err := tok.SignedString(t.key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, c, nil
}

// Verify checks token's signature, algorithm, issuer, expiry (with Leeway)
// and role, and returns its claims. Every failure wraps ErrInvalidToken.
func (t *Tokens) Verify(token string) (Claims, error) {
	t.mu.Lock()
	c, ok := t.verified[token]
	t.mu.Unlock()
	if ok && t.now().Before(c.ExpiresAt.Add(Leeway)) {
		if err := t.checkRevoked(c); err != nil {
			return Claims{}, err
		}
		return c, nil
	}
	c, err := t.verify(token)
	if err != nil {
		return c, err
	}
	if err := t.checkRevoked(c); err != nil {
		return Claims{}, err
	}
	t.mu.Lock()
	if t.verified == nil || len(t.verified) >= maxVerified {
		t.verified = make(map[string]Claims, 64)
	}
	t.verified[token] = c
	t.mu.Unlock()
	return c, nil
}

func (t *Tokens) verify(token string) (Claims, error) {
	var jc jwtClaims
	_, err := t.parser.ParseWithClaims(token, &jc, func(*jwt.Token) (any, error) {
		return t.key, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	role, err := ParseRole(jc.Role)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if jc.Subject == "" {
		return Claims{}, fmt.Errorf("%w: missing subject", ErrInvalidToken)
	}
	if jc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: %w: no issue time", ErrInvalidToken, ErrLifetime)
	}
	c := Claims{Subject: jc.Subject, Role: role, TokenID: jc.ID, SessionID: jc.SID,
		SecondFactor: slices.Contains(jc.AMR, AMRMFA),
		IssuedAt:     jc.IssuedAt.UTC(), ExpiresAt: jc.ExpiresAt.UTC()} // WithExpirationRequired: never nil
	// iat is checked against the clock (WithIssuedAt), so this bounds how
	// far in the future any accepted token can reach.
	if c.ExpiresAt.Sub(c.IssuedAt) > MaxLifetime(role) {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrLifetime)
	}
	return c, nil
}

// ErrRevoked is wrapped (with ErrInvalidToken) when a token's session was
// revoked.
var ErrRevoked = errors.New("auth: session revoked")

func (t *Tokens) checkRevoked(c Claims) error {
	if c.SessionID != "" && t.revoked != nil && t.revoked.Revoked(c.SessionID) {
		return fmt.Errorf("%w: %w", ErrInvalidToken, ErrRevoked)
	}
	return nil
}
