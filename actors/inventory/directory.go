package inventory

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
)

// Directory activates inventory actors on demand, one per variant id, and
// routes requests to them (see package directory).
type Directory struct{ *directory.Directory }

// NewDirectory spawns the inventory directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps = deps.withDefaults()
	d, err := directory.New(root, directory.Config{
		Name:        "inventory",
		Spawn:       func(variantID string) actor.Producer { return newActor(deps, variantID) },
		Mailbox:     actor.Unbounded(deps.Metrics.mailbox),
		Refuse:      refusal,
		ErrShutdown: fmt.Errorf("%w: node shutting down", ErrRetry),
		Timeout:     timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return &Directory{d}, nil
}
