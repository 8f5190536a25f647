package gateway

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Client profiles: personal data sealed field by field with the identity
// keyring before it reaches the store, and shown to each role only as much
// as its work needs (docs/privacy.md):
//
//   - the client: the whole profile, clinical notes included;
//   - admin: the whole profile of anyone;
//   - receptionist and staff: the name in full (they greet the client),
//     phone, email, document and birth date masked, no clinical notes.
//     Showing notes to the therapist of a booked appointment would need a
//     staff-member ↔ user mapping the engine does not have yet.
//
// The phone is the sign-in number (users.phone_cipher); a profile only adds
// to it.

// Limits of the profile fields.
const (
	maxProfileName  = 120
	maxProfileNotes = 4000
	maxLookupResult = 20
)

// documentTypes are the Colombian identity documents a client may give.
var documentTypes = map[string]bool{"CC": true, "CE": true, "TI": true, "PP": true, "NIT": true, "PEP": true, "PPT": true}

var documentNumberRE = regexp.MustCompile(`^[0-9A-Za-z.\- ]{3,20}$`)

// profile is a profile in the clear: what the handlers work with.
type profile struct {
	UserID         string
	Name           string
	Phone          string // E.164, from the user row
	Email          string
	DocumentType   string
	DocumentNumber string
	BirthDate      string // YYYY-MM-DD
	Notes          string
	Anonymised     bool
	Version        int64
	UpdatedAt      time.Time
}

// profileJSON is a profile as one role sees it.
type profileJSON struct {
	UserID         string    `json:"user_id"`
	Name           string    `json:"name"`
	Phone          string    `json:"phone"`
	Email          string    `json:"email"`
	DocumentType   string    `json:"document_type"`
	DocumentNumber string    `json:"document_number"`
	BirthDate      string    `json:"birth_date"`
	ClinicalNotes  *string   `json:"clinical_notes,omitempty"` // absent: this role may not see them
	Masked         bool      `json:"masked"`
	Anonymised     bool      `json:"anonymised"`
	Version        int64     `json:"version"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
}

// fullView is what the client and admins see.
func (p profile) fullView() profileJSON {
	notes := p.Notes
	return profileJSON{UserID: p.UserID, Name: p.Name, Phone: p.Phone, Email: p.Email, DocumentType: p.DocumentType,
		DocumentNumber: p.DocumentNumber, BirthDate: p.BirthDate, ClinicalNotes: &notes, Anonymised: p.Anonymised,
		Version: p.Version, UpdatedAt: p.UpdatedAt}
}

// maskedView is what the desk and therapists see.
func (p profile) maskedView() profileJSON {
	v := p.fullView()
	v.ClinicalNotes, v.Masked = nil, true
	v.Phone, v.Email, v.DocumentNumber, v.BirthDate = maskOr(p.Phone, phone.Mask), maskOr(p.Email, pii.MaskEmail),
		maskOr(p.DocumentNumber, pii.MaskDocument), maskOr(p.BirthDate, pii.MaskAll)
	return v
}

func maskOr(v string, mask func(string) string) string {
	if v == "" {
		return ""
	}
	return mask(v)
}

// viewFor picks the view of p for the principal.
func viewFor(p profile, who auth.Claims) profileJSON {
	if who.Role == auth.RoleAdmin || who.Subject == p.UserID {
		return p.fullView()
	}
	return p.maskedView()
}

// profileCodec seals and opens profile fields. The context of every field
// names its column and user, so a ciphertext copied elsewhere fails.
type profileCodec struct {
	keys  *pii.Keyring
	index *pii.BlindIndex
}

func (s *server) profileCodec() (profileCodec, error) {
	id, err := s.identity()
	if err != nil {
		return profileCodec{}, err
	}
	if id.Keyring == nil || id.Index == nil {
		return profileCodec{}, fault.Unavailable("personal data keys are not configured on this node")
	}
	return profileCodec{keys: id.Keyring, index: id.Index}, nil
}

// profileAAD is the authenticated context of one field of one profile.
func profileAAD(field, userID string) []byte {
	return []byte("client_profiles." + field + "/" + userID)
}

func (pc profileCodec) seal(field, userID, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return pc.keys.Encrypt([]byte(v), profileAAD(field, userID))
}

func (pc profileCodec) open(field, userID string, ct []byte) (string, error) {
	if len(ct) == 0 {
		return "", nil
	}
	pt, err := pc.keys.Decrypt(ct, profileAAD(field, userID))
	return string(pt), err
}

// load reads and opens the profile of userID (a zero profile at version 0
// when none is stored) with the user's phone.
func (pc profileCodec) load(ctx context.Context, tx persistence.Tx, userID string) (profile, persistence.ClientProfile, error) {
	p := profile{UserID: userID}
	u, err := tx.UserGet(ctx, userID)
	switch {
	case err == nil && len(u.PhoneCipher) > 0:
		ph, err := pc.keys.Decrypt(u.PhoneCipher, phoneAAD(userID))
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
	} {
		if *f.dst, err = pc.open(f.name, userID, f.ct); err != nil {
			return p, row, err
		}
	}
	p.DocumentType, p.DocumentNumber, _ = strings.Cut(doc, ":")
	return p, row, nil
}

// profileInput is the body of PUT /v1/me/profile.
type profileInput struct {
	Name           string `json:"name"`
	Email          string `json:"email"`
	DocumentType   string `json:"document_type"`
	DocumentNumber string `json:"document_number"`
	BirthDate      string `json:"birth_date"`
	ClinicalNotes  string `json:"clinical_notes"`
	Version        int64  `json:"version"`
}

func (in *profileInput) validate(now time.Time) *fault.Error {
	var fields []fault.FieldError
	bad := func(f, msg string) { fields = append(fields, fault.FieldError{Field: f, Message: msg}) }
	var err error
	if in.Name, err = cleanLabel("name", in.Name, maxProfileName); err != nil {
		bad("name", "at most 120 characters of text")
	}
	in.Email = strings.TrimSpace(in.Email)
	if in.Email != "" && !validEmail(in.Email) {
		bad("email", "must be an email address")
	}
	in.DocumentType = strings.ToUpper(strings.TrimSpace(in.DocumentType))
	in.DocumentNumber = strings.TrimSpace(in.DocumentNumber)
	switch {
	case (in.DocumentType == "") != (in.DocumentNumber == ""):
		bad("document_number", "document type and number go together")
	case in.DocumentType != "" && !documentTypes[in.DocumentType]:
		bad("document_type", "must be one of CC, CE, TI, PP, NIT, PEP, PPT")
	case in.DocumentNumber != "" && !documentNumberRE.MatchString(in.DocumentNumber):
		bad("document_number", "3 to 20 letters, digits, dots, dashes or spaces")
	}
	in.BirthDate = strings.TrimSpace(in.BirthDate)
	if in.BirthDate != "" {
		d, err := time.Parse(time.DateOnly, in.BirthDate)
		if err != nil || d.After(now) || d.Year() < 1900 {
			bad("birth_date", "must be a past date as YYYY-MM-DD")
		}
	}
	if in.ClinicalNotes = strings.TrimSpace(in.ClinicalNotes); len([]rune(in.ClinicalNotes)) > maxProfileNotes {
		bad("clinical_notes", "at most 4000 characters")
	}
	if in.Version < 0 {
		bad("version", "must be 0 or more")
	}
	if len(fields) > 0 {
		return fault.Invalid("", fields...)
	}
	return nil
}

// registerProfiles adds the profile and GDPR routes.
func (s *server) registerProfiles(app *fiber.App) {
	anyone := RequireRole(personRoles...)
	staff := RequireRole(staffRoles...)
	desk := RequireRole(auth.RoleReceptionist, auth.RoleAdmin)
	admin := RequireRole(auth.RoleAdmin)
	app.Get("/v1/me/profile", anyone, s.getMyProfile)
	app.Put("/v1/me/profile", anyone, s.mutate(s.putMyProfile))
	app.Get("/v1/clients/:id/profile", staff, s.getClientProfile)
	app.Post("/v1/clients/lookup", desk, s.lookupClients)
	app.Get("/v1/me/export", anyone, s.exportMine)
	app.Get("/v1/admin/users/:id/export", admin, s.exportUser)
	app.Post("/v1/me/anonymise", anyone, s.mutate(s.anonymiseMe))
	app.Post("/v1/admin/users/:id/anonymise", admin, s.mutate(s.anonymiseUser))
}

func (s *server) getMyProfile(c *fiber.Ctx) error {
	p, _ := Principal(c)
	return s.sendProfile(c, p.Subject)
}

func (s *server) getClientProfile(c *fiber.Ctx) error {
	return s.sendProfile(c, c.Params("id"))
}

func (s *server) sendProfile(c *fiber.Ctx, userID string) error {
	pc, err := s.profileCodec()
	if err != nil {
		return err
	}
	var p profile
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		p, _, err = pc.load(ctx, tx, userID)
		return err
	})
	if err != nil {
		return err
	}
	who, _ := Principal(c)
	return c.JSON(viewFor(p, who))
}

func (s *server) putMyProfile(c *fiber.Ctx, tx persistence.Tx) error {
	pc, err := s.profileCodec()
	if err != nil {
		return err
	}
	var in profileInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	now := s.deps.Now().UTC()
	if e := in.validate(now); e != nil {
		return e
	}
	who, _ := Principal(c)
	ctx, uid := c.UserContext(), who.Subject
	cur, row, err := pc.load(ctx, tx, uid)
	if err != nil {
		return err
	}
	if row.Version != in.Version {
		return fault.VersionConflict("")
	}
	next := row
	next.UpdatedAt, next.AnonymisedAt = now, time.Time{}
	if next.Version == 0 {
		next.CreatedAt = now
	}
	doc := ""
	if in.DocumentNumber != "" {
		doc = in.DocumentType + ":" + in.DocumentNumber
	}
	for _, f := range []struct {
		name, v string
		dst     *[]byte
	}{
		{"name", in.Name, &next.NameCipher}, {"email", in.Email, &next.EmailCipher}, {"document", doc, &next.DocumentCipher},
		{"birth_date", in.BirthDate, &next.BirthDateCipher}, {"notes", in.ClinicalNotes, &next.NotesCipher},
	} {
		if *f.dst, err = pc.seal(f.name, uid, f.v); err != nil {
			return err
		}
	}
	next.EmailIndex, next.DocumentIndex = nil, nil
	if in.Email != "" {
		next.EmailIndex = pc.index.Sum(pii.FieldEmail, in.Email)
	}
	if in.DocumentNumber != "" {
		next.DocumentIndex = pc.index.Sum(pii.FieldDocument, in.DocumentNumber)
	}
	stored, err := tx.ProfilePut(ctx, next)
	if errors.Is(err, persistence.ErrConflict) {
		return fault.VersionConflict("")
	}
	if err != nil {
		return err
	}
	// The audit names the fields that changed, never their values.
	changed := []string{}
	for name, pair := range map[string][2]string{"name": {cur.Name, in.Name}, "email": {cur.Email, in.Email},
		"document":   {cur.DocumentType + cur.DocumentNumber, in.DocumentType + in.DocumentNumber},
		"birth_date": {cur.BirthDate, in.BirthDate}, "clinical_notes": {cur.Notes, in.ClinicalNotes}} {
		if pair[0] != pair[1] {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	if err := s.audit(c, tx, "profile.update", "user/"+uid, map[string]any{"changed": changed}); err != nil {
		return err
	}
	out := profile{UserID: uid, Name: in.Name, Phone: cur.Phone, Email: in.Email, DocumentType: in.DocumentType,
		DocumentNumber: in.DocumentNumber, BirthDate: in.BirthDate, Notes: in.ClinicalNotes, Version: stored.Version, UpdatedAt: stored.UpdatedAt}
	return c.JSON(viewFor(out, who))
}

// lookupInput is the body of POST /v1/clients/lookup: a phone or a
// document number, in the body so it never reaches an access log.
type lookupInput struct {
	Phone          string `json:"phone"`
	DocumentNumber string `json:"document_number"`
}

func (s *server) lookupClients(c *fiber.Ctx) error {
	pc, err := s.profileCodec()
	if err != nil {
		return err
	}
	var in lookupInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	in.Phone, in.DocumentNumber = strings.TrimSpace(in.Phone), strings.TrimSpace(in.DocumentNumber)
	if (in.Phone == "") == (in.DocumentNumber == "") {
		return fault.Invalid("give exactly one of phone and document_number")
	}
	var index []byte
	if in.Phone != "" {
		n, err := s.deps.Identity.Phones.Parse(in.Phone)
		if err != nil {
			return fault.Invalid("", fault.FieldError{Field: "phone", Message: "not a valid phone number"})
		}
		index = pc.index.Sum(pii.FieldPhone, n.E164)
	} else {
		if !documentNumberRE.MatchString(in.DocumentNumber) {
			return fault.Invalid("", fault.FieldError{Field: "document_number", Message: "3 to 20 letters, digits, dots, dashes or spaces"})
		}
		index = pc.index.Sum(pii.FieldDocument, in.DocumentNumber)
	}
	found := []profileJSON{}
	who, _ := Principal(c)
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		var ids []string
		if in.Phone != "" {
			u, err := tx.UserGetByPhoneIndex(ctx, index)
			switch {
			case err == nil:
				ids = append(ids, u.ID)
			case !errors.Is(err, persistence.ErrNotFound):
				return err
			}
		} else {
			rows, err := tx.ProfileFindByDocumentIndex(ctx, index, maxLookupResult)
			if err != nil {
				return err
			}
			for _, r := range rows {
				ids = append(ids, r.UserID)
			}
		}
		for _, id := range ids {
			p, _, err := pc.load(ctx, tx, id)
			if err != nil {
				return err
			}
			found = append(found, viewFor(p, who))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"clients": found})
}
