package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/caps"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/persistence"
)

// startQuota starts the quota actors (login-code limits, hoarding caps).
// They start before the cluster node, so its quota router serves them
// from the first partition it acquires.
func (n *node) startQuota(cfg config, reg prometheus.Registerer) error {
	met, err := quota.NewMetrics(reg)
	if err != nil {
		return err
	}
	n.quota, err = quota.NewDirectory(n.actors.Root(), quota.Deps{Store: n.store, Now: time.Now, Log: n.log, Metrics: met}, cfg.RequestTimeout)
	return err
}

// quotaClient is how the node's use cases reach the quota actors: the
// node's directory alone, the key's owner through the quota router in a
// cluster, so every limit holds for the whole cluster.
func (n *node) quotaClient() *quota.Client {
	var d door.Door = n.quota
	if n.cluster != nil && n.cluster.quota != nil {
		d = n.cluster.quota
	}
	return quota.NewClient(d)
}

// sweepQuotas deletes counters whose every lease lapsed: they count
// nothing. An activation still holding one meets the row's version on its
// next write, reloads (nothing) and decides again.
func (n *node) sweepQuotas(ctx context.Context) error {
	return n.store.InTx(ctx, func(tx persistence.Tx) error {
		_, err := tx.QuotaDeleteExpired(ctx, time.Now(), 1000)
		return err
	})
}

// hoardingCaps are the caps of holds and anonymous carts (issue 15 item
// 5), counted by the quota actors through quotaClient; each lease lives as
// long as what it counts (a hold, an anonymous cart's reservation).
func (n *node) hoardingCaps(cfg config, reg prometheus.Registerer) (booking.HoldCaps, shop.CartCaps, error) {
	g, err := caps.New(n.quotaClient(), reg, n.log)
	if err != nil {
		return booking.HoldCaps{}, shop.CartCaps{}, err
	}
	return booking.HoldCaps{Guard: g, PerClient: int64(cfg.HoldsPerClient), PerIP: int64(cfg.HoldsPerIP), TTL: cfg.HoldTTL},
		shop.CartCaps{Guard: g, PerCart: int64(cfg.CartUnitsPerCart), PerIP: int64(cfg.CartUnitsPerIP),
			SharePercent: int64(cfg.CartVariantShare), TTL: cfg.CartTTLAnonymous}, nil
}
