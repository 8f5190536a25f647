package order

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var t0 = time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)

var desk = Actor{ID: "desk-1", Role: "receptionist", RequestID: "req-1"}

// stores runs fn against SQLite, and PostgreSQL (in a fresh schema) when
// TEST_DATABASE_URL is set.
func stores(t *testing.T, fn func(t *testing.T, s persistence.Store)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) { fn(t, d.Open(t)) })
	}
}

func mustTx(t *testing.T, s persistence.Store, fn func(ctx context.Context, tx persistence.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

func txErr(t *testing.T, s persistence.Store, fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := t.Context()
	return s.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

// seedVariants creates a product with variants "oil" and "cream", each
// with 10 units on hand.
func seedVariants(t *testing.T, s persistence.Store) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.ProductPut(ctx, persistence.Product{ID: "p1", Name: "Oils", Active: true, UpdatedAt: t0}); err != nil {
			return err
		}
		for _, v := range []string{"oil", "cream"} {
			if _, err := tx.VariantPut(ctx, persistence.Variant{ID: v, ProductID: "p1", SKU: "SKU-" + v, PriceMinor: 4_500_000,
				TaxRateBP: 1900, Active: true, UpdatedAt: t0}); err != nil {
				return err
			}
			if _, err := tx.StockMove(ctx, persistence.StockMovement{ID: "recv-" + v, VariantID: v, Kind: persistence.MoveReceipt,
				Qty: 10, ActorID: "admin", Reason: "opening stock", At: t0}); err != nil {
				return err
			}
		}
		return nil
	})
}

func onHand(t *testing.T, s persistence.Store, variant string) int64 {
	t.Helper()
	var st persistence.Stock
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		st, err = tx.StockGet(ctx, variant)
		return err
	})
	return st.OnHand
}

// checkout does what the cart's checkout does: reserve, consume the
// reservations into an order, spend credit, all in one transaction.
func checkout(t *testing.T, s persistence.Store, id, client string, oil, cream int, credit int64) persistence.Order {
	t.Helper()
	o := persistence.Order{ID: id, ClientID: client, CartID: "cart-" + id, Status: persistence.OrderPendingPayment,
		Fulfilment: persistence.FulfilmentPickup, CreatedAt: t0, ExpiresAt: t0.Add(30 * time.Minute),
		CreditAppliedMinor: credit}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, l := range []struct {
			variant string
			qty     int
			price   int64
			bps     int
		}{{"oil", oil, 4_500_000, 1900}, {"cream", cream, 3_333_333, 500}} {
			if l.qty == 0 {
				continue
			}
			r := persistence.Reservation{ID: id + "-res-" + l.variant, CartID: o.CartID, VariantID: l.variant,
				Qty: int64(l.qty), ExpiresAt: t0.Add(time.Hour)}
			if err := tx.ReservationPut(ctx, r, "cart", t0); err != nil {
				return err
			}
			if _, err := tx.ReservationConsume(ctx, r.ID, id, "checkout", t0); err != nil {
				return err
			}
			o.Lines = append(o.Lines, persistence.OrderLine{ID: id + "-" + l.variant, VariantID: l.variant, SKU: "SKU-" + l.variant,
				Name: l.variant, Qty: l.qty, UnitPriceMinor: l.price, TaxRateBps: l.bps, ReservationID: r.ID})
		}
		o.ComputeTotals()
		if err := tx.OrderCreate(ctx, o); err != nil {
			return err
		}
		if credit > 0 {
			return tx.CreditSpend(ctx, client, credit, id, t0)
		}
		return nil
	})
	return o
}

func transitionTo(t *testing.T, s persistence.Store, id string, to persistence.OrderStatus, at time.Time) (Result, error) {
	var r Result
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		r, err = Transition(ctx, tx, Change{OrderID: id, To: to, Actor: desk, Reason: "front desk", At: at})
		return err
	})
	return r, err
}

func TestAllowed(t *testing.T) {
	all := []persistence.OrderStatus{persistence.OrderPendingPayment, persistence.OrderPaid, persistence.OrderFulfilled,
		persistence.OrderCancelled, persistence.OrderExpired, persistence.OrderReturned, persistence.OrderPartiallyReturned}
	want := map[string]bool{
		"pending_payment>paid": true, "pending_payment>cancelled": true, "pending_payment>expired": true,
		"paid>fulfilled": true, "paid>cancelled": true, "paid>returned": true, "paid>partially_returned": true,
		"fulfilled>returned": true, "fulfilled>partially_returned": true,
		"partially_returned>partially_returned": true, "partially_returned>returned": true,
	}
	for _, from := range all {
		for _, to := range all {
			key := string(from) + ">" + string(to)
			if got := Allowed(from, to); got != want[key] {
				t.Errorf("Allowed(%s) = %v, want %v", key, got, want[key])
			}
		}
	}
}

func TestTransitionsAudited(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		checkout(t, s, "o1", "ana", 2, 1, 0)
		if got := onHand(t, s, "oil"); got != 8 {
			t.Fatalf("on hand after checkout: %d", got)
		}
		paid, err := transitionTo(t, s, "o1", persistence.OrderPaid, t0.Add(time.Minute))
		if err != nil || paid.Order.Status != persistence.OrderPaid || paid.Order.Version != 2 {
			t.Fatalf("mark paid: %+v, %v", paid.Order, err)
		}
		if _, err := transitionTo(t, s, "o1", persistence.OrderFulfilled, t0.Add(2*time.Minute)); err != nil {
			t.Fatalf("fulfil: %v", err)
		}
		_, err = transitionTo(t, s, "o1", persistence.OrderCancelled, t0.Add(3*time.Minute))
		var te *TransitionError
		if !errors.As(err, &te) || !errors.Is(err, ErrTransitionRefused) || te.From != persistence.OrderFulfilled {
			t.Fatalf("cancel a fulfilled order: %v", err)
		}
		if want := "order o1 is fulfilled and cannot become cancelled"; err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
		_, err = transitionTo(t, s, "o1", persistence.OrderReturned, t0.Add(3*time.Minute))
		if !errors.Is(err, ErrTransitionRefused) {
			t.Fatalf("returned is reached through a return only: %v", err)
		}
		if got := onHand(t, s, "oil"); got != 8 {
			t.Fatalf("a refused cancel restocked: on hand %d", got)
		}
		var entries []persistence.AuditEntry
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			entries, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: "order/o1", Limit: 10})
			return err
		})
		var got []string
		for _, e := range entries {
			got = append(got, e.Action+" by "+e.ActorID+"/"+e.ActorRole+" "+e.Reason+" "+e.RequestID)
		}
		want := []string{"order.fulfilled by desk-1/receptionist front desk req-1", "order.paid by desk-1/receptionist front desk req-1"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("audit: %q, want %q", got, want)
		}
		// Each change that happened is an OrderChanged in the outbox, written
		// with it; the refused ones wrote none.
		var events []string
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			pending, err := tx.OutboxPending(ctx, 100)
			for _, e := range pending {
				var env messages.Event
				var ev messages.OrderChanged
				if err := proto.Unmarshal(e.Payload, &env); err != nil || env.Payload.UnmarshalTo(&ev) != nil {
					continue
				}
				events = append(events, fmt.Sprintf("%s %s>%s v%d %d %s", ev.OrderId, ev.FromStatus, ev.ToStatus, ev.Version,
					ev.TotalMinor, ev.Fulfilment))
			}
			return err
		})
		total := paid.Order.TotalMinor
		wantEvents := []string{fmt.Sprintf("o1 pending_payment>paid v2 %d pickup", total), fmt.Sprintf("o1 paid>fulfilled v3 %d pickup", total)}
		if fmt.Sprint(events) != fmt.Sprint(wantEvents) {
			t.Fatalf("events %q, want %q", events, wantEvents)
		}
		_, err = transitionTo(t, s, "nope", persistence.OrderPaid, t0)
		if !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("absent order: %v", err)
		}
	})
}

func TestCancelRestocksAndGivesCreditBack(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := GrantCredit(ctx, tx, GrantRequest{ID: "g1", ClientID: "ana", AmountMinor: 1_000_000, Actor: desk,
				Reason: "apology", At: t0.Add(-time.Hour)})
			return err
		})
		checkout(t, s, "o1", "ana", 3, 2, 400_000)
		res, err := transitionTo(t, s, "o1", persistence.OrderCancelled, t0.Add(time.Minute))
		if err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if res.CreditReturned != 400_000 || len(res.RestockedVariants) != 2 {
			t.Fatalf("cancel result: %+v", res)
		}
		if oil, cream := onHand(t, s, "oil"), onHand(t, s, "cream"); oil != 10 || cream != 10 {
			t.Fatalf("on hand after cancel: oil %d cream %d", oil, cream)
		}
		var bal int64
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			bal, err = tx.CreditBalance(ctx, "ana", t0.Add(time.Minute))
			return err
		})
		if bal != 1_000_000 {
			t.Fatalf("balance after cancel: %d", bal)
		}
	})
}

func TestSweepExpiresUnpaid(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		checkout(t, s, "o1", "ana", 2, 0, 0)
		checkout(t, s, "o2", "ben", 3, 0, 0)
		if _, err := transitionTo(t, s, "o2", persistence.OrderPaid, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		res, err := Sweep(t.Context(), s, t0.Add(29*time.Minute), 10)
		if err != nil || res.Expired != 0 {
			t.Fatalf("sweep before expiry: %+v, %v", res, err)
		}
		res, err = Sweep(t.Context(), s, t0.Add(31*time.Minute), 10)
		if err != nil || res.Expired != 1 || fmt.Sprint(res.RestockedVariants) != "[oil]" {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if got := onHand(t, s, "oil"); got != 7 { // 10 - 2 - 3 + 2
			t.Fatalf("on hand after expiry: %d", got)
		}
		var o persistence.Order
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			o, err = tx.OrderGet(ctx, "o1")
			return err
		})
		if o.Status != persistence.OrderExpired {
			t.Fatalf("o1 is %s", o.Status)
		}
		_, err = transitionTo(t, s, "o1", persistence.OrderPaid, t0.Add(32*time.Minute))
		if !errors.Is(err, ErrTransitionRefused) {
			t.Fatalf("paying an expired order: %v", err)
		}
	})
}

// payOrExpire is one operation on an order in the race history.
type payOrExpire struct {
	order string
	to    persistence.OrderStatus
}

// raceModel: per order, a pending order accepts exactly one of paid or
// expired; the loser is refused.
var raceModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(payOrExpire).order
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = by[k]
		}
		return out
	},
	Init: func() any { return persistence.OrderPendingPayment },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(persistence.OrderStatus), input.(payOrExpire)
		if output.(bool) {
			return st == persistence.OrderPendingPayment, in.to
		}
		return st != persistence.OrderPendingPayment, st
	},
	DescribeOperation: func(input, output any) string { return fmt.Sprintf("%v → %v", input, output) },
}

// TestPayRacesExpiry lets the front desk mark orders paid while the sweep
// expires them: each order ends either paid (its units sold) or expired
// (its units back), and the recorded history is linearizable.
func TestPayRacesExpiry(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		const orders = 6
		for i := range orders {
			checkout(t, s, fmt.Sprintf("o%d", i), "ana", 1, 0, 0)
		}
		start := time.Now()
		var mu sync.Mutex
		var ops []porcupine.Operation
		record := func(client int, in payOrExpire, ok bool, call time.Time) {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Output: ok,
				Call: int64(call.Sub(start)), Return: int64(time.Since(start))})
		}
		at := t0.Add(31 * time.Minute)
		var wg sync.WaitGroup
		wg.Go(func() { // the desk
			for i := range orders {
				id := fmt.Sprintf("o%d", i)
				call := time.Now()
				_, err := transitionTo(t, s, id, persistence.OrderPaid, at)
				if err != nil && !errors.Is(err, ErrTransitionRefused) && !errors.Is(err, persistence.ErrStatusMismatch) {
					t.Errorf("pay %s: %v", id, err)
				}
				record(1, payOrExpire{id, persistence.OrderPaid}, err == nil, call)
			}
		})
		wg.Go(func() { // the sweep, one order at a time so each is an operation
			for i := orders - 1; i >= 0; i-- {
				id := fmt.Sprintf("o%d", i)
				call := time.Now()
				err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
					_, err := Transition(ctx, tx, Change{OrderID: id, To: persistence.OrderExpired, Actor: System, At: at})
					return err
				})
				if err != nil && !errors.Is(err, ErrTransitionRefused) && !errors.Is(err, persistence.ErrStatusMismatch) {
					t.Errorf("expire %s: %v", id, err)
				}
				record(2, payOrExpire{id, persistence.OrderExpired}, err == nil, call)
			}
		})
		wg.Wait()
		if t.Failed() {
			return
		}
		if res, info := porcupine.CheckOperationsVerbose(raceModel, ops, 0); res != porcupine.Ok {
			t.Fatalf("history not linearizable (%v): %+v", res, info)
		}
		paid := 0
		for _, op := range ops {
			if op.Output.(bool) && op.Input.(payOrExpire).to == persistence.OrderPaid {
				paid++
			}
		}
		if got := onHand(t, s, "oil"); got != int64(10-paid) {
			t.Fatalf("on hand %d with %d orders paid", got, paid)
		}
	})
}
