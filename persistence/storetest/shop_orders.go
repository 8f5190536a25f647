package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spa-engine/spa/persistence"
)

// shopOrderTests are the conformance tests of persistence.OrderStore.
var shopOrderTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"OrderCreateGet", testOrderCreateGet},
	{"OrderListTransition", testOrderListTransition},
	{"OrderReturns", testOrderReturns},
	{"CreditLedger", testCreditLedger},
	{"CreditSpendConcurrent", testCreditSpendConcurrent},
}

// testOrder is a pending order of client c with two lines, created at
// base + created minutes and expiring 30 minutes later.
func testOrder(id, c string, created int) persistence.Order {
	at := base.Add(time.Duration(created) * time.Minute)
	o := persistence.Order{ID: id, ClientID: c, CartID: "cart-" + id, Status: persistence.OrderPendingPayment,
		Lines: []persistence.OrderLine{
			{ID: id + "-b", VariantID: "oil-100", SKU: "OIL-100", Name: "Lavender oil 100 ml", Qty: 2,
				UnitPriceMinor: 4_500_000, TaxRateBps: 1900, ReservationID: "res-" + id},
			{ID: id + "-a", VariantID: "cream-50", SKU: "CRM-50", Name: "Cream 50 ml", Qty: 1,
				UnitPriceMinor: 3_333_333, TaxRateBps: 500},
		},
		Fulfilment: persistence.FulfilmentShipping,
		Shipping: persistence.ShippingAddress{Recipient: "Ana Pérez", Phone: "+573001234567",
			Line1: "Calle 10 # 5-51", DepartmentCode: "05", MunicipalityCode: "05001"},
		CreatedAt: at, ExpiresAt: at.Add(30 * time.Minute)}
	o.ComputeTotals()
	return o
}

// storedOrder is o as the store returns it.
func storedOrder(o persistence.Order, status persistence.OrderStatus, version int64, updated time.Time) persistence.Order {
	o.CreatedAt, o.ExpiresAt, o.UpdatedAt = ct(o.CreatedAt), ct(o.ExpiresAt), ct(updated)
	o.Status, o.Version = status, version
	o.Lines = append([]persistence.OrderLine(nil), o.Lines...)
	for i := 0; i+1 < len(o.Lines); i++ { // the fixture has two lines, out of ID order
		if o.Lines[i].ID > o.Lines[i+1].ID {
			o.Lines[i], o.Lines[i+1] = o.Lines[i+1], o.Lines[i]
		}
	}
	return o
}

func orderIDs(os []persistence.Order) []string {
	out := []string{}
	for _, o := range os {
		out = append(out, o.ID)
	}
	return out
}

func testOrderCreateGet(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	create := func(o persistence.Order) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.OrderCreate(ctx, o) })
	}
	get := func(id string) (persistence.Order, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Order, error) {
			return tx.OrderGet(ctx, id)
		})
	}
	o := testOrder("o1", "ana", 0)
	if o.SubtotalMinor != 12_333_333 || o.TaxMinor != 1_876_667 || o.TotalMinor != 14_210_000 {
		t.Fatalf("totals: %+v", o)
	}
	if err := create(o); err != nil {
		t.Fatalf("OrderCreate: %v", err)
	}
	got, err := get("o1")
	if err != nil {
		t.Fatalf("OrderGet: %v", err)
	}
	wantEqual(t, "stored order", got, storedOrder(o, persistence.OrderPendingPayment, 1, o.CreatedAt))

	pickup := testOrder("o2", "ana", 1)
	pickup.Fulfilment, pickup.Shipping, pickup.CartID, pickup.ExpiresAt = persistence.FulfilmentPickup, persistence.ShippingAddress{}, "", time.Time{}
	if err := create(pickup); err != nil {
		t.Fatalf("OrderCreate pickup: %v", err)
	}
	got, err = get("o2")
	if err != nil || got.Fulfilment != persistence.FulfilmentPickup || !got.ExpiresAt.IsZero() || got.Shipping != (persistence.ShippingAddress{}) {
		t.Fatalf("pickup order: %+v, %v", got, err)
	}

	wantErr(t, "same id", create(o), persistence.ErrConflict)
	sameCart := testOrder("o3", "ana", 2)
	sameCart.CartID = o.CartID
	for i := range sameCart.Lines {
		sameCart.Lines[i].ID += "x"
	}
	wantErr(t, "same cart", create(sameCart), persistence.ErrConflict)
	sameLine := testOrder("o4", "ana", 2)
	sameLine.Lines[0].ID = o.Lines[0].ID
	wantErr(t, "same line id", create(sameLine), persistence.ErrConflict)
	if _, err := get("o4"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a refused order left a row: %v", err)
	}
	_, err = get("nope")
	wantErr(t, "get absent", err, persistence.ErrNotFound)

	bad := map[string]func(*persistence.Order){
		"totals":      func(o *persistence.Order) { o.TotalMinor++ },
		"no lines":    func(o *persistence.Order) { o.Lines = nil },
		"status":      func(o *persistence.Order) { o.Status = "lost" },
		"qty":         func(o *persistence.Order) { o.Lines[0].Qty = 0; o.ComputeTotals() },
		"tax rate":    func(o *persistence.Order) { o.Lines[0].TaxRateBps = 10001; o.ComputeTotals() },
		"no address":  func(o *persistence.Order) { o.Shipping = persistence.ShippingAddress{} },
		"over credit": func(o *persistence.Order) { o.CreditAppliedMinor = o.TotalMinor + 1; o.ComputeTotals() },
		"no client":   func(o *persistence.Order) { o.ClientID = "" },
	}
	for name, mutate := range bad {
		o := testOrder("bad-"+name, "ana", 3)
		mutate(&o)
		wantErr(t, "invalid "+name, create(o), persistence.ErrInvalid)
	}
}

func testOrderListTransition(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for i, c := range []string{"ana", "ben", "ana", "ana"} {
			if err := tx.OrderCreate(ctx, testOrder(fmt.Sprintf("o%d", i+1), c, i)); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(p persistence.OrderListParams) []string {
		t.Helper()
		return orderIDs(mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Order, error) {
			return tx.OrderList(ctx, p)
		}))
	}
	wantEqual(t, "all", list(persistence.OrderListParams{Limit: 10}), []string{"o4", "o3", "o2", "o1"})
	wantEqual(t, "ana", list(persistence.OrderListParams{ClientID: "ana", Limit: 10}), []string{"o4", "o3", "o1"})
	wantEqual(t, "ana page 2", list(persistence.OrderListParams{ClientID: "ana", BeforeID: "o3", Limit: 10}), []string{"o1"})
	wantEqual(t, "limit", list(persistence.OrderListParams{Limit: 2}), []string{"o4", "o3"})

	at := base.Add(time.Hour)
	paid := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Order, error) {
		return tx.OrderTransition(ctx, persistence.OrderTransition{ID: "o3", From: persistence.OrderPendingPayment,
			To: persistence.OrderPaid, At: at})
	})
	wantEqual(t, "paid", paid, storedOrder(testOrder("o3", "ana", 2), persistence.OrderPaid, 2, at))
	_, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Order, error) {
		return tx.OrderTransition(ctx, persistence.OrderTransition{ID: "o3", From: persistence.OrderPendingPayment,
			To: persistence.OrderCancelled, At: at})
	})
	wantErr(t, "stale transition", err, persistence.ErrStatusMismatch)
	wantErr(t, "stale transition is a conflict", err, persistence.ErrConflict)
	_, err = txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Order, error) {
		return tx.OrderTransition(ctx, persistence.OrderTransition{ID: "zz", From: persistence.OrderPendingPayment,
			To: persistence.OrderPaid, At: at})
	})
	wantErr(t, "absent transition", err, persistence.ErrNotFound)

	wantEqual(t, "paid list", list(persistence.OrderListParams{Status: []persistence.OrderStatus{persistence.OrderPaid}, Limit: 10}), []string{"o3"})
	wantEqual(t, "two statuses", list(persistence.OrderListParams{ClientID: "ana",
		Status: []persistence.OrderStatus{persistence.OrderPaid, persistence.OrderPendingPayment}, Limit: 10}), []string{"o4", "o3", "o1"})

	// o1 expires at base+30m, o2 at +31m, o4 at +33m; o3 is paid.
	expired := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Order, error) {
		return tx.OrderListExpired(ctx, base.Add(32*time.Minute), 10)
	})
	wantEqual(t, "expired", orderIDs(expired), []string{"o1", "o2"})
	if len(expired[0].Lines) != 2 {
		t.Fatalf("expired orders come with their lines: %+v", expired[0])
	}
	for _, p := range []persistence.OrderListParams{{Limit: 0}, {Limit: persistence.MaxOrderListLimit + 1}, {Limit: 1, Status: []persistence.OrderStatus{"x"}}} {
		_, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Order, error) { return tx.OrderList(ctx, p) })
		wantErr(t, fmt.Sprintf("list %+v", p), err, persistence.ErrInvalid)
	}
}

func testOrderReturns(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	o := testOrder("o1", "ana", 0)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.OrderCreate(ctx, o) })
	create := func(r persistence.Return) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.ReturnCreate(ctx, r) })
	}
	returned := func() map[string]int {
		got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Order, error) { return tx.OrderGet(ctx, "o1") })
		out := map[string]int{}
		for _, l := range got.Lines {
			out[l.ID] = l.ReturnedQty
		}
		return out
	}
	at := base.Add(2 * time.Hour)
	r1 := persistence.Return{ID: "r1", OrderID: "o1", ClientID: "ana", Status: persistence.ReturnRequested,
		Reason: "too strong", RequestedBy: "ana", CreatedAt: at,
		Lines: []persistence.ReturnLine{{OrderLineID: "o1-b", Qty: 1}}}
	if err := create(r1); err != nil {
		t.Fatalf("ReturnCreate: %v", err)
	}
	wantEqual(t, "returned after request", returned(), map[string]int{"o1-a": 0, "o1-b": 1})
	r2 := r1
	r2.ID, r2.Lines = "r2", []persistence.ReturnLine{{OrderLineID: "o1-b", Qty: 2}}
	wantErr(t, "exceeding return", create(r2), persistence.ErrReturnExceedsOrder)
	wantErr(t, "exceeding return is a refusal", create(r2), persistence.ErrRefused)
	r2.Lines = []persistence.ReturnLine{{OrderLineID: "o1-b", Qty: 1}, {OrderLineID: "o1-a", Qty: 1}}
	if err := create(r2); err != nil {
		t.Fatalf("second return: %v", err)
	}
	wantEqual(t, "returned after two", returned(), map[string]int{"o1-a": 1, "o1-b": 2})
	r3 := r1
	r3.ID, r3.OrderID = "r3", "nope"
	wantErr(t, "return of absent order", create(r3), persistence.ErrNotFound)
	r3.OrderID, r3.Lines = "o1", []persistence.ReturnLine{{OrderLineID: "nope", Qty: 1}}
	wantErr(t, "return of absent line", create(r3), persistence.ErrNotFound)
	wantErr(t, "same return id", create(r1), persistence.ErrConflict)

	done := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Return, error) {
		return tx.ReturnResolve(ctx, persistence.Return{ID: "r1", Status: persistence.ReturnCompleted,
			RefundMinor: 5_355_000, ProcessedBy: "desk", UpdatedAt: at.Add(time.Hour),
			Lines: []persistence.ReturnLine{{OrderLineID: "o1-b", Damaged: true}}})
	})
	want := r1
	want.Status, want.RefundMinor, want.ProcessedBy, want.Version = persistence.ReturnCompleted, 5_355_000, "desk", 2
	want.CreatedAt, want.UpdatedAt = ct(at), ct(at.Add(time.Hour))
	want.Lines = []persistence.ReturnLine{{OrderLineID: "o1-b", Qty: 1, Damaged: true}}
	wantEqual(t, "resolved", done, want)
	wantEqual(t, "stored resolved", mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Return, error) {
		return tx.ReturnGet(ctx, "r1")
	}), want)
	_, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Return, error) {
		return tx.ReturnResolve(ctx, persistence.Return{ID: "r1", Status: persistence.ReturnRejected, ProcessedBy: "desk", UpdatedAt: at})
	})
	wantErr(t, "resolve twice", err, persistence.ErrStatusMismatch)

	if _, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Return, error) {
		return tx.ReturnResolve(ctx, persistence.Return{ID: "r2", Status: persistence.ReturnRejected, ProcessedBy: "desk", UpdatedAt: at})
	}); err != nil {
		t.Fatalf("reject: %v", err)
	}
	wantEqual(t, "a rejection gives the units back", returned(), map[string]int{"o1-a": 0, "o1-b": 1})

	list := func(p persistence.ReturnListParams) []string {
		rs := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Return, error) {
			return tx.ReturnList(ctx, p)
		})
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	wantEqual(t, "returns of o1", list(persistence.ReturnListParams{OrderID: "o1", Limit: 10}), []string{"r2", "r1"})
	wantEqual(t, "completed", list(persistence.ReturnListParams{Status: persistence.ReturnCompleted, Limit: 10}), []string{"r1"})
	wantEqual(t, "of ben", list(persistence.ReturnListParams{ClientID: "ben", Limit: 10}), []string{})
}

func creditGrantFixture(id, c string, amount int64, createdMin, expiresMin int) persistence.CreditGrant {
	return persistence.CreditGrant{ID: id, ClientID: c, AmountMinor: amount, Reason: "goodwill", GrantedBy: "admin",
		CreatedAt: base.Add(time.Duration(createdMin) * time.Minute), ExpiresAt: base.Add(time.Duration(expiresMin) * time.Minute)}
}

func testCreditLedger(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, g := range []persistence.CreditGrant{
			creditGrantFixture("01A", "ana", 10_000, 0, 100), // expires last
			creditGrantFixture("01B", "ana", 5_000, 1, 50),   // expires first: spent first
			creditGrantFixture("01C", "ben", 7_000, 2, 100),
		} {
			if err := tx.CreditGrant(ctx, g); err != nil {
				return err
			}
		}
		return nil
	})
	balance := func(c string, atMin int) int64 {
		t.Helper()
		return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
			return tx.CreditBalance(ctx, c, base.Add(time.Duration(atMin)*time.Minute))
		})
	}
	spend := func(c string, amount int64, order string, atMin int) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.CreditSpend(ctx, c, amount, order, base.Add(time.Duration(atMin)*time.Minute))
		})
	}
	wantEqual(t, "ana", balance("ana", 10), int64(15_000))
	wantEqual(t, "ben", balance("ben", 10), int64(7_000))
	if err := spend("ana", 6_000, "o1", 10); err != nil {
		t.Fatalf("spend: %v", err)
	}
	grants := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.CreditGrant, error) {
		return tx.CreditGrants(ctx, "ana", base.Add(10*time.Minute))
	})
	wantEqual(t, "grants after spend: B used up, 1000 from A", len(grants), 1)
	wantEqual(t, "A remaining", grants[0].RemainingMinor, int64(9_000))
	err := spend("ana", 9_001, "o2", 10)
	wantErr(t, "overspend", err, persistence.ErrInsufficientCredit)
	wantEqual(t, "overspend wrote nothing", balance("ana", 10), int64(9_000))
	wantErr(t, "zero spend", spend("ana", 0, "o2", 10), persistence.ErrInvalid)
	used := func(order string) int64 {
		return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) { return tx.CreditUsed(ctx, order) })
	}
	wantEqual(t, "used for o1 (two grants)", used("o1"), int64(6_000))
	wantEqual(t, "used for nothing", used("o2"), int64(0))

	// Reversal gives 5000 back to B and 1000 to A; after B's expiry only A counts.
	back := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
		return tx.CreditReverse(ctx, "o1", base.Add(20*time.Minute))
	})
	wantEqual(t, "reversed", back, int64(6_000))
	again := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
		return tx.CreditReverse(ctx, "o1", base.Add(21*time.Minute))
	})
	wantEqual(t, "reversed twice", again, int64(0))
	wantEqual(t, "used for o1 after the reversal", used("o1"), int64(0))
	wantEqual(t, "balance after reversal", balance("ana", 20), int64(15_000))
	wantEqual(t, "balance after B's expiry", balance("ana", 51), int64(10_000))
	wantErr(t, "spend expired credit", spend("ana", 10_001, "o3", 51), persistence.ErrInsufficientCredit)

	n := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int, error) {
		return tx.CreditExpire(ctx, base.Add(51*time.Minute), 10)
	})
	wantEqual(t, "expired grants", n, 1)
	wantEqual(t, "balance at B's expiry instant after expire", balance("ana", 50), int64(10_000))

	ledger := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.CreditEntry, error) {
		return tx.CreditLedger(ctx, persistence.CreditLedgerParams{ClientID: "ana", Limit: 100})
	})
	var kinds []string
	var sum int64
	for _, e := range ledger {
		kinds = append(kinds, fmt.Sprintf("%s:%s:%d", e.Kind, e.GrantID, e.AmountMinor))
		sum += e.AmountMinor
	}
	wantEqual(t, "ledger", kinds, []string{
		"expiry:01B:-5000", "reversal:01A:1000", "reversal:01B:5000", "use:01A:-1000", "use:01B:-5000",
		"grant:01B:5000", "grant:01A:10000"})
	wantEqual(t, "ledger sums to the balance", sum, balance("ana", 60))
	page := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.CreditEntry, error) {
		return tx.CreditLedger(ctx, persistence.CreditLedgerParams{ClientID: "ana", BeforeID: ledger[4].ID, Limit: 1})
	})
	wantEqual(t, "ledger page", len(page) == 1 && page[0].ID == ledger[5].ID, true)
	wantErr(t, "duplicate grant", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.CreditGrant(ctx, creditGrantFixture("01A", "ana", 1, 0, 10))
	}), persistence.ErrConflict)
	wantErr(t, "expiry before creation", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.CreditGrant(ctx, creditGrantFixture("01Z", "ana", 1, 10, 10))
	}), persistence.ErrInvalid)
}

// creditOp is one operation of the concurrent credit history: a spend of
// Amount (Spend true) or a balance read.
type creditOp struct {
	Spend  bool
	Amount int64
}

// creditModel: the state is the balance; a spend succeeds exactly when the
// balance covers it, a read returns the balance.
var creditModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		bal, op := state.(int64), input.(creditOp)
		switch {
		case op.Spend && output.(bool):
			return bal >= op.Amount, bal - op.Amount
		case op.Spend:
			return bal < op.Amount, bal
		case op.Amount < 0: // the grant that starts the history
			return true, bal - op.Amount
		default:
			return output.(int64) == bal, bal
		}
	},
	DescribeOperation: func(input, output any) string { return fmt.Sprintf("%+v → %v", input, output) },
}

// testCreditSpendConcurrent races spends and balance reads of one client
// and checks the recorded history is linearizable against creditModel.
func testCreditSpendConcurrent(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	now := base.Add(time.Minute)
	var mu sync.Mutex
	var ops []porcupine.Operation
	t0 := time.Now()
	record := func(client int, in creditOp, out any, call time.Time) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Output: out,
			Call: int64(call.Sub(t0)), Return: int64(time.Since(t0))})
	}
	call := time.Now()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.CreditGrant(ctx, creditGrantFixture("01A", "ana", 7_000, 0, 100)); err != nil {
			return err
		}
		return tx.CreditGrant(ctx, creditGrantFixture("01B", "ana", 3_000, 0, 50))
	})
	record(0, creditOp{Amount: -10_000}, true, call)

	const workers, each = 8, 4
	var wg sync.WaitGroup
	var won sync.Map
	for w := 1; w <= workers; w++ {
		wg.Go(func() {
			for i := range each {
				if i%2 == 1 {
					call := time.Now()
					b, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
						return tx.CreditBalance(ctx, "ana", now)
					})
					if err != nil {
						t.Errorf("balance: %v", err)
						return
					}
					record(w, creditOp{}, b, call)
					continue
				}
				amount := int64(700 + 100*w)
				order := fmt.Sprintf("o-%d-%d", w, i)
				call := time.Now()
				err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
					return tx.CreditSpend(ctx, "ana", amount, order, now)
				})
				switch {
				case err == nil:
					won.Store(order, amount)
					record(w, creditOp{Spend: true, Amount: amount}, true, call)
				case errors.Is(err, persistence.ErrInsufficientCredit):
					record(w, creditOp{Spend: true, Amount: amount}, false, call)
				default:
					t.Errorf("spend: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if res, info := porcupine.CheckOperationsVerbose(creditModel, ops, 0); res != porcupine.Ok {
		t.Fatalf("credit history is not linearizable (%v): %+v", res, info)
	}
	var spent int64
	won.Range(func(_, v any) bool { spent += v.(int64); return true })
	wantEqual(t, "balance = granted - spent", mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
		return tx.CreditBalance(ctx, "ana", now)
	}), 10_000-spent)
}
