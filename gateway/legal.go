package gateway

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/persistence"
)

// Legal documents, consents and the guard that answers 428 when a caller
// has not accepted the active version of a document a route needs: the
// HTTP side of actors/service/legal, which decides (docs/legal.md).

// HeaderDeviceID names an anonymous device, so a visitor can accept the
// documents before signing in. Signed-in callers are identified by their
// token subject instead.
const HeaderDeviceID = "X-Device-ID"

// deviceIDRE is what a well-formed X-Device-ID matches.
var deviceIDRE = legal.DeviceIDRE

// Limits of the consent list.
const (
	defaultConsentPage = 50
	maxConsentPage     = 200
)

// newLegal builds the legal use cases (documents, consents, blocks, the
// audit log) from the gateway's dependencies.
func (s *server) newLegal() *legal.Service {
	d := legal.Deps{Store: s.deps.Store, Blocklist: s.deps.Blocklist, Now: s.deps.Now, Logger: s.log}
	if d.Blocklist == nil {
		d.Blocklist = legal.NewBlocklist(s.deps.Store, s.deps.BlindIndex, 0, s.deps.Now, s.log)
	}
	if s.deps.Identity != nil {
		d.Sessions = s.ident
	}
	return legal.New(d)
}

// ---- The guard -----------------------------------------------------------

// ConsentScope names the documents a request needs accepted. It may read
// the request (the body, a route parameter) but must not consume it.
type ConsentScope func(c *fiber.Ctx) []string

// ConsentGuard answers 428 consent_required, listing the documents, when
// legal.Service.Missing says the caller has not accepted the active
// version of a document the route needs (staff are never held up; an
// anonymous caller is known by X-Device-ID).
type ConsentGuard struct {
	svc *legal.Service
	// Refused counts the 428 answers; nil: not counted.
	Refused prometheus.Counter
}

// NewConsentGuard returns a guard reading store; ttl bounds how stale an
// activation on another node may look (0: 2s).
func NewConsentGuard(store persistence.Store, ttl time.Duration) *ConsentGuard {
	return &ConsentGuard{svc: legal.New(legal.Deps{Store: store, ActiveTTL: ttl})}
}

// Invalidate makes the next request reload the active documents; call it
// after activating a version (or on another node's activation event).
func (g *ConsentGuard) Invalidate() { g.svc.Invalidate() }

// Require guards a route with the given documents, e.g.
// Require(persistence.LegalSlugTerms, persistence.LegalSlugPrivacy).
func (g *ConsentGuard) Require(slugs ...string) fiber.Handler {
	fixed := slices.Clone(slugs)
	return g.RequireScope(func(*fiber.Ctx) []string { return fixed })
}

// RequireScope guards a route with the documents scope names per request.
func (g *ConsentGuard) RequireScope(scope ConsentScope) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, _ := Principal(c)
		missing, err := g.svc.Missing(c.UserContext(), service.Caller{Claims: p}, c.Get(HeaderDeviceID),
			func() []string { return scope(c) })
		if err != nil {
			return err
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
	if slug := legal.ConsentSlug(services[in.ServiceID].Category); slug != "" {
		slugs = append(slugs, slug)
	}
	return slugs
}

// ---- Routes --------------------------------------------------------------

// registerLegal adds the legal routes and sets up the consent guard the
// booking routes use.
func (s *server) registerLegal(app *fiber.App) {
	s.legal = &ConsentGuard{svc: s.legalSvc}
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

// versionParam is a document version as given (a path or query value);
// anything that is not a number is 0, which the service refuses.
func versionParam(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (s *server) listActiveLegal(c *fiber.Ctx) error {
	docs, err := s.legalSvc.Active(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"documents": legalViews(docs)})
}

func (s *server) getLegalVersion(c *fiber.Ctx) error {
	d, err := s.legalSvc.Version(c.UserContext(), s.caller(c), c.Params("slug"), versionParam(c.Params("version")))
	if err != nil {
		return err
	}
	return c.JSON(legalView(d))
}

// requiredLegal lists the active documents the caller has not accepted.
func (s *server) requiredLegal(c *fiber.Ctx) error {
	sub, err := legal.SubjectOf(s.caller(c), c.Get(HeaderDeviceID))
	if err != nil {
		return err
	}
	docs, err := s.legalSvc.Required(c.UserContext(), sub)
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

// acceptLegal records the caller's acceptance of the listed versions.
func (s *server) acceptLegal(c *fiber.Ctx, tx persistence.Tx) error {
	by := s.caller(c)
	sub, err := legal.SubjectOf(by, c.Get(HeaderDeviceID))
	if err != nil {
		return err
	}
	var in consentInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	refs := make([]legal.DocumentRef, len(in.Documents))
	for i, d := range in.Documents {
		refs[i] = legal.DocumentRef(d)
	}
	recs, err := s.legalSvc.Accept(c.UserContext(), tx, by, sub, refs)
	if err != nil {
		return err
	}
	out := make([]consentJSON, len(recs))
	for i, r := range recs {
		out[i] = consentView(r)
	}
	return c.JSON(fiber.Map{"consents": out})
}

func (s *server) listLegalVersions(c *fiber.Ctx) error {
	docs, err := s.legalSvc.Versions(c.UserContext(), s.caller(c), c.Params("slug"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"versions": legalViews(docs)})
}

type legalInput struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

func (s *server) createLegalVersion(c *fiber.Ctx, tx persistence.Tx) error {
	slug := c.Params("slug")
	if err := legal.CheckSlug(slug); err != nil {
		return err
	}
	var in legalInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.legalSvc.CreateVersion(c.UserContext(), tx, s.caller(c), slug, legal.VersionInput(in))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(legalView(d))
}

func (s *server) activateLegalVersion(c *fiber.Ctx, tx persistence.Tx) error {
	d, err := s.legalSvc.Activate(c.UserContext(), tx, s.caller(c), c.Params("slug"), versionParam(c.Params("version")))
	if err != nil {
		return err
	}
	return c.JSON(legalView(d))
}

type diffLine struct {
	Op   string `json:"op"` // equal, insert or delete
	Text string `json:"text"`
}

func (s *server) diffLegal(c *fiber.Ctx) error {
	d, err := s.legalSvc.Diff(c.UserContext(), s.caller(c), c.Params("slug"), versionParam(c.Query("from")), versionParam(c.Query("to")))
	if err != nil {
		return err
	}
	lines := make([]diffLine, len(d.Lines))
	for i, l := range d.Lines {
		lines[i] = diffLine(l)
	}
	return c.JSON(fiber.Map{"slug": d.Slug, "from": d.From, "to": d.To, "title_changed": d.TitleChanged, "lines": lines})
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
	rows, next, err := s.legalSvc.Consents(c.UserContext(), s.caller(c), p)
	if err != nil {
		return err
	}
	page := struct {
		Consents []consentJSON `json:"consents"`
		Next     *string       `json:"next"`
	}{Consents: make([]consentJSON, len(rows)), Next: next}
	for i, r := range rows {
		page.Consents[i] = consentView(r)
	}
	return c.JSON(page)
}
