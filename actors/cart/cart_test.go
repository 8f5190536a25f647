package cart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence"
)

var t0 = time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

type fixture struct {
	store   persistence.Store
	inv     *inventory.Directory
	carts   *Directory
	metrics *Metrics
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T, st persistence.Store, now func() time.Time, cfg Config, wrap ...func(Inventory) Inventory) *fixture {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet() }))
	im, err := inventory.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cm, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.NewDirectory(sys.Root, inventory.Deps{Store: st, Now: now, Log: quiet(), Metrics: im}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var door Inventory = inv
	for _, w := range wrap {
		door = w(door)
	}
	carts, err := NewDirectory(sys.Root, Deps{Store: st, Inventory: door, Now: now, Log: quiet(), Metrics: cm, Config: cfg}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carts.Stop(5 * time.Second); inv.Stop(5 * time.Second); sys.Shutdown() })
	return &fixture{store: st, inv: inv, carts: carts, metrics: cm}
}

func (f *fixture) ask(t *testing.T, cartID string, msg any) any {
	t.Helper()
	r, err := f.carts.Ask(context.Background(), cartID, msg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) view(t *testing.T, cartID string, msg any) *View {
	t.Helper()
	v := f.ask(t, cartID, msg).(*View)
	if v.Err != nil {
		t.Fatalf("%T: %v", msg, v.Err)
	}
	return v
}

func (f *fixture) available(t *testing.T, variant string) int64 {
	t.Helper()
	r, err := f.inv.Ask(context.Background(), variant, &inventory.LevelQuery{})
	if err != nil || r.(*inventory.Level).Err != nil {
		t.Fatalf("level: %v %+v", err, r)
	}
	return r.(*inventory.Level).Available
}

func forEachDriver(t *testing.T, fn func(t *testing.T, st persistence.Store)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) { fn(t, d.Open(t)) })
	}
}

// A client's cart: lines reserve stock, VIP prices apply, checkout makes
// one order from the reservations (spending credit), is idempotent, and
// closes the cart.
func TestSignedInCartCheckout(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		inventorytest.Stock(t, st, "oil", 5, 50_000_00, 40_000_00, 0)
		inventorytest.Stock(t, st, "soap", 5, 10_000_00, 0, 0)
		clk := &clock{}
		clk.ns.Store(t0.UnixNano())
		f := newFixture(t, st, clk.now, Config{})
		ctx := context.Background()
		if err := st.InTx(ctx, func(tx persistence.Tx) error {
			return tx.CreditGrant(ctx, persistence.CreditGrant{ID: ulid.Make().String(), ClientID: "ana", AmountMinor: 5_000_00,
				Reason: "goodwill", GrantedBy: "admin", ExpiresAt: t0.Add(30 * 24 * time.Hour), CreatedAt: t0})
		}); err != nil {
			t.Fatal(err)
		}
		me := Auth{Subject: "ana"}
		f.view(t, "c1", &Create{OwnerID: "ana", VIP: true})
		if r := f.ask(t, "c1", &Create{OwnerID: "ana"}).(*View); !errors.Is(r.Err, ErrExists) {
			t.Fatalf("second create: %v", r.Err)
		}
		f.view(t, "c1", &SetLine{Auth: me, VariantID: "oil", Qty: 3, VIP: true})
		v := f.view(t, "c1", &SetLine{Auth: me, VariantID: "soap", Qty: 1, VIP: true})
		if len(v.Lines) != 2 || v.Lines[0].UnitPriceMinor != 40_000_00 || v.Lines[1].UnitPriceMinor != 10_000_00 {
			t.Fatalf("VIP view %+v", v.Lines)
		}
		if v.SubtotalMinor != 130_000_00 || v.TaxMinor != 24_700_00 {
			t.Fatalf("totals %d + %d", v.SubtotalMinor, v.TaxMinor)
		}
		if r := f.ask(t, "c1", &SetLine{Auth: me, VariantID: "oil", Qty: 6}).(*View); !errors.Is(r.Err, ErrOutOfStock) {
			t.Fatalf("beyond stock: %v", r.Err)
		}
		if r := f.ask(t, "c1", &Get{Auth: Auth{Subject: "bob"}}).(*View); !errors.Is(r.Err, ErrNotFound) {
			t.Fatalf("another client: %v", r.Err)
		}
		if got := f.available(t, "oil"); got != 2 {
			t.Fatalf("oil available %d", got)
		}
		co := &Checkout{Auth: me, OrderID: "order-1", Fulfilment: persistence.FulfilmentPickup, CreditMinor: 5_000_00, VIP: true}
		r := f.ask(t, "c1", co).(*CheckoutReply)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		o := r.Order
		if o.ID != "order-1" || len(o.Lines) != 2 || o.CreditAppliedMinor != 5_000_00 ||
			o.TotalMinor != 130_000_00+24_700_00-5_000_00 || o.Status != persistence.OrderPendingPayment {
			t.Fatalf("order %+v", o)
		}
		// A retry answers with the same order; a new order id is refused.
		if again := f.ask(t, "c1", co).(*CheckoutReply); again.Err != nil || again.Order.ID != "order-1" || len(again.Order.Lines) != 2 {
			t.Fatalf("retry %+v", again)
		}
		other := *co
		other.OrderID = "order-2"
		if again := f.ask(t, "c1", &other).(*CheckoutReply); !errors.Is(again.Err, ErrClosed) {
			t.Fatalf("second checkout %v", again.Err)
		}
		if r := f.ask(t, "c1", &SetLine{Auth: me, VariantID: "oil", Qty: 1}).(*View); !errors.Is(r.Err, ErrClosed) {
			t.Fatalf("line after checkout: %v", r.Err)
		}
		var oil persistence.Stock
		var balance int64
		if err := st.InTx(ctx, func(tx persistence.Tx) (err error) {
			if oil, err = tx.StockGet(ctx, "oil"); err != nil {
				return err
			}
			balance, err = tx.CreditBalance(ctx, "ana", clk.now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if oil.OnHand != 2 || oil.Reserved != 0 || balance != 0 {
			t.Fatalf("after checkout: oil %+v, credit %d", oil, balance)
		}
		if got := f.available(t, "oil"); got != 2 {
			t.Fatalf("oil available after sale %d", got)
		}
		// Latency is measured on the real clock, not the (fake) business one.
		var h dto.Metric
		if err := f.metrics.checkoutSeconds.Write(&h); err != nil {
			t.Fatal(err)
		}
		if sum := h.GetHistogram().GetSampleSum(); h.GetHistogram().GetSampleCount() != 3 || sum < 0 || sum > 60 {
			t.Fatalf("checkout latency: %d samples summing %gs", h.GetHistogram().GetSampleCount(), sum)
		}
	})
}

// An anonymous cart needs its token, cannot be checked out, and merges
// into the client's cart on sign-in.
func TestAnonymousCartMerge(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 4, 100, 0, 0)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	f := newFixture(t, st, clk.now, Config{})
	anon := Auth{Token: "s3cret-token"}
	f.view(t, "anon", &Create{TokenHash: HashToken(anon.Token)})
	f.view(t, "anon", &SetLine{Auth: anon, VariantID: "oil", Qty: 2})
	if r := f.ask(t, "anon", &Get{Auth: Auth{Token: "wrong"}}).(*View); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("wrong token: %v", r.Err)
	}
	if r := f.ask(t, "anon", &Checkout{Auth: anon, OrderID: "o", Fulfilment: persistence.FulfilmentPickup}).(*CheckoutReply); !errors.Is(r.Err, ErrSignInRequired) {
		t.Fatalf("anonymous checkout: %v", r.Err)
	}
	me := Auth{Subject: "ana"}
	f.view(t, "mine", &Create{OwnerID: "ana"})
	f.view(t, "mine", &SetLine{Auth: me, VariantID: "oil", Qty: 1})
	s := f.ask(t, "anon", &Surrender{Auth: anon, IntoCartID: "mine"}).(*SurrenderReply)
	if s.Err != nil || s.Lines["oil"] != 2 {
		t.Fatalf("surrender %+v", s)
	}
	if got := f.available(t, "oil"); got != 3 {
		t.Fatalf("available after surrender %d", got)
	}
	v := f.view(t, "mine", &SetLine{Auth: me, VariantID: "oil", Qty: 1 + s.Lines["oil"]})
	if len(v.Lines) != 1 || v.Lines[0].Qty != 3 {
		t.Fatalf("merged cart %+v", v.Lines)
	}
	if again := f.ask(t, "anon", &Surrender{Auth: anon, IntoCartID: "mine"}).(*SurrenderReply); again.Err != nil || len(again.Lines) != 0 {
		t.Fatalf("repeated surrender %+v", again)
	}
	if r := f.ask(t, "anon", &SetLine{Auth: anon, VariantID: "oil", Qty: 1}).(*View); !errors.Is(r.Err, ErrClosed) {
		t.Fatalf("merged cart still open: %v", r.Err)
	}
}

// A cart left alone expires by its own timer and releases its
// reservations; its stock was free from the moment the TTL passed.
func TestCartExpiresByItself(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		inventorytest.Stock(t, st, "oil", 3, 100, 0, 0)
		f := newFixture(t, st, time.Now, Config{AnonymousTTL: 300 * time.Millisecond})
		anon := Auth{Token: "tok"}
		f.view(t, "c", &Create{TokenHash: HashToken(anon.Token)})
		v := f.view(t, "c", &SetLine{Auth: anon, VariantID: "oil", Qty: 3})
		if got := f.available(t, "oil"); got != 0 {
			t.Fatalf("available while held %d", got)
		}
		expires := v.Cart.ExpiresAt
		// Poll (bounded) for the cart's own timer to close it.
		testwait.For(t, 10*time.Second, "the cart to expire by itself", func() bool {
			return testutil.ToFloat64(f.metrics.expiries) >= 1
		})
		if time.Now().Before(expires) {
			t.Fatalf("expired before its TTL")
		}
		if got := f.available(t, "oil"); got != 3 {
			t.Fatalf("available after expiry %d", got)
		}
		var live []persistence.Reservation
		var c persistence.Cart
		if err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
			if c, err = tx.CartGet(context.Background(), "c"); err != nil {
				return err
			}
			live, err = tx.ReservationListByCart(context.Background(), "c")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if c.State != persistence.CartExpired || len(live) != 0 {
			t.Fatalf("cart %+v, live reservations %+v", c, live)
		}
	})
}

// Many carts check out while their TTL runs out under them: every cart
// either becomes an order holding its units or gives them back; stock
// sold plus stock free always equals what was received.
func TestCheckoutRacesCartExpiry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		const n = 12
		inventorytest.Stock(t, st, "oil", n, 100, 0, 0)
		f := newFixture(t, st, time.Now, Config{SignedInTTL: time.Second})
		var cartIDs []string
		for range n {
			id := ulid.Make().String()
			owner := "client-" + id
			f.view(t, id, &Create{OwnerID: owner})
			f.view(t, id, &SetLine{Auth: Auth{Subject: owner}, VariantID: "oil", Qty: 1})
			cartIDs = append(cartIDs, id)
		}
		var wg sync.WaitGroup
		var orders atomic.Int64
		for i, id := range cartIDs {
			wg.Add(1)
			// Spread checkouts across the TTL boundary.
			time.AfterFunc(time.Duration(i*170)*time.Millisecond, func() {
				defer wg.Done()
				r := f.ask(t, id, &Checkout{Auth: Auth{Subject: "client-" + id}, OrderID: "o-" + id, Fulfilment: persistence.FulfilmentPickup}).(*CheckoutReply)
				if r.Err == nil {
					orders.Add(1)
				}
			})
		}
		wg.Wait()
		testwait.Until(t, 10*time.Second, "every reservation to be gone after every cart expired", func() error {
			var stock persistence.Stock
			var live []persistence.Reservation
			var sold int64
			if err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
				if stock, err = tx.StockGet(context.Background(), "oil"); err != nil {
					return err
				}
				live, err = tx.ReservationList(context.Background(), "oil")
				for _, id := range cartIDs {
					o, err := tx.OrderGet(context.Background(), "o-"+id)
					if err == nil {
						sold += int64(o.Lines[0].Qty)
					}
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if sold != orders.Load() || stock.OnHand != n-sold {
				t.Fatalf("%d orders, %d units on orders, on hand %d of %d", orders.Load(), sold, stock.OnHand, n)
			}
			if len(live) != 0 || stock.Reserved != 0 {
				return fmt.Errorf("reservations still live: %+v (reserved %d)", live, stock.Reserved)
			}
			if got := f.available(t, "oil"); got != n-sold {
				t.Fatalf("available %d, want %d", got, n-sold)
			}
			t.Logf("%d of %d carts checked out before expiry", sold, n)
			return nil
		})
	})
}

// An active cart keeps its stock: looking at it past half its life
// refreshes the cart and its reservations, so the units stay held after
// the first TTL would have ended.
func TestActivityRefreshesReservations(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 2, 100, 0, 0)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	f := newFixture(t, st, clk.now, Config{SignedInTTL: time.Hour})
	me := Auth{Subject: "ana"}
	f.view(t, "c", &Create{OwnerID: "ana"})
	first := f.view(t, "c", &SetLine{Auth: me, VariantID: "oil", Qty: 2}).Lines[0].ExpiresAt
	clk.ns.Add(int64(40 * time.Minute))
	v := f.view(t, "c", &Get{Auth: me})
	if !v.Lines[0].ExpiresAt.Equal(t0.Add(100*time.Minute)) || !v.Cart.ExpiresAt.After(first) {
		t.Fatalf("after activity: line until %v, cart until %v (first %v)", v.Lines[0].ExpiresAt, v.Cart.ExpiresAt, first)
	}
	clk.ns.Add(int64(50 * time.Minute)) // past the first TTL, within the refreshed one
	if got := f.available(t, "oil"); got != 0 {
		t.Fatalf("available while the active cart holds everything: %d", got)
	}
	// Left alone past the refreshed TTL, the units go to another cart and
	// the first one is closed when next seen.
	clk.ns.Add(int64(11 * time.Minute))
	f.view(t, "other", &Create{OwnerID: "bob"})
	f.view(t, "other", &SetLine{Auth: Auth{Subject: "bob"}, VariantID: "oil", Qty: 2})
	if r := f.ask(t, "c", &Get{Auth: me}).(*View); r.Err != nil || r.Cart.State != persistence.CartExpired || len(r.Lines) != 0 {
		t.Fatalf("the idle cart after its TTL: %+v", r)
	}
}

// An idle cart's lines last as long as the cart: extending the cart
// refreshes every line that would lapse before it, so no other cart can
// take their units while the cart is open.
func TestLinesLastAsLongAsTheirCart(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 2, 100, 0, 0)
	inventorytest.Stock(t, st, "soap", 1, 100, 0, 0)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	f := newFixture(t, st, clk.now, Config{SignedInTTL: time.Hour})
	me := Auth{Subject: "ana"}
	f.view(t, "c", &Create{OwnerID: "ana"})
	f.view(t, "c", &SetLine{Auth: me, VariantID: "oil", Qty: 2})
	clk.ns.Add(int64(25 * time.Minute))
	f.view(t, "c", &SetLine{Auth: me, VariantID: "soap", Qty: 1}) // soap held until t0+85m
	clk.ns.Add(int64(10 * time.Minute))
	v := f.view(t, "c", &Get{Auth: me}) // the cart extended to t0+95m, and with it every line
	for _, l := range v.Lines {
		if l.ExpiresAt.Before(v.Cart.ExpiresAt) {
			t.Fatalf("line %s held until %v, its cart until %v", l.VariantID, l.ExpiresAt, v.Cart.ExpiresAt)
		}
	}
	clk.ns.Add(int64(51 * time.Minute)) // idle past soap's first expiry, within the cart's
	f.view(t, "other", &Create{OwnerID: "bob"})
	if r := f.ask(t, "other", &SetLine{Auth: Auth{Subject: "bob"}, VariantID: "soap", Qty: 1}).(*View); !errors.Is(r.Err, ErrOutOfStock) {
		t.Fatalf("another cart took the open cart's soap: %v", r.Err)
	}
	r := f.ask(t, "c", &Checkout{Auth: me, OrderID: "o-all", Fulfilment: persistence.FulfilmentPickup}).(*CheckoutReply)
	if r.Err != nil || len(r.Order.Lines) != 2 {
		t.Fatalf("checkout: %+v", r)
	}
}

// refusingInventory refuses every reservation of one variant once armed,
// as when its units went elsewhere.
type refusingInventory struct {
	Inventory
	variant string
	armed   atomic.Bool
}

func (r *refusingInventory) Ask(ctx context.Context, variantID string, msg any) (any, error) {
	if _, ok := msg.(*inventory.Reserve); ok && r.armed.Load() && variantID == r.variant {
		return &inventory.ReserveReply{Err: inventory.ErrOutOfStock}, nil
	}
	return r.Inventory.Ask(ctx, variantID, msg)
}

// A line that cannot be held again at checkout: checkout refuses rather
// than make an order without that line, and the cart shows what it still
// holds.
func TestCheckoutRefusesWhenALineWasLost(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 2, 100, 0, 0)
	inventorytest.Stock(t, st, "soap", 1, 100, 0, 0)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	refuse := &refusingInventory{variant: "soap"}
	f := newFixture(t, st, clk.now, Config{SignedInTTL: time.Hour}, func(in Inventory) Inventory {
		refuse.Inventory = in
		return refuse
	})
	me := Auth{Subject: "ana"}
	f.view(t, "c", &Create{OwnerID: "ana"})
	f.view(t, "c", &SetLine{Auth: me, VariantID: "oil", Qty: 2})
	f.view(t, "c", &SetLine{Auth: me, VariantID: "soap", Qty: 1})
	clk.ns.Add(int64(40 * time.Minute)) // the lines are due for a refresh
	refuse.armed.Store(true)
	r := f.ask(t, "c", &Checkout{Auth: me, OrderID: "o-lost", Fulfilment: persistence.FulfilmentPickup}).(*CheckoutReply)
	if !errors.Is(r.Err, ErrReservationLapsed) {
		t.Fatalf("checkout after losing a line: %+v", r)
	}
	v := f.view(t, "c", &Get{Auth: me})
	if v.Cart.State != persistence.CartOpen || len(v.Lines) != 1 || v.Lines[0].VariantID != "oil" {
		t.Fatalf("cart after the refused checkout: %+v", v)
	}
}

// twoNodes stocks 3 units of "oil", creates ana's cart "c" and returns
// the fixture with a second cart directory over the same store and
// inventory: an activation of the same cart as on another node during a
// hand-off.
func twoNodes(t *testing.T, st persistence.Store) (*fixture, *Directory) {
	t.Helper()
	inventorytest.Stock(t, st, "oil", 3, 100, 0, 0)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	f := newFixture(t, st, clk.now, Config{})
	f.view(t, "c", &Create{OwnerID: "ana"})
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet() }))
	cm, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewDirectory(sys.Root, Deps{Store: f.store, Inventory: f.inv, Now: clk.now, Log: quiet(), Metrics: cm}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Stop(5 * time.Second); sys.Shutdown() })
	return f, other
}

// Two activations of one cart (the old owner's, not yet stopped, and the
// new owner's after a hand-off), each loaded before either reserved: the
// same line set through both holds one unit under one reservation, and
// checkout sells one.
func TestTwoActivationsOfACartHoldOneLine(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		f, other := twoNodes(t, st)
		me := Auth{Subject: "ana"}
		f.view(t, "c", &Get{Auth: me})
		if v, err := other.Ask(context.Background(), "c", &Get{Auth: me}); err != nil || v.(*View).Err != nil || len(v.(*View).Lines) != 0 {
			t.Fatalf("the second activation: %+v %v", v, err)
		}
		a := f.view(t, "c", &SetLine{Auth: me, VariantID: "oil", Qty: 1})
		r, err := other.Ask(context.Background(), "c", &SetLine{Auth: me, VariantID: "oil", Qty: 1})
		if err != nil || r.(*View).Err != nil {
			t.Fatalf("the line again, through the second activation: %+v %v", r, err)
		}
		b := r.(*View)
		if got := f.available(t, "oil"); got != 2 {
			t.Fatalf("available after one line set twice: %d; want 2", got)
		}
		if a.Lines[0].ReservationID != b.Lines[0].ReservationID {
			t.Fatalf("two reservations for one line: %s and %s", a.Lines[0].ReservationID, b.Lines[0].ReservationID)
		}
		o, err := other.Ask(context.Background(), "c", &Checkout{Auth: me, OrderID: "o-1", Fulfilment: persistence.FulfilmentPickup})
		if err != nil || o.(*CheckoutReply).Err != nil || o.(*CheckoutReply).Order.Lines[0].Qty != 1 {
			t.Fatalf("checkout: %+v %v", o, err)
		}
	})
}

// A stale activation of a cart that another activation checked out (a
// line change resent to the old owner and delivered late) holds nothing
// again: its line's reservation was consumed, and a new one for the
// closed cart is refused in the store.
func TestStaleActivationAfterCheckoutHoldsNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		f, stale := twoNodes(t, st)
		me := Auth{Subject: "ana"}
		f.view(t, "c", &SetLine{Auth: me, VariantID: "oil", Qty: 1})
		if v, err := stale.Ask(context.Background(), "c", &Get{Auth: me}); err != nil || len(v.(*View).Lines) != 1 {
			t.Fatalf("the stale activation's load: %+v %v", v, err)
		}
		if r := f.ask(t, "c", &Checkout{Auth: me, OrderID: "o-1", Fulfilment: persistence.FulfilmentPickup}).(*CheckoutReply); r.Err != nil {
			t.Fatalf("checkout: %+v", r)
		}
		r, err := stale.Ask(context.Background(), "c", &SetLine{Auth: me, VariantID: "oil", Qty: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.(*View).Err == nil {
			t.Fatalf("the stale activation set a line of a checked-out cart: %+v", r)
		}
		if got := f.available(t, "oil"); got != 2 {
			t.Fatalf("available after one sale and a stale line change: %d; want 2", got)
		}
		var live []persistence.Reservation
		if err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
			live, err = tx.ReservationListByCart(context.Background(), "c")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(live) != 0 {
			t.Fatalf("the checked-out cart holds %+v", live)
		}
	})
}
