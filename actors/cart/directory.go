package cart

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
)

// Directory activates cart actors on demand, one per cart id, and routes
// requests to them (see package directory).
type Directory struct{ *directory.Directory }

// NewDirectory spawns the cart directory on root. timeout bounds a request
// whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps = deps.withDefaults()
	d, err := directory.New(root, directory.Config{
		Name:        "carts",
		Spawn:       func(cartID string) actor.Producer { return newActor(deps, cartID) },
		Refuse:      refusal,
		ErrShutdown: fmt.Errorf("%w: node shutting down", ErrRetry),
		Timeout:     timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("cart: %w", err)
	}
	return &Directory{d}, nil
}

// PlacementKey is the key a cluster places cartID's actor by: its
// partition is a hash of it (cluster/partition).
func PlacementKey(cartID string) string { return "cart/" + cartID }
