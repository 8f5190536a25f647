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
	// Writer writes the actors' batches together with other calendars'
	// (batch.Writer); nil: each batch alone.
	Writer *batch.Writer

	life *batch.Kind // set by withDefaults
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
	m := d.Metrics
	d.life = &batch.Kind{Name: "resource", IDKey: "resource", Log: d.Log, IdleAfter: d.Config.IdleAfter,
		Live: m.live, Fenced: m.fenced, Settled: func(o batch.Op, outcome string) { m.decided(o.Kind, outcome) },
		Refuse: refusal, ErrRetry: ErrRetry, ErrNotLoaded: fmt.Errorf("%w: calendar did not load", ErrRetry),
		ErrUnknown: ErrUnknownResource}
	return d
}

// CalendarID names a resource's calendar in the fencing table.
func CalendarID(resourceID string) string { return "resource/" + resourceID }

// resourceActor is one activation of a resource's calendar.
type resourceActor struct {
	deps       Deps
	resourceID string
	capacity   int
	// appts holds every appointment with this resource in the loaded
	// window, whatever its status, so a late Track of an older version is
	// recognised; only live ones use the resource.
	appts  map[string]persistence.Appointment
	claims map[string]persistence.ResourceClaim // by appointment id

	commits batch.Committer // group commit of accepted changes
	life    batch.Lifecycle
}

func newActor(deps Deps, resourceID string) actor.Producer {
	return func() actor.Actor {
		return &resourceActor{deps: deps, resourceID: resourceID, life: batch.NewLifecycle(deps.life, resourceID)}
	}
}

// Receive is the actor's one message switch; a.life handles the lifecycle
// (package batch).
func (a *resourceActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.life.Start(c, a.activate)
	case *Claim:
		a.life.Guard(c, func() { a.claim(c, m) })
	case *Release:
		a.life.Guard(c, func() { a.release(c, m) })
	case *Track:
		a.life.Guard(c, func() { a.track(c, m) })
	case *FullQuery:
		a.life.Guard(c, func() { a.full(c, m) })
	default:
		a.life.Receive(c, &a.commits)
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
		a.capacity = r.Capacity
		a.commits = batch.Committer{Store: a.deps.Store, Calendar: CalendarID(a.resourceID), Epoch: epoch,
			Timeout: a.deps.Config.WriteTimeout, Writer: a.deps.Writer}
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
