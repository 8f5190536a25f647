package resource

import (
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
	d, err := deps.life.NewDirectory(root, "resources", func(id string) actor.Producer { return newActor(deps, id) },
		actor.Unbounded(deps.Metrics.mailbox), timeout)
	if err != nil {
		return nil, err
	}
	return &Directory{d}, nil
}
