package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/persistence"
)

// Client profiles, export and anonymisation: the HTTP side of
// actors/service/privacy, which holds the rules (docs/privacy.md).

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
	Language       string    `json:"language"`
	TimeZone       string    `json:"time_zone"`
	Masked         bool      `json:"masked"`
	Anonymised     bool      `json:"anonymised"`
	Version        int64     `json:"version"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
}

func profileView(p privacy.Profile) profileJSON {
	v := profileJSON{UserID: p.UserID, Name: p.Name, Phone: p.Phone, Email: p.Email, DocumentType: p.DocumentType,
		DocumentNumber: p.DocumentNumber, BirthDate: p.BirthDate, Language: p.Language, TimeZone: p.TimeZone, Masked: p.Masked, Anonymised: p.Anonymised,
		Version: p.Version, UpdatedAt: p.UpdatedAt}
	if !p.Masked {
		notes := p.Notes
		v.ClinicalNotes = &notes
	}
	return v
}

// newPrivacy builds the privacy use cases from the gateway's dependencies.
func (s *server) newPrivacy() *privacy.Service {
	d := privacy.Deps{Store: s.deps.Store, Sessions: s.ident, Now: s.deps.Now, Logger: s.log}
	if id := s.deps.Identity; id != nil {
		d.Keys, d.Index, d.Phones = id.Keyring, id.Index, id.Phones
	} else {
		d.Unconfigured = errNoIdentity
	}
	return privacy.New(d)
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
	p, err := s.privacy.Profile(c.UserContext(), s.caller(c), userID)
	if err != nil {
		return err
	}
	return c.JSON(profileView(p))
}

// profileInput is the body of PUT /v1/me/profile.
type profileInput struct {
	Name           string `json:"name"`
	Email          string `json:"email"`
	DocumentType   string `json:"document_type"`
	DocumentNumber string `json:"document_number"`
	BirthDate      string `json:"birth_date"`
	ClinicalNotes  string `json:"clinical_notes"`
	Language       string `json:"language"`
	TimeZone       string `json:"time_zone"`
	Version        int64  `json:"version"`
}

func (s *server) putMyProfile(c *fiber.Ctx, tx persistence.Tx) error {
	if err := s.privacy.Ready(); err != nil {
		return err
	}
	var in profileInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.privacy.UpdateProfile(c.UserContext(), tx, s.caller(c), privacy.ProfileInput(in))
	if err != nil {
		return err
	}
	return c.JSON(profileView(p))
}

// lookupInput is the body of POST /v1/clients/lookup: a phone or a
// document number, in the body so it never reaches an access log.
type lookupInput struct {
	Phone          string `json:"phone"`
	DocumentNumber string `json:"document_number"`
}

func (s *server) lookupClients(c *fiber.Ctx) error {
	if err := s.privacy.Ready(); err != nil {
		return err
	}
	var in lookupInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	found, err := s.privacy.Lookup(c.UserContext(), s.caller(c), privacy.LookupInput(in))
	if err != nil {
		return err
	}
	views := make([]profileJSON, len(found))
	for i, p := range found {
		views[i] = profileView(p)
	}
	return c.JSON(fiber.Map{"clients": views})
}
