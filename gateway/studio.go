package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // time zones validate the same on a distroless image as on a laptop
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// studioID is the id of the one studio of a single-studio install.
const studioID = "default"

// publicStudio is what anyone may see: enough to render a booking page.
type publicStudio struct {
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	Currency string `json:"currency"`
}

// adminStudio is the full profile, contact details and version included,
// so an admin can edit it with optimistic concurrency.
type adminStudio struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	TimeZone  string    `json:"time_zone"`
	Currency  string    `json:"currency"`
	Phone     string    `json:"phone"`
	Email     string    `json:"email"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

func adminView(s persistence.Studio) adminStudio {
	return adminStudio{
		ID: s.ID, Name: s.Name, TimeZone: s.TimeZone, Currency: s.Currency,
		Phone: s.Phone, Email: s.Email, Version: s.Version, UpdatedAt: s.UpdatedAt.UTC(),
	}
}

// loadStudio reads the studio in its own transaction; not set up yet is a
// 404 the client can act on.
func (s *server) loadStudio(c *fiber.Ctx) (persistence.Studio, error) {
	var st persistence.Studio
	err := s.deps.Store.InTx(c.UserContext(), func(tx persistence.Tx) error {
		var err error
		st, err = tx.StudioGet(c.UserContext(), studioID)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) {
		return st, fault.NotFound("the studio is not set up yet")
	}
	return st, err
}

func (s *server) getPublicStudio(c *fiber.Ctx) error {
	st, err := s.loadStudio(c)
	if err != nil {
		return err
	}
	return c.JSON(publicStudio{Name: st.Name, TimeZone: st.TimeZone, Currency: st.Currency})
}

func (s *server) getAdminStudio(c *fiber.Ctx) error {
	st, err := s.loadStudio(c)
	if err != nil {
		return err
	}
	return c.JSON(adminView(st))
}

// studioInput is the body of PUT /v1/admin/studio.
type studioInput struct {
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	Currency string `json:"currency"`
	Phone    string `json:"phone"`
	Email    string `json:"email"`
	Version  int64  `json:"version"`
}

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	phoneRE    = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
)

// validate normalises in (trims) and reports every problem at once, so a
// form can mark all bad fields in one round trip.
func (in *studioInput) validate() *fault.Error {
	var fields []fault.FieldError
	bad := func(f, msg string) { fields = append(fields, fault.FieldError{Field: f, Message: msg}) }

	in.Name = strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(in.Name); n < 1 || n > 120 {
		bad("name", "must be 1 to 120 characters")
	} else if !utf8.ValidString(in.Name) || strings.ContainsFunc(in.Name, isControl) {
		bad("name", "must be printable text")
	}
	in.TimeZone = strings.TrimSpace(in.TimeZone)
	if !validTimeZone(in.TimeZone) {
		bad("time_zone", "must be an IANA time zone such as America/Bogota")
	}
	in.Currency = strings.TrimSpace(in.Currency)
	if !currencyRE.MatchString(in.Currency) {
		bad("currency", "must be an ISO 4217 code of 3 upper-case letters")
	}
	in.Phone = strings.TrimSpace(in.Phone)
	if in.Phone != "" && !phoneRE.MatchString(in.Phone) {
		bad("phone", "must be in E.164 form, e.g. +573001234567")
	}
	in.Email = strings.TrimSpace(in.Email)
	if in.Email != "" && !validEmail(in.Email) {
		bad("email", "must be an email address")
	}
	if in.Version < 0 {
		bad("version", "must be 0 or more")
	}
	if len(fields) > 0 {
		return fault.Invalid("", fields...)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validTimeZone accepts names time.LoadLocation knows, but not the two it
// maps to the host's settings ("" and "Local"), which would make the
// studio's rules depend on where the server runs.
func validTimeZone(tz string) bool {
	if tz == "" || tz == "Local" || len(tz) > 64 {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}

// validEmail is a sanity check, not RFC 5322: a bare address with a dotted
// domain. Deliverability is the mailer's business.
func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// decodeJSON strictly decodes one JSON object into dst: right media type,
// no unknown fields, nothing after it. Every failure is a 4xx.
func decodeJSON(c *fiber.Ctx, dst any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return fault.UnsupportedMediaType("Content-Type must be application/json")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.BadRequest("a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.BadRequest("the body must hold exactly one JSON object")
	}
	return nil
}

// jsonError turns a decode failure into a safe 400: it names the field
// (bounded) but never echoes values.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fault.BadRequest("the body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fault.BadRequest("the body must be a JSON object")
		}
		return fault.BadRequest(fmt.Sprintf("field %q has the wrong type", bounded(typ.Field)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; the field name is
		// quoted in the message.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fault.BadRequest("unknown field " + bounded(name))
	}
	return fault.BadRequest("the body is not valid JSON")
}

// bounded keeps client-chosen names short and printable in our messages.
func bounded(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return s
}

// putStudio creates or updates the studio. The new profile, its audit entry
// and its StudioUpdated event commit in the caller's transaction, so the
// event is published if and only if the change happened.
func (s *server) putStudio(c *fiber.Ctx, tx persistence.Tx) error {
	var in studioInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	p, _ := Principal(c) // RequireRole ran first
	ctx := c.UserContext()
	now := s.deps.Now().UTC()
	rid := RequestID(c)

	st, err := tx.StudioPut(ctx, persistence.Studio{
		ID: studioID, Name: in.Name, TimeZone: in.TimeZone, Currency: in.Currency,
		Phone: in.Phone, Email: in.Email, Version: in.Version, UpdatedAt: now,
	})
	if err != nil {
		return versionConflict(err, in.Version)
	}
	if err := s.audit(c, tx, "studio.update", "studio/"+st.ID, map[string]any{
		"name": st.Name, "time_zone": st.TimeZone, "currency": st.Currency,
		"phone": maskPhone(st.Phone), "email": maskEmail(st.Email), "version": st.Version,
	}); err != nil {
		return err
	}

	payload := &messages.StudioUpdated{
		StudioId: st.ID, Version: st.Version, Name: st.Name, TimeZone: st.TimeZone, Currency: st.Currency,
	}
	ev, err := persistence.NewOutboxEvent("studio/"+st.ID, rid, p.Subject, payload, now)
	if err != nil {
		return err
	}
	if err := tx.OutboxAppend(ctx, ev); err != nil {
		return err
	}
	return c.JSON(adminView(st))
}

// maskPhone keeps the country-code end and the last two digits, enough for
// an auditor to tell numbers apart without holding the PII.
func maskPhone(p string) string {
	if len(p) <= 5 {
		return strings.Repeat("*", len(p))
	}
	return p[:3] + strings.Repeat("*", len(p)-5) + p[len(p)-2:]
}

// maskEmail keeps the first letter of the local part and the domain.
func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at <= 0 {
		return strings.Repeat("*", len(e))
	}
	return e[:1] + "***" + e[at:]
}
