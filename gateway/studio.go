package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/persistence"
)

// The studio's settings; the rules are the catalogue service's
// (actors/service/catalogue).

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

func (s *server) getPublicStudio(c *fiber.Ctx) error {
	st, err := s.cat.Studio(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(publicStudio{Name: st.Name, TimeZone: st.TimeZone, Currency: st.Currency})
}

func (s *server) getAdminStudio(c *fiber.Ctx) error {
	st, err := s.cat.Studio(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(adminView(st))
}

// putStudio creates or updates the studio, with its audit entry and
// StudioUpdated event, in the idempotency wrapper's transaction.
func (s *server) putStudio(c *fiber.Ctx, tx persistence.Tx) error {
	var in catalogue.StudioInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	st, err := s.cat.PutStudio(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(adminView(st))
}
