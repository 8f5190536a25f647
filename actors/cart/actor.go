// Package cart holds the cart actor: the single writer of one shopping
// cart. Each line of a cart is one reservation, decided by the variant's
// inventory actor and held with a TTL; the cart refreshes its
// reservations while it is active, expires by itself (a timer) and then
// releases them. Should the actor be passivated first, the reservations
// still lapse on their own, and the next activation finds the cart past
// its expiry and closes it.
//
// A cart serves one client, so its requests are serialized anyway: the
// actor asks the inventory actors and writes its row synchronously,
// bounded by Config.CallTimeout. Inventory actors never ask carts, so the
// waits cannot form a cycle.
//
// Checkout is one store transaction: every reservation is consumed
// (conditionally: live and unexpired), client credit spent, the order
// created and the cart closed. A reservation that lapsed and was released
// meanwhile makes the whole transaction fail, so checkout racing expiry
// can neither lose nor double-count a unit.
package cart

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// Inventory is the cart's door to the inventory actors (an
// *inventory.Directory; in a cluster, one that reaches each variant's
// owner). Carts ask through an inventory.Client over it; Tell sends a
// notice without waiting for its reply.
type Inventory interface {
	door.Door
	Tell(variantID string, msg any)
}

// Config tunes the cart actors.
type Config struct {
	AnonymousTTL  time.Duration // an anonymous cart's life without activity (30m)
	SignedInTTL   time.Duration // a client's cart's life without activity (2h)
	PaymentWindow time.Duration // how long a new order waits for payment (1h)
	IdleAfter     time.Duration // passivate after this long without a message (5m)
	CallTimeout   time.Duration // bound on one inventory ask or store write (5s)
}

// Deps are what every cart actor of a node shares.
type Deps struct {
	Store     persistence.Store
	Inventory Inventory
	Now       func() time.Time
	Log       *slog.Logger
	Metrics   *Metrics
	Config    Config
	// Keys tunes the answers remembered under clients' Idempotency-Keys.
	Keys keyed.Config
}

func (d Deps) withDefaults() Deps {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.Config.AnonymousTTL, 30*time.Minute)
	def(&d.Config.SignedInTTL, 2*time.Hour)
	def(&d.Config.PaymentWindow, time.Hour)
	def(&d.Config.IdleAfter, 5*time.Minute)
	def(&d.Config.CallTimeout, 5*time.Second)
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return d
}

// HashToken is how an anonymous cart's token is kept: SHA-256 (the token
// is 256 random bits, so no salt or stretching is needed).
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// line is one reservation of the cart.
type line struct {
	variantID     string
	reservationID string
	qty           int64
	expiresAt     time.Time
}

// expireTick is the cart's own timer firing.
type expireTick struct{}

type cartActor struct {
	deps    Deps
	inv     *inventory.Client // deps.Inventory, typed
	id      string
	cart    persistence.Cart // Version 0: not created
	lines   map[string]*line // by variant id
	keys    keyed.Book[Answer]
	loadErr error
	timer   *time.Timer
}

func newActor(deps Deps, id string) actor.Producer {
	return func() actor.Actor { return &cartActor{deps: deps, inv: inventory.NewClient(deps.Inventory), id: id} }
}

// Receive is the actor's one message switch, lifecycle first.
func (a *cartActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.loadErr = a.load()
		if a.loadErr != nil {
			a.deps.Log.Warn("cart: load failed", "err", a.loadErr)
		}
		a.expireIfDue(c, true)
		c.SetReceiveTimeout(a.deps.Config.IdleAfter)
	case *actor.Stopped:
		if a.timer != nil {
			a.timer.Stop()
		}
	case *actor.ReceiveTimeout:
		directory.Retire(c, a.id)
	case directory.Stop:
		c.Stop(c.Self())
	case expireTick:
		a.expireIfDue(c, true)
	case *Create:
		a.guard(c, m, func() { c.Respond(a.create(c, m)) })
	case *Get:
		a.guard(c, m, func() { c.Respond(a.get(c, m)) })
	case *SetLine:
		a.guard(c, m, func() { c.Respond(a.setLine(c, m)) })
	case *Surrender:
		a.guard(c, m, func() { c.Respond(a.surrender(m)) })
	case *Checkout:
		a.guard(c, m, func() { c.Respond(a.checkout(c, m)) })
	}
}

func (a *cartActor) guard(c actor.Context, msg any, do func()) {
	if a.loadErr != nil {
		c.Respond(refusal(msg, fmt.Errorf("%w: cart did not load", ErrRetry)))
		directory.Retire(c, a.id)
		return
	}
	a.expireIfDue(c, false) // a cart past its time is closed before anything else
	do()
}

func (a *cartActor) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.deps.Config.CallTimeout)
}

// load reads the cart and its live reservations; an unknown id is a cart
// not created yet.
func (a *cartActor) load() error {
	ctx, cancel := a.ctx()
	defer cancel()
	a.lines = map[string]*line{}
	return a.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		clear(a.lines)
		if a.keys, err = keyed.Load[Answer](ctx, tx, a.deps.Keys, "cart/"+a.id, a.deps.Now()); err != nil {
			return err
		}
		c, err := tx.CartGet(ctx, a.id)
		if errors.Is(err, persistence.ErrNotFound) {
			a.cart = persistence.Cart{}
			return nil
		}
		if err != nil {
			return err
		}
		rs, err := tx.ReservationListByCart(ctx, a.id)
		if err != nil {
			return err
		}
		a.cart = c
		for _, r := range rs {
			a.lines[r.VariantID] = &line{variantID: r.VariantID, reservationID: r.ID, qty: r.Qty, expiresAt: r.ExpiresAt}
		}
		return nil
	})
}

// authorized reports whether who may use the cart; the token comparison
// takes constant time.
func (a *cartActor) authorized(who Auth) bool {
	switch {
	case a.cart.Version == 0:
		return false
	case a.cart.OwnerID != "":
		return subtle.ConstantTimeCompare([]byte(who.Subject), []byte(a.cart.OwnerID)) == 1
	default:
		return who.Token != "" && subtle.ConstantTimeCompare(HashToken(who.Token), a.cart.TokenHash) == 1
	}
}

// open checks that who may use the cart and that it is still open.
func (a *cartActor) open(who Auth) error {
	if !a.authorized(who) {
		return ErrNotFound
	}
	if a.cart.State != persistence.CartOpen {
		return fmt.Errorf("%w: %s", ErrClosed, a.cart.State)
	}
	return nil
}

func (a *cartActor) ttl() time.Duration {
	if a.cart.OwnerID != "" {
		return a.deps.Config.SignedInTTL
	}
	return a.deps.Config.AnonymousTTL
}

func (a *cartActor) create(c actor.Context, m *Create) *View {
	if a.cart.Version != 0 {
		return &View{Err: ErrExists}
	}
	if (m.OwnerID == "") == (len(m.TokenHash) == 0) {
		return &View{Err: fmt.Errorf("%w: a cart has an owner or a token, not both", ErrInvalid)}
	}
	now := a.deps.Now()
	a.cart = persistence.Cart{ID: a.id, OwnerID: m.OwnerID, TokenHash: m.TokenHash, State: persistence.CartOpen,
		CreatedAt: now, UpdatedAt: now}
	a.cart.ExpiresAt = now.Add(a.ttl())
	if err := a.save(); err != nil {
		a.cart = persistence.Cart{}
		return &View{Err: err}
	}
	a.schedule(c)
	return a.view(m.VIP)
}

// save writes the cart row.
func (a *cartActor) save() error {
	ctx, cancel := a.ctx()
	defer cancel()
	var stored persistence.Cart
	err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		stored, err = tx.CartPut(ctx, a.cart)
		return err
	})
	switch {
	case errors.Is(err, persistence.ErrConflict) && a.cart.Version == 0:
		return ErrExists // the id, or the owner's one open cart, is taken
	case err != nil:
		return fmt.Errorf("%w: %w", ErrRetry, err)
	}
	a.cart = stored
	return nil
}

// schedule arms the expiry timer for the cart's ExpiresAt.
func (a *cartActor) schedule(c actor.Context) {
	if a.timer != nil {
		a.timer.Stop()
	}
	self, root := c.Self(), c.ActorSystem().Root
	a.timer = time.AfterFunc(max(a.cart.ExpiresAt.Sub(a.deps.Now()), 0), func() { root.Send(self, expireTick{}) })
}

// expireIfDue closes an open cart whose time has passed and releases its
// reservations (they hold nothing already; this writes it down). Otherwise
// it re-arms the timer when asked (at activation, and when the timer fired
// early because activity extended the cart).
func (a *cartActor) expireIfDue(c actor.Context, rearm bool) {
	if a.cart.State != persistence.CartOpen || a.cart.Version == 0 {
		return
	}
	now := a.deps.Now()
	if a.cart.ExpiresAt.After(now) {
		if rearm {
			a.schedule(c)
		}
		return
	}
	a.releaseAll("cart expired")
	a.cart.State, a.cart.UpdatedAt = persistence.CartExpired, now
	if err := a.save(); err != nil {
		a.deps.Log.Warn("cart: expiry not written; retrying at next activation", "err", err)
		directory.Retire(c, a.id)
		return
	}
	a.deps.Metrics.expiries.Inc()
}

// releaseAll gives every line's units back, best effort: a release that
// does not arrive lapses by itself.
func (a *cartActor) releaseAll(reason string) {
	for v, l := range a.lines {
		ctx, cancel := a.ctx()
		_, _ = a.inv.Release(ctx, v, &inventory.Release{ReservationID: l.reservationID, Reason: reason, ActorID: "cart"})
		cancel()
		delete(a.lines, v)
	}
}

// touch extends the cart's life on activity and refreshes reservations
// that are past half their life or would lapse before the cart. A lapsed reservation is made anew; one
// that cannot be (the units went to someone else) drops its line.
func (a *cartActor) touch(c actor.Context) {
	now := a.deps.Now()
	ttl := a.ttl()
	if a.cart.ExpiresAt.Sub(now) < ttl/2 {
		a.cart.ExpiresAt, a.cart.UpdatedAt = now.Add(ttl), now
		if err := a.save(); err != nil {
			a.deps.Log.Warn("cart: refresh not written", "err", err)
		}
		a.schedule(c)
	}
	for v, l := range a.lines {
		// A line must not lapse while its cart is open, idle or not.
		if l.expiresAt.Sub(now) >= ttl/2 && !l.expiresAt.Before(a.cart.ExpiresAt) {
			continue
		}
		if err := a.reserve(l, l.qty); err != nil && !errors.Is(err, ErrRetry) {
			delete(a.lines, v)
		}
	}
}

// reserve asks l's inventory actor for qty units under l's reservation,
// making a new one when it lapsed, and updates l on success.
func (a *cartActor) reserve(l *line, qty int64) error {
	ask := func(id string, resize bool) (*inventory.ReserveReply, error) {
		ctx, cancel := a.ctx()
		defer cancel()
		r, err := a.inv.Reserve(ctx, l.variantID, &inventory.Reserve{ReservationID: id, CartID: a.id, Qty: qty,
			TTL: a.ttl(), Resize: resize, ActorID: cmp.Or(a.cart.OwnerID, "anonymous")})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRetry, err)
		}
		return r, nil
	}
	id, resize := l.reservationID, l.reservationID != ""
	if !resize {
		id = ulid.Make().String()
	}
	r, err := ask(id, resize)
	if err == nil && errors.Is(r.Err, inventory.ErrExpired) {
		id = ulid.Make().String()
		r, err = ask(id, false)
	}
	if err != nil {
		return err
	}
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, inventory.ErrOutOfStock):
		return fmt.Errorf("%w: %d available", ErrOutOfStock, max(r.Available, 0))
	case errors.Is(r.Err, inventory.ErrUnknownVariant):
		return ErrUnknownVariant
	case errors.Is(r.Err, inventory.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, r.Err)
	default:
		return fmt.Errorf("%w: %w", ErrRetry, r.Err)
	}
	// The inventory names the reservation that holds the units: the
	// cart's own one of the variant when another activation of this cart
	// made it first (an older node's reply names none).
	l.reservationID, l.qty, l.expiresAt = cmp.Or(r.ReservationID, id), qty, r.ExpiresAt
	return nil
}
