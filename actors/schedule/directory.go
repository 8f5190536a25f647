package schedule

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
)

// Directory activates schedule actors on demand and routes requests to
// them (see package directory): Ask, Invalidate and Stop.
type Directory struct{ *directory.Directory }

// NewDirectory spawns the schedule directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps = deps.withDefaults()
	d, err := deps.life.NewDirectory(root, "schedules", func(id string) actor.Producer { return newActor(deps, id) },
		actor.Unbounded(deps.Metrics.mailbox), timeout)
	if err != nil {
		return nil, err
	}
	return &Directory{d}, nil
}

// refusal builds the reply type msg expects, carrying err.
func refusal(msg any, err error) any {
	switch msg.(type) {
	case *Hold:
		return &HoldReply{Err: err}
	case *SlotsQuery:
		return &SlotsReply{Err: err}
	default:
		return &Reply{Err: err}
	}
}
