package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/inventory"
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
	routed *routedInventory
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
	cfg config, log *slog.Logger, reg prometheus.Registerer) (*shopNode, error) {
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
		s.routed = &routedInventory{local: s.invDir, log: log, timeout: cfg.RequestTimeout}
		inv = s.routed
	}
	s.cartDir, err = cart.NewDirectory(system.Root(), cart.Deps{Store: store, Inventory: inv, Now: time.Now, Log: log, Metrics: cm,
		Config: cart.Config{AnonymousTTL: cfg.CartTTLAnonymous, SignedInTTL: cfg.CartTTLSignedIn}}, cfg.RequestTimeout)
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
	s.routed.r.Store(inv)
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

// routedInventory is the cart actors' door to the inventory in a cluster
// (cart.Inventory): the variant's owner, through the inventory router.
type routedInventory struct {
	r       atomic.Pointer[route.Router]
	local   *inventory.Directory // until the router exists (no cart runs before)
	log     *slog.Logger
	timeout time.Duration
}

func (i *routedInventory) Ask(ctx context.Context, variantID string, msg any) (any, error) {
	if r := i.r.Load(); r != nil {
		return r.Ask(ctx, variantID, msg)
	}
	return i.local.Ask(ctx, variantID, msg)
}

// Tell sends a notice (Consumed after a checkout) without making the cart
// wait: a goroutine asks the owner and drops the reply, as a local Tell
// would. A late or lost notice (the owner crashed) cannot oversell: the
// checkout's transaction consumed the reservations in the store, whose
// reservation SQL re-checks stock, and the next activation loads them as
// consumed (package inventory).
func (i *routedInventory) Tell(variantID string, msg any) {
	r := i.r.Load()
	if r == nil {
		i.local.Tell(variantID, msg)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), i.timeout)
		defer cancel()
		if _, err := r.Ask(ctx, variantID, msg); err != nil {
			i.log.Warn("inventory notice not delivered to the owner", "variant", variantID, "msg", fmt.Sprintf("%T", msg), "err", err)
		}
	}()
}
