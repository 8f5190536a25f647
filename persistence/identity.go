package persistence

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ---- Identity ----------------------------------------------------------
//
// Who a caller is: users found by a keyed blind index of their phone (the
// number itself is stored only encrypted), the OTP state of each phone that
// its session actor must not lose in a restart, and refresh-token families
// (one per signed-in device) with their rotating tokens.

// User is one principal of the API.
type User struct {
	ID          string // ULID
	PhoneIndex  []byte // keyed blind index of the E.164 phone (pii.BlindIndex)
	PhoneCipher []byte // the phone, encrypted (pii.Keyring)
	Roles       []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// SecondFactorDue is when a user of a staff role who has not confirmed
	// a TOTP factor can no longer enrol with the login code alone; zero
	// until set (UserSetSecondFactorDue).
	SecondFactorDue time.Time
}

// OTPState is one phone's login-code state as its session actor persists
// it: the serialised otp.State and Challenge (failure counts, lockout
// ladder, sends inside their window, the hashed code), kept under the
// phone's blind-index key so the table holds no phone number.
type OTPState struct {
	PhoneKey    string
	State       []byte    // JSON, opaque to the store
	LockedUntil time.Time // copy of the lockout end, for operators' queries
	Version     int64     // optimistic concurrency; 0 means not yet stored
	UpdatedAt   time.Time
}

// Session is one refresh-token family: one signed-in device. Its ID is the
// `sid` claim of every access token minted for it.
type Session struct {
	ID           string // ULID
	UserID       string
	Device       string // client-supplied label, trimmed
	UserAgent    string // trimmed
	IP           string
	CreatedAt    time.Time
	LastSeenAt   time.Time
	ExpiresAt    time.Time // absolute end of the family
	RevokedAt    time.Time // zero while live
	RevokeReason string
	// SecondFactor: the session passed the TOTP step (at sign-in, or by
	// confirming a factor), so its access tokens carry the second factor.
	SecondFactor bool
}

// Live reports whether the session may still refresh at now.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// RefreshToken is one issued refresh token, stored by hash only.
type RefreshToken struct {
	Hash       []byte // SHA-256 of the opaque token
	SessionID  string
	ParentHash []byte // the token it replaced; nil for the first
	IssuedAt   time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero until rotated
}

// MaxSessionListLimit bounds the list queries of sessions.
const MaxSessionListLimit = 1000

// IdentityStore keeps users, OTP state and sessions.
type IdentityStore interface {
	// UserCreate inserts u; ErrConflict when its ID or PhoneIndex exists.
	UserCreate(ctx context.Context, u User) error
	// UserGet returns the user, or ErrNotFound.
	UserGet(ctx context.Context, id string) (User, error)
	// UserGetByPhoneIndex returns the user with that blind index, or
	// ErrNotFound.
	UserGetByPhoneIndex(ctx context.Context, index []byte) (User, error)
	// UserSetRoles replaces the user's roles; ErrNotFound if absent.
	UserSetRoles(ctx context.Context, id string, roles []string, at time.Time) error
	// UserSetSecondFactorDue sets (zero: clears) the user's enrolment
	// deadline; ErrNotFound if absent.
	UserSetSecondFactorDue(ctx context.Context, id string, due time.Time) error

	// OTPStateGet returns the phone's OTP state, or ErrNotFound.
	OTPStateGet(ctx context.Context, phoneKey string) (OTPState, error)
	// OTPStatePut stores s if the stored version equals s.Version (0: must
	// not exist) and returns it with Version incremented; ErrConflict on a
	// mismatch.
	OTPStatePut(ctx context.Context, s OTPState) (OTPState, error)

	// SessionCreate inserts s; ErrConflict if its ID exists.
	SessionCreate(ctx context.Context, s Session) error
	// SessionGet returns the session, revoked or not, or ErrNotFound.
	SessionGet(ctx context.Context, id string) (Session, error)
	// SessionListByUser returns the user's sessions live at now, most
	// recently seen first, at most limit.
	SessionListByUser(ctx context.Context, userID string, now time.Time, limit int) ([]Session, error)
	// SessionTouch records a use of the session: last seen, IP, user agent.
	// ErrNotFound if absent.
	SessionTouch(ctx context.Context, id string, at time.Time, ip, userAgent string) error
	// SessionSetSecondFactor marks the session as having passed the second
	// factor; ErrNotFound if absent.
	SessionSetSecondFactor(ctx context.Context, id string) error
	// SessionRevoke marks the session revoked at at, unless it already is;
	// it reports whether this call revoked it. ErrNotFound if absent.
	SessionRevoke(ctx context.Context, id string, at time.Time, reason string) (bool, error)
	// SessionRevokeByUser revokes every unrevoked session of the user and
	// returns their IDs.
	SessionRevokeByUser(ctx context.Context, userID string, at time.Time, reason string) ([]string, error)
	// SessionListRevokedSince returns the IDs of sessions revoked at or
	// after since (at most limit): what a starting node must refuse while
	// access tokens minted for them may still be unexpired.
	SessionListRevokedSince(ctx context.Context, since time.Time, limit int) ([]string, error)
	// SessionCountLive counts sessions live at now.
	SessionCountLive(ctx context.Context, now time.Time) (int, error)

	// RefreshTokenPut inserts t; ErrConflict if its hash exists.
	RefreshTokenPut(ctx context.Context, t RefreshToken) error
	// RefreshTokenGet returns the token with that hash, or ErrNotFound.
	RefreshTokenGet(ctx context.Context, hash []byte) (RefreshToken, error)
	// RefreshTokenUse stamps the token used at at if it was unused:
	// ErrConflict if it was already used (a replay), ErrNotFound if absent.
	// The conditional update is what makes two racing refreshes with one
	// token end with exactly one winner.
	RefreshTokenUse(ctx context.Context, hash []byte, at time.Time) error
}

// NormalizeUser checks u for UserCreate and makes its times canonical.
func NormalizeUser(u User) (User, error) {
	if err := checkID("user", u.ID); err != nil {
		return u, err
	}
	if len(u.PhoneIndex) == 0 || len(u.PhoneCipher) == 0 {
		return u, invalidf("user %s: phone index and ciphertext are required", u.ID)
	}
	if err := CheckRoles(u.Roles); err != nil {
		return u, err
	}
	u.Roles = slices.Clone(u.Roles)
	u.CreatedAt, u.UpdatedAt = CanonicalTime(u.CreatedAt), CanonicalTime(u.UpdatedAt)
	u.SecondFactorDue = CanonicalTime(u.SecondFactorDue)
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	return u, nil
}

// CheckRoles refuses an empty role list and roles that could not be stored
// as one comma-separated column.
func CheckRoles(roles []string) error {
	if len(roles) == 0 {
		return invalidf("a user needs at least one role")
	}
	for _, r := range roles {
		if r == "" || len(r) > 32 {
			return invalidf("role %q", r)
		}
		for i := 0; i < len(r); i++ {
			if c := r[i]; !(c >= 'a' && c <= 'z' || c == '_') {
				return invalidf("role %q", r)
			}
		}
	}
	return nil
}

// NormalizeSession checks s for SessionCreate and makes its times canonical.
func NormalizeSession(s Session) (Session, error) {
	if err := checkID("session", s.ID); err != nil {
		return s, err
	}
	if err := checkID("user", s.UserID); err != nil {
		return s, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt, s.RevokedAt = CanonicalTime(s.CreatedAt), CanonicalTime(s.LastSeenAt),
		CanonicalTime(s.ExpiresAt), CanonicalTime(s.RevokedAt)
	if s.CreatedAt.IsZero() || !s.ExpiresAt.After(s.CreatedAt) {
		return s, invalidf("session %s: expiry %v is not after creation %v", s.ID, s.ExpiresAt, s.CreatedAt)
	}
	if s.LastSeenAt.IsZero() {
		s.LastSeenAt = s.CreatedAt
	}
	return s, nil
}

// NormalizeRefreshToken checks t for RefreshTokenPut.
func NormalizeRefreshToken(t RefreshToken) (RefreshToken, error) {
	if len(t.Hash) == 0 {
		return t, invalidf("refresh token: empty hash")
	}
	if err := checkID("session", t.SessionID); err != nil {
		return t, err
	}
	t.IssuedAt, t.ExpiresAt, t.UsedAt = CanonicalTime(t.IssuedAt), CanonicalTime(t.ExpiresAt), CanonicalTime(t.UsedAt)
	if t.IssuedAt.IsZero() || !t.ExpiresAt.After(t.IssuedAt) {
		return t, invalidf("refresh token: expiry %v is not after issue %v", t.ExpiresAt, t.IssuedAt)
	}
	return t, nil
}

// NormalizeOTPState checks s for OTPStatePut.
func NormalizeOTPState(s OTPState) (OTPState, error) {
	if err := checkID("phone key", s.PhoneKey); err != nil {
		return s, err
	}
	if len(s.State) == 0 {
		return s, invalidf("otp state %s: empty state", s.PhoneKey)
	}
	if s.Version < 0 {
		return s, invalidf("otp state %s: negative version", s.PhoneKey)
	}
	s.LockedUntil, s.UpdatedAt = CanonicalTime(s.LockedUntil), CanonicalTime(s.UpdatedAt)
	return s, nil
}

// ErrRefreshTokenReused is the error RefreshTokenUse returns for a token that
// was already used.
var ErrRefreshTokenReused = fmt.Errorf("persistence: refresh token already used: %w", ErrConflict)
