package schedule

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/actors/door"
)

// Directory activates schedule actors on demand and routes requests to
// them (see package directory): Ask, Invalidate(Where) and Stop. It
// answers a SlotsQuery from the calendar's published snapshot when there
// is one exact now (see snapshot.go), without the actor's mailbox.
type Directory struct {
	*directory.Directory
	shelf *shelf
	deps  Deps
}

// NewDirectory spawns the schedule directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps = deps.withDefaults()
	sh := &shelf{}
	d, err := deps.life.NewDirectory(root, "schedules", func(id string) actor.Producer { return newActorOn(deps, id, sh) },
		actor.Unbounded(deps.Metrics.mailbox), timeout)
	if err != nil {
		return nil, err
	}
	return &Directory{Directory: d, shelf: sh, deps: deps}, nil
}

// Ask sends msg to the actor of calendar id and waits for its reply; a
// SlotsQuery is answered from the snapshot when it can be.
func (d *Directory) Ask(ctx context.Context, id string, msg any) (any, error) {
	if ctx.Err() == nil {
		if r, ok := d.AskNow(id, msg); ok {
			return r, nil
		}
	}
	return d.Directory.Ask(ctx, id, msg)
}

var _ door.Now = (*Directory)(nil)

// AskNow answers a SlotsQuery from calendar id's snapshot when it is exact
// (door.Now); anything else, or a stale snapshot, needs Ask.
func (d *Directory) AskNow(id string, msg any) (any, bool) {
	q, ok := msg.(*SlotsQuery)
	if !ok {
		return nil, false
	}
	r, ok := d.shelf.answer(id, q, d.deps.Config, d.deps.Metrics, d.deps.Now)
	return r, ok
}

// Invalidate retires id's activation once its writes are done, so the
// next request loads the calendar afresh; its snapshot is not served
// from now on.
func (d *Directory) Invalidate(id string) {
	d.shelf.invalidate(id)
	d.Directory.Invalidate(id)
}

// InvalidateWhere retires every activation whose id match reports true
// (a partition given up); their snapshots are not served from now on.
func (d *Directory) InvalidateWhere(match func(id string) bool) {
	d.shelf.invalidateWhere(match)
	d.Directory.InvalidateWhere(match)
}

// Stop stops every schedule actor once its writes are done, then the
// directory; reads stop using snapshots first.
func (d *Directory) Stop(timeout time.Duration) {
	d.shelf.closed.Store(true)
	d.Directory.Stop(timeout)
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
