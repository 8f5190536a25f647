package cart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// MaxLineQty bounds one line's quantity; MaxLines the lines of a cart.
const (
	MaxLineQty = 99
	MaxLines   = 50
)

func (a *cartActor) get(c actor.Context, m *Get) *View {
	if !a.authorized(m.Auth) {
		return &View{Err: ErrNotFound}
	}
	if a.cart.State == persistence.CartOpen {
		a.touch(c)
	}
	return a.view(m.VIP)
}

func (a *cartActor) setLine(c actor.Context, m *SetLine) *View {
	ans, found, err := a.answered(m.Auth, m.Key)
	if !found && err == nil && m.Key != nil && a.authorized(m.Auth) {
		// The reservation is written before the answer is: a key this
		// cart never answered is looked for everywhere first, so one
		// reused from elsewhere changes nothing here.
		ans, found, err = a.storedAnswer(m.Key)
	}
	if err != nil && !found {
		return &View{Err: fmt.Errorf("%w: %w", ErrRetry, err)}
	}
	if found {
		if err != nil || ans.View == nil {
			return &View{Err: cmp.Or(err, keyed.ErrReused)} // the key made an order, not a view
		}
		v := *ans.View
		v.Replayed = true
		return &v
	}
	if err := a.open(m.Auth); err != nil {
		return &View{Err: err}
	}
	if m.VariantID == "" || m.Qty < 0 || m.Qty > MaxLineQty {
		return &View{Err: fmt.Errorf("%w: a line needs a variant and a quantity of 0..%d", ErrInvalid, MaxLineQty)}
	}
	a.touch(c)
	l, ok := a.lines[m.VariantID]
	switch {
	case m.Qty == 0 && ok:
		ctx, cancel := a.ctx()
		defer cancel()
		r, err := a.inv.Release(ctx, m.VariantID, &inventory.Release{ReservationID: l.reservationID,
			Reason: "line removed", ActorID: a.actorID()})
		if err != nil || r.Err != nil {
			return &View{Err: fmt.Errorf("%w: release not confirmed", ErrRetry)}
		}
		delete(a.lines, m.VariantID)
	case m.Qty == 0:
	default:
		if !ok {
			if len(a.lines) >= MaxLines {
				return &View{Err: fmt.Errorf("%w: at most %d lines", ErrInvalid, MaxLines)}
			}
			l = &line{variantID: m.VariantID}
		}
		before := l.qty
		if err := a.reserve(l, m.Qty); err != nil {
			return &View{Err: err}
		}
		a.lines[m.VariantID] = l
		v := a.keyedView(m.VIP, m.Key)
		if errors.Is(v.Err, money.ErrOutOfRange) {
			a.undoLine(l, before)
		}
		return v
	}
	return a.keyedView(m.VIP, m.Key)
}

// undoLine puts line l back to the quantity it had before a change whose
// cart total is not an amount (money.Max), so a refused change holds no
// stock: a shrink back, or the release of a line that was new (or whose
// reservation lapsed meanwhile, so it cannot shrink back).
func (a *cartActor) undoLine(l *line, before int64) {
	if before > 0 {
		if a.reserve(l, before) == nil {
			return
		}
	}
	ctx, cancel := a.ctx()
	defer cancel()
	_, _ = a.inv.Release(ctx, l.variantID, &inventory.Release{ReservationID: l.reservationID,
		Reason: "cart total out of range", ActorID: a.actorID()})
	delete(a.lines, l.variantID)
}

// storedAnswer is the answer stored under key by anyone (keyed.Stored).
func (a *cartActor) storedAnswer(key *keyed.Key) (ans Answer, found bool, err error) {
	ctx, cancel := a.ctx()
	defer cancel()
	err = a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var serr error
		ans, found, serr = keyed.Stored[Answer](ctx, tx, a.deps.Keys, key, a.deps.Now())
		return serr
	})
	return ans, found, err
}

// answered is the answer this cart gave under key to who, if any.
func (a *cartActor) answered(who Auth, key *keyed.Key) (Answer, bool, error) {
	if key == nil || !a.authorized(who) {
		return Answer{}, false, nil
	}
	return a.keys.Find(key, a.deps.Now())
}

func (a *cartActor) actorID() string {
	if a.cart.OwnerID != "" {
		return a.cart.OwnerID
	}
	return "anonymous"
}

// surrender empties an anonymous cart into another, once: a retry after
// success finds it merged into the same cart and answers with no lines.
func (a *cartActor) surrender(m *Surrender) *SurrenderReply {
	if !a.authorized(m.Auth) || a.cart.OwnerID != "" {
		return &SurrenderReply{Err: ErrNotFound}
	}
	if a.cart.State == persistence.CartMerged && a.cart.MergedInto == m.IntoCartID {
		return &SurrenderReply{Lines: map[string]int64{}}
	}
	if err := a.open(m.Auth); err != nil {
		return &SurrenderReply{Err: err}
	}
	out := make(map[string]int64, len(a.lines))
	for v, l := range a.lines {
		out[v] = l.qty
	}
	a.releaseAll("merged into the client's cart")
	a.cart.State, a.cart.MergedInto, a.cart.UpdatedAt = persistence.CartMerged, m.IntoCartID, a.deps.Now()
	if err := a.save(); err != nil {
		return &SurrenderReply{Err: err}
	}
	return &SurrenderReply{Lines: out}
}

// catalogue reads the variants (and their products) of the given ids.
func (a *cartActor) catalogue(ctx context.Context, tx persistence.Tx, ids []string) (map[string]persistence.Variant, map[string]persistence.Product, error) {
	vs := make(map[string]persistence.Variant, len(ids))
	ps := map[string]persistence.Product{}
	for _, id := range ids {
		v, err := tx.VariantGet(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		vs[id] = v
		if _, ok := ps[v.ProductID]; !ok {
			p, err := tx.ProductGet(ctx, v.ProductID)
			if err != nil {
				return nil, nil, err
			}
			ps[p.ID] = p
		}
	}
	return vs, ps, nil
}

// priced builds the cart's lines at the prices the client pays.
func (a *cartActor) priced(vs map[string]persistence.Variant, ps map[string]persistence.Product, vip bool) []Line {
	out := make([]Line, 0, len(a.lines))
	for id, l := range a.lines {
		v := vs[id]
		name := ps[v.ProductID].Name
		if v.SKU != "" {
			name += " (" + v.SKU + ")"
		}
		out = append(out, Line{VariantID: id, ProductID: v.ProductID, SKU: v.SKU, Name: name, Qty: l.qty,
			UnitPriceMinor: v.PriceFor(vip), TaxRateBP: v.TaxRateBP, ReservationID: l.reservationID, ExpiresAt: l.expiresAt})
	}
	slices.SortFunc(out, func(x, y Line) int { return strings.Compare(x.VariantID, y.VariantID) })
	return out
}

func (a *cartActor) view(vip bool) *View { return a.keyedView(vip, nil) }

// keyedView prices the cart and, under key, remembers the view in the
// transaction that reads the prices.
func (a *cartActor) keyedView(vip bool, key *keyed.Key) *View {
	ctx, cancel := a.ctx()
	defer cancel()
	ids := make([]string, 0, len(a.lines))
	for id := range a.lines {
		ids = append(ids, id)
	}
	now := a.deps.Now()
	var v *View
	if err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		vs, ps, err := a.catalogue(ctx, tx, ids)
		if err != nil {
			return err
		}
		v = &View{Cart: a.cart, Lines: a.priced(vs, ps, vip)}
		var b money.Bill
		for _, l := range v.Lines {
			b.Line(l.Qty, l.UnitPriceMinor, l.TaxRateBP)
		}
		if v.SubtotalMinor, v.TaxMinor, v.TotalMinor, err = b.Totals(0); err != nil {
			return err
		}
		if key == nil {
			return nil
		}
		return keyed.Write(ctx, tx, a.deps.Keys, a.keys.Owner(), key, Answer{View: v}, now)
	}); errors.Is(err, money.ErrOutOfRange) {
		return &View{Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
	} else if err != nil {
		return &View{Err: fmt.Errorf("%w: %w", ErrRetry, err)}
	}
	a.keys.Keep(key, Answer{View: v}, now)
	return v
}

// checkout turns the cart into an order in one transaction.
func (a *cartActor) checkout(c actor.Context, m *Checkout) (reply *CheckoutReply) {
	start := time.Now() // latency on the real clock; deps.Now is business time
	defer func() { a.deps.Metrics.checkedOut(reply.Err, time.Since(start)) }()
	if !a.authorized(m.Auth) {
		return &CheckoutReply{Err: ErrNotFound}
	}
	if ans, found, err := a.answered(m.Auth, m.Key); found {
		if err != nil || ans.Order == nil {
			return &CheckoutReply{Err: cmp.Or(err, keyed.ErrReused)} // the key set a line, not an order
		}
		return &CheckoutReply{Order: *ans.Order, Replayed: true}
	}
	if a.cart.State == persistence.CartCheckedOut && a.cart.OrderID == m.OrderID && m.OrderID != "" {
		return a.existingOrder(m.OrderID) // an idempotent retry
	}
	if err := a.open(m.Auth); err != nil {
		return &CheckoutReply{Err: err}
	}
	if a.cart.OwnerID == "" {
		return &CheckoutReply{Err: ErrSignInRequired}
	}
	if m.OrderID == "" || m.CreditMinor < 0 {
		return &CheckoutReply{Err: fmt.Errorf("%w: an order id and a non-negative credit are required", ErrInvalid)}
	}
	if len(a.lines) == 0 {
		return &CheckoutReply{Err: ErrEmpty}
	}
	had := len(a.lines)
	a.touch(c) // reservations near their end are refreshed first
	if len(a.lines) < had {
		// A line lapsed and its units went elsewhere: the client must see
		// the cart as it now is before paying for less than they chose.
		return &CheckoutReply{Err: fmt.Errorf("%w: %d line(s) could not be held", ErrReservationLapsed, had-len(a.lines))}
	}
	now := a.deps.Now()
	ids := make([]string, 0, len(a.lines))
	for id := range a.lines {
		ids = append(ids, id)
	}
	ctx, cancel := a.ctx()
	defer cancel()
	var order persistence.Order
	var cart persistence.Cart
	err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		vs, ps, err := a.catalogue(ctx, tx, ids)
		if err != nil {
			return err
		}
		order = persistence.Order{ID: m.OrderID, ClientID: a.cart.OwnerID, CartID: a.id,
			Status: persistence.OrderPendingPayment, Fulfilment: m.Fulfilment, Shipping: m.Shipping,
			CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(a.deps.Config.PaymentWindow)}
		for _, l := range a.priced(vs, ps, m.VIP) {
			if _, err := tx.ReservationConsume(ctx, l.ReservationID, m.OrderID, a.cart.OwnerID, now); errors.Is(err, persistence.ErrConflict) {
				return fmt.Errorf("%w: line %s: %w", ErrReservationLapsed, l.VariantID, err)
			} else if err != nil {
				return err
			}
			order.Lines = append(order.Lines, persistence.OrderLine{ID: ulid.Make().String(), VariantID: l.VariantID,
				SKU: l.SKU, Name: l.Name, Qty: int(l.Qty), UnitPriceMinor: l.UnitPriceMinor, TaxRateBps: l.TaxRateBP,
				ReservationID: l.ReservationID})
		}
		if err := order.ComputeTotals(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if credit := min(m.CreditMinor, order.TotalMinor); credit > 0 {
			if err := tx.CreditSpend(ctx, order.ClientID, credit, order.ID, now); err != nil {
				return err
			}
			order.CreditAppliedMinor = credit
			if err := order.ComputeTotals(); err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
		}
		if err := tx.OrderCreate(ctx, order); err != nil {
			return err
		}
		closed := a.cart
		closed.State, closed.OrderID, closed.UpdatedAt = persistence.CartCheckedOut, order.ID, now
		if cart, err = tx.CartPut(ctx, closed); err != nil || m.Key == nil {
			return err
		}
		return keyed.Write(ctx, tx, a.deps.Keys, a.keys.Owner(), m.Key, Answer{Order: &order}, now)
	})
	if err != nil {
		if errors.Is(err, ErrReservationLapsed) {
			// Memory disagrees with the store: read the truth.
			if lerr := a.load(); lerr != nil {
				a.loadErr = lerr
			}
		}
		return &CheckoutReply{Err: checkoutError(err)}
	}
	a.cart = cart
	a.keys.Keep(m.Key, Answer{Order: &order}, now)
	for v, l := range a.lines {
		a.deps.Inventory.Tell(v, &inventory.Consumed{ReservationIDs: []string{l.reservationID}})
		delete(a.lines, v)
	}
	return &CheckoutReply{Order: order}
}

// ErrReservationLapsed: a line's reservation expired or was released
// before checkout could consume it; nothing was written.
var ErrReservationLapsed = errors.New("cart: a reservation lapsed; check the cart and retry")

func checkoutError(err error) error {
	switch {
	case errors.Is(err, ErrReservationLapsed):
		return err
	case errors.Is(err, persistence.ErrInsufficientCredit):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, persistence.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return fmt.Errorf("%w: %w", ErrRetry, err)
}

func (a *cartActor) existingOrder(id string) *CheckoutReply {
	ctx, cancel := a.ctx()
	defer cancel()
	var o persistence.Order
	if err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		o, err = tx.OrderGet(ctx, id)
		return err
	}); err != nil {
		return &CheckoutReply{Err: fmt.Errorf("%w: %w", ErrRetry, err)}
	}
	return &CheckoutReply{Order: o}
}
