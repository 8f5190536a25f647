package resource

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
)

// Directory activates resource actors on demand and routes requests to
// them (see package directory): Ask, Tell, Invalidate and Stop.
type Directory struct{ *directory.Directory }

// NewDirectory spawns the resource directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps = deps.withDefaults()
	d, err := directory.New(root, directory.Config{
		Name:        "resources",
		Spawn:       func(resourceID string) actor.Producer { return newActor(deps, resourceID) },
		Mailbox:     actor.Unbounded(deps.Metrics.mailbox),
		Refuse:      refusal,
		ErrShutdown: fmt.Errorf("%w: node shutting down", ErrRetry),
		Timeout:     timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	return &Directory{d}, nil
}
