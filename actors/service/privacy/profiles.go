package privacy

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Client profiles: personal data sealed field by field with the identity
// keyring before it reaches the store, and shown to each role only as much
// as its work needs (ViewFor). The phone is the sign-in number
// (users.phone_cipher); a profile only adds to it.

// Limits of the profile fields.
const (
	maxProfileName  = 120
	maxProfileNotes = 4000
	maxLookupResult = 20
)

// documentTypes are the Colombian identity documents a client may give.
var documentTypes = map[string]bool{"CC": true, "CE": true, "TI": true, "PP": true, "NIT": true, "PEP": true, "PPT": true}

var documentNumberRE = regexp.MustCompile(`^[0-9A-Za-z.\- ]{3,20}$`)

// Profile returns the profile of userID as by may see it: their own, or
// any client's for staff, receptionists and admins (masked but for
// admins). A user without a stored profile has version 0 and empty fields.
func (s *Service) Profile(ctx context.Context, by service.Caller, userID string) (Profile, error) {
	pc, err := s.codec()
	if err != nil {
		return Profile{}, err
	}
	if by.Anonymous() {
		return Profile{}, fault.Unauthenticated("")
	}
	if by.Subject != userID && !slices.Contains(staffRoles, by.Role) {
		return Profile{}, fault.Forbidden("")
	}
	var p Profile
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if p, _, err = pc.Load(ctx, tx, userID); err != nil || userID == by.Subject || p.Version != 0 {
			return err
		}
		// Nothing stored for another id: an empty profile would tell the
		// caller that a client exists. Only a user without a profile yet
		// has one.
		if _, err := tx.UserGet(ctx, userID); errors.Is(err, persistence.ErrNotFound) {
			return fault.NotFound("client not found")
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Profile{}, err
	}
	return ViewFor(p, by.Claims), nil
}

// ProfileInput replaces the caller's profile. Version is the version the
// caller read (0: none stored yet).
type ProfileInput struct {
	Name           string
	Email          string
	DocumentType   string
	DocumentNumber string
	BirthDate      string
	ClinicalNotes  string
	Language       string // "", es-CO or en
	TimeZone       string // "" or an IANA zone
	Version        int64
}

// ProfileLanguages are the languages a client may choose: those the
// notification templates are written in.
var ProfileLanguages = []string{"es-CO", "en"}

// validate trims in and checks every field, reporting all problems at once.
func (in *ProfileInput) validate(now time.Time) *fault.Error {
	var fields []fault.FieldError
	bad := func(f, msg string) { fields = append(fields, fault.FieldError{Field: f, Message: msg}) }
	var ok bool
	if in.Name, ok = cleanText(in.Name, maxProfileName); !ok {
		bad("name", "at most 120 characters of text")
	}
	in.Email = strings.TrimSpace(in.Email)
	if in.Email != "" && !check.Email(in.Email) {
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
	if in.Language = strings.TrimSpace(in.Language); in.Language != "" && !slices.Contains(ProfileLanguages, in.Language) {
		bad("language", "must be es-CO or en")
	}
	if in.TimeZone = strings.TrimSpace(in.TimeZone); in.TimeZone != "" && !check.TimeZone(in.TimeZone) {
		bad("time_zone", "must be an IANA time zone such as America/Bogota")
	}
	if in.Version < 0 {
		bad("version", "must be 0 or more")
	}
	if len(fields) > 0 {
		return fault.Invalid("", fields...)
	}
	return nil
}

// UpdateProfile replaces the caller's own profile in tx, sealing every
// field, after an optimistic version check (409 version_conflict). The
// audit entry names the fields that changed, never their values.
func (s *Service) UpdateProfile(ctx context.Context, tx persistence.Tx, by service.Caller, in ProfileInput) (Profile, error) {
	pc, err := s.codec()
	if err != nil {
		return Profile{}, err
	}
	now := s.d.Now().UTC()
	if e := in.validate(now); e != nil {
		return Profile{}, e
	}
	if by.Anonymous() {
		return Profile{}, fault.Unauthenticated("")
	}
	uid := by.Subject
	cur, row, err := pc.Load(ctx, tx, uid)
	if err != nil {
		return Profile{}, err
	}
	if row.Version != in.Version {
		return Profile{}, fault.VersionConflict("")
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
		{"language", in.Language, &next.LanguageCipher}, {"time_zone", in.TimeZone, &next.TimeZoneCipher},
	} {
		if *f.dst, err = pc.seal(f.name, uid, f.v); err != nil {
			return Profile{}, err
		}
	}
	next.EmailIndex, next.DocumentIndex = nil, nil
	if in.Email != "" {
		next.EmailIndex = pc.Index.Sum(pii.FieldEmail, in.Email)
	}
	if in.DocumentNumber != "" {
		next.DocumentIndex = pc.Index.Sum(pii.FieldDocument, in.DocumentNumber)
	}
	stored, err := tx.ProfilePut(ctx, next)
	if errors.Is(err, persistence.ErrConflict) {
		return Profile{}, fault.VersionConflict("")
	}
	if err != nil {
		return Profile{}, err
	}
	changed := []string{}
	for name, pair := range map[string][2]string{"name": {cur.Name, in.Name}, "email": {cur.Email, in.Email},
		"document":   {cur.DocumentType + cur.DocumentNumber, in.DocumentType + in.DocumentNumber},
		"birth_date": {cur.BirthDate, in.BirthDate}, "clinical_notes": {cur.Notes, in.ClinicalNotes},
		"language": {cur.Language, in.Language}, "time_zone": {cur.TimeZone, in.TimeZone}} {
		if pair[0] != pair[1] {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	if err := service.Audit(ctx, tx, s.d.Now(), by, "profile.update", "user/"+uid, "", map[string]any{"changed": changed}); err != nil {
		return Profile{}, err
	}
	out := Profile{UserID: uid, Name: in.Name, Phone: cur.Phone, Email: in.Email, DocumentType: in.DocumentType,
		DocumentNumber: in.DocumentNumber, BirthDate: in.BirthDate, Notes: in.ClinicalNotes, Language: in.Language, TimeZone: in.TimeZone,
		Version: stored.Version, UpdatedAt: stored.UpdatedAt}
	return ViewFor(out, by.Claims), nil
}

// LookupInput finds clients by exactly one of a phone number and a
// document number (given in a body, so it never reaches an access log).
type LookupInput struct {
	Phone          string
	DocumentNumber string
}

// Lookup finds clients through the blind indexes, for the desk
// (receptionists and admins), each viewed as by may see it.
func (s *Service) Lookup(ctx context.Context, by service.Caller, in LookupInput) ([]Profile, error) {
	pc, err := s.codec()
	if err != nil {
		return nil, err
	}
	if by.Role != auth.RoleReceptionist && by.Role != auth.RoleAdmin {
		return nil, fault.Forbidden("")
	}
	in.Phone, in.DocumentNumber = strings.TrimSpace(in.Phone), strings.TrimSpace(in.DocumentNumber)
	if (in.Phone == "") == (in.DocumentNumber == "") {
		return nil, fault.Invalid("give exactly one of phone and document_number")
	}
	var index []byte
	if in.Phone != "" {
		n, err := s.d.Phones.Parse(in.Phone)
		if err != nil {
			return nil, fault.Invalid("", fault.FieldError{Field: "phone", Message: "not a valid phone number"})
		}
		index = pc.Index.Sum(pii.FieldPhone, n.E164)
	} else {
		if !documentNumberRE.MatchString(in.DocumentNumber) {
			return nil, fault.Invalid("", fault.FieldError{Field: "document_number", Message: "3 to 20 letters, digits, dots, dashes or spaces"})
		}
		index = pc.Index.Sum(pii.FieldDocument, in.DocumentNumber)
	}
	found := []Profile{}
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		found = found[:0]
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
			p, _, err := pc.Load(ctx, tx, id)
			if err != nil {
				return err
			}
			found = append(found, ViewFor(p, by.Claims))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// cleanText trims v and reports whether it is text of at most maxLen
// characters (no control characters).
func cleanText(v string, maxLen int) (string, bool) {
	v = strings.TrimSpace(v)
	return v, utf8.ValidString(v) && utf8.RuneCountInString(v) <= maxLen &&
		!strings.ContainsFunc(v, check.Control)
}
