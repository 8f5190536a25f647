package schedule

import (
	"fmt"
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
	deps.Config = deps.Config.withDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	d, err := directory.New(root, directory.Config{
		Name:        "schedules",
		Spawn:       func(staffID string) actor.Producer { return newActor(deps, staffID) },
		Mailbox:     actor.Unbounded(deps.Metrics.mailbox),
		Refuse:      refusal,
		ErrShutdown: fmt.Errorf("%w: node shutting down", ErrRetry),
		Timeout:     timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
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
