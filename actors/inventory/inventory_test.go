package inventory

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
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/inventory/stockcheck"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var t0 = time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)

// clock is a settable Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }

type fixture struct {
	store   persistence.Store
	clock   *clock
	system  *actor.ActorSystem
	dir     *Directory
	deps    Deps
	metrics *Metrics
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t testing.TB, st persistence.Store) *fixture {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, clock: newClock(t0), metrics: m,
		system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet() }))}
	f.deps = Deps{Store: st, Now: f.clock.now, Log: quiet(), Metrics: m}
	if f.dir, err = NewDirectory(f.system.Root, f.deps, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dir.Stop(5 * time.Second); f.system.Shutdown() })
	return f
}

func (f *fixture) reserve(t *testing.T, variant, id, cart string, qty int64, ttl time.Duration) *ReserveReply {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), variant, &Reserve{ReservationID: id, CartID: cart, Qty: qty, TTL: ttl, ActorID: cart})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*ReserveReply)
}

func (f *fixture) level(t *testing.T, variant string) *Level {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), variant, &LevelQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*Level)
}

func (f *fixture) stock(t *testing.T, variant string) (persistence.Stock, []persistence.Reservation) {
	t.Helper()
	var st persistence.Stock
	var live []persistence.Reservation
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		if st, err = tx.StockGet(context.Background(), variant); err != nil {
			return err
		}
		live, err = tx.ReservationList(context.Background(), variant)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return st, live
}

func forEachDriver(t *testing.T, fn func(t *testing.T, st persistence.Store)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) { fn(t, d.Open(t)) })
	}
}

// Done-when: 200 concurrent carts compete for a variant with 50 units;
// exactly 50 end up reserved or sold, and porcupine finds every grant and
// refusal explainable by stock at some instant within its call.
func TestTwoHundredCartsFiftyUnits(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		inventorytest.Stock(t, st, "oil", 50, 100, 0, 0)
		f := newFixture(t, st)
		rec := stockcheck.NewRecorder(map[string]int64{"oil": 50})
		var granted atomic.Int64
		var mu sync.Mutex
		var won []string
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("r%03d", i)
				rec.Reserve(i, "oil", 1, func() stockcheck.Outcome {
					r, err := f.dir.Ask(context.Background(), "oil", &Reserve{ReservationID: id, CartID: "cart-" + id, Qty: 1,
						TTL: time.Hour, ActorID: "c"})
					switch {
					case err != nil:
						return stockcheck.Ambiguous
					case r.(*ReserveReply).Err == nil:
						granted.Add(1)
						mu.Lock()
						won = append(won, id)
						mu.Unlock()
						return stockcheck.Granted
					case errors.Is(r.(*ReserveReply).Err, ErrOutOfStock):
						return stockcheck.Refused
					default:
						return stockcheck.Ambiguous
					}
				})
			}()
		}
		wg.Wait()
		if granted.Load() != 50 {
			t.Fatalf("granted %d reservations of 50 units", granted.Load())
		}
		if err := rec.Check(time.Minute); err != nil {
			t.Fatal(err)
		}
		// Check out ten of the winners: sold plus reserved stays 50.
		orderID := "o1"
		if err := st.InTx(context.Background(), func(tx persistence.Tx) error {
			for _, id := range won[:10] {
				if _, err := tx.ReservationConsume(context.Background(), id, orderID, "c", f.clock.now()); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if r, err := f.dir.Ask(context.Background(), "oil", &Consumed{ReservationIDs: won[:10]}); err != nil || r.(*Reply).Err != nil {
			t.Fatalf("consumed notice: %v %v", r, err)
		}
		stock, live := f.stock(t, "oil")
		var held int64
		for _, r := range live {
			held += r.Qty
		}
		sold := 50 - stock.OnHand
		if sold != 10 || held != 40 || stock.Reserved != 40 || sold+held != 50 {
			t.Fatalf("sold %d, held %d (stock row %+v): want 10 sold and 40 reserved", sold, held, stock)
		}
		if lvl := f.level(t, "oil"); lvl.OnHand != 40 || lvl.Held != 40 || lvl.Available != 0 {
			t.Fatalf("actor level %+v", lvl)
		}
		if n := testutil.ToFloat64(f.metrics.reservations.WithLabelValues("out_of_stock")); n != 150 {
			t.Fatalf("out_of_stock metric %v", n)
		}
		if n := testutil.ToFloat64(f.metrics.stockOuts); n != 1 {
			t.Fatalf("stock-outs %v", n)
		}
	})
}

// Done-when: a cart left past its TTL frees its stock at once: the units
// are available right after expiry with no sweep having run, and another
// cart gets them.
func TestExpiredReservationFreesStockImmediately(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		inventorytest.Stock(t, st, "cream", 5, 100, 0, 0)
		f := newFixture(t, st)
		if r := f.reserve(t, "cream", "a", "cart-a", 5, 15*time.Minute); r.Err != nil || r.Available != 0 {
			t.Fatalf("first reservation %+v", r)
		}
		if r := f.reserve(t, "cream", "b", "cart-b", 1, 15*time.Minute); !errors.Is(r.Err, ErrOutOfStock) {
			t.Fatalf("second reservation before expiry: %+v", r)
		}
		f.clock.add(15 * time.Minute) // exactly the TTL: it holds nothing any more
		if lvl := f.level(t, "cream"); lvl.Available != 5 || lvl.Held != 0 {
			t.Fatalf("level right after expiry %+v", lvl)
		}
		if r := f.reserve(t, "cream", "b", "cart-b", 5, 15*time.Minute); r.Err != nil {
			t.Fatalf("reservation after expiry: %+v", r)
		}
		// The lapsed reservation's release was written lazily, in order.
		stock, live := f.stock(t, "cream")
		if stock.Reserved != 5 || len(live) != 1 || live[0].ID != "b" {
			t.Fatalf("stored %+v %+v", stock, live)
		}
		// Resizing a lapsed reservation is refused so the cart reserves anew.
		f.clock.add(time.Hour)
		r, err := f.dir.Ask(context.Background(), "cream", &Reserve{ReservationID: "b", CartID: "cart-b", Qty: 1, TTL: time.Minute, Resize: true})
		if err != nil || !errors.Is(r.(*ReserveReply).Err, ErrExpired) {
			t.Fatalf("resize lapsed: %+v %v", r, err)
		}
	})
}

// Checkout (a consuming transaction) racing the reservation's expiry in
// the actor: whichever wins, no unit is lost or counted twice, and no
// other cart is granted a unit that was sold.
func TestCheckoutRacesExpiry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		const rounds = 8
		inventorytest.Stock(t, st, "soap", rounds, 100, 0, 0)
		f := newFixture(t, st)
		sold := 0
		for i := range rounds {
			id := fmt.Sprintf("r%d", i)
			if r := f.reserve(t, "soap", id, "cart-"+id, 1, time.Minute); r.Err != nil {
				t.Fatalf("round %d: %+v", i, r)
			}
			checkoutAt := f.clock.now().Add(time.Minute - time.Millisecond)
			f.clock.add(time.Minute) // the actor now sees it expired
			var wg sync.WaitGroup
			var consumeErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				consumeErr = st.InTx(context.Background(), func(tx persistence.Tx) error {
					_, err := tx.ReservationConsume(context.Background(), id, "o-"+id, "c", checkoutAt)
					return err
				})
				if consumeErr == nil {
					f.dir.Tell("soap", &Consumed{ReservationIDs: []string{id}})
				}
			}()
			go func() {
				defer wg.Done()
				_ = f.level(t, "soap") // drops the lapsed reservation, writing its release
			}()
			wg.Wait()
			switch {
			case consumeErr == nil:
				sold++
			case !errors.Is(consumeErr, persistence.ErrConflict):
				t.Fatal(consumeErr)
			}
			// Another cart tries to take everything the actor believes free.
			lvl := f.level(t, "soap")
			if lvl.Err == nil && lvl.Available > 0 {
				r := f.reserve(t, "soap", "x"+id, "cart-x", lvl.Available, time.Second)
				// A late Consumed notice may shrink what is free meanwhile.
				if r.Err != nil && !errors.Is(r.Err, ErrRetry) && !errors.Is(r.Err, ErrOutOfStock) {
					t.Fatalf("round %d: %+v", i, r)
				}
				f.clock.add(time.Second)
			}
			stock, live := f.stock(t, "soap")
			var held int64
			for _, r := range live {
				if r.Holds(f.clock.now()) {
					held += r.Qty
				}
			}
			if stock.OnHand != int64(rounds-sold) || held > stock.OnHand {
				t.Fatalf("round %d: %d sold, stock %+v, %d held", i, sold, stock, held)
			}
		}
		if lvl := f.level(t, "soap"); lvl.OnHand != int64(rounds-sold) || lvl.Available != lvl.OnHand {
			t.Fatalf("final level %+v with %d sold", lvl, sold)
		}
	})
}

// Two activations of one variant (the old one not knowing): the newer
// epoch fences the older one's writes, which are refused as retryable.
func TestStaleActivationIsFenced(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 10, 100, 0, 0)
	f := newFixture(t, st)
	deps := f.deps.withDefaults()
	old := f.system.Root.Spawn(actor.PropsFromProducer(newActor(deps, "oil")))
	ask := func(pid *actor.PID, msg any) any {
		r, err := f.system.Root.RequestFuture(pid, msg, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ask(old, &Reserve{ReservationID: "a", CartID: "c", Qty: 1, TTL: time.Hour}).(*ReserveReply); r.Err != nil {
		t.Fatal(r.Err)
	}
	// A newer activation, through the directory.
	if r := f.reserve(t, "oil", "b", "c2", 9, time.Hour); r.Err != nil {
		t.Fatalf("new activation: %+v", r)
	}
	r := ask(old, &Reserve{ReservationID: "c", CartID: "c3", Qty: 1, TTL: time.Hour}).(*ReserveReply)
	if !errors.Is(r.Err, ErrRetry) {
		t.Fatalf("stale activation's reservation: %+v; want ErrRetry", r)
	}
	if n := testutil.ToFloat64(f.metrics.fenced); n != 1 {
		t.Fatalf("fenced writes %v", n)
	}
	if _, live := f.stock(t, "oil"); len(live) != 2 {
		t.Fatalf("live reservations %+v", live)
	}
}

// Falling to the threshold writes one LowStock event to the outbox; stock
// moves keep who and why and may not take units carts hold.
func TestLowStockAndMoves(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 6, 100, 0, 3)
	f := newFixture(t, st)
	if r := f.reserve(t, "oil", "a", "c1", 2, time.Hour); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.reserve(t, "oil", "b", "c2", 2, time.Hour); r.Err != nil || r.Available != 2 {
		t.Fatalf("%+v", r)
	}
	if r := f.reserve(t, "oil", "c", "c3", 1, time.Hour); r.Err != nil {
		t.Fatal(r.Err)
	}
	move := func(kind persistence.MovementKind, qty int64) *MoveReply {
		r, err := f.dir.Ask(context.Background(), "oil", &Move{Movement: persistence.StockMovement{ID: ulid.Make().String(),
			VariantID: "oil", Kind: kind, Qty: qty, ActorID: "admin", Reason: "count"}})
		if err != nil {
			t.Fatal(err)
		}
		return r.(*MoveReply)
	}
	if r := move(persistence.MoveDamage, 2); !errors.Is(r.Err, ErrOutOfStock) {
		t.Fatalf("damage of held units: %+v", r)
	}
	if r := move(persistence.MoveReceipt, 10); r.Err != nil || r.Level.Available != 11 {
		t.Fatalf("receipt: %+v", r)
	}
	if r := move(persistence.MoveDamage, 1); r.Err != nil || r.Level.OnHand != 15 {
		t.Fatalf("damage: %+v", r)
	}
	if r := move(persistence.MoveSale, 1); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("sale as a move: %+v", r)
	}
	var pending []persistence.OutboxEvent
	if err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		pending, err = tx.OutboxPending(context.Background(), 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Type != "spa.v1.LowStock" {
		t.Fatalf("outbox %+v", pending)
	}
	var ev messages.Event
	var low messages.LowStock
	if err := proto.Unmarshal(pending[0].Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if err := ev.Payload.UnmarshalTo(&low); err != nil {
		t.Fatal(err)
	}
	if low.VariantId != "oil" || low.Available != 2 || low.Threshold != 3 {
		t.Fatalf("event %+v", &low)
	}
	if n := testutil.ToFloat64(f.metrics.lowStock); n != 1 {
		t.Fatalf("low-stock metric %v", n)
	}
}

// A cart holds one reservation of a variant: a new one it asks for while
// it holds one (a second activation of the cart during a hand-off, or a
// line change resent after a timed-out try) is the same one, resized, and
// takes no second unit. Another cart's still does.
func TestOneReservationPerCartLine(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		inventorytest.Stock(t, st, "oil", 3, 100, 0, 0)
		f := newFixture(t, st)
		if r := f.reserve(t, "oil", "r1", "c", 1, time.Hour); r.Err != nil || r.ReservationID != "r1" {
			t.Fatalf("first: %+v", r)
		}
		r := f.reserve(t, "oil", "r2", "c", 2, time.Hour)
		if r.Err != nil || r.ReservationID != "r1" || r.Available != 1 {
			t.Fatalf("the same cart's second reservation: %+v; want r1 resized to 2, 1 left", r)
		}
		if r := f.reserve(t, "oil", "r3", "other", 1, time.Hour); r.Err != nil || r.ReservationID != "r3" || r.Available != 0 {
			t.Fatalf("another cart: %+v", r)
		}
		_, live := f.stock(t, "oil")
		held := map[string]int64{}
		for _, r := range live {
			held[r.ID] = r.Qty
		}
		if len(held) != 2 || held["r1"] != 2 || held["r3"] != 1 {
			t.Fatalf("live reservations in the store: %v; want r1: 2, r3: 1", held)
		}
		// Once the cart's reservation is gone, a new one is new.
		if _, err := f.dir.Ask(context.Background(), "oil", &Release{ReservationID: "r1"}); err != nil {
			t.Fatal(err)
		}
		if r := f.reserve(t, "oil", "r4", "c", 1, time.Hour); r.Err != nil || r.ReservationID != "r4" {
			t.Fatalf("after the release: %+v", r)
		}
	})
}
