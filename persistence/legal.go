package persistence

import (
	"context"
	"regexp"
	"time"
)

// ---- Legal documents and consents ----------------------------------------

// Legal document slugs every install knows. Informed consents are one slug
// per service category: ConsentSlugPrefix + the category's slug form.
const (
	LegalSlugTerms    = "terms"
	LegalSlugPrivacy  = "privacy"
	ConsentSlugPrefix = "consent-"
)

// LegalDocument is one version of a legal text. Versions of a slug are
// numbered 1, 2, … in creation order and never change once created; at most
// one version of a slug is active, and once a slug has an active version it
// always has one (activation moves it, nothing removes it).
type LegalDocument struct {
	Slug        string
	Version     int64 // assigned by LegalDocumentCreate
	Title       string
	Body        string // the full text (Markdown)
	Active      bool
	CreatedBy   string
	CreatedAt   time.Time
	ActivatedAt time.Time // when it last became active; zero if never
}

// ConsentSubjectKind tells whose consent a row records.
type ConsentSubjectKind string

// Consent subjects: a signed-in user (the token subject) or an anonymous
// device (its device id), so a visitor can accept before signing up.
const (
	ConsentUser   ConsentSubjectKind = "user"
	ConsentDevice ConsentSubjectKind = "device"
)

// LegalConsent records that a subject accepted one version of a document.
type LegalConsent struct {
	ID          string // ULID
	SubjectKind ConsentSubjectKind
	SubjectID   string
	Slug        string
	Version     int64
	AcceptedAt  time.Time
	RequestID   string
}

// LegalConsentListParams selects consents, newest first.
type LegalConsentListParams struct {
	Slug        string // empty: every document
	Version     int64  // 0: every version (only with Slug)
	SubjectKind ConsentSubjectKind
	SubjectID   string // empty: every subject (SubjectKind ignored)
	BeforeID    string // empty: from the newest
	Limit       int    // 1..MaxLegalListLimit
}

// MaxLegalListLimit is the largest LegalConsentListParams.Limit accepted.
const MaxLegalListLimit = 1000

// LegalStore keeps legal documents and the consents given to them.
//
// Malformed input (a bad slug, an empty title or body, a version < 1, an
// unknown subject kind, an empty subject id, a limit out of range) is
// refused with ErrInvalid before any SQL runs.
type LegalStore interface {
	// LegalDocumentCreate stores d as the next version of d.Slug, inactive,
	// and returns it with Version set (1 for a new slug).
	LegalDocumentCreate(ctx context.Context, d LegalDocument) (LegalDocument, error)
	// LegalDocumentGet returns one version, or ErrNotFound.
	LegalDocumentGet(ctx context.Context, slug string, version int64) (LegalDocument, error)
	// LegalDocumentVersions returns every version of slug, oldest first;
	// empty when the slug is unknown.
	LegalDocumentVersions(ctx context.Context, slug string) ([]LegalDocument, error)
	// LegalDocumentActivate makes version the active version of slug,
	// deactivating the previous one, and returns it. ErrNotFound if the
	// version does not exist; activating the active version changes nothing.
	LegalDocumentActivate(ctx context.Context, slug string, version int64, at time.Time) (LegalDocument, error)
	// LegalActive returns the active version of every slug, by slug.
	LegalActive(ctx context.Context) ([]LegalDocument, error)
	// LegalConsentAdd records c. Accepting the same version twice is not an
	// error: it returns the first record and false. ErrNotFound if the
	// version does not exist.
	LegalConsentAdd(ctx context.Context, c LegalConsent) (LegalConsent, bool, error)
	// LegalConsentList returns consents ordered by ID descending.
	LegalConsentList(ctx context.Context, p LegalConsentListParams) ([]LegalConsent, error)
	// LegalRequired returns the active documents whose active version the
	// subject has not accepted, by slug. slugs, when not empty, restricts
	// the answer to those slugs.
	LegalRequired(ctx context.Context, kind ConsentSubjectKind, subjectID string, slugs []string) ([]LegalDocument, error)
}

// slugRE: lower-case words joined by single dashes, 1..64 characters.
var slugRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// ValidLegalSlug reports whether s can name a legal document.
func ValidLegalSlug(s string) bool { return len(s) <= 64 && slugRE.MatchString(s) }

// CheckLegalRef refuses a malformed (slug, version) reference.
func CheckLegalRef(slug string, version int64) error {
	if !ValidLegalSlug(slug) {
		return invalidf("legal document slug %q", slug)
	}
	if version < 1 {
		return invalidf("legal document version %d", version)
	}
	return nil
}

// NormalizeLegalDocument checks a document about to be created; Version,
// Active and ActivatedAt are the store's to set.
func NormalizeLegalDocument(d LegalDocument) (LegalDocument, error) {
	if !ValidLegalSlug(d.Slug) {
		return d, invalidf("legal document slug %q", d.Slug)
	}
	if d.Title == "" || d.Body == "" {
		return d, invalidf("legal document %s needs a title and a body", d.Slug)
	}
	d.Version, d.Active, d.ActivatedAt = 0, false, time.Time{}
	d.CreatedAt = CanonicalTime(d.CreatedAt)
	return d, nil
}

// CheckConsentSubject refuses an unknown subject kind or an empty id.
func CheckConsentSubject(kind ConsentSubjectKind, id string) error {
	if kind != ConsentUser && kind != ConsentDevice {
		return invalidf("consent subject kind %q", kind)
	}
	if id == "" {
		return invalidf("empty consent subject id")
	}
	return nil
}

// NormalizeLegalConsent checks a consent about to be recorded.
func NormalizeLegalConsent(c LegalConsent) (LegalConsent, error) {
	if err := checkID("consent", c.ID); err != nil {
		return c, err
	}
	if err := CheckConsentSubject(c.SubjectKind, c.SubjectID); err != nil {
		return c, err
	}
	if err := CheckLegalRef(c.Slug, c.Version); err != nil {
		return c, err
	}
	c.AcceptedAt = CanonicalTime(c.AcceptedAt)
	return c, nil
}

// NormalizeLegalConsentList checks list parameters.
func NormalizeLegalConsentList(p LegalConsentListParams) (LegalConsentListParams, error) {
	if err := CheckLimit("legal consent list", p.Limit, MaxLegalListLimit); err != nil {
		return p, err
	}
	if p.Slug != "" && !ValidLegalSlug(p.Slug) {
		return p, invalidf("legal document slug %q", p.Slug)
	}
	if p.Version < 0 || (p.Version > 0 && p.Slug == "") {
		return p, invalidf("consent list version %d without a slug", p.Version)
	}
	if p.SubjectID != "" {
		if err := CheckConsentSubject(p.SubjectKind, p.SubjectID); err != nil {
			return p, err
		}
	}
	return p, nil
}

// LegalConsentAdopt copies the consents a device gave to the user who
// signed in on it, so a visitor who accepted the terms before signing up is
// not asked again. Each copy gets an id from newID and keeps the original
// acceptance time and request id; versions the user already accepted are
// left alone. It returns how many consents were copied.
func LegalConsentAdopt(ctx context.Context, tx LegalStore, deviceID, userID string, newID func() string) (int, error) {
	if err := CheckConsentSubject(ConsentDevice, deviceID); err != nil {
		return 0, err
	}
	if err := CheckConsentSubject(ConsentUser, userID); err != nil {
		return 0, err
	}
	given, err := tx.LegalConsentList(ctx, LegalConsentListParams{
		SubjectKind: ConsentDevice, SubjectID: deviceID, Limit: MaxLegalListLimit,
	})
	if err != nil {
		return 0, err
	}
	copied := 0
	for _, c := range given {
		c.ID, c.SubjectKind, c.SubjectID = newID(), ConsentUser, userID
		_, created, err := tx.LegalConsentAdd(ctx, c)
		if err != nil {
			return copied, err
		}
		if created {
			copied++
		}
	}
	return copied, nil
}
