package shop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
)

var t0 = time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)

func caller(subject string, role auth.Role) service.Caller {
	return service.Caller{Claims: auth.Claims{Subject: subject, Role: role}, RequestID: "req-" + subject}
}

var (
	ana  = caller("ana", auth.RoleClient)
	bob  = caller("bob", auth.RoleClient)
	desk = caller("desk-1", auth.RoleReceptionist)
	boss = caller("boss", auth.RoleAdmin)
)

// Prices of the stocked variant "oil": 45,000.00 COP plus 19% tax.
const (
	oilPrice = 4_500_000
	oilTax   = 855_000
)

type fixture struct {
	t     *testing.T
	store persistence.Store
	svc   *Service

	mu        sync.Mutex
	restocked []string
}

// stores runs fn against SQLite, and PostgreSQL (in a fresh schema) when
// TEST_DATABASE_URL is set, each with 10 units of "oil" on hand.
func stores(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			f := &fixture{t: t, store: d.Open(t)}
			f.svc = New(Deps{Store: f.store, Now: func() time.Time { return t0 }, OnRestock: func(v []string) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.restocked = append(f.restocked, v...)
			}})
			inventorytest.Stock(t, f.store, "oil", 10, oilPrice, 4_000_000, 0)
			fn(t, f)
		})
	}
}

func (f *fixture) in(fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := f.t.Context()
	return f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

func (f *fixture) must(fn func(ctx context.Context, tx persistence.Tx) error) {
	f.t.Helper()
	if err := f.in(fn); err != nil {
		f.t.Fatal(err)
	}
}

// checkout does what the cart's checkout does: reserve, consume the
// reservation into an order, spend credit, all in one transaction.
func (f *fixture) checkout(id, client string, qty int, credit int64) persistence.Order {
	f.t.Helper()
	o := persistence.Order{ID: id, ClientID: client, CartID: "cart-" + id, Status: persistence.OrderPendingPayment,
		Fulfilment: persistence.FulfilmentPickup, CreatedAt: t0, ExpiresAt: t0.Add(30 * time.Minute), CreditAppliedMinor: credit}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		r := persistence.Reservation{ID: id + "-res", CartID: o.CartID, VariantID: "oil", Qty: int64(qty), ExpiresAt: t0.Add(time.Hour)}
		if err := tx.ReservationPut(ctx, r, "cart", t0); err != nil {
			return err
		}
		if _, err := tx.ReservationConsume(ctx, r.ID, id, "checkout", t0); err != nil {
			return err
		}
		o.Lines = []persistence.OrderLine{{ID: id + "-oil", VariantID: "oil", SKU: "SKU-oil", Name: "oil", Qty: qty,
			UnitPriceMinor: oilPrice, TaxRateBps: 1900, ReservationID: r.ID}}
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

func (f *fixture) onHand() int64 {
	f.t.Helper()
	var st persistence.Stock
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		st, err = tx.StockGet(ctx, "oil")
		return err
	})
	return st.OnHand
}

func (f *fixture) transition(by service.Caller, id string, to persistence.OrderStatus) (res order.Result, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		res, err = f.svc.Transition(ctx, tx, by, TransitionInput{OrderID: id, To: to, Reason: "front desk"})
		return err
	})
	return res, err
}

func (f *fixture) requestReturn(by service.Caller, in ReturnInput) (r persistence.Return, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		r, err = f.svc.RequestReturn(ctx, tx, by, in)
		return err
	})
	return r, err
}

func (f *fixture) process(by service.Caller, in ProcessInput) (res order.ReturnResult, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		res, err = f.svc.ProcessReturn(ctx, tx, by, in)
		return err
	})
	return res, err
}

func (f *fixture) grant(by service.Caller, in GrantInput) (g persistence.CreditGrant, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		g, err = f.svc.GrantCredit(ctx, tx, by, in)
		return err
	})
	return g, err
}

// ledger reads a client's whole ledger through the service, a page of
// two at a time, and checks it against the balance: the entries (signed)
// sum to what the grants still hold, which is what Credit reports.
func (f *fixture) ledger(by service.Caller) (sum int64) {
	f.t.Helper()
	p := Page{Limit: 2}
	for pages := 0; ; pages++ {
		l, err := f.svc.CreditLedger(f.t.Context(), by, p)
		if err != nil || pages > 50 {
			f.t.Fatalf("ledger page %d: %v", pages, err)
		}
		for _, e := range l.Items {
			sum += e.AmountMinor
		}
		if l.Next == nil {
			break
		}
		p.Before = *l.Next
	}
	c, err := f.svc.Credit(f.t.Context(), by, by.Subject)
	if err != nil {
		f.t.Fatal(err)
	}
	var remaining int64
	for _, g := range c.Grants {
		remaining += g.RemainingMinor
	}
	if sum != c.BalanceMinor || remaining != c.BalanceMinor {
		f.t.Fatalf("ledger sums to %d, grants hold %d, balance %d", sum, remaining, c.BalanceMinor)
	}
	return sum
}

// TestOrderLifecycle: credit granted, spent on an order, given back when
// the order is cancelled; an order paid, returned and refunded to credit;
// all of it spent again. Stock comes back with each cancel and return, and
// the credit ledger always sums to the balance, to zero when all is spent.
func TestOrderLifecycle(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		g, err := f.grant(boss, GrantInput{ClientID: "ana", AmountMinor: 1_000_000, Reason: " birthday gift "})
		if err != nil || g.RemainingMinor != 1_000_000 || g.Reason != "birthday gift" || !g.ExpiresAt.Equal(t0.Add(order.DefaultCreditValidity)) {
			t.Fatalf("grant: %+v %v", g, err)
		}
		if got := f.ledger(ana); got != 1_000_000 {
			t.Fatalf("ledger after grant: %d", got)
		}

		// Order A spends all the credit: the ledger sums to zero.
		f.checkout("order-a", "ana", 2, 1_000_000)
		if got := f.ledger(ana); got != 0 {
			t.Fatalf("ledger after spending: %d", got)
		}
		if f.onHand() != 8 {
			t.Fatalf("on hand after checkout: %d", f.onHand())
		}
		// The desk cancels it: units and credit come back.
		res, err := f.transition(desk, "order-a", persistence.OrderCancelled)
		if err != nil || res.Order.Status != persistence.OrderCancelled || res.CreditReturned != 1_000_000 ||
			!slices.Equal(res.RestockedVariants, []string{"oil"}) {
			t.Fatalf("cancel: %+v %v", res, err)
		}
		f.svc.Restock(res.RestockedVariants)
		if f.onHand() != 10 || !slices.Equal(f.restocked, []string{"oil"}) {
			t.Fatalf("after cancel: on hand %d, restocked %v", f.onHand(), f.restocked)
		}
		if got := f.ledger(ana); got != 1_000_000 {
			t.Fatalf("ledger after cancel: %d", got)
		}

		// Order B is paid, then one unit comes back and is refunded.
		f.checkout("order-b", "ana", 1, 0)
		if res, err := f.transition(desk, "order-b", persistence.OrderPaid); err != nil || res.Order.Status != persistence.OrderPaid {
			t.Fatalf("pay: %+v %v", res, err)
		}
		r, err := f.requestReturn(ana, ReturnInput{OrderID: "order-b", Reason: "wrong scent",
			Lines: []ReturnLine{{OrderLineID: "order-b-oil", Qty: 1}}})
		if err != nil || r.Status != persistence.ReturnRequested || r.ClientID != "ana" {
			t.Fatalf("return: %+v %v", r, err)
		}
		pr, err := f.process(desk, ProcessInput{ReturnID: r.ID, Accept: true, Reason: "sealed"})
		if err != nil || pr.Return.Status != persistence.ReturnCompleted || pr.Order.Status != persistence.OrderReturned ||
			pr.Grant == nil || pr.Grant.AmountMinor != oilPrice+oilTax || !slices.Equal(pr.RestockedVariants, []string{"oil"}) {
			t.Fatalf("process: %+v %v", pr, err)
		}
		if got := f.ledger(ana); got != 1_000_000+oilPrice+oilTax {
			t.Fatalf("ledger after refund: %d", got)
		}
		d, err := f.svc.MyOrder(ctx, ana, "order-b")
		if err != nil || len(d.Returns) != 1 || d.Returns[0].ID != r.ID {
			t.Fatalf("order with its return: %+v %v", d, err)
		}

		// Order C spends every peso left: zero again.
		f.checkout("order-c", "ana", 2, 1_000_000+oilPrice+oilTax)
		if got := f.ledger(ana); got != 0 {
			t.Fatalf("ledger after spending everything: %d", got)
		}

		mine, err := f.svc.MyOrders(ctx, ana, OrderQuery{})
		if err != nil || len(mine.Items) != 3 || mine.Items[0].ID != "order-c" || mine.Next != nil {
			t.Fatalf("my orders: %+v %v", mine, err)
		}
		page, err := f.svc.MyOrders(ctx, ana, OrderQuery{Page: Page{Limit: 2}})
		if err != nil || len(page.Items) != 2 || page.Next == nil || *page.Next != page.Items[1].ID {
			t.Fatalf("first page: %+v %v", page, err)
		}
		cancelled, err := f.svc.Orders(ctx, desk, OrderQuery{ClientID: "ana", Status: "cancelled"})
		if err != nil || len(cancelled.Items) != 1 || cancelled.Items[0].ID != "order-a" {
			t.Fatalf("cancelled orders: %+v %v", cancelled, err)
		}
		if l, err := f.svc.Returns(ctx, desk, ReturnQuery{Status: persistence.ReturnCompleted}); err != nil || len(l.Items) != 1 {
			t.Fatalf("returns: %+v %v", l, err)
		}

		var actions []string
		f.must(func(ctx context.Context, tx persistence.Tx) error {
			audit, err := tx.AuditList(ctx, persistence.AuditListParams{Limit: 100})
			for _, a := range audit {
				actions = append(actions, a.Action+" by "+a.ActorID)
			}
			return err
		})
		slices.Reverse(actions)
		want := []string{"credit.grant by boss", "order.cancelled by desk-1", "order.paid by desk-1",
			"order.return_requested by ana", "order.returned by desk-1", "order.return_completed by desk-1"}
		if !slices.Equal(actions, want) {
			t.Fatalf("audit %v, want %v", actions, want)
		}
	})
}

// TestRefusals: each refusal of the shop's use cases with its fault code.
func TestRefusals(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		f.checkout("pending", "ana", 1, 0)
		f.checkout("paid", "ana", 2, 0)
		if _, err := f.transition(desk, "paid", persistence.OrderPaid); err != nil {
			t.Fatal(err)
		}
		f.checkout("gone", "ana", 1, 0)
		if _, err := f.transition(desk, "gone", persistence.OrderCancelled); err != nil {
			t.Fatal(err)
		}
		r, err := f.requestReturn(ana, ReturnInput{OrderID: "paid", Reason: "too many", Lines: []ReturnLine{{OrderLineID: "paid-oil", Qty: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		transition := func(by service.Caller, id string, to persistence.OrderStatus) error {
			_, err := f.transition(by, id, to)
			return err
		}
		ret := func(by service.Caller, id string, qty int) error {
			_, err := f.requestReturn(by, ReturnInput{OrderID: id, Reason: "changed my mind", Lines: []ReturnLine{{OrderLineID: id + "-oil", Qty: qty}}})
			return err
		}
		process := func(in ProcessInput) error {
			_, err := f.process(desk, in)
			return err
		}
		grant := func(by service.Caller, in GrantInput) error {
			_, err := f.grant(by, in)
			return err
		}
		for _, tc := range []struct {
			name string
			err  error
			code string
		}{
			{"pay a cancelled order", transition(desk, "gone", persistence.OrderPaid), fault.CodeOrderTransition},
			{"fulfil an unpaid order", transition(desk, "pending", persistence.OrderFulfilled), fault.CodeOrderTransition},
			{"absent order", transition(desk, "nope", persistence.OrderPaid), fault.CodeNotFound},
			{"client marks paid", transition(ana, "pending", persistence.OrderPaid), fault.CodeForbidden},
			{"anonymous marks paid", transition(service.Caller{}, "pending", persistence.OrderPaid), fault.CodeUnauthenticated},
			{"return an unpaid order", ret(ana, "pending", 1), fault.CodeNotReturnable},
			{"return more than bought", ret(ana, "paid", 2), fault.CodeReturnExceedsOrder},
			{"return another client's order", ret(bob, "paid", 1), fault.CodeNotFound},
			{"kiosk returns", ret(caller("k", auth.RoleKiosk), "paid", 1), fault.CodeForbidden},
			{"absent return", process(ProcessInput{ReturnID: "nope", Accept: true}), fault.CodeNotFound},
			{"grant by the desk", grant(desk, GrantInput{ClientID: "ana", AmountMinor: 1, Reason: "gift"}), fault.CodeForbidden},
			{"credit of another client", func() error { _, err := f.svc.Credit(ctx, bob, "ana"); return err }(), fault.CodeForbidden},
			{"another client's order", func() error { _, err := f.svc.MyOrder(ctx, bob, "paid"); return err }(), fault.CodeNotFound},
			{"staff list by a client", func() error { _, err := f.svc.Orders(ctx, ana, OrderQuery{}); return err }(), fault.CodeForbidden},
			{"VIP list by the desk", func() error { _, err := f.svc.VIP(ctx, desk, "ana"); return err }(), fault.CodeForbidden},
			{"VIP of a bad id", func() error { _, err := f.svc.VIP(ctx, boss, "a b"); return err }(), fault.CodeNotFound},
		} {
			if got := servicetest.Code(tc.err); got != tc.code {
				t.Errorf("%s: %q (%v), want %q", tc.name, got, tc.err, tc.code)
			}
		}

		// Processing twice loses to the first: the return is no longer
		// requested.
		if err := process(ProcessInput{ReturnID: r.ID, Accept: false}); err != nil {
			t.Fatal(err)
		}
		if got := servicetest.Code(process(ProcessInput{ReturnID: r.ID, Accept: true})); got != fault.CodeOrderTransition {
			t.Errorf("processed twice: %q", got)
		}

		for _, tc := range []struct {
			name string
			err  error
			want []string
		}{
			{"bad grant", grant(boss, GrantInput{ClientID: "a b", AmountMinor: MaxCreditGrant + 1, ExpiresAt: t0.Add(-time.Hour), Reason: ""}),
				[]string{"client_id", "amount_minor", "expires_at", "reason"}},
			{"grant for six years", grant(boss, GrantInput{ClientID: "ana", AmountMinor: 1, ExpiresAt: t0.AddDate(6, 0, 0), Reason: "gift"}),
				[]string{"expires_at"}},
			{"no lines", func() error {
				_, err := f.requestReturn(ana, ReturnInput{OrderID: "paid", Reason: "x"})
				return err
			}(), []string{"reason", "lines"}},
			{"same line twice", func() error {
				_, err := f.requestReturn(ana, ReturnInput{OrderID: "paid", Reason: "twice",
					Lines: []ReturnLine{{OrderLineID: "paid-oil", Qty: 1}, {OrderLineID: "paid-oil", Qty: 1}}})
				return err
			}(), []string{"lines"}},
			{"damaged when rejecting", process(ProcessInput{ReturnID: r.ID, DamagedLineIDs: []string{"paid-oil"}}), []string{"damaged_line_ids"}},
			{"expire by hand", transition(desk, "pending", persistence.OrderExpired), []string{"to"}},
			{"bad limit", func() error { _, err := f.svc.MyOrders(ctx, ana, OrderQuery{Page: Page{Limit: -1}}); return err }(), []string{"limit"}},
			{"limit too big", func() error { _, err := f.svc.Returns(ctx, desk, ReturnQuery{Page: Page{Limit: 201}}); return err }(), []string{"limit"}},
			{"bad cursor", func() error { _, err := f.svc.CreditLedger(ctx, ana, Page{Before: "x"}); return err }(), []string{"before"}},
			{"bad status", func() error { _, err := f.svc.MyOrders(ctx, ana, OrderQuery{Status: "lost"}); return err }(), []string{"status"}},
			{"bad return status", func() error { _, err := f.svc.Returns(ctx, desk, ReturnQuery{Status: "lost"}); return err }(), []string{"status"}},
			{"bad client filter", func() error { _, err := f.svc.Orders(ctx, desk, OrderQuery{ClientID: "a b"}); return err }(), []string{"client_id"}},
			{"credit of a bad id", func() error { _, err := f.svc.Credit(ctx, desk, "a b"); return err }(), []string{"id"}},
		} {
			if got := servicetest.Fields(tc.err); !slices.Equal(got, tc.want) {
				t.Errorf("%s: fields %v, want %v", tc.name, got, tc.want)
			}
		}

		// A second request for the same units, while the first waits, is
		// more than the order has left.
		r2, err := f.requestReturn(desk, ReturnInput{OrderID: "paid", Reason: "desk records it", Lines: []ReturnLine{{OrderLineID: "paid-oil", Qty: 2}}})
		if err != nil || r2.ClientID != "ana" {
			t.Fatalf("desk return for a client: %+v %v", r2, err)
		}
		if got := servicetest.Code(ret(ana, "paid", 1)); got != fault.CodeReturnExceedsOrder {
			t.Errorf("units already asked back: %q", got)
		}
		if got := servicetest.Fields(process(ProcessInput{ReturnID: r2.ID, Accept: true, DamagedLineIDs: []string{"other"}})); !slices.Equal(got, []string{"damaged_line_ids"}) {
			t.Errorf("damaged line not in the return: %v", got)
		}
		if len(f.restocked) != 0 {
			t.Fatalf("restock told before Restock was called: %v", f.restocked)
		}
	})
}

func TestOrderFault(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("spend: %w", persistence.ErrInsufficientCredit), fault.CodeInsufficientCredit},
		{fmt.Errorf("x: %w", persistence.ErrStatusMismatch), fault.CodeOrderTransition},
		{&order.TransitionError{OrderID: "o", From: persistence.OrderPaid, To: persistence.OrderPaid}, fault.CodeOrderTransition},
		{fmt.Errorf("x: %w", order.ErrNotReturnable), fault.CodeNotReturnable},
		{fmt.Errorf("x: %w", persistence.ErrReturnExceedsOrder), fault.CodeReturnExceedsOrder},
		{order.InvalidAddress{{Field: "line1", Message: "required"}}, fault.CodeValidationFailed},
		{fmt.Errorf("x: %w", persistence.ErrNotFound), fault.CodeNotFound},
	} {
		if got := servicetest.Code(OrderFault(tc.err)); got != tc.code {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.code)
		}
	}
	if got := servicetest.Fields(OrderFault(order.InvalidAddress{{Field: "line1", Message: "required"}})); !slices.Equal(got, []string{"shipping_address.line1"}) {
		t.Errorf("address fields %v", got)
	}
	if err := errors.New("disk on fire"); OrderFault(err) != err {
		t.Errorf("an unknown error was mapped")
	}
}

func TestVIPList(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		rule := StoredVIP(f.store, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
		set := func(by service.Caller, id string, vip bool) error {
			return f.in(func(ctx context.Context, tx persistence.Tx) error { return f.svc.SetVIP(ctx, tx, by, id, vip) })
		}
		if rule(ana.Claims) {
			t.Fatal("VIP before being marked")
		}
		if err := set(boss, "ana", true); err != nil {
			t.Fatal(err)
		}
		if vip, err := f.svc.VIP(ctx, boss, "ana"); err != nil || !vip || !rule(ana.Claims) {
			t.Fatalf("marked: %v %v", vip, err)
		}
		// Only clients pay VIP prices, whatever the list says.
		if err := set(boss, "desk-1", true); err != nil || rule(desk.Claims) {
			t.Fatalf("staff on the list: %v", err)
		}
		if err := set(boss, "ana", false); err != nil || rule(ana.Claims) {
			t.Fatalf("unmarked: %v", err)
		}
		if got := servicetest.Fields(set(boss, "a b", true)); !slices.Equal(got, []string{"id"}) {
			t.Fatalf("bad id: %v", got)
		}
		if got := servicetest.Code(set(ana, "ana", true)); got != fault.CodeForbidden {
			t.Fatalf("client marking itself: %q", got)
		}
		var actions []string
		f.must(func(ctx context.Context, tx persistence.Tx) error {
			audit, err := tx.AuditList(ctx, persistence.AuditListParams{Limit: 100})
			for _, a := range audit {
				actions = append(actions, a.Action+" "+a.Subject)
			}
			return err
		})
		if want := []string{"shop.vip_revoked client/ana", "shop.vip_granted client/desk-1", "shop.vip_granted client/ana"}; !slices.Equal(actions, want) {
			t.Fatalf("audit %v, want %v", actions, want)
		}
	})
}
