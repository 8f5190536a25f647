package order

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

func requestReturn(t *testing.T, s persistence.Store, req ReturnRequest) (persistence.Return, error) {
	var r persistence.Return
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		r, err = RequestReturn(ctx, tx, req)
		return err
	})
	return r, err
}

func processReturn(t *testing.T, s persistence.Store, d ReturnDecision) (ReturnResult, error) {
	var r ReturnResult
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		r, err = ProcessReturn(ctx, tx, d)
		return err
	})
	return r, err
}

func balance(t *testing.T, s persistence.Store, client string, at time.Time) int64 {
	t.Helper()
	var b int64
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		b, err = tx.CreditBalance(ctx, client, at)
		return err
	})
	return b
}

// TestReturnPartialThenFull returns an order in two parts: the refunds add
// up to exactly what the order charged, damaged units stay out of stock,
// and the order goes partially_returned, then returned.
func TestReturnPartialThenFull(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		o := checkout(t, s, "o1", "ana", 3, 1, 0)
		if _, err := transitionTo(t, s, "o1", persistence.OrderPaid, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(24 * time.Hour)
		r1, err := requestReturn(t, s, ReturnRequest{ID: "r1", OrderID: "o1", ClientID: "ana", Reason: "too strong",
			Lines: []persistence.ReturnLine{{OrderLineID: "o1-oil", Qty: 1}}, Actor: Actor{ID: "ana", Role: "client"}, At: at})
		if err != nil || r1.Status != persistence.ReturnRequested {
			t.Fatalf("request: %+v, %v", r1, err)
		}
		res, err := processReturn(t, s, ReturnDecision{ReturnID: "r1", Accept: true, Actor: desk, At: at.Add(time.Hour)})
		if err != nil {
			t.Fatalf("process: %v", err)
		}
		// One oil at 4,500,000 + 19% tax.
		if res.Return.RefundMinor != 5_355_000 || res.Grant == nil || res.Grant.AmountMinor != 5_355_000 {
			t.Fatalf("refund: %+v %+v", res.Return, res.Grant)
		}
		if res.Order.Status != persistence.OrderPartiallyReturned {
			t.Fatalf("order after a partial return: %s", res.Order.Status)
		}
		if got := onHand(t, s, "oil"); got != 8 { // 10 - 3 + 1
			t.Fatalf("on hand after return: %d", got)
		}
		r2, err := requestReturn(t, s, ReturnRequest{ID: "r2", OrderID: "o1", Reason: "rest",
			Lines: []persistence.ReturnLine{{OrderLineID: "o1-oil", Qty: 2}, {OrderLineID: "o1-cream", Qty: 1}},
			Actor: desk, At: at.Add(2 * time.Hour)})
		if err != nil {
			t.Fatalf("second request: %v", err)
		}
		res, err = processReturn(t, s, ReturnDecision{ReturnID: r2.ID, Accept: true, Damaged: map[string]bool{"o1-oil": true},
			Actor: desk, At: at.Add(3 * time.Hour)})
		if err != nil {
			t.Fatalf("second process: %v", err)
		}
		if res.Order.Status != persistence.OrderReturned {
			t.Fatalf("order after everything came back: %s", res.Order.Status)
		}
		if oil, cream := onHand(t, s, "oil"), onHand(t, s, "cream"); oil != 8 || cream != 10 {
			t.Fatalf("damaged oil was restocked or cream was not: oil %d cream %d", oil, cream)
		}
		if got, want := balance(t, s, "ana", at.Add(4*time.Hour)), o.SubtotalMinor+o.TaxMinor; got != want {
			t.Fatalf("refunds %d, want the order's %d", got, want)
		}
		_, err = processReturn(t, s, ReturnDecision{ReturnID: "r1", Accept: true, Actor: desk, At: at.Add(5 * time.Hour)})
		if !errors.Is(err, persistence.ErrStatusMismatch) {
			t.Fatalf("processing twice: %v", err)
		}
		_, err = requestReturn(t, s, ReturnRequest{ID: "r3", OrderID: "o1", Lines: []persistence.ReturnLine{{OrderLineID: "o1-cream", Qty: 1}},
			Actor: desk, At: at.Add(6 * time.Hour)})
		if !errors.Is(err, ErrNotReturnable) {
			t.Fatalf("return of a returned order: %v", err)
		}
	})
}

func TestReturnRefusals(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		checkout(t, s, "o1", "ana", 2, 0, 0)
		at := t0.Add(time.Hour)
		req := ReturnRequest{ID: "r1", OrderID: "o1", ClientID: "ana", Lines: []persistence.ReturnLine{{OrderLineID: "o1-oil", Qty: 1}},
			Actor: Actor{ID: "ana"}, At: at}
		if _, err := requestReturn(t, s, req); !errors.Is(err, ErrNotReturnable) {
			t.Fatalf("return of an unpaid order: %v", err)
		}
		if _, err := transitionTo(t, s, "o1", persistence.OrderPaid, at); err != nil {
			t.Fatal(err)
		}
		other := req
		other.ClientID = "ben"
		if _, err := requestReturn(t, s, other); !errors.Is(err, persistence.ErrNotFound) {
			t.Fatalf("return of another client's order: %v", err)
		}
		tooMany := req
		tooMany.Lines = []persistence.ReturnLine{{OrderLineID: "o1-oil", Qty: 3}}
		if _, err := requestReturn(t, s, tooMany); !errors.Is(err, persistence.ErrReturnExceedsOrder) {
			t.Fatalf("returning more than bought: %v", err)
		}
		if _, err := requestReturn(t, s, req); err != nil {
			t.Fatal(err)
		}
		_, err := processReturn(t, s, ReturnDecision{ReturnID: "r1", Damaged: map[string]bool{"o1-cream": true}, Actor: desk, At: at})
		if !errors.Is(err, persistence.ErrInvalid) {
			t.Fatalf("damaged line not in the return: %v", err)
		}
		res, err := processReturn(t, s, ReturnDecision{ReturnID: "r1", Accept: false, Actor: desk, Reason: "used", At: at})
		if err != nil || res.Return.Status != persistence.ReturnRejected || res.Grant != nil {
			t.Fatalf("reject: %+v, %v", res, err)
		}
		if got := onHand(t, s, "oil"); got != 8 {
			t.Fatalf("a rejected return restocked: %d", got)
		}
		again := req
		again.ID, again.Lines = "r2", []persistence.ReturnLine{{OrderLineID: "o1-oil", Qty: 2}}
		if _, err := requestReturn(t, s, again); err != nil {
			t.Fatalf("a rejection frees the units: %v", err)
		}
	})
}

func TestRefundMinorAddsUp(t *testing.T) {
	// 7 units at 1,234,567 with 19% tax: per-unit tax is fractional, yet
	// returning them one by one refunds exactly the line's total.
	o := persistence.Order{Lines: []persistence.OrderLine{{ID: "l", Qty: 7, UnitPriceMinor: 1_234_567, TaxRateBps: 1900}}}
	if err := o.ComputeTotals(); err != nil {
		t.Fatal(err)
	}
	var sum int64
	done := map[string]int{}
	for range 7 {
		r, err := RefundMinor(o, done, []persistence.ReturnLine{{OrderLineID: "l", Qty: 1}})
		if err != nil {
			t.Fatal(err)
		}
		sum += r
		done["l"]++
	}
	if sum != o.SubtotalMinor+o.TaxMinor {
		t.Fatalf("refunds %d, line charged %d", sum, o.SubtotalMinor+o.TaxMinor)
	}
}

// TestCancelRejectsPendingReturns: cancelling a paid order with a return
// still waiting rejects it, and every unit sold goes back to stock.
func TestCancelRejectsPendingReturns(t *testing.T) {
	stores(t, func(t *testing.T, s persistence.Store) {
		seedVariants(t, s)
		checkout(t, s, "o1", "ana", 3, 0, 0)
		at := t0.Add(time.Hour)
		if _, err := transitionTo(t, s, "o1", persistence.OrderPaid, at); err != nil {
			t.Fatal(err)
		}
		if _, err := requestReturn(t, s, ReturnRequest{ID: "r1", OrderID: "o1", Lines: []persistence.ReturnLine{{OrderLineID: "o1-oil", Qty: 1}},
			Actor: desk, At: at}); err != nil {
			t.Fatal(err)
		}
		res, err := transitionTo(t, s, "o1", persistence.OrderCancelled, at.Add(time.Minute))
		if err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if got := onHand(t, s, "oil"); got != 10 {
			t.Fatalf("on hand after cancelling with a pending return: %d", got)
		}
		var r persistence.Return
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			r, err = tx.ReturnGet(ctx, "r1")
			return err
		})
		if r.Status != persistence.ReturnRejected || res.Order.Lines[0].ReturnedQty != 0 {
			t.Fatalf("return %s, order lines %+v", r.Status, res.Order.Lines)
		}
	})
}
