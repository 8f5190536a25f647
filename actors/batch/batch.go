// Package batch is the group commit shared by the calendar actors
// (schedule, resource, inventory): changes accepted in memory are written
// together, in one transaction that first checks the actor's epoch, while
// the actor keeps deciding; the next batch starts when the one in flight
// is done. A Committer belongs to one actor and is used only from its
// Receive; the node's Writer (writer.go) may write the batches of many
// actors in one transaction. Lifecycle (lifecycle.go) is the life cycle those actors share
// around it and their directory.
package batch

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/persistence"
)

// Op is one accepted change waiting for its write.
type Op struct {
	Kind  string    // for metrics: hold, confirm, claim, ...
	Start time.Time // when the actor accepted it
	// Apply writes the change inside the batch's transaction; it may run
	// again if the transaction is retried.
	Apply func(ctx context.Context, tx persistence.Tx) error
	// Reply answers the caller once the batch's outcome is known.
	Reply func(err error)
}

// Done is the message a batch sends back into its actor's mailbox; the
// actor hands it to Committer.Done.
type Done struct {
	ops []Op
	err error
}

// Committer queues and writes one actor's changes.
type Committer struct {
	Store    persistence.Store
	Calendar string // the fencing table's calendar id
	Epoch    int64  // this activation's epoch
	Timeout  time.Duration
	// Flushed, when set, is told the size of every batch (a metric).
	Flushed func(n int)
	// Writer, when set, writes the batches together with other actors'
	// (writer.go); nil: each batch is a transaction of its own.
	Writer *Writer

	queued   []Op
	inFlight bool
	// AfterPending callbacks resting on the batch in flight (flying) and
	// on the queued changes (next).
	flying, next []func(error)
}

// Busy reports whether a write is in flight or waiting.
func (b *Committer) Busy() bool { return b.inFlight || len(b.queued) > 0 }

// Enqueue adds an accepted change and starts a batch if none is in
// flight; while one is, changes accumulate for the next.
func (b *Committer) Enqueue(c actor.Context, o Op) {
	b.queued = append(b.queued, o)
	if !b.inFlight {
		b.flush(c)
	}
}

// AfterPending arranges for reply to run once every change accepted so far
// is durable (nil) or has failed (the batch's error), and reports whether
// it did; false means nothing is pending and the caller answers now.
//
// A refusal decided against changes not yet written is only true if they
// commit: were the batch fenced, the slot or unit was never taken, and a
// refusal already sent would have been false. So such refusals wait here.
func (b *Committer) AfterPending(reply func(error)) bool {
	switch {
	case len(b.queued) > 0:
		b.next = append(b.next, reply)
	case b.inFlight:
		b.flying = append(b.flying, reply)
	default:
		return false
	}
	return true
}

// Pending reports whether any accepted change is not yet durable (what
// AfterPending would wait for).
func (b *Committer) Pending() bool { return len(b.queued) > 0 || b.inFlight }

// Refuse answers c's sender with reply after what is pending is settled
// (see AfterPending), or now when nothing is. Should the pending changes
// fail, failed turns reply into a retryable error first.
func (b *Committer) Refuse(c actor.Context, reply any, failed func(error)) {
	sender := c.Sender()
	if !b.AfterPending(func(err error) {
		if err != nil {
			failed(err)
		}
		if sender != nil { // a Tell has no one to answer
			c.Send(sender, reply)
		}
	}) {
		c.Respond(reply)
	}
}

// flush writes every queued change in one transaction that first checks
// the epoch, so a stale activation cannot write, and reports back with Done.
func (b *Committer) flush(c actor.Context) {
	ops := b.queued
	b.queued = nil
	b.inFlight = true
	b.flying, b.next = b.next, nil
	if b.Flushed != nil {
		b.Flushed(len(ops))
	}
	self, root := c.Self(), c.ActorSystem().Root
	j := job{calendar: b.Calendar, epoch: b.Epoch, ops: ops, deadline: time.Now().Add(b.Timeout),
		done: func(err error) { root.Send(self, Done{ops: ops, err: err}) }}
	if b.Writer != nil {
		b.Writer.submit(j)
		return
	}
	store := b.Store
	go func() { j.done(writeAlone(store, j)) }()
}

// Done takes a batch's outcome. On success it returns the batch's ops for
// the actor to answer, and starts the next batch if changes queued
// meanwhile. On failure nothing in memory can be trusted (later changes
// may build on the failed ones): it returns the batch's ops and every
// queued one, all to be refused as retryable, with the error.
func (b *Committer) Done(c actor.Context, d Done) ([]Op, error) {
	b.inFlight = false
	if d.err != nil {
		ops := append(d.ops, b.queued...)
		b.queued = nil
		waiters := append(b.flying, b.next...)
		b.flying, b.next = nil, nil
		return answerAfter(ops, waiters), d.err
	}
	waiters := b.flying
	b.flying = nil
	if len(b.queued) > 0 {
		b.flush(c)
	}
	return answerAfter(d.ops, waiters), nil
}

// answerAfter makes the last op's Reply also answer the waiters, after
// the batch's own callers.
func answerAfter(ops []Op, waiters []func(error)) []Op {
	if len(waiters) == 0 {
		return ops
	}
	last := &ops[len(ops)-1]
	reply := last.Reply
	last.Reply = func(err error) {
		reply(err)
		for _, w := range waiters {
			w(err)
		}
	}
	return ops
}
