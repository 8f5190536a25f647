// Package inventory holds the inventory actor: the single writer of one
// product variant's stock. Every reservation of the variant is decided
// here, in memory: the units available at now are on hand minus the units
// held by unexpired reservations (pending writes included), so an expired
// reservation frees its units the instant it expires, with no sweep; its
// release is written lazily, the next time the actor looks.
//
// Like the schedule actors it writes by group commit (actors/batch) under
// an epoch taken from the database when it activates (calendar
// "inventory/<variant>"), answers only once durable, and retires after a
// failed or fenced write so that the next activation loads the truth.
//
// Checkout consumes reservations outside the actor, in its own
// transaction (persistence.ReservationConsume is conditional, so it never
// races a release into a lost or double-counted unit) and then tells the
// actor with Consumed. Should that notice be late, the SQL of
// ReservationPut re-checks stock, so stale memory cannot oversell: the
// write fails and the actor reloads.
package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Config tunes the inventory actors.
type Config struct {
	IdleAfter    time.Duration // passivate after this long without a message (5m)
	WriteTimeout time.Duration // bound on one group-commit transaction (10s)
	MaxTTL       time.Duration // longest reservation accepted (24h)
}

// Deps are what every inventory actor of a node shares.
type Deps struct {
	Store   persistence.Store
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	Config  Config
	// Writer writes the actors' batches together with other calendars'
	// (batch.Writer); nil: each batch alone.
	Writer *batch.Writer
	// Fence issues activation epochs in the activating transaction: in a
	// cluster the variant's partition lease epoch, so an activation on a
	// node whose lease was taken over is refused instead of fencing out
	// the owner's. Nil: the database issues them (CalendarActivate).
	Fence func(ctx context.Context, tx persistence.Tx, calendarID string) (int64, error)

	life *batch.Kind // set by withDefaults
}

func (d Deps) withDefaults() Deps {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.Config.IdleAfter, 5*time.Minute)
	def(&d.Config.WriteTimeout, 10*time.Second)
	def(&d.Config.MaxTTL, 24*time.Hour)
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	m := d.Metrics
	d.life = &batch.Kind{Name: "inventory", IDKey: "variant", Log: d.Log, IdleAfter: d.Config.IdleAfter,
		Live: m.live, Fenced: m.fenced, Settled: func(o batch.Op, outcome string) {
			// A granted reservation is counted by its own reply.
			if o.Kind == "reserve" && outcome != "ok" {
				m.reserved(outcome)
			}
		},
		Refuse: refusal, ErrRetry: ErrRetry, ErrNotLoaded: fmt.Errorf("%w: stock did not load", ErrRetry),
		ErrUnknown: ErrUnknownVariant}
	return d
}

// inventoryActor is one activation of a variant's stock.
type inventoryActor struct {
	deps      Deps
	variantID string
	variant   persistence.Variant
	onHand    int64
	// res holds the reservations believed live, by id; one past its
	// expiry holds nothing and is dropped (and released) when seen.
	res map[string]persistence.Reservation

	commits batch.Committer
	life    batch.Lifecycle
}

func newActor(deps Deps, variantID string) actor.Producer {
	return func() actor.Actor {
		return &inventoryActor{deps: deps, variantID: variantID, life: batch.NewLifecycle(deps.life, variantID)}
	}
}

// Receive is the actor's one message switch; a.life handles the lifecycle
// (package batch).
func (a *inventoryActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.life.Start(c, a.activate)
	case *Reserve:
		a.life.Guard(c, func() { a.reserve(c, m) })
	case *Release:
		a.life.Guard(c, func() { a.release(c, m) })
	case *Consumed:
		a.life.Guard(c, func() { a.consumed(c, m) })
	case *Move:
		a.life.Guard(c, func() { a.move(c, m) })
	case *LevelQuery:
		a.life.Guard(c, func() {
			a.dropLapsed(c)
			c.Respond(a.level())
		})
	default:
		a.life.Receive(c, &a.commits)
	}
}

// activate takes a new epoch, which fences every older activation, and
// then loads the variant, its stock and its live reservations.
func (a *inventoryActor) activate() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.WriteTimeout)
	defer cancel()
	calendar := persistence.InventoryCalendarID(a.variantID)
	return a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		activate := tx.CalendarActivate
		if a.deps.Fence != nil {
			activate = func(ctx context.Context, calendar string) (int64, error) { return a.deps.Fence(ctx, tx, calendar) }
		}
		epoch, err := activate(ctx, calendar)
		if err != nil {
			return err
		}
		v, err := tx.VariantGet(ctx, a.variantID)
		if errors.Is(err, persistence.ErrNotFound) {
			return ErrUnknownVariant
		}
		if err != nil {
			return err
		}
		st, err := tx.StockGet(ctx, a.variantID)
		if err != nil {
			return err
		}
		live, err := tx.ReservationList(ctx, a.variantID)
		if err != nil {
			return err
		}
		a.variant, a.onHand = v, st.OnHand
		a.commits = batch.Committer{Store: a.deps.Store, Calendar: calendar, Epoch: epoch, Timeout: a.deps.Config.WriteTimeout,
			Writer: a.deps.Writer}
		a.res = make(map[string]persistence.Reservation, len(live))
		for _, r := range live {
			a.res[r.ID] = r
		}
		return nil
	})
}

// held is the units taken at now by unexpired reservations.
func (a *inventoryActor) held(now time.Time, except string) int64 {
	var n int64
	for id, r := range a.res {
		if id != except && r.ExpiresAt.After(now) {
			n += r.Qty
		}
	}
	return n
}

func (a *inventoryActor) level() *Level {
	held := a.held(a.deps.Now(), "")
	return &Level{VariantID: a.variantID, OnHand: a.onHand, Held: held, Available: a.onHand - held,
		Threshold: a.variant.LowStockThreshold}
}

func (a *inventoryActor) reserve(c actor.Context, m *Reserve) {
	now := a.deps.Now()
	if m.ReservationID == "" || m.CartID == "" || m.Qty < 1 || m.TTL <= 0 || m.TTL > a.deps.Config.MaxTTL {
		a.deps.Metrics.reserved("invalid")
		c.Respond(&ReserveReply{Err: fmt.Errorf("%w: a reservation needs ids, a positive quantity and a TTL up to %s",
			ErrInvalid, a.deps.Config.MaxTTL)})
		return
	}
	if !a.variant.Active {
		a.deps.Metrics.reserved("invalid")
		c.Respond(&ReserveReply{Err: ErrUnknownVariant})
		return
	}
	a.dropLapsed(c)
	id := m.ReservationID
	old, known := a.res[id]
	if !known && !m.Resize {
		old, known = a.cartReservation(m.CartID)
		id = cmp.Or(old.ID, id)
	}
	if known && old.CartID != m.CartID {
		a.deps.Metrics.reserved("invalid")
		c.Respond(&ReserveReply{Err: fmt.Errorf("%w: reservation %s belongs to another cart", ErrInvalid, m.ReservationID)})
		return
	}
	if !known && m.Resize {
		a.deps.Metrics.reserved("expired")
		c.Respond(&ReserveReply{Err: ErrExpired})
		return
	}
	before := a.onHand - a.held(now, "")
	free := a.onHand - a.held(now, id)
	if m.Qty > free {
		a.deps.Metrics.reserved("out_of_stock")
		// Only true once the reservations it rests on are durable.
		refusal := &ReserveReply{Available: before, Err: ErrOutOfStock}
		a.commits.Refuse(c, refusal, func(err error) { refusal.Err = fmt.Errorf("%w: %w", ErrRetry, err) })
		return
	}
	r := persistence.Reservation{ID: id, CartID: m.CartID, VariantID: a.variantID, Qty: m.Qty,
		ExpiresAt: persistence.CanonicalTime(now.Add(m.TTL)), State: persistence.ReservationLive}
	a.res[r.ID] = r // taken from now on, before it is durable
	after := free - m.Qty
	sender, actorID := c.Sender(), m.ActorID
	a.commits.Enqueue(c, batch.Op{Kind: "reserve", Start: now,
		Apply: func(ctx context.Context, tx persistence.Tx) error { return tx.ReservationPut(ctx, r, actorID, now) },
		Reply: func(err error) {
			if err == nil {
				a.deps.Metrics.reserved("granted")
			}
			c.Send(sender, &ReserveReply{ReservationID: r.ID, ExpiresAt: r.ExpiresAt, Available: after, Err: err})
		},
	})
	a.crossed(c, before, after, now)
}

// cartReservation is the live reservation cart holds of the variant, if
// any: a cart line is one reservation, so a second one the cart asks for
// (from another activation of it, or a resent line change whose earlier
// try this actor granted) is the same one.
func (a *inventoryActor) cartReservation(cart string) (persistence.Reservation, bool) {
	for _, r := range a.res {
		if r.CartID == cart {
			return r, true
		}
	}
	return persistence.Reservation{}, false
}

// crossed emits the low-stock event and counts a stock-out when the
// available units fell past the threshold or to zero.
func (a *inventoryActor) crossed(c actor.Context, before, after int64, now time.Time) {
	if before > 0 && after <= 0 {
		a.deps.Metrics.stockOuts.Inc()
	}
	thr := a.variant.LowStockThreshold
	if thr <= 0 || before <= thr || after > thr {
		return
	}
	a.deps.Metrics.lowStock.Inc()
	ev := &messages.LowStock{VariantId: a.variantID, Sku: a.variant.SKU, Available: after, Threshold: thr, OnHand: a.onHand}
	variantID := a.variantID
	a.commits.Enqueue(c, batch.Op{Kind: "low_stock", Start: now,
		Apply: func(ctx context.Context, tx persistence.Tx) error {
			out, err := persistence.NewOutboxEvent("variant/"+variantID, "", "system", ev, now)
			if err != nil {
				return err
			}
			return tx.OutboxAppend(ctx, out)
		},
		Reply: func(error) {},
	})
}

// dropLapsed forgets reservations whose time passed (they already hold
// nothing) and writes their release in the next batch. A reservation that
// checkout consumed meanwhile is not released: its units left on hand, so
// memory follows when the write reports it.
func (a *inventoryActor) dropLapsed(c actor.Context) {
	now := a.deps.Now()
	for id, r := range a.res {
		if !r.ExpiresAt.After(now) {
			delete(a.res, id)
			a.commits.Enqueue(c, a.releaseOp(r, "expired", "system", now, nil))
		}
	}
}

// releaseOp writes a reservation's release; reply may be nil.
func (a *inventoryActor) releaseOp(r persistence.Reservation, reason, actorID string, now time.Time, reply func(error)) batch.Op {
	var released bool
	return batch.Op{Kind: "release", Start: now,
		Apply: func(ctx context.Context, tx persistence.Tx) (err error) {
			released, err = tx.ReservationRelease(ctx, r.ID, actorID, reason, now)
			return err
		},
		Reply: func(err error) {
			if err == nil && !released {
				// Checkout consumed it before the release: a sale.
				a.sold(r)
			}
			if reply != nil {
				reply(err)
			}
		},
	}
}

// sold applies a consumed reservation to memory; callers remove it from
// res first, so it is applied once.
func (a *inventoryActor) sold(r persistence.Reservation) { a.onHand -= r.Qty }

func (a *inventoryActor) release(c actor.Context, m *Release) {
	a.dropLapsed(c)
	r, ok := a.res[m.ReservationID]
	if !ok {
		c.Respond(&Reply{})
		return
	}
	delete(a.res, m.ReservationID)
	reason := m.Reason
	if reason == "" {
		reason = "released"
	}
	actorID := m.ActorID
	if actorID == "" {
		actorID = "system"
	}
	sender := c.Sender()
	a.commits.Enqueue(c, a.releaseOp(r, reason, actorID, a.deps.Now(), func(err error) { c.Send(sender, &Reply{Err: err}) }))
}

func (a *inventoryActor) consumed(c actor.Context, m *Consumed) {
	for _, id := range m.ReservationIDs {
		if r, ok := a.res[id]; ok {
			delete(a.res, id)
			a.sold(r)
		}
	}
	c.Respond(&Reply{})
}

func (a *inventoryActor) move(c actor.Context, m *Move) {
	mv, delta, err := persistence.NormalizeStockMove(m.Movement)
	if err == nil && mv.VariantID != a.variantID {
		err = fmt.Errorf("%w: movement of variant %s sent to %s", persistence.ErrInvalid, mv.VariantID, a.variantID)
	}
	if err != nil {
		c.Respond(&MoveReply{Err: fmt.Errorf("%w: %w", ErrInvalid, err)})
		return
	}
	a.dropLapsed(c)
	now := a.deps.Now()
	if mv.At.IsZero() {
		mv.At = persistence.CanonicalTime(now)
	}
	held := a.held(now, "")
	before := a.onHand - held
	// Damage or a negative count may not take units a cart holds: those
	// carts were promised them.
	if delta < 0 && -delta > before {
		c.Respond(&MoveReply{Level: *a.level(), Err: ErrOutOfStock})
		return
	}
	a.onHand += delta
	lvl := *a.level()
	sender, audit := c.Sender(), m.Audit
	a.commits.Enqueue(c, batch.Op{Kind: "move", Start: now,
		Apply: func(ctx context.Context, tx persistence.Tx) error {
			if _, err := tx.StockMove(ctx, mv); err != nil || audit == nil {
				return err
			}
			return tx.AuditAppend(ctx, *audit)
		},
		Reply: func(err error) { c.Send(sender, &MoveReply{Level: lvl, Err: err}) },
	})
	a.crossed(c, before, before+delta, now)
}
