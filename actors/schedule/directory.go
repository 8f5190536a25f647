package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Directory activates schedule actors on demand and routes requests to
// them. It is itself an actor, so its map of live calendars has a single
// writer too: a calendar is passivated only after its actor said it is idle
// and has stopped, and requests arriving meanwhile wait for the next
// activation instead of reaching a stopping one.
type Directory struct {
	root    *actor.RootContext
	pid     *actor.PID
	timeout time.Duration
}

// envelope carries a request for one staff member's calendar.
type envelope struct {
	staffID string
	msg     any
}

// idle asks to retire a calendar's activation: the activation itself when
// it has been quiet for IdleAfter or can no longer be trusted (pid set to
// itself, so a late message cannot retire its successor), or Invalidate
// (pid nil: whichever activation is current).
type idle struct {
	staffID string
	pid     *actor.PID
}

// stopAll asks the directory to stop every calendar and answer once all
// have stopped.
type stopAll struct{}

// NewDirectory spawns the directory on root. timeout bounds a request whose
// context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	deps.Config = deps.Config.withDefaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	pid, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &directoryActor{deps: deps, children: map[string]*child{}, byPID: map[string]string{}}
	}), "schedules")
	if err != nil {
		return nil, fmt.Errorf("schedule: spawn directory: %w", err)
	}
	return &Directory{root: root, pid: pid, timeout: timeout}, nil
}

// Ask sends msg to staffID's schedule actor and waits for its reply, at
// most until ctx's deadline (or the directory's timeout).
func (d *Directory) Ask(ctx context.Context, staffID string, msg any) (any, error) {
	timeout := d.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	res, err := d.root.RequestFuture(d.pid, envelope{staffID: staffID, msg: msg}, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("schedule %s: %w", staffID, err)
	}
	return res, nil
}

// Invalidate retires staffID's activation, if any, once its writes are
// done, so the next request loads the calendar afresh: the way changes to
// hours, overrides and time off reach the actor.
func (d *Directory) Invalidate(staffID string) {
	d.root.Send(d.pid, idle{staffID: staffID})
}

// Stop stops every schedule actor once its writes are done, then the
// directory. Calling it twice is harmless.
func (d *Directory) Stop(timeout time.Duration) {
	_, _ = d.root.RequestFuture(d.pid, stopAll{}, timeout).Result()
	_ = d.root.PoisonFuture(d.pid).Wait()
}

// child is one activation and the requests waiting for its successor.
type child struct {
	pid      *actor.PID
	retiring bool
	waiting  []waiting
}

type waiting struct {
	msg    any
	sender *actor.PID
}

type directoryActor struct {
	deps       Deps
	children   map[string]*child // by staff id
	byPID      map[string]string // actor id → staff id
	stopping   bool
	stopWaiter *actor.PID
}

func (d *directoryActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case envelope:
		d.route(c, m.staffID, m.msg, c.Sender())
	case idle:
		if ch, ok := d.children[m.staffID]; ok && !ch.retiring && (m.pid == nil || m.pid.Equal(ch.pid)) {
			ch.retiring = true
			c.Send(ch.pid, stop{})
		}
	case *actor.Terminated:
		staffID, ok := d.byPID[m.Who.Id]
		if !ok {
			return
		}
		delete(d.byPID, m.Who.Id)
		ch := d.children[staffID]
		delete(d.children, staffID)
		for _, w := range ch.waiting {
			d.route(c, staffID, w.msg, w.sender)
		}
		d.maybeStopped(c)
	case stopAll:
		if d.stopping {
			c.Respond(true)
			return
		}
		d.stopping, d.stopWaiter = true, c.Sender()
		for _, ch := range d.children {
			ch.retiring = true
			c.Send(ch.pid, stop{})
		}
		d.maybeStopped(c)
	}
}

// route forwards msg to the staff member's live activation, activating one
// if there is none, or parks it while the current one retires.
func (d *directoryActor) route(c actor.Context, staffID string, msg any, sender *actor.PID) {
	if d.stopping {
		c.Send(sender, refusal(msg, fmt.Errorf("%w: node shutting down", ErrRetry)))
		return
	}
	ch, ok := d.children[staffID]
	if !ok {
		pid := c.Spawn(actor.PropsFromProducer(newActor(d.deps, staffID), actor.WithMailbox(actor.Unbounded(d.deps.Metrics.mailbox))))
		ch = &child{pid: pid}
		d.children[staffID] = ch
		d.byPID[pid.Id] = staffID
	}
	if ch.retiring {
		ch.waiting = append(ch.waiting, waiting{msg, sender})
		return
	}
	c.RequestWithCustomSender(ch.pid, msg, sender)
}

func (d *directoryActor) maybeStopped(c actor.Context) {
	if d.stopping && len(d.children) == 0 && d.stopWaiter != nil {
		c.Send(d.stopWaiter, true)
		d.stopWaiter = nil
	}
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
