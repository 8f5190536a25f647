package batch

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// Kind describes one kind of actor that a directory hosts and that writes
// by group commit (schedule, resource, inventory). All activations of the
// kind on a node share one.
type Kind struct {
	Name      string // prefixes log messages: "schedule"
	IDKey     string // the log attribute naming an activation's id: "staff"
	Log       *slog.Logger
	IdleAfter time.Duration      // passivate after this long without a message
	Live      prometheus.Gauge   // activations on the node
	Fenced    prometheus.Counter // batches refused by a newer epoch
	// Settled, when set, counts an op of a finished batch by its outcome:
	// "ok", "fenced" or "write_failed". It runs before the op's Reply.
	Settled func(o Op, outcome string)
	// Refuse builds the reply msg expects, carrying err.
	Refuse func(msg any, err error) any
	// ErrRetry is the kind's retryable error; ErrNotLoaded (wrapping it)
	// refuses requests after a failed activation, except one that failed
	// with ErrUnknown (the calendar does not exist), refused with that.
	ErrRetry, ErrNotLoaded, ErrUnknown error
}

// Lifecycle is one activation's part in its directory's life cycle: it
// activates on Started, retires when idle or after a failed batch, stops
// once its writes are done, answers each batch's callers and refuses
// requests it cannot decide. The actor hands it the lifecycle messages.
type Lifecycle struct {
	kind     *Kind
	id       string
	load     load
	stopping bool
}

// load is how an activation's load went.
type load uint8

const (
	loaded    load = iota
	unknown        // failed with Kind.ErrUnknown
	notLoaded      // failed otherwise
)

// NewLifecycle starts the life cycle of the activation id of kind.
func NewLifecycle(kind *Kind, id string) Lifecycle {
	return Lifecycle{kind: kind, id: id}
}

// Start handles *actor.Started: it runs activate and, should that fail,
// retires at once so the next request tries a fresh activation (the
// calendar may just have been created, or the store may be back); what
// is already queued is refused meanwhile. It reports whether activate
// succeeded.
func (l *Lifecycle) Start(c actor.Context, activate func() error) bool {
	l.kind.Live.Inc()
	if err := activate(); err != nil {
		l.kind.Log.Warn(l.kind.Name+": activation failed", l.kind.IDKey, l.id, "err", err)
		l.load = notLoaded
		if errors.Is(err, l.kind.ErrUnknown) {
			l.load = unknown
		}
		l.retire(c)
	}
	c.SetReceiveTimeout(l.kind.IdleAfter)
	return l.load == loaded
}

// Receive handles the other lifecycle messages: *actor.Stopped,
// *actor.ReceiveTimeout, directory.Stop and Done. commits is the actor's
// group commit (set up by its activate).
func (l *Lifecycle) Receive(c actor.Context, commits *Committer) {
	switch m := c.Message().(type) {
	case *actor.Stopped:
		l.kind.Live.Dec()
	case *actor.ReceiveTimeout:
		if !commits.Busy() {
			l.retire(c)
			return
		}
		// protoactor disarms the idle timer when it fires: arm it again,
		// or an actor found writing would never passivate.
		c.SetReceiveTimeout(l.kind.IdleAfter)
	case directory.Stop:
		l.stopping = true
		l.stopIfDone(c, commits)
	case Done:
		l.finish(c, commits, m)
	}
}

// Deciding reports whether the actor decides requests: it loaded and is
// not stopping.
func (l *Lifecycle) Deciding() bool { return l.load == loaded && !l.stopping }

// Guard runs do for the request being handled if the actor can decide it,
// and otherwise refuses it: when the activation failed (ErrUnknown or
// ErrNotLoaded), or when the actor is retiring, in which case the request
// goes back to the directory for the next activation.
func (l *Lifecycle) Guard(c actor.Context, do func()) {
	switch {
	case l.load == unknown:
		c.Respond(l.kind.Refuse(c.Message(), l.kind.ErrUnknown))
	case l.load == notLoaded:
		c.Respond(l.kind.Refuse(c.Message(), l.kind.ErrNotLoaded))
	case l.stopping:
		if !directory.Handoff(c, l.id) {
			c.Respond(l.kind.Refuse(c.Message(), l.kind.ErrRetry))
		}
	default:
		do()
	}
}

// finish answers a batch's callers. After a failure every waiting change
// is refused as retryable and the actor retires; requests that reach it
// meanwhile go to a fresh activation, which loads the truth.
func (l *Lifecycle) finish(c actor.Context, commits *Committer, d Done) {
	ops, err := commits.Done(c, d)
	if err == nil {
		for _, o := range ops {
			l.settled(o, "ok")
			o.Reply(nil)
		}
		l.stopIfDone(c, commits)
		return
	}
	reason := "write_failed"
	if errors.Is(err, persistence.ErrFenced) {
		reason = "fenced"
		l.kind.Fenced.Inc()
	}
	l.kind.Log.Warn(l.kind.Name+": batch failed; stopping", l.kind.IDKey, l.id, "epoch", commits.Epoch,
		"reason", reason, "err", err)
	failure := fmt.Errorf("%w: %s", l.kind.ErrRetry, reason)
	if errors.Is(err, keyed.ErrElsewhere) {
		// A change's idempotency key was answered elsewhere: its caller
		// reads that answer (keyed.Lookup); the others find none and retry.
		failure = fmt.Errorf("%w: %w", failure, keyed.ErrElsewhere)
	}
	for _, o := range ops {
		l.settled(o, reason)
		o.Reply(failure)
	}
	if l.stopping {
		// The directory's Stop came while the batch was in flight: it
		// marked this activation retiring then, ignores a request to
		// retire now and sends no other Stop. Nothing is in flight any
		// more (a failure ends what was queued too): stop.
		l.stopIfDone(c, commits)
		return
	}
	l.stopping = true
	l.retire(c)
}

func (l *Lifecycle) settled(o Op, outcome string) {
	if l.kind.Settled != nil {
		l.kind.Settled(o, outcome)
	}
}

// retire asks the directory to replace this activation (see
// directory.Retire).
func (l *Lifecycle) retire(c actor.Context) { directory.Retire(c, l.id) }

// stopIfDone stops a stopping actor once nothing waits for a write.
func (l *Lifecycle) stopIfDone(c actor.Context, commits *Committer) {
	if l.stopping && !commits.Busy() {
		c.Stop(c.Self())
	}
}

// NewDirectory spawns on root the directory named name (see package
// directory) that hosts kind's actors, built by spawn; during shutdown it
// refuses requests as retryable. timeout bounds a request whose context
// has no deadline.
func (k *Kind) NewDirectory(root *actor.RootContext, name string, spawn func(id string) actor.Producer,
	mailbox actor.MailboxProducer, timeout time.Duration) (*directory.Directory, error) {
	d, err := directory.New(root, directory.Config{
		Name:        name,
		Spawn:       spawn,
		Mailbox:     mailbox,
		Refuse:      k.Refuse,
		ErrShutdown: fmt.Errorf("%w: node shutting down", k.ErrRetry),
		Timeout:     timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Name, err)
	}
	return d, nil
}
