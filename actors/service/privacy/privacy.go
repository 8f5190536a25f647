// Package privacy holds the use cases of a client's personal data: the
// protected profile (read, update, desk lookup), the data-subject rights of
// the GDPR and Colombia's Ley 1581 de 2012 (export, anonymisation) and the
// re-encryption pass after a PII key change (Rotation).
//
// They are not in the gateway because they are rules about data, not about
// HTTP: which role sees which field, what an export holds, what
// anonymisation erases and keeps. The WhatsApp bot and the admin tools
// must apply exactly the same ones. The gateway decodes a request, calls a
// method here with the service.Caller, and renders the result.
// docs/privacy.md lists every column concerned.
package privacy

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Deps is what the privacy use cases need.
type Deps struct {
	// Store is required.
	Store persistence.Store
	// Keys seal and open personal fields; Index is the keyed blind index
	// clients are looked up by. Either nil: every use case answers
	// Unconfigured.
	Keys  *pii.Keyring
	Index *pii.BlindIndex
	// Unconfigured is the refusal while Keys or Index is missing (nil: 503
	// "personal data keys are not configured on this node").
	Unconfigured error
	// Phones parses the numbers a lookup is given (default region CO).
	Phones phone.Parser
	// Sessions ends the sessions of an anonymised user; required by
	// Anonymise.
	Sessions service.Sessions
	// Now is the clock (nil: time.Now); Logger nil: slog.Default().
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs the privacy use cases; safe for concurrent use.
type Service struct {
	d Deps
}

// New returns the service over d.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Unconfigured == nil {
		d.Unconfigured = fault.Unavailable("personal data keys are not configured on this node")
	}
	return &Service{d: d}
}

// Ready is nil when the keys are configured, else the Unconfigured
// refusal every use case would answer. The gateway asks it before decoding
// a body, so a node without keys answers 503 whatever the body.
func (s *Service) Ready() error {
	if s.d.Keys == nil || s.d.Index == nil {
		return s.d.Unconfigured
	}
	return nil
}

// codec returns the field codec, or the Unconfigured refusal.
func (s *Service) codec() (Codec, error) {
	if err := s.Ready(); err != nil {
		return Codec{}, err
	}
	return Codec{Keys: s.d.Keys, Index: s.d.Index}, nil
}

// Profile is a client profile in the clear, as one caller may see it.
type Profile struct {
	UserID         string
	Name           string
	Phone          string // E.164, from the user row
	Email          string
	DocumentType   string
	DocumentNumber string
	BirthDate      string // YYYY-MM-DD
	Notes          string // clinical notes; "" and withheld when Masked
	// Language ("es-CO", "en") and TimeZone (IANA) the client is written
	// to in and contacted by; "": the studio's.
	Language string
	TimeZone string
	// Masked: phone, email, document number and birth date are masked and
	// the clinical notes withheld (the desk's and therapists' view).
	Masked     bool
	Anonymised bool
	Version    int64
	UpdatedAt  time.Time
}

// ViewFor is p as who may see it (docs/privacy.md):
//
//   - the client: the whole profile, clinical notes included;
//   - admin: the whole profile of anyone;
//   - receptionist and staff: the name in full (they greet the client),
//     phone, email, document and birth date masked, no clinical notes.
//     Showing notes to the therapist of a booked appointment would need a
//     staff-member ↔ user mapping the engine does not have yet.
func ViewFor(p Profile, who auth.Claims) Profile {
	if who.Role == auth.RoleAdmin || who.Subject == p.UserID {
		return p
	}
	p.Notes, p.Masked = "", true
	p.Phone, p.Email, p.DocumentNumber, p.BirthDate = maskOr(p.Phone, phone.Mask), maskOr(p.Email, pii.MaskEmail),
		maskOr(p.DocumentNumber, pii.MaskDocument), maskOr(p.BirthDate, pii.MaskAll)
	return p
}

func maskOr(v string, mask func(string) string) string {
	if v == "" {
		return ""
	}
	return mask(v)
}

// Codec seals and opens profile fields. The context of every field names
// its column and user (pii.ProfileContext), so a ciphertext copied
// elsewhere fails.
type Codec struct {
	Keys  *pii.Keyring
	Index *pii.BlindIndex
}

func (pc Codec) seal(field, userID, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return pc.Keys.Encrypt([]byte(v), pii.ProfileContext(field, userID))
}

func (pc Codec) open(field, userID string, ct []byte) (string, error) {
	if len(ct) == 0 {
		return "", nil
	}
	pt, err := pc.Keys.Decrypt(ct, pii.ProfileContext(field, userID))
	return string(pt), err
}

// Load reads and opens the profile of userID in tx (a zero profile at
// version 0 when none is stored) with the user's phone, and returns the
// stored row beside it.
func (pc Codec) Load(ctx context.Context, tx persistence.Tx, userID string) (Profile, persistence.ClientProfile, error) {
	p := Profile{UserID: userID}
	u, err := tx.UserGet(ctx, userID)
	switch {
	case err == nil && len(u.PhoneCipher) > 0:
		ph, err := pc.Keys.Decrypt(u.PhoneCipher, pii.PhoneContext(userID))
		if err != nil {
			return p, persistence.ClientProfile{}, err
		}
		p.Phone = string(ph)
	case err != nil && !errors.Is(err, persistence.ErrNotFound):
		return p, persistence.ClientProfile{}, err
	}
	row, err := tx.ProfileGet(ctx, userID)
	if errors.Is(err, persistence.ErrNotFound) {
		return p, persistence.ClientProfile{UserID: userID}, nil
	}
	if err != nil {
		return p, row, err
	}
	p.Version, p.UpdatedAt, p.Anonymised = row.Version, row.UpdatedAt, !row.AnonymisedAt.IsZero()
	var doc string
	for _, f := range []struct {
		name string
		ct   []byte
		dst  *string
	}{
		{"name", row.NameCipher, &p.Name}, {"email", row.EmailCipher, &p.Email}, {"document", row.DocumentCipher, &doc},
		{"birth_date", row.BirthDateCipher, &p.BirthDate}, {"notes", row.NotesCipher, &p.Notes},
		{"language", row.LanguageCipher, &p.Language}, {"time_zone", row.TimeZoneCipher, &p.TimeZone},
	} {
		if *f.dst, err = pc.open(f.name, userID, f.ct); err != nil {
			return p, row, err
		}
	}
	p.DocumentType, p.DocumentNumber, _ = strings.Cut(doc, ":")
	return p, row, nil
}

// staffRoles may read other clients' profiles (masked unless admin).
var staffRoles = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}

func isAdmin(by service.Caller) bool { return by.Role == auth.RoleAdmin }
