// Package resource holds the resource actor: the single writer of one
// shared resource's calendar (a treatment room for one, a sauna for four).
// A booking that needs a staff member and a resource first claims the
// resource here for a short while, then holds the staff member's slot with
// that staff member's schedule actor, then tells this actor to track the
// appointment instead of the claim (or to release the claim when the staff
// member was taken). Neither actor ever waits for the other.
//
// Like a schedule actor it decides in memory (pending claims count as
// taken), writes by group commit under the calendar's epoch fence, answers
// a claim only once it is durable, and retires after a failed write.
package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/persistence"
)

// Config tunes the resource actors.
type Config struct {
	// ClaimTTL is how long a claim blocks a unit unless Track replaces it
	// (30s). It must exceed the schedule actors' ClaimMargin plus the time
	// a request takes from the claim to its staff member's actor.
	ClaimTTL     time.Duration
	Horizon      time.Duration // how far ahead appointments are loaded (90 days)
	IdleAfter    time.Duration // passivate after this long without a message (5m)
	WriteTimeout time.Duration // bound on one group-commit transaction (10s)
}

// Deps are what every resource actor of a node shares.
type Deps struct {
	Store   persistence.Store
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	Config  Config
	// Fence issues activation epochs (placement.go); nil: the database.
	Fence Fence
}

func (d Deps) withDefaults() Deps {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.Config.ClaimTTL, 30*time.Second)
	def(&d.Config.Horizon, 90*24*time.Hour)
	def(&d.Config.IdleAfter, 5*time.Minute)
	def(&d.Config.WriteTimeout, 10*time.Second)
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return d
}

// CalendarID names a resource's calendar in the fencing table.
func CalendarID(resourceID string) string { return "resource/" + resourceID }

// resourceActor is one activation of a resource's calendar.
type resourceActor struct {
	deps       Deps
	resourceID string
	epoch      int64
	capacity   int
	// appts holds every appointment with this resource in the loaded
	// window, whatever its status, so a late Track of an older version is
	// recognised; only live ones use the resource.
	appts   map[string]persistence.Appointment
	claims  map[string]persistence.ResourceClaim // by appointment id
	loadErr error

	commits  batch.Committer // group commit of accepted changes
	stopping bool
}

func newActor(deps Deps, resourceID string) actor.Producer {
	return func() actor.Actor { return &resourceActor{deps: deps, resourceID: resourceID} }
}

// Receive is the actor's one message switch, lifecycle first.
func (a *resourceActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.deps.Metrics.live.Inc()
		if a.loadErr = a.activate(); a.loadErr != nil {
			a.deps.Log.Warn("resource: activation failed", "resource", a.resourceID, "err", a.loadErr)
			a.retire(c)
		}
		c.SetReceiveTimeout(a.deps.Config.IdleAfter)
	case *actor.Stopped:
		a.deps.Metrics.live.Dec()
	case *actor.ReceiveTimeout:
		if !a.commits.Busy() {
			a.retire(c)
		}
	case directory.Stop:
		a.stopping = true
		a.stopIfDone(c)
	case batch.Done:
		a.finishBatch(c, m)
	case *Claim:
		a.guard(c, m, func() { a.claim(c, m) })
	case *Release:
		a.guard(c, m, func() { a.release(c, m) })
	case *Track:
		a.guard(c, m, func() { a.track(c, m) })
	case *FullQuery:
		a.guard(c, m, func() { a.full(c, m) })
	}
}

// guard refuses requests the actor cannot decide: its calendar did not
// load, or it is retiring (then the request goes back to the directory for
// the next activation).
func (a *resourceActor) guard(c actor.Context, msg any, do func()) {
	switch {
	case a.loadErr != nil && errors.Is(a.loadErr, ErrUnknownResource):
		c.Respond(refusal(msg, ErrUnknownResource))
	case a.loadErr != nil:
		c.Respond(refusal(msg, fmt.Errorf("%w: calendar did not load", ErrRetry)))
	case a.stopping:
		if !directory.Handoff(c, a.resourceID) {
			c.Respond(refusal(msg, ErrRetry))
		}
	default:
		do()
	}
}

// activate takes a new epoch, which fences every older activation, and
// only then loads the resource, its appointments and unexpired claims.
func (a *resourceActor) activate() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.WriteTimeout)
	defer cancel()
	now := a.deps.Now()
	return a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		epoch, err := a.deps.takeEpoch(ctx, tx, CalendarID(a.resourceID))
		if err != nil {
			return err
		}
		r, err := tx.ResourceGet(ctx, a.resourceID)
		if errors.Is(err, persistence.ErrNotFound) || (err == nil && !r.Active) {
			return ErrUnknownResource
		}
		if err != nil {
			return err
		}
		from, to := now.Add(-48*time.Hour), now.Add(a.deps.Config.Horizon+48*time.Hour)
		appts, err := tx.AppointmentList(ctx, persistence.AppointmentRange{ResourceID: a.resourceID, From: from, To: to})
		if err != nil {
			return err
		}
		claims, err := tx.ResourceClaimList(ctx, a.resourceID, from, to, now)
		if err != nil {
			return err
		}
		a.epoch, a.capacity = epoch, r.Capacity
		a.commits = batch.Committer{Store: a.deps.Store, Calendar: CalendarID(a.resourceID), Epoch: epoch,
			Timeout: a.deps.Config.WriteTimeout}
		a.appts = make(map[string]persistence.Appointment, len(appts))
		for _, ap := range appts {
			a.appts[ap.ID] = ap
		}
		a.claims = make(map[string]persistence.ResourceClaim, len(claims))
		for _, cl := range claims {
			a.claims[cl.AppointmentID] = cl
		}
		return nil
	})
}

// finishBatch answers a batch's callers. After a failure every waiting
// change is refused as retryable and the actor retires; the next request
// loads the truth.
func (a *resourceActor) finishBatch(c actor.Context, d batch.Done) {
	ops, err := a.commits.Done(c, d)
	if err == nil {
		for _, o := range ops {
			o.Reply(nil)
			a.deps.Metrics.decided(o.Kind, "ok")
		}
		a.stopIfDone(c)
		return
	}
	reason := "write_failed"
	if errors.Is(err, persistence.ErrFenced) {
		reason = "fenced"
		a.deps.Metrics.fenced.Inc()
	}
	a.deps.Log.Warn("resource: batch failed; stopping", "resource", a.resourceID, "epoch", a.epoch, "reason", reason, "err", err)
	for _, o := range ops {
		o.Reply(fmt.Errorf("%w: %s", ErrRetry, reason))
		a.deps.Metrics.decided(o.Kind, reason)
	}
	a.stopping = true
	a.retire(c)
}

// retire asks the directory to replace this activation.
func (a *resourceActor) retire(c actor.Context) { directory.Retire(c, a.resourceID) }

// stopIfDone stops a stopping actor once nothing waits for a write.
func (a *resourceActor) stopIfDone(c actor.Context) {
	if a.stopping && !a.commits.Busy() {
		c.Stop(c.Self())
	}
}
