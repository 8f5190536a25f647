// Package directory hosts one kind of calendar actor on a node (schedule
// actors per staff member, resource actors per room or sauna): it
// activates an actor on the first request for its id, routes requests to
// it, and passivates it when it asks to retire. The directory is itself an
// actor, so its map of live calendars has a single writer: a calendar is
// passivated only after its actor said it is idle and has stopped, and
// requests arriving meanwhile wait for the next activation instead of
// reaching a stopping one.
//
// A hosted actor takes part through three things: it stops once its writes
// are done when it receives Stop, calls Retire to be replaced, and calls
// Handoff for a request it can no longer decide (it is retiring), which the
// directory then gives to the next activation.
package directory

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Config describes the kind of actor a directory hosts.
type Config struct {
	// Name is the directory's actor name on the node ("schedules").
	Name string
	// Spawn builds the actor of one calendar id.
	Spawn func(id string) actor.Producer
	// Mailbox makes each activation's mailbox (nil: the default).
	Mailbox actor.MailboxProducer
	// Refuse builds the reply msg expects, carrying err: what a caller gets
	// when the node is shutting down.
	Refuse func(msg any, err error) any
	// ErrShutdown is the error given to Refuse during shutdown.
	ErrShutdown error
	// Timeout bounds Ask when the context has no deadline.
	Timeout time.Duration
}

// Directory is the handle to a directory actor.
type Directory struct {
	live    *atomic.Int64 // activations, retiring ones included
	root    *actor.RootContext
	pid     *actor.PID
	name    string
	timeout time.Duration
	pool    *pool // runs the directory's and its actors' mailboxes
}

// Stop is sent to a hosted actor to stop it once its writes are done
// (passivation and node shutdown).
type Stop struct{}

// envelope carries a request for one calendar. deadline, when set, is
// when its caller stops waiting (Ask's timeout).
type envelope struct {
	id       string
	msg      any
	deadline time.Time
}

// idle asks to retire a calendar's activation: the activation itself when
// it has been quiet or can no longer be trusted (pid set to itself, so a
// late message cannot retire its successor), or Invalidate (pid nil:
// whichever activation is current).
type idle struct {
	id  string
	pid *actor.PID
}

// idleWhere asks to retire every activation whose id matches: a node
// giving up a partition retires its actors without remembering their ids.
type idleWhere struct{ match func(id string) bool }

// stopAll asks the directory to stop every calendar and answer once all
// have stopped.
type stopAll struct{}

// New spawns a directory on root.
func New(root *actor.RootContext, cfg Config) (*Directory, error) {
	live := new(atomic.Int64)
	p := newPool()
	pid, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &directoryActor{cfg: cfg, children: map[string]*child{}, byPID: map[string]string{}, live: live, pool: p}
	}, actor.WithDispatcher(p)), cfg.Name)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("directory %s: spawn: %w", cfg.Name, err)
	}
	return &Directory{live: live, root: root, pid: pid, name: cfg.Name, timeout: cfg.Timeout, pool: p}, nil
}

// Ask sends msg to the actor of calendar id and waits for its reply, at
// most until ctx's deadline (or the directory's timeout).
func (d *Directory) Ask(ctx context.Context, id string, msg any) (any, error) {
	timeout := d.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	res, err := d.root.RequestFuture(d.pid, envelope{id: id, msg: msg, deadline: time.Now().Add(timeout)}, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", d.name, id, err)
	}
	return res, nil
}

// Tell sends msg to the actor of calendar id without waiting for a reply.
func (d *Directory) Tell(id string, msg any) {
	d.root.Send(d.pid, envelope{id: id, msg: msg})
}

// Invalidate retires id's activation, if any, once its writes are done, so
// the next request loads the calendar afresh.
func (d *Directory) Invalidate(id string) {
	d.root.Send(d.pid, idle{id: id})
}

// InvalidateWhere retires, once their writes are done, the activations
// whose id match reports true (called on the directory's goroutine, so
// it must not block).
func (d *Directory) InvalidateWhere(match func(id string) bool) {
	d.root.Send(d.pid, idleWhere{match: match})
}

// Live returns how many activations the directory hosts now.
func (d *Directory) Live() int { return int(d.live.Load()) }

// Stop stops every hosted actor once its writes are done, then the
// directory. Calling it twice is harmless.
func (d *Directory) Stop(timeout time.Duration) {
	_, _ = d.root.RequestFuture(d.pid, stopAll{}, timeout).Result()
	_ = d.root.PoisonFuture(d.pid).Wait()
	d.pool.close()
}

// Retire asks the directory to replace the calling activation of calendar
// id: it parks new requests for the calendar, sends Stop, and hands them to
// a fresh activation once this one has stopped. Without a directory (tests
// that spawn activations directly) the actor just stops.
func Retire(c actor.Context, id string) {
	if p := c.Parent(); p != nil {
		c.Send(p, idle{id: id, pid: c.Self()})
		return
	}
	c.Stop(c.Self())
}

// Handoff gives the message being handled back to the directory, which
// routes it to the calendar's next activation with the original sender.
// It reports false when there is no directory (the caller must answer).
func Handoff(c actor.Context, id string) bool {
	p := c.Parent()
	if p == nil {
		return false
	}
	c.RequestWithCustomSender(p, envelope{id: id, msg: c.Message()}, c.Sender())
	return true
}

// child is one activation and the requests waiting for its successor.
type child struct {
	pid      *actor.PID
	retiring bool
	waiting  []waiting
}

type waiting struct {
	msg      any
	sender   *actor.PID
	deadline time.Time // zero: none known (a hand-off)
}

type directoryActor struct {
	cfg        Config
	children   map[string]*child // by calendar id
	byPID      map[string]string // actor id → calendar id
	stopping   bool
	stopWaiter *actor.PID
	live       *atomic.Int64 // len(children), for Directory.Live
	pool       *pool
}

// Receive routes requests and follows the activations' lifecycle.
func (d *directoryActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case envelope:
		d.route(c, m.id, waiting{m.msg, c.Sender(), m.deadline})
	case idle:
		if ch, ok := d.children[m.id]; ok && !ch.retiring && (m.pid == nil || m.pid.Equal(ch.pid)) {
			ch.retiring = true
			c.Send(ch.pid, Stop{})
		}
	case idleWhere:
		for id, ch := range d.children {
			if !ch.retiring && m.match(id) {
				ch.retiring = true
				c.Send(ch.pid, Stop{})
			}
		}
	case *actor.Terminated:
		id, ok := d.byPID[m.Who.Id]
		if !ok {
			return
		}
		delete(d.byPID, m.Who.Id)
		ch := d.children[id]
		delete(d.children, id)
		d.live.Add(-1)
		now := time.Now()
		for _, w := range ch.waiting {
			// A request whose caller stopped waiting while the activation
			// retired is dropped, not applied: an effect after its caller
			// was told it failed (a reservation made after the client's
			// 503) is one no one can explain. A retirement is quick unless
			// its last write hangs on the store.
			if !w.deadline.IsZero() && now.After(w.deadline) {
				continue
			}
			d.route(c, id, w)
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
			c.Send(ch.pid, Stop{})
		}
		d.maybeStopped(c)
	}
}

// route forwards msg to the calendar's live activation, activating one if
// there is none, or parks it while the current one retires.
func (d *directoryActor) route(c actor.Context, id string, w waiting) {
	msg, sender := w.msg, w.sender
	if d.stopping {
		if sender != nil {
			c.Send(sender, d.cfg.Refuse(msg, d.cfg.ErrShutdown))
		}
		return
	}
	ch, ok := d.children[id]
	if !ok {
		opts := []actor.PropsOption{actor.WithDispatcher(d.pool)}
		if d.cfg.Mailbox != nil {
			opts = append(opts, actor.WithMailbox(d.cfg.Mailbox))
		}
		pid := c.Spawn(actor.PropsFromProducer(d.cfg.Spawn(id), opts...))
		ch = &child{pid: pid}
		d.children[id] = ch
		d.live.Add(1)
		d.byPID[pid.Id] = id
	}
	if ch.retiring {
		ch.waiting = append(ch.waiting, w)
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
