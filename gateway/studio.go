package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/persistence"
)

// The studio's settings; the rules are the catalogue service's
// (actors/service/catalogue).

func (s *server) getPublicStudio(c *fiber.Ctx) error {
	st, err := s.cat.Studio(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(catalogue.PublicStudioView(st))
}

func (s *server) getAdminStudio(c *fiber.Ctx) error {
	st, err := s.cat.Studio(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(catalogue.StudioView(st))
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
	return c.JSON(catalogue.StudioView(st))
}
