package persistence

import (
	"context"
	"time"
)

// ---- Client profiles and the right to be forgotten ----------------------
//
// A client's personal data lives sealed (AES-256-GCM under a key id, see
// actors/auth/pii): the store never sees a plaintext field of a profile,
// only ciphertexts and keyed blind indexes. The phone is the user's own
// users.phone_cipher, found by users.phone_index, so it is not repeated
// here. Anonymisation scrubs every column that can hold a client's personal
// data and keeps appointments, orders and the credit ledger under the
// user's id, a random ULID that, once the user row is scrubbed, no longer
// leads to a person. docs/privacy.md lists the columns.

// ClientProfile is one client's profile as stored. A nil cipher is an
// empty field.
type ClientProfile struct {
	UserID          string
	NameCipher      []byte
	EmailCipher     []byte
	EmailIndex      []byte // keyed blind index of the normalised email
	DocumentCipher  []byte // "type:number", e.g. "CC:1020304050"
	DocumentIndex   []byte // keyed blind index of the normalised number
	BirthDateCipher []byte // YYYY-MM-DD
	NotesCipher     []byte // clinical notes
	// LanguageCipher and TimeZoneCipher are the language (es-CO, en) and
	// IANA time zone the client is written to in and contacted by
	// (notifications); empty: the studio's.
	LanguageCipher []byte
	TimeZoneCipher []byte
	AnonymisedAt   time.Time
	Version        int64 // optimistic concurrency; 0 means not yet stored
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Ciphers returns pointers to the row's ciphertext fields with the column
// names they live in, so rotation and anonymisation walk them in one place.
func (p *ClientProfile) Ciphers() map[string]*[]byte {
	return map[string]*[]byte{
		"name": &p.NameCipher, "email": &p.EmailCipher, "document": &p.DocumentCipher,
		"birth_date": &p.BirthDateCipher, "notes": &p.NotesCipher,
		"language": &p.LanguageCipher, "time_zone": &p.TimeZoneCipher,
	}
}

// MaxProfileBatch bounds the batch queries of rotation.
const MaxProfileBatch = 1000

// AnonymiseParams says whose data to scrub and what to put in its place.
type AnonymiseParams struct {
	UserID string
	// PhoneIndex replaces the user's blind index: random bytes, so the
	// unique column keeps a value no phone number hashes to.
	PhoneIndex []byte
	// IdempotencyScope is the user's scope in idempotency records (the
	// gateway's "sub:" + id); its stored responses are deleted.
	IdempotencyScope string
	At               time.Time
}

// AnonymiseReport counts the rows each scrub touched, for the audit entry.
type AnonymiseReport map[string]int

// ProfileStore keeps client profiles, serves the key-rotation job and
// scrubs a user's personal data.
type ProfileStore interface {
	// ProfileGet returns the user's profile, or ErrNotFound.
	ProfileGet(ctx context.Context, userID string) (ClientProfile, error)
	// ProfilePut stores p if the stored version equals p.Version (0: must
	// not exist) and returns it with Version incremented; ErrConflict on a
	// mismatch.
	ProfilePut(ctx context.Context, p ClientProfile) (ClientProfile, error)
	// ProfileReencrypt rewrites the ciphertexts of p's row (the indexes
	// stay) if its version still equals p.Version, leaving version and
	// updated_at alone: re-encryption changes no content, so it must not
	// make a client's concurrent edit fail. ErrConflict on a version
	// mismatch, ErrNotFound if the row is absent.
	ProfileReencrypt(ctx context.Context, p ClientProfile) error
	// ProfileFindByDocumentIndex returns the profiles whose document has
	// that blind index (at most limit).
	ProfileFindByDocumentIndex(ctx context.Context, index []byte, limit int) ([]ClientProfile, error)
	// ProfileListAfter returns up to limit profiles with UserID > after, in
	// UserID order: the rotation job's batches.
	ProfileListAfter(ctx context.Context, after string, limit int) ([]ClientProfile, error)
	// UserListAfter returns up to limit users with ID > after, in ID order.
	UserListAfter(ctx context.Context, after string, limit int) ([]User, error)
	// UserReplacePhoneCipher sets the user's phone ciphertext to next if it
	// still is prev; ErrConflict when it changed meanwhile, ErrNotFound if
	// the user is absent.
	UserReplacePhoneCipher(ctx context.Context, id string, prev, next []byte) error
	// UserAnonymise scrubs the user's personal data everywhere: the user's
	// phone cipher and blind index, the profile, the TOTP factor and
	// pending second-factor challenges, the user agents, IPs and device labels of every session,
	// free-text reasons of the user's appointments, returns and credit
	// grants, shipping addresses of orders (the DANE codes stay, for
	// statistics), audit details and reasons about the user or by the
	// user, published outbox events and stored idempotent responses that
	// mention the user, the bodies of the user's notifications and their notification preferences. Sessions must be revoked by the caller in the same
	// transaction (it publishes the revocation). ErrNotFound if the user
	// is absent.
	//
	// The OTP state of the number stays: it is keyed by a keyed hash of
	// the number, not by the user, holds only counters and a hashed code,
	// and is the lockout that must outlive any account change.
	UserAnonymise(ctx context.Context, p AnonymiseParams) (AnonymiseReport, error)
}

// NormalizeProfile checks p for ProfilePut and makes its times canonical.
func NormalizeProfile(p ClientProfile) (ClientProfile, error) {
	if err := checkID("user", p.UserID); err != nil {
		return p, err
	}
	if p.Version < 0 {
		return p, invalidf("profile %s: negative version", p.UserID)
	}
	p.CreatedAt, p.UpdatedAt, p.AnonymisedAt = CanonicalTime(p.CreatedAt), CanonicalTime(p.UpdatedAt), CanonicalTime(p.AnonymisedAt)
	if p.CreatedAt.IsZero() {
		return p, invalidf("profile %s: no creation time", p.UserID)
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.CreatedAt
	}
	return p, nil
}

// NormalizeAnonymise checks p for UserAnonymise.
func NormalizeAnonymise(p AnonymiseParams) (AnonymiseParams, error) {
	if err := checkID("user", p.UserID); err != nil {
		return p, err
	}
	if len(p.PhoneIndex) < 16 {
		return p, invalidf("anonymise %s: the replacement phone index must be at least 16 random bytes", p.UserID)
	}
	p.At = CanonicalTime(p.At)
	if p.At.IsZero() {
		return p, invalidf("anonymise %s: no time", p.UserID)
	}
	return p, nil
}

// AnonymisedShipping is what remains of a shipping address after
// anonymisation: the DANE department and municipality codes, which say
// where orders go without saying to whom.
func AnonymisedShipping(stored string) string {
	a, err := DecodeShipping(stored)
	if err != nil || stored == "" {
		return ""
	}
	return EncodeShipping(ShippingAddress{DepartmentCode: a.DepartmentCode, MunicipalityCode: a.MunicipalityCode})
}

// AnonymisedAuditDetail replaces the detail of audit entries about or by an
// anonymised user.
var AnonymisedAuditDetail = []byte(`{"anonymised":true}`)
