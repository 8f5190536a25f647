package gateway

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Legal documents (terms, privacy, informed consent per service category),
// the consents callers give them, and the guard that answers 428 when a
// caller has not accepted the active version of a document a route needs.
// docs/legal.md describes the model and which routes are guarded.

// HeaderDeviceID names an anonymous device, so a visitor can accept the
// documents before signing in. Signed-in callers are identified by their
// token subject instead.
const HeaderDeviceID = "X-Device-ID"

// deviceIDRE: 16..64 of [A-Za-z0-9_-]: a ULID, a UUID, or a random token
// the app generated; nothing that can smuggle separators into logs.
var deviceIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// legalTTL bounds how stale another node's activation may look to the
// guard; this node's own changes are seen at once.
const legalTTL = 2 * time.Second

// Limits of the legal endpoints.
const (
	maxLegalTitle      = 200
	maxLegalBody       = 200_000 // bytes; a long consent form, not a book
	maxConsentsPerCall = 20
	defaultConsentPage = 50
	maxConsentPage     = 200
)

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

// ---- Active documents, cached ------------------------------------------

// legalCache keeps the active documents the guard reads on every guarded
// request, so a route with nothing to accept costs no database read.
type legalCache struct {
	ttl   time.Duration
	now   func() time.Time
	store persistence.Store

	mu       sync.Mutex
	loadedAt time.Time
	active   map[string]persistence.LegalDocument // by slug
}

func (c *legalCache) invalidate() {
	c.mu.Lock()
	c.loadedAt = time.Time{}
	c.mu.Unlock()
}

// snapshot returns the active documents by slug; callers must not modify it.
func (c *legalCache) snapshot(ctx context.Context) (map[string]persistence.LegalDocument, error) {
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

// ---- The guard -----------------------------------------------------------

// ConsentScope names the documents a request needs accepted. It may read
// the request (the body, a route parameter) but must not consume it.
type ConsentScope func(c *fiber.Ctx) []string

// ConsentGuard answers 428 consent_required, listing the documents, when
// the caller has not accepted the active version of a document the route
// needs. A document with no active version is never required, so the guard
// is inert until an admin activates one.
//
// Staff, receptionists and admins are not checked: they act for the
// studio, and collecting a client's consent in person is theirs to do. A
// client is checked by token subject; an anonymous caller by X-Device-ID
// (without one, everything active in scope is missing).
type ConsentGuard struct {
	cache *legalCache
	// Refused counts the 428 answers; nil: not counted.
	Refused prometheus.Counter
}

// NewConsentGuard returns a guard reading store; ttl bounds how stale an
// activation on another node may look (0: 2s).
func NewConsentGuard(store persistence.Store, ttl time.Duration) *ConsentGuard {
	if ttl <= 0 {
		ttl = legalTTL
	}
	return &ConsentGuard{cache: &legalCache{ttl: ttl, now: time.Now, store: store}}
}

// Invalidate makes the next request reload the active documents; call it
// after activating a version (or on another node's activation event).
func (g *ConsentGuard) Invalidate() { g.cache.invalidate() }

// Require guards a route with the given documents, e.g.
// Require(persistence.LegalSlugTerms, persistence.LegalSlugPrivacy).
func (g *ConsentGuard) Require(slugs ...string) fiber.Handler {
	fixed := slices.Clone(slugs)
	return g.RequireScope(func(*fiber.Ctx) []string { return fixed })
}

// RequireScope guards a route with the documents scope names per request.
func (g *ConsentGuard) RequireScope(scope ConsentScope) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if isStaff(c) {
			return c.Next()
		}
		ctx := c.UserContext()
		active, err := g.cache.snapshot(ctx)
		if err != nil {
			return err
		}
		if len(active) == 0 {
			return c.Next() // inert: no need to read the request for its scope
		}
		var slugs []string
		for _, slug := range scope(c) {
			if _, ok := active[slug]; ok && !slices.Contains(slugs, slug) {
				slugs = append(slugs, slug)
			}
		}
		if len(slugs) == 0 {
			return c.Next()
		}
		var missing []persistence.LegalDocument
		if kind, id, ok := consentSubject(c); ok {
			err = g.cache.store.InTx(ctx, func(tx persistence.Tx) (err error) {
				missing, err = tx.LegalRequired(ctx, kind, id, slugs)
				return err
			})
			if err != nil {
				return err
			}
		} else {
			slices.Sort(slugs)
			for _, slug := range slugs {
				missing = append(missing, active[slug])
			}
		}
		if len(missing) == 0 {
			return c.Next()
		}
		if g.Refused != nil {
			g.Refused.Inc()
		}
		return consentRequired(missing)
	}
}

// consentRequired is the 428 listing the documents to accept.
func consentRequired(docs []persistence.LegalDocument) *fault.Error {
	refs := make([]legalRef, len(docs))
	for i, d := range docs {
		refs[i] = legalRef{Slug: d.Slug, Version: d.Version, Title: d.Title}
	}
	return fault.New(fault.CodeConsentRequired, "").WithDetails(map[string]any{"documents": refs})
}

// consentSubject is whose consent a request carries: the token subject, or
// else a well-formed X-Device-ID. A kiosk token names a studio device, not
// a person: it is never taken for a user (its subject would be recorded as
// a user who consented).
func consentSubject(c *fiber.Ctx) (persistence.ConsentSubjectKind, string, bool) {
	if p, ok := Principal(c); ok && p.Role != auth.RoleKiosk {
		return persistence.ConsentUser, p.Subject, true
	}
	if id := c.Get(HeaderDeviceID); deviceIDRE.MatchString(id) {
		return persistence.ConsentDevice, id, true
	}
	return "", "", false
}

// bookingConsentScope is what booking an appointment needs: the terms, the
// privacy notice and the informed consent of the service's category. The
// body is read leniently; a malformed one is the handler's to refuse.
func (s *server) bookingConsentScope(c *fiber.Ctx) []string {
	slugs := []string{persistence.LegalSlugTerms, persistence.LegalSlugPrivacy}
	var in struct {
		ServiceID string `json:"service_id"`
	}
	if json.Unmarshal(c.Body(), &in) != nil || in.ServiceID == "" {
		return slugs
	}
	services, _, err := s.catalogue.Snapshot(c.UserContext())
	if err != nil {
		return slugs
	}
	if slug := ConsentSlug(services[in.ServiceID].Category); slug != "" {
		slugs = append(slugs, slug)
	}
	return slugs
}

// ---- Routes --------------------------------------------------------------

// registerLegal adds the legal routes and sets up the consent guard the
// booking routes use.
func (s *server) registerLegal(app *fiber.App) {
	s.legal = NewConsentGuard(s.deps.Store, legalTTL)
	s.legal.Refused = s.counter("spa_legal_consent_required_total",
		"Requests answered 428 consent_required because the caller had not accepted an active document.")
	admin := RequireRole(auth.RoleAdmin)
	// Writes drop the cache after their transaction, so this node's next
	// request sees the change.
	changed := func(h fiber.Handler) fiber.Handler {
		return func(c *fiber.Ctx) error {
			err := h(c)
			s.legal.Invalidate()
			return err
		}
	}
	app.Get("/v1/legal/documents", s.listActiveLegal)
	app.Get("/v1/legal/documents/:slug/versions/:version", s.getLegalVersion)
	app.Get("/v1/legal/required", s.requiredLegal)
	app.Post("/v1/legal/consents", s.mutate(s.acceptLegal))
	app.Get("/v1/admin/legal/documents/:slug/versions", admin, s.listLegalVersions)
	app.Post("/v1/admin/legal/documents/:slug/versions", admin, changed(s.mutate(s.createLegalVersion)))
	app.Post("/v1/admin/legal/documents/:slug/versions/:version/activate", admin, changed(s.mutate(s.activateLegalVersion)))
	app.Get("/v1/admin/legal/documents/:slug/diff", admin, s.diffLegal)
	app.Get("/v1/admin/legal/consents", admin, s.listConsents)
}

type legalRef struct {
	Slug    string `json:"slug"`
	Version int64  `json:"version"`
	Title   string `json:"title"`
}

type legalDocumentJSON struct {
	Slug        string     `json:"slug"`
	Version     int64      `json:"version"`
	Title       string     `json:"title"`
	Body        string     `json:"body"`
	Active      bool       `json:"active"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at"`
}

func legalView(d persistence.LegalDocument) legalDocumentJSON {
	return legalDocumentJSON{
		Slug: d.Slug, Version: d.Version, Title: d.Title, Body: d.Body, Active: d.Active,
		CreatedAt: d.CreatedAt.UTC(), ActivatedAt: utcOrNil(d.ActivatedAt),
	}
}

func legalViews(docs []persistence.LegalDocument) []legalDocumentJSON {
	out := make([]legalDocumentJSON, len(docs))
	for i, d := range docs {
		out[i] = legalView(d)
	}
	return out
}

// legalSlugParam reads the :slug route parameter.
func legalSlugParam(c *fiber.Ctx) (string, error) {
	slug := c.Params("slug")
	if !persistence.ValidLegalSlug(slug) {
		return "", fault.Invalid("", fault.FieldError{Field: "slug", Message: "must be lower-case words joined by dashes, at most 64 characters"})
	}
	return slug, nil
}

// versionValue parses a document version (a path or query value).
func versionValue(field, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fault.Invalid("", fault.FieldError{Field: field, Message: "must be a positive integer"})
	}
	return n, nil
}

func (s *server) listActiveLegal(c *fiber.Ctx) error {
	var docs []persistence.LegalDocument
	err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		docs, err = tx.LegalActive(ctx)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"documents": legalViews(docs)})
}

func (s *server) getLegalVersion(c *fiber.Ctx) error {
	slug, err := legalSlugParam(c)
	if err != nil {
		return err
	}
	version, err := versionValue("version", c.Params("version"))
	if err != nil {
		return err
	}
	var d persistence.LegalDocument
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		d, err = tx.LegalDocumentGet(ctx, slug, version)
		return err
	})
	if err != nil {
		return notFound(err, "legal document version")
	}
	// A draft (never activated) is the admins' business until it is
	// published; versions callers may have accepted stay readable.
	if p, _ := Principal(c); d.ActivatedAt.IsZero() && p.Role != auth.RoleAdmin {
		return fault.NotFound("legal document version not found")
	}
	return c.JSON(legalView(d))
}

// errNoSubject: neither a token nor a device id says whose consent it is.
var errNoSubject = fault.BadRequest("sign in, or send an " + HeaderDeviceID + " header of 16 to 64 letters, digits, - and _")

// requiredLegal lists the active documents the caller has not accepted.
func (s *server) requiredLegal(c *fiber.Ctx) error {
	kind, id, ok := consentSubject(c)
	if !ok {
		return errNoSubject
	}
	var docs []persistence.LegalDocument
	err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		docs, err = tx.LegalRequired(ctx, kind, id, nil)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"documents": legalViews(docs)})
}

type consentInput struct {
	Documents []struct {
		Slug    string `json:"slug"`
		Version int64  `json:"version"`
	} `json:"documents"`
}

type consentJSON struct {
	ID          string    `json:"id"`
	SubjectKind string    `json:"subject_kind"`
	SubjectID   string    `json:"subject_id"`
	Slug        string    `json:"slug"`
	Version     int64     `json:"version"`
	AcceptedAt  time.Time `json:"accepted_at"`
	RequestID   string    `json:"request_id"`
}

func consentView(c persistence.LegalConsent) consentJSON {
	return consentJSON{
		ID: c.ID, SubjectKind: string(c.SubjectKind), SubjectID: c.SubjectID, Slug: c.Slug,
		Version: c.Version, AcceptedAt: c.AcceptedAt.UTC(), RequestID: c.RequestID,
	}
}

// acceptLegal records the caller's acceptance of the listed versions. Any
// existing version may be accepted (the caller read it), but only the
// active one satisfies the guard. Accepting twice keeps the first record.
func (s *server) acceptLegal(c *fiber.Ctx, tx persistence.Tx) error {
	kind, id, ok := consentSubject(c)
	if !ok {
		return errNoSubject
	}
	var in consentInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	if n := len(in.Documents); n < 1 || n > maxConsentsPerCall {
		f.add("documents", "must list 1 to 20 documents")
	}
	for i, d := range in.Documents {
		field := "documents[" + strconv.Itoa(i) + "]"
		if !persistence.ValidLegalSlug(d.Slug) {
			f.add(field+".slug", "must be a document slug")
		}
		if d.Version < 1 {
			f.add(field+".version", "must be a positive integer")
		}
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx, now := c.UserContext(), s.deps.Now().UTC()
	out := make([]consentJSON, 0, len(in.Documents))
	for _, d := range in.Documents {
		rec, _, err := tx.LegalConsentAdd(ctx, persistence.LegalConsent{
			ID: ulid.Make().String(), SubjectKind: kind, SubjectID: id, Slug: d.Slug, Version: d.Version,
			AcceptedAt: now, RequestID: RequestID(c),
		})
		if err != nil {
			return notFound(err, "legal document "+d.Slug+" version "+strconv.FormatInt(d.Version, 10))
		}
		out = append(out, consentView(rec))
	}
	return c.JSON(fiber.Map{"consents": out})
}

func (s *server) listLegalVersions(c *fiber.Ctx) error {
	slug, err := legalSlugParam(c)
	if err != nil {
		return err
	}
	var docs []persistence.LegalDocument
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		docs, err = tx.LegalDocumentVersions(ctx, slug)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"versions": legalViews(docs)})
}

type legalInput struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// createLegalVersion stores the next version of a document, inactive, and
// audits it with the body's size (the text itself is in the row).
func (s *server) createLegalVersion(c *fiber.Ctx, tx persistence.Tx) error {
	slug, err := legalSlugParam(c)
	if err != nil {
		return err
	}
	var in legalInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	in.Title = strings.TrimSpace(in.Title)
	if n := utf8.RuneCountInString(in.Title); n < 1 || n > maxLegalTitle || strings.ContainsFunc(in.Title, isControl) {
		f.add("title", "must be 1 to 200 printable characters")
	}
	if strings.TrimSpace(in.Body) == "" || len(in.Body) > maxLegalBody || !utf8.ValidString(in.Body) {
		f.add("body", "must be non-empty UTF-8 text of at most 200000 bytes")
	}
	if err := f.err(); err != nil {
		return err
	}
	p, _ := Principal(c)
	d, err := tx.LegalDocumentCreate(c.UserContext(), persistence.LegalDocument{
		Slug: slug, Title: in.Title, Body: in.Body, CreatedBy: p.Subject, CreatedAt: s.deps.Now().UTC(),
	})
	if err != nil {
		return err
	}
	if err := s.audit(c, tx, "legal.document.create", "legal/"+slug, map[string]any{
		"slug": slug, "version": d.Version, "title": d.Title, "body_bytes": len(d.Body),
	}); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(legalView(d))
}

// activateLegalVersion makes a version the one callers must accept; the
// previous active version, if any, is named in the audit entry.
func (s *server) activateLegalVersion(c *fiber.Ctx, tx persistence.Tx) error {
	slug, err := legalSlugParam(c)
	if err != nil {
		return err
	}
	version, err := versionValue("version", c.Params("version"))
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	var previous int64
	active, err := tx.LegalActive(ctx)
	if err != nil {
		return err
	}
	for _, d := range active {
		if d.Slug == slug {
			previous = d.Version
		}
	}
	d, err := tx.LegalDocumentActivate(ctx, slug, version, s.deps.Now().UTC())
	if err != nil {
		return notFound(err, "legal document version")
	}
	if previous != version {
		if err := s.audit(c, tx, "legal.document.activate", "legal/"+slug, map[string]any{
			"slug": slug, "version": version, "previous_version": previous,
		}); err != nil {
			return err
		}
	}
	return c.JSON(legalView(d))
}

type diffLine struct {
	Op   string `json:"op"` // equal, insert or delete
	Text string `json:"text"`
}

// LineDiff compares two texts line by line: every line of a and b once, in
// order, marked equal, delete (only in a) or insert (only in b).
func LineDiff(a, b string) []diffLine {
	dmp := diffmatchpatch.New()
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	out := []diffLine{}
	for _, d := range diffs {
		op := "equal"
		switch d.Type {
		case diffmatchpatch.DiffInsert:
			op = "insert"
		case diffmatchpatch.DiffDelete:
			op = "delete"
		}
		for _, line := range strings.SplitAfter(d.Text, "\n") {
			if line != "" {
				out = append(out, diffLine{Op: op, Text: strings.TrimSuffix(line, "\n")})
			}
		}
	}
	return out
}

func (s *server) diffLegal(c *fiber.Ctx) error {
	slug, err := legalSlugParam(c)
	if err != nil {
		return err
	}
	from, err := versionValue("from", c.Query("from"))
	if err != nil {
		return err
	}
	to, err := versionValue("to", c.Query("to"))
	if err != nil {
		return err
	}
	var a, b persistence.LegalDocument
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		if a, err = tx.LegalDocumentGet(ctx, slug, from); err != nil {
			return err
		}
		b, err = tx.LegalDocumentGet(ctx, slug, to)
		return err
	})
	if err != nil {
		return notFound(err, "legal document version")
	}
	return c.JSON(fiber.Map{"slug": slug, "from": from, "to": to,
		"title_changed": a.Title != b.Title, "lines": LineDiff(a.Body, b.Body)})
}

func (s *server) listConsents(c *fiber.Ctx) error {
	var f fieldErrors
	p := persistence.LegalConsentListParams{Limit: limitQuery(c, &f, defaultConsentPage, maxConsentPage)}
	if p.Slug = c.Query("slug"); p.Slug != "" && !persistence.ValidLegalSlug(p.Slug) {
		f.add("slug", "must be a document slug")
	}
	if v := c.Query("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n < 1:
			f.add("version", "must be a positive integer")
		case p.Slug == "":
			f.add("version", "needs slug")
		}
		p.Version = max(n, 0)
	}
	if p.SubjectID = c.Query("subject_id"); p.SubjectID != "" {
		p.SubjectKind = persistence.ConsentSubjectKind(c.Query("subject_kind", string(persistence.ConsentUser)))
		if p.SubjectKind != persistence.ConsentUser && p.SubjectKind != persistence.ConsentDevice {
			f.add("subject_kind", "must be user or device")
		}
		if len(p.SubjectID) > 128 {
			f.add("subject_id", "is too long")
		}
	}
	p.BeforeID = beforeCursor(c, &f)
	if err := f.err(); err != nil {
		return err
	}
	page := struct {
		Consents []consentJSON `json:"consents"`
		Next     *string       `json:"next"`
	}{Consents: []consentJSON{}}
	rows, next, err := readPage(s, c, p.Limit, func(ctx context.Context, tx persistence.Tx, limit int) ([]persistence.LegalConsent, error) {
		p.Limit = limit
		return tx.LegalConsentList(ctx, p)
	}, func(r persistence.LegalConsent) string { return r.ID })
	if err != nil {
		return err
	}
	page.Next = next
	for _, r := range rows {
		page.Consents = append(page.Consents, consentView(r))
	}
	return c.JSON(page)
}
