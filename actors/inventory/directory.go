package inventory

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/persistence"
)

// Directory activates inventory actors on demand, one per variant id, and
// routes requests to them (see package directory).
type Directory struct{ *directory.Directory }

// NewDirectory spawns the inventory directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps = deps.withDefaults()
	d, err := deps.life.NewDirectory(root, "inventory", func(id string) actor.Producer { return newActor(deps, id) },
		actor.Unbounded(deps.Metrics.mailbox), timeout)
	if err != nil {
		return nil, err
	}
	return &Directory{d}, nil
}

// PlacementKey is the key a cluster places variantID's actor by: its
// partition is a hash of it (cluster/partition).
func PlacementKey(variantID string) string { return persistence.InventoryCalendarID(variantID) }
