package shop

import (
	"context"
	"errors"
	"time"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/service/caps"
	"github.com/spa-engine/spa/actors/service/fault"
)

// takeCartCaps counts an anonymous cart's line against its caps: units
// per cart, units per IP, and the share of the variant's stock one cart
// or one IP may reserve. Over a cap: 429 reservation_limit_reached with
// Retry-After. The variant's stock is read from its inventory actor (one
// round trip, only for anonymous lines that reserve).
func (s *Service) takeCartCaps(ctx context.Context, who cart.Auth, ip string, in LineInput) (caps.Undo, error) {
	c := s.caps
	if c.Guard == nil || who.Subject != "" || (c.PerCart < 1 && c.PerIP < 1 && c.SharePercent < 1) {
		return nil, nil
	}
	var share int64
	if c.SharePercent > 0 && in.Qty > 0 {
		lvl, err := askInventory(ctx, s.inventory, (*inventory.Client).Level, in.VariantID, &inventory.LevelQuery{})
		if err != nil {
			return nil, err
		}
		switch {
		case errors.Is(lvl.Err, inventory.ErrUnknownVariant):
			return nil, nil // the cart answers it
		case lvl.Err != nil:
			return nil, inventoryFault(lvl.Err)
		}
		share = max(1, lvl.OnHand*c.SharePercent/100)
		if in.Qty > share {
			// One cart alone over the share: no wait makes it fit.
			c.Guard.Refused("variant_share")
			return nil, fault.New(fault.CodeReservationLimit, "no single cart may reserve that much of one item").
				WithRetryAfter(c.TTL).WithDetails(map[string]any{"cap": "variant_share", "max_qty": share})
		}
	}
	ipKey := caps.IPKey(ip)
	checks := []caps.Check{{Name: "units_per_cart", Key: cartUnitsKey(in.Cart.ID), Limit: c.PerCart, Lease: in.VariantID}}
	if ipKey != "" {
		checks = append(checks,
			caps.Check{Name: "units_per_ip", Key: ipUnitsKey(ipKey), Limit: c.PerIP, Lease: in.Cart.ID + "/" + in.VariantID},
			caps.Check{Name: "variant_share", Key: ipShareKey(ipKey, in.VariantID), Limit: share, Lease: in.Cart.ID})
	}
	return c.Guard.Take(ctx, fault.CodeReservationLimit, "", in.Qty, c.TTL, checks...)
}

// releaseCartCaps gives back what an anonymous cart's lines counted (a
// merge emptied it); the IP's leases under another address than the
// merging caller's lapse with their TTL.
func (s *Service) releaseCartCaps(cartID, ip string, lines map[string]int64) {
	if s.caps.Guard == nil || len(lines) == 0 {
		return
	}
	ipKey := caps.IPKey(ip)
	var ls []caps.Lease
	for variant := range lines {
		ls = append(ls, caps.Lease{Key: cartUnitsKey(cartID), Name: variant})
		if ipKey != "" {
			ls = append(ls, caps.Lease{Key: ipUnitsKey(ipKey), Name: cartID + "/" + variant},
				caps.Lease{Key: ipShareKey(ipKey, variant), Name: cartID})
		}
	}
	s.caps.Guard.ReleaseLeases(ls...)
}

func cartUnitsKey(cartID string) string         { return "cart/units/" + cartID }
func ipUnitsKey(ipKey string) string            { return "cart/ip/" + ipKey }
func ipShareKey(ipKey, variantID string) string { return "cart/ip/" + ipKey + "/variant/" + variantID }

// capsTTL is the cart caps' lease TTL when CartCaps.TTL is unset: the
// default anonymous cart TTL.
const capsTTL = 30 * time.Minute
