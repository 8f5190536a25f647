// Package legal holds the use cases of the records a studio keeps to
// answer for itself: legal documents (terms, privacy notice, informed
// consent per service category) and their versions, the consents callers
// give them and the decision whether a caller must accept something first
// (Missing, which the gateway's 428 guard asks), the blocklist of IP
// addresses and "persona non grata" phone and document numbers (Blocklist
// and the admin use cases that change it), and the audit log.
//
// They are not in the gateway because they are rules, not HTTP: who must
// accept what, what a block matches, what is audited. The WhatsApp bot
// must refuse a blocked number and ask for the same consents as the API.
// The gateway keeps only what reads a request or writes a response: the
// ConsentGuard middleware and refuseBlockedIPs call in here for the
// decision. docs/legal.md describes the model.
package legal

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// DefaultActiveTTL bounds how stale another node's activation may look to
// Missing; this node's own changes are seen after Invalidate.
const DefaultActiveTTL = 2 * time.Second

// Limits of the legal use cases.
const (
	maxLegalTitle      = 200
	maxLegalBody       = 200_000 // bytes; a long consent form, not a book
	maxConsentsPerCall = 20
)

// Deps is what the legal use cases need.
type Deps struct {
	// Store is required.
	Store persistence.Store
	// ActiveTTL bounds how stale the cached active documents may be (0:
	// DefaultActiveTTL).
	ActiveTTL time.Duration
	// Blocklist is the blocklist the block use cases change; nil: built
	// over Store without a blind index (person blocks refused).
	Blocklist *Blocklist
	// Sessions ends the sessions of a user whose phone gets blocked; nil:
	// none are ended (a node without sign-in).
	Sessions service.Sessions
	// Now is the business clock (nil: time.Now); Logger nil: slog.Default().
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs the legal use cases; safe for concurrent use.
type Service struct {
	d      Deps
	active *activeCache
}

// New returns the service over d.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.ActiveTTL <= 0 {
		d.ActiveTTL = DefaultActiveTTL
	}
	if d.Blocklist == nil {
		d.Blocklist = NewBlocklist(d.Store, nil, 0, d.Now, d.Logger)
	}
	return &Service{d: d, active: &activeCache{ttl: d.ActiveTTL, now: time.Now, store: d.Store}}
}

// Blocklist is the blocklist the service changes.
func (s *Service) Blocklist() *Blocklist { return s.d.Blocklist }

// staffRoles act for the studio: the consent guard does not hold them up.
var staffRoles = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}

// requireAdmin refuses anyone but an admin.
func requireAdmin(by service.Caller) error {
	if by.Role != auth.RoleAdmin {
		return fault.Forbidden("")
	}
	return nil
}

// read runs fn in a transaction of its own.
func (s *Service) read(ctx context.Context, fn func(tx persistence.Tx) error) error {
	return s.d.Store.InTx(ctx, fn)
}

// pageOf trims rows, read with limit+1, to the page and returns the
// cursor of the next page (the page's last id), or nil on the last page.
func pageOf[T any](rows []T, limit int, id func(T) string) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	cur := id(rows[limit-1])
	return rows[:limit], &cur
}

// ConsentSlug is the slug of the informed consent for a service category:
// "consent-" and the category lower-cased, every run of other characters a
// single dash ("Facial & Skin" → "consent-facial-skin"). Categories with
// no letters or digits have no consent document ("").
func ConsentSlug(category string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(category) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		default:
			dash = true
		}
	}
	if b.Len() == 0 {
		return ""
	}
	slug := persistence.ConsentSlugPrefix + b.String()
	if len(slug) > 64 {
		slug = strings.TrimRight(slug[:64], "-")
	}
	return slug
}

// ---- Documents -----------------------------------------------------------

// CheckSlug refuses a string that cannot name a document.
func CheckSlug(slug string) error {
	if !persistence.ValidLegalSlug(slug) {
		return fault.Invalid("", fault.FieldError{Field: "slug", Message: "must be lower-case words joined by dashes, at most 64 characters"})
	}
	return nil
}

// checkVersion refuses a version number below 1; field names it.
func checkVersion(field string, v int64) error {
	if v < 1 {
		return fault.Invalid("", fault.FieldError{Field: field, Message: "must be a positive integer"})
	}
	return nil
}

// Active lists the active version of every document, read fresh.
func (s *Service) Active(ctx context.Context) (docs []persistence.LegalDocument, err error) {
	err = s.read(ctx, func(tx persistence.Tx) error {
		docs, err = tx.LegalActive(ctx)
		return err
	})
	return docs, err
}

// Version reads one version of a document. A draft (never activated) is
// the admins' business until it is published; versions callers may have
// accepted stay readable.
func (s *Service) Version(ctx context.Context, by service.Caller, slug string, version int64) (persistence.LegalDocument, error) {
	if err := CheckSlug(slug); err != nil {
		return persistence.LegalDocument{}, err
	}
	if err := checkVersion("version", version); err != nil {
		return persistence.LegalDocument{}, err
	}
	var d persistence.LegalDocument
	err := s.read(ctx, func(tx persistence.Tx) (err error) {
		d, err = tx.LegalDocumentGet(ctx, slug, version)
		return err
	})
	if err != nil {
		return d, fault.IfNotFound(err, "legal document version")
	}
	if d.ActivatedAt.IsZero() && by.Role != auth.RoleAdmin {
		return persistence.LegalDocument{}, fault.NotFound("legal document version not found")
	}
	return d, nil
}

// Versions lists every version of a document, for admins.
func (s *Service) Versions(ctx context.Context, by service.Caller, slug string) (docs []persistence.LegalDocument, err error) {
	if err := requireAdmin(by); err != nil {
		return nil, err
	}
	if err := CheckSlug(slug); err != nil {
		return nil, err
	}
	err = s.read(ctx, func(tx persistence.Tx) error {
		docs, err = tx.LegalDocumentVersions(ctx, slug)
		return err
	})
	return docs, err
}

// VersionInput is the text of a new version.
type VersionInput struct {
	Title string
	Body  string
}

// CreateVersion stores the next version of a document in tx, inactive,
// and audits it with the body's size (the text itself is in the row).
// Call Invalidate after the transaction commits.
func (s *Service) CreateVersion(ctx context.Context, tx persistence.Tx, by service.Caller, slug string, in VersionInput) (persistence.LegalDocument, error) {
	if err := requireAdmin(by); err != nil {
		return persistence.LegalDocument{}, err
	}
	if err := CheckSlug(slug); err != nil {
		return persistence.LegalDocument{}, err
	}
	var f []fault.FieldError
	in.Title = strings.TrimSpace(in.Title)
	if n := utf8.RuneCountInString(in.Title); n < 1 || n > maxLegalTitle || strings.ContainsFunc(in.Title, isControl) {
		f = append(f, fault.FieldError{Field: "title", Message: "must be 1 to 200 printable characters"})
	}
	if strings.TrimSpace(in.Body) == "" || len(in.Body) > maxLegalBody || !utf8.ValidString(in.Body) {
		f = append(f, fault.FieldError{Field: "body", Message: "must be non-empty UTF-8 text of at most 200000 bytes"})
	}
	if len(f) > 0 {
		return persistence.LegalDocument{}, fault.Invalid("", f...)
	}
	d, err := tx.LegalDocumentCreate(ctx, persistence.LegalDocument{
		Slug: slug, Title: in.Title, Body: in.Body, CreatedBy: by.Subject, CreatedAt: s.d.Now().UTC(),
	})
	if err != nil {
		return d, err
	}
	return d, service.Audit(ctx, tx, s.d.Now(), by, "legal.document.create", "legal/"+slug, "", map[string]any{
		"slug": slug, "version": d.Version, "title": d.Title, "body_bytes": len(d.Body),
	})
}

// Activate makes a version the one callers must accept, in tx; the
// previous active version, if any, is named in the audit entry.
// Activating the active version again changes nothing and audits nothing.
// Call Invalidate after the transaction commits.
func (s *Service) Activate(ctx context.Context, tx persistence.Tx, by service.Caller, slug string, version int64) (persistence.LegalDocument, error) {
	if err := requireAdmin(by); err != nil {
		return persistence.LegalDocument{}, err
	}
	if err := CheckSlug(slug); err != nil {
		return persistence.LegalDocument{}, err
	}
	if err := checkVersion("version", version); err != nil {
		return persistence.LegalDocument{}, err
	}
	var previous int64
	active, err := tx.LegalActive(ctx)
	if err != nil {
		return persistence.LegalDocument{}, err
	}
	for _, d := range active {
		if d.Slug == slug {
			previous = d.Version
		}
	}
	d, err := tx.LegalDocumentActivate(ctx, slug, version, s.d.Now().UTC())
	if err != nil {
		return d, fault.IfNotFound(err, "legal document version")
	}
	if previous != version {
		if err := service.Audit(ctx, tx, s.d.Now(), by, "legal.document.activate", "legal/"+slug, "", map[string]any{
			"slug": slug, "version": version, "previous_version": previous,
		}); err != nil {
			return d, err
		}
	}
	return d, nil
}

// Diff compares two versions of a document.
type Diff struct {
	Slug         string
	From, To     int64
	TitleChanged bool
	Lines        []DiffLine
}

// Diff compares versions from and to of a document, for admins.
func (s *Service) Diff(ctx context.Context, by service.Caller, slug string, from, to int64) (Diff, error) {
	if err := requireAdmin(by); err != nil {
		return Diff{}, err
	}
	if err := CheckSlug(slug); err != nil {
		return Diff{}, err
	}
	if err := checkVersion("from", from); err != nil {
		return Diff{}, err
	}
	if err := checkVersion("to", to); err != nil {
		return Diff{}, err
	}
	var a, b persistence.LegalDocument
	err := s.read(ctx, func(tx persistence.Tx) (err error) {
		if a, err = tx.LegalDocumentGet(ctx, slug, from); err != nil {
			return err
		}
		b, err = tx.LegalDocumentGet(ctx, slug, to)
		return err
	})
	if err != nil {
		return Diff{}, fault.IfNotFound(err, "legal document version")
	}
	return Diff{Slug: slug, From: from, To: to, TitleChanged: a.Title != b.Title, Lines: LineDiff(a.Body, b.Body)}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Invalidate makes the next consent decision reload the active documents;
// call it after a version is created or activated (once its transaction
// committed), or on another node's activation event.
func (s *Service) Invalidate() { s.active.invalidate() }

// isStaff reports whether by acts for the studio.
func isStaff(by service.Caller) bool { return slices.Contains(staffRoles, by.Role) }
