package legal

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// ---- Active documents, cached ------------------------------------------

// activeCache keeps the active documents Missing reads on every guarded
// request, so a route with nothing to accept costs no database read.
type activeCache struct {
	ttl   time.Duration
	now   func() time.Time // wall clock: a frozen business clock must not freeze reloads
	store persistence.Store

	mu       sync.Mutex
	loadedAt time.Time
	active   map[string]persistence.LegalDocument // by slug
}

func (c *activeCache) invalidate() {
	c.mu.Lock()
	c.loadedAt = time.Time{}
	c.mu.Unlock()
}

// snapshot returns the active documents by slug; callers must not modify it.
func (c *activeCache) snapshot(ctx context.Context) (map[string]persistence.LegalDocument, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loadedAt.IsZero() && c.now().Sub(c.loadedAt) < c.ttl {
		return c.active, nil
	}
	var docs []persistence.LegalDocument
	err := c.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		docs, err = tx.LegalActive(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.active = make(map[string]persistence.LegalDocument, len(docs))
	for _, d := range docs {
		c.active[d.Slug] = d
	}
	c.loadedAt = c.now()
	return c.active, nil
}

// ---- Whose consent -------------------------------------------------------

// Subject is whose consent a request carries: a user, or an anonymous
// device. The zero Subject is nobody.
type Subject struct {
	Kind persistence.ConsentSubjectKind
	ID   string
}

// DeviceIDRE matches a well-formed device id: 16..64 of [A-Za-z0-9_-]: a
// ULID, a UUID, or a random token the app generated; nothing that can
// smuggle separators into logs.
var DeviceIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// errNoSubject: neither a token nor a device id says whose consent it is.
var errNoSubject = fault.BadRequest("sign in, or send an X-Device-ID header of 16 to 64 letters, digits, - and _")

// subject is the token subject of by, or else a well-formed deviceID. A
// kiosk token names a studio device, not a person: it is never taken for a
// user (its subject would be recorded as a user who consented).
func subject(by service.Caller, deviceID string) (Subject, bool) {
	if !by.Anonymous() && by.Role != auth.RoleKiosk {
		return Subject{persistence.ConsentUser, by.Subject}, true
	}
	if DeviceIDRE.MatchString(deviceID) {
		return Subject{persistence.ConsentDevice, deviceID}, true
	}
	return Subject{}, false
}

// SubjectOf is whose consent by carries (deviceID is the anonymous
// device's id, "" when none), or a 400 when nobody can be named.
func SubjectOf(by service.Caller, deviceID string) (Subject, error) {
	sub, ok := subject(by, deviceID)
	if !ok {
		return sub, errNoSubject
	}
	return sub, nil
}

// ---- The consent decision ------------------------------------------------

// Missing lists the documents in scope whose active version the caller has
// not accepted; empty: go ahead. scope names the documents the use case
// needs; it is called only when some document is active, so a caller with
// nothing to accept pays no read of its request. A document with no active
// version is never required, so the guard is inert until an admin
// activates one.
//
// Staff, receptionists and admins are not checked: they act for the
// studio, and collecting a client's consent in person is theirs to do. A
// client is checked by token subject; an anonymous caller by deviceID
// (without one, everything active in scope is missing).
func (s *Service) Missing(ctx context.Context, by service.Caller, deviceID string, scope func() []string) ([]persistence.LegalDocument, error) {
	if isStaff(by) {
		return nil, nil
	}
	active, err := s.active.snapshot(ctx)
	if err != nil || len(active) == 0 {
		return nil, err
	}
	var slugs []string
	for _, slug := range scope() {
		if _, ok := active[slug]; ok && !slices.Contains(slugs, slug) {
			slugs = append(slugs, slug)
		}
	}
	if len(slugs) == 0 {
		return nil, nil
	}
	sub, ok := subject(by, deviceID)
	if !ok {
		slices.Sort(slugs)
		missing := make([]persistence.LegalDocument, len(slugs))
		for i, slug := range slugs {
			missing[i] = active[slug]
		}
		return missing, nil
	}
	var missing []persistence.LegalDocument
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		missing, err = tx.LegalRequired(ctx, sub.Kind, sub.ID, slugs)
		return err
	})
	return missing, err
}

// Required lists every active document sub has not accepted.
func (s *Service) Required(ctx context.Context, sub Subject) (docs []persistence.LegalDocument, err error) {
	err = s.read(ctx, func(tx persistence.Tx) error {
		docs, err = tx.LegalRequired(ctx, sub.Kind, sub.ID, nil)
		return err
	})
	return docs, err
}

// DocumentRef names one version of a document.
type DocumentRef struct {
	Slug    string
	Version int64
}

// Accept records in tx that sub accepted the listed versions (1 to 20).
// Any existing version may be accepted (the caller read it), but only the
// active one satisfies Missing. Accepting twice keeps the first record.
func (s *Service) Accept(ctx context.Context, tx persistence.Tx, by service.Caller, sub Subject, docs []DocumentRef) ([]persistence.LegalConsent, error) {
	if sub.ID == "" {
		return nil, errNoSubject
	}
	var f []fault.FieldError
	if n := len(docs); n < 1 || n > maxConsentsPerCall {
		f = append(f, fault.FieldError{Field: "documents", Message: "must list 1 to 20 documents"})
	}
	for i, d := range docs {
		field := "documents[" + strconv.Itoa(i) + "]"
		if !persistence.ValidLegalSlug(d.Slug) {
			f = append(f, fault.FieldError{Field: field + ".slug", Message: "must be a document slug"})
		}
		if d.Version < 1 {
			f = append(f, fault.FieldError{Field: field + ".version", Message: "must be a positive integer"})
		}
	}
	if len(f) > 0 {
		return nil, fault.Invalid("", f...)
	}
	now := s.d.Now().UTC()
	out := make([]persistence.LegalConsent, 0, len(docs))
	for _, d := range docs {
		rec, _, err := tx.LegalConsentAdd(ctx, persistence.LegalConsent{
			ID: ulid.Make().String(), SubjectKind: sub.Kind, SubjectID: sub.ID, Slug: d.Slug, Version: d.Version,
			AcceptedAt: now, RequestID: by.RequestID,
		})
		if err != nil {
			return nil, fault.IfNotFound(err, "legal document "+d.Slug+" version "+strconv.FormatInt(d.Version, 10))
		}
		out = append(out, rec)
	}
	return out, nil
}

// Consents pages through recorded consents newest first, for admins;
// p.Limit is the page size and next the cursor of the following page.
func (s *Service) Consents(ctx context.Context, by service.Caller, p persistence.LegalConsentListParams) (rows []persistence.LegalConsent, next *string, err error) {
	if err := requireAdmin(by); err != nil {
		return nil, nil, err
	}
	limit := p.Limit
	p.Limit++ // one extra row tells whether another page exists
	err = s.read(ctx, func(tx persistence.Tx) error {
		rows, err = tx.LegalConsentList(ctx, p)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, next = pageOf(rows, limit, func(r persistence.LegalConsent) string { return r.ID })
	return rows, next, nil
}
