package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// VIP pricing: admins keep a list of the clients who pay VIP prices
// (persistence.ShopVIPSet); StoredVIP reads it for Deps.ShopVIP.

// StoredVIP is a Deps.ShopVIP backed by the store's VIP list. Only
// clients can be VIP; a lookup that fails (or takes longer than timeout)
// answers false, so a slow database costs a discount, never a sale.
func StoredVIP(store persistence.Store, timeout time.Duration, log *slog.Logger) func(auth.Claims) bool {
	return func(p auth.Claims) bool {
		if p.Role != auth.RoleClient || p.Subject == "" {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var vip bool
		err := store.InTx(ctx, func(tx persistence.Tx) (err error) {
			vip, err = tx.ShopVIPIs(ctx, p.Subject)
			return err
		})
		if err != nil {
			log.Warn("shop: VIP lookup failed; regular prices apply", "err", err) // no subject: it names a client
			return false
		}
		return vip
	}
}

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
		id, err := clientParam(c)
		if err != nil {
			return err
		}
		p, _ := Principal(c)
		if err := tx.ShopVIPSet(c.UserContext(), id, vip, p.Subject, s.deps.Now().UTC()); err != nil {
			return err
		}
		action := "shop.vip_revoked"
		if vip {
			action = "shop.vip_granted"
		}
		if err := s.audit(c, tx, action, "client/"+id, map[string]any{"vip": vip}); err != nil {
			return err
		}
		return c.JSON(vipJSON{ClientID: id, VIP: vip})
	}
}

// getVIP says whether a client pays VIP prices.
func (s *server) getVIP(c *fiber.Ctx) error {
	id := c.Params("id")
	if !clientRE.MatchString(id) {
		return fault.NotFound("client not found")
	}
	var vip bool
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		vip, err = tx.ShopVIPIs(ctx, id)
		return err
	}); err != nil {
		return err
	}
	return c.JSON(vipJSON{ClientID: id, VIP: vip})
}
