package main

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/persistence"
)

// shopNode is the shop's actors on this node: one inventory actor per
// variant and one cart actor per cart, each activated on demand.
type shopNode struct {
	inventory *inventory.Directory
	carts     *cart.Directory
}

// startShop spawns the inventory and cart directories.
func startShop(system *actors.System, store persistence.Store, cfg config, log *slog.Logger, reg prometheus.Registerer) (*shopNode, error) {
	im, err := inventory.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	cm, err := cart.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &shopNode{}
	if s.inventory, err = inventory.NewDirectory(system.Root(), inventory.Deps{Store: store, Now: time.Now, Log: log, Metrics: im},
		cfg.RequestTimeout); err != nil {
		return nil, err
	}
	s.carts, err = cart.NewDirectory(system.Root(), cart.Deps{Store: store, Inventory: s.inventory, Now: time.Now, Log: log, Metrics: cm,
		Config: cart.Config{AnonymousTTL: cfg.CartTTLAnonymous, SignedInTTL: cfg.CartTTLSignedIn}}, cfg.RequestTimeout)
	if err != nil {
		s.inventory.Stop(time.Second)
		return nil, err
	}
	return s, nil
}

// restock makes the inventory actors of variants whose stock changed
// outside them (a cancelled order, a return) reload it.
func (s *shopNode) restock(variantIDs []string) {
	if s == nil {
		return
	}
	for _, id := range variantIDs {
		s.inventory.Invalidate(id)
	}
}

// stop stops the carts first (they release through the inventory), then
// the inventory actors once their writes are done. Safe on nil.
func (s *shopNode) stop(timeout time.Duration) {
	if s == nil {
		return
	}
	s.carts.Stop(timeout)
	s.inventory.Stop(timeout)
}
