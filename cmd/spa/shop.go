package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/persistence"
)

// shopNode is the shop's actors on this node: one inventory actor per
// variant and one cart actor per cart, each activated on demand.
type shopNode struct {
	invDir  *inventory.Directory
	cartDir *cart.Directory
	// inventory and carts are how the gateway and restocks reach those
	// actors: the directories when the node runs alone, the partition
	// routers in a cluster (set by routeShop before the gateway starts).
	inventory kindDoor
	carts     kindDoor
	// routed is the cart actors' door to the inventory in a cluster: the
	// inventory router once routeShop set it.
	routed *route.Switch
}

// kindDoor reaches one kind of actor by id: a directory, or a
// route.Router.
type kindDoor interface {
	door.Door
	Invalidate(id string)
}

// startShop spawns the inventory and cart directories; the inventory
// actors write through writer (group commit with the calendars; nil: each
// batch alone) and take their epochs from fence (nil: the database).
func startShop(system *actors.System, store persistence.Store, writer *batch.Writer, fence func(context.Context, persistence.Tx, string) (int64, error),
	answers keyed.Config, cfg config, log *slog.Logger, reg prometheus.Registerer) (*shopNode, error) {
	im, err := inventory.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	cm, err := cart.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &shopNode{}
	if s.invDir, err = inventory.NewDirectory(system.Root(), inventory.Deps{Store: store, Writer: writer, Fence: fence, Now: time.Now, Log: log, Metrics: im},
		cfg.RequestTimeout); err != nil {
		return nil, err
	}
	// Alone, carts ask the node's inventory directory; in a cluster, the
	// inventory actor of a variant lives on its partition's owner, which
	// the router reaches.
	var inv cart.Inventory = s.invDir
	if cfg.Cluster.enabled() {
		s.routed = route.NewSwitch(s.invDir, cfg.RequestTimeout, log)
		inv = s.routed
	}
	s.cartDir, err = cart.NewDirectory(system.Root(), cart.Deps{Store: store, Inventory: inv, Now: time.Now, Log: log, Metrics: cm,
		Config: cart.Config{AnonymousTTL: cfg.CartTTLAnonymous, SignedInTTL: cfg.CartTTLSignedIn}, Keys: answers}, cfg.RequestTimeout)
	if err != nil {
		s.invDir.Stop(time.Second)
		return nil, err
	}
	s.inventory, s.carts = s.invDir, s.cartDir
	return s, nil
}

// routeShop makes the shop's doors the partition routers (cluster mode).
func (s *shopNode) routeShop(inv, carts *route.Router) {
	s.inventory, s.carts = inv, carts
	s.routed.Use(inv)
}

// restock makes the inventory actors of variants whose stock changed
// outside them (a cancelled order, a return) reload it: on this node
// alone; in a cluster, on the node that owns each variant.
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
	s.cartDir.Stop(timeout)
	s.invDir.Stop(timeout)
}
