package catalogue

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// StudioID is the id of the one studio of a single-studio install.
const StudioID = "default"

// StudioInput is the studio's profile as an admin puts it (PUT
// /v1/admin/studio); Version 0 creates, a stale one conflicts.
type StudioInput struct {
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
func (in *StudioInput) validate() error {
	var f check.Fields
	in.Name = strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(in.Name); n < 1 || n > 120 {
		f.Add("name", "must be 1 to 120 characters")
	} else if !utf8.ValidString(in.Name) || strings.ContainsFunc(in.Name, check.Control) {
		f.Add("name", "must be printable text")
	}
	in.TimeZone = strings.TrimSpace(in.TimeZone)
	if !check.TimeZone(in.TimeZone) {
		f.Add("time_zone", "must be an IANA time zone such as America/Bogota")
	}
	in.Currency = strings.TrimSpace(in.Currency)
	if !currencyRE.MatchString(in.Currency) {
		f.Add("currency", "must be an ISO 4217 code of 3 upper-case letters")
	}
	in.Phone = strings.TrimSpace(in.Phone)
	if in.Phone != "" && !phoneRE.MatchString(in.Phone) {
		f.Add("phone", "must be in E.164 form, e.g. +573001234567")
	}
	in.Email = strings.TrimSpace(in.Email)
	if in.Email != "" && !check.Email(in.Email) {
		f.Add("email", "must be an email address")
	}
	if in.Version < 0 {
		f.Add("version", "must be 0 or more")
	}
	return f.Err()
}

// Studio reads the studio; not set up yet is a 404 the client can act on.
func (s *Service) Studio(ctx context.Context) (st persistence.Studio, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		st, err = tx.StudioGet(ctx, StudioID)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) {
		return st, fault.NotFound("the studio is not set up yet")
	}
	return st, err
}

// PutStudio creates or updates the studio in tx. The new profile, its
// audit entry and its StudioUpdated event commit in the caller's
// transaction, so the event is published if and only if the change
// happened.
func (s *Service) PutStudio(ctx context.Context, tx persistence.Tx, by service.Caller, in StudioInput) (persistence.Studio, error) {
	if err := in.validate(); err != nil {
		return persistence.Studio{}, err
	}
	now := s.now().UTC()
	st, err := tx.StudioPut(ctx, persistence.Studio{
		ID: StudioID, Name: in.Name, TimeZone: in.TimeZone, Currency: in.Currency,
		Phone: in.Phone, Email: in.Email, Version: in.Version, UpdatedAt: now,
	})
	if err != nil {
		return persistence.Studio{}, fault.IfVersionConflict(err, in.Version)
	}
	if err := service.Audit(ctx, tx, now, by, "studio.update", "studio/"+st.ID, "", map[string]any{
		"name": st.Name, "time_zone": st.TimeZone, "currency": st.Currency,
		"phone": maskPhone(st.Phone), "email": maskEmail(st.Email), "version": st.Version,
	}); err != nil {
		return persistence.Studio{}, err
	}
	payload := &messages.StudioUpdated{
		StudioId: st.ID, Version: st.Version, Name: st.Name, TimeZone: st.TimeZone, Currency: st.Currency,
	}
	ev, err := persistence.NewOutboxEvent("studio/"+st.ID, by.RequestID, by.Subject, payload, now)
	if err != nil {
		return persistence.Studio{}, err
	}
	if err := tx.OutboxAppend(ctx, ev); err != nil {
		return persistence.Studio{}, err
	}
	return st, nil
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
