package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// VIP pricing: admins keep a list of the clients who pay VIP prices; the
// list and the pricing rule (shop.StoredVIP, for Deps.ShopVIP) are the
// shop service's.

type vipJSON struct {
	ClientID string `json:"client_id"`
	VIP      bool   `json:"vip"`
}

// clientParam reads the client id in the path.
func clientParam(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !clientRE.MatchString(id) {
		return "", fault.Invalid("", fault.FieldError{Field: "id", Message: "must be a client id"})
	}
	return id, nil
}

// setVIP marks (PUT) or unmarks (DELETE) a client as VIP, audited.
func (s *server) setVIP(vip bool) func(c *fiber.Ctx, tx persistence.Tx) error {
	return func(c *fiber.Ctx, tx persistence.Tx) error {
		id := c.Params("id")
		if err := s.shop.SetVIP(c.UserContext(), tx, s.caller(c), id, vip); err != nil {
			return err
		}
		return c.JSON(vipJSON{ClientID: id, VIP: vip})
	}
}

// getVIP says whether a client pays VIP prices.
func (s *server) getVIP(c *fiber.Ctx) error {
	id := c.Params("id")
	vip, err := s.shop.VIP(c.UserContext(), s.caller(c), id)
	if err != nil {
		return err
	}
	return c.JSON(vipJSON{ClientID: id, VIP: vip})
}
