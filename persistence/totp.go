package persistence

import (
	"context"
	"time"
)

// ---- TOTP second factor ------------------------------------------------
//
// Staff, receptionists and admins prove a second factor at sign-in with a
// TOTP code (RFC 6238) or a single-use recovery code. The store keeps the
// secret only encrypted (the gateway seals it with actors/auth/pii), the
// last accepted time step (replay protection that survives a restart), the
// recovery codes by hash, and the failure count and lockout of the user.
// Every write is conditional on Version, so two nodes accepting the same
// code at once cannot both win: one gets ErrConflict and re-reads.

// TOTPFactor is one user's authenticator enrolment.
type TOTPFactor struct {
	UserID       string
	SecretCipher []byte    // the base32 secret, encrypted
	ConfirmedAt  time.Time // zero while the enrolment awaits its first code
	LastStep     int64     // time step of the last accepted code
	Recovery     []byte    // JSON of totp.RecoverySet (hashes only); nil before confirmation
	Failures     int       // wrong codes since the last success
	LockedUntil  time.Time // no code is checked before it
	Version      int64     // optimistic concurrency; 0 means not yet stored
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// EnrolmentKey is the hash of the Idempotency-Key the pending
	// enrolment was started under (nil: none), so a retry of that request
	// answers the same enrolment.
	EnrolmentKey []byte
}

// Confirmed reports whether the factor is switched on.
func (f TOTPFactor) Confirmed() bool { return !f.ConfirmedAt.IsZero() }

// MFAChallenge is the short-lived proof that a user passed the first factor
// (the login code) and may now present the second. Stored by hash only.
type MFAChallenge struct {
	Hash      []byte // SHA-256 of the opaque challenge token
	UserID    string
	Device    string // carried into the session created after the second factor
	UserAgent string
	IP        string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until spent
}

// TOTPStore keeps TOTP enrolments and second-factor challenges.
type TOTPStore interface {
	// TOTPFactorGet returns the user's factor, confirmed or pending, or
	// ErrNotFound.
	TOTPFactorGet(ctx context.Context, userID string) (TOTPFactor, error)
	// TOTPFactorPut stores f if the stored version equals f.Version (0:
	// must not exist) and returns it with Version incremented; ErrConflict
	// on a mismatch.
	TOTPFactorPut(ctx context.Context, f TOTPFactor) (TOTPFactor, error)
	// TOTPFactorDelete removes the user's factor; ErrNotFound if absent.
	TOTPFactorDelete(ctx context.Context, userID string) error
	// TOTPFactorListAfter returns up to limit factors with user ids after
	// after, in id order: the PII key rotation pages through the sealed
	// secrets with it.
	TOTPFactorListAfter(ctx context.Context, after string, limit int) ([]TOTPFactor, error)

	// MFAChallengeCreate inserts c; ErrConflict if its hash exists.
	MFAChallengeCreate(ctx context.Context, c MFAChallenge) error
	// MFAChallengeGet returns the challenge with that hash, used or not,
	// or ErrNotFound.
	MFAChallengeGet(ctx context.Context, hash []byte) (MFAChallenge, error)
	// MFAChallengeUse stamps the challenge used at at if it was unused:
	// ErrConflict if it was used already, ErrNotFound if absent.
	MFAChallengeUse(ctx context.Context, hash []byte, at time.Time) error
	// MFAChallengeDeleteExpired deletes up to limit challenges that expired
	// before before, used or not, and returns how many it deleted.
	MFAChallengeDeleteExpired(ctx context.Context, before time.Time, limit int) (int, error)
}

// NormalizeTOTPFactor checks f for TOTPFactorPut and makes its times
// canonical.
func NormalizeTOTPFactor(f TOTPFactor) (TOTPFactor, error) {
	if err := checkID("user", f.UserID); err != nil {
		return f, err
	}
	if len(f.SecretCipher) == 0 {
		return f, invalidf("totp factor %s: empty secret", f.UserID)
	}
	if f.Version < 0 || f.LastStep < 0 || f.Failures < 0 {
		return f, invalidf("totp factor %s: negative version, step or failure count", f.UserID)
	}
	f.ConfirmedAt, f.LockedUntil = CanonicalTime(f.ConfirmedAt), CanonicalTime(f.LockedUntil)
	f.CreatedAt, f.UpdatedAt = CanonicalTime(f.CreatedAt), CanonicalTime(f.UpdatedAt)
	if f.CreatedAt.IsZero() {
		return f, invalidf("totp factor %s: creation time is required", f.UserID)
	}
	if f.UpdatedAt.IsZero() {
		f.UpdatedAt = f.CreatedAt
	}
	return f, nil
}

// NormalizeMFAChallenge checks c for MFAChallengeCreate.
func NormalizeMFAChallenge(c MFAChallenge) (MFAChallenge, error) {
	if len(c.Hash) == 0 {
		return c, invalidf("mfa challenge: empty hash")
	}
	if err := checkID("user", c.UserID); err != nil {
		return c, err
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = CanonicalTime(c.CreatedAt), CanonicalTime(c.ExpiresAt), CanonicalTime(c.UsedAt)
	if c.CreatedAt.IsZero() || !c.ExpiresAt.After(c.CreatedAt) {
		return c, invalidf("mfa challenge: expiry %v is not after creation %v", c.ExpiresAt, c.CreatedAt)
	}
	return c, nil
}
