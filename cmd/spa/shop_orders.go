package main

import (
	"context"
	"time"

	"github.com/spa-engine/spa/actors/order"
)

// Shop order expiry: unpaid orders past their expires_at become expired
// and give their units back, and lapsed client credit expires. The sweep
// runs as one of the node's background loops, so shutdown stops it with
// the others (after HTTP has drained, before the store closes).

// Sweep cadence and batch. An order lingers at most one interval past its
// expiry; checkout never counts on the sweep (its stock was sold, not
// reserved), so a short delay only postpones the restock.
const (
	shopOrderSweepInterval = 30 * time.Second
	shopOrderSweepBatch    = 200
)

func (n *node) startShopOrderSweep(ctx context.Context) {
	n.every(ctx, shopOrderSweepInterval, "shop order expiry", func(ctx context.Context) error {
		res, err := order.Sweep(ctx, n.store, time.Now().UTC(), shopOrderSweepBatch)
		n.shop.restock(res.RestockedVariants) // the inventory actors reload what expiry gave back
		if res.Expired > 0 || res.CreditsExpired > 0 || res.Lost > 0 {
			n.log.Info("shop order expiry", "expired", res.Expired, "lost_races", res.Lost,
				"credits_expired", res.CreditsExpired, "restocked_variants", len(res.RestockedVariants))
		}
		return err
	})
}
