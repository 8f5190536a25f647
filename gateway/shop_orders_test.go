package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/persistence"
)

// shopOrderEnv is a gateway with one stocked variant ("oil", 10 units)
// and a recorder of restock notices.
type shopOrderEnv struct {
	*env
	mu        sync.Mutex
	restocked []string
}

func newShopOrderEnv(t *testing.T) *shopOrderEnv {
	t.Helper()
	se := &shopOrderEnv{}
	se.env = newEnv(t, func(d *Deps) {
		d.OnRestock = func(v []string) {
			se.mu.Lock()
			defer se.mu.Unlock()
			se.restocked = append(se.restocked, v...)
		}
	})
	se.tx(t, func(ctx context.Context, tx persistence.Tx) error {
		now := time.Now().UTC()
		if _, err := tx.ProductPut(ctx, persistence.Product{ID: "p1", Name: "Oils", Active: true, UpdatedAt: now}); err != nil {
			return err
		}
		if _, err := tx.VariantPut(ctx, persistence.Variant{ID: "oil", ProductID: "p1", SKU: "OIL-100", PriceMinor: 4_500_000,
			TaxRateBP: 1900, Active: true, UpdatedAt: now}); err != nil {
			return err
		}
		_, err := tx.StockMove(ctx, persistence.StockMovement{ID: ulid.Make().String(), VariantID: "oil",
			Kind: persistence.MoveReceipt, Qty: 10, ActorID: "admin", Reason: "opening stock", At: now})
		return err
	})
	return se
}

func (se *shopOrderEnv) tx(t *testing.T, fn func(ctx context.Context, tx persistence.Tx) error) {
	t.Helper()
	ctx := context.Background()
	if err := se.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

func (se *shopOrderEnv) onHand(t *testing.T) int64 {
	t.Helper()
	var st persistence.Stock
	se.tx(t, func(ctx context.Context, tx persistence.Tx) (err error) {
		st, err = tx.StockGet(ctx, "oil")
		return err
	})
	return st.OnHand
}

// checkout stores an order the way the cart's checkout does: the
// reservation consumed into a sale, the order pending payment.
func (se *shopOrderEnv) checkout(t *testing.T, client string, qty int) string {
	t.Helper()
	id := ulid.Make().String()
	now := time.Now().UTC()
	se.tx(t, func(ctx context.Context, tx persistence.Tx) error {
		r := persistence.Reservation{ID: "res-" + id, CartID: "cart-" + id, VariantID: "oil", Qty: int64(qty), ExpiresAt: now.Add(time.Hour)}
		if err := tx.ReservationPut(ctx, r, "cart", now); err != nil {
			return err
		}
		if _, err := tx.ReservationConsume(ctx, r.ID, id, "checkout", now); err != nil {
			return err
		}
		o := persistence.Order{ID: id, ClientID: client, CartID: r.CartID, Status: persistence.OrderPendingPayment,
			Fulfilment: persistence.FulfilmentShipping, Shipping: persistence.ShippingAddress{Recipient: "Ana Pérez",
				Phone: "+573001234567", Line1: "Calle 10 # 5-51", DepartmentCode: "05", MunicipalityCode: "05001"},
			Lines: []persistence.OrderLine{{ID: id + "-1", VariantID: "oil", SKU: "OIL-100", Name: "Lavender oil", Qty: qty,
				UnitPriceMinor: 4_500_000, TaxRateBps: 1900, ReservationID: r.ID}},
			CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}
		o.ComputeTotals()
		return tx.OrderCreate(ctx, o)
	})
	return id
}

func (e *env) postKey(token, path, body, key string) result {
	e.t.Helper()
	h := []string{"Authorization", "Bearer " + token, "Idempotency-Key", key}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.do("POST", path, body, h...)
}

func TestShopOrderFlow(t *testing.T) {
	e := newShopOrderEnv(t)
	ana, ben := e.token("ana", auth.RoleClient), e.token("ben", auth.RoleClient)
	desk := e.token("desk-1", auth.RoleReceptionist)
	id := e.checkout(t, "ana", 3)

	mine := decode[orderPage](t, e.as(ana, "GET", "/v1/me/orders"))
	if len(mine.Orders) != 1 || mine.Orders[0].ID != id || mine.Orders[0].TotalMinor != 3*5_355_000 || mine.Next != nil {
		t.Fatalf("my orders: %+v", mine)
	}
	if r := e.as(ben, "GET", "/v1/me/orders/"+id); r.status != 404 {
		t.Fatalf("someone else's order: %d", r.status)
	}
	if r := e.as(ana, "GET", "/v1/shop/orders"); r.status != 403 {
		t.Fatalf("client on the staff list: %d", r.status)
	}
	if r := e.post(ana, "/v1/shop/orders/"+id+"/pay", ""); r.status != 403 {
		t.Fatalf("client marking paid: %d", r.status)
	}

	// The desk takes the payment; a retry with the same key replays.
	r := e.postKey(desk, "/v1/shop/orders/"+id+"/pay", `{"reason":"cash at the desk"}`, "pay-1")
	if r.status != 200 || decode[orderJSON](t, r).Status != "paid" {
		t.Fatalf("pay: %d %s", r.status, r.body)
	}
	if again := e.postKey(desk, "/v1/shop/orders/"+id+"/pay", `{"reason":"cash at the desk"}`, "pay-1"); again.status != 200 ||
		again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v", again.status, again.header)
	}
	if r := e.post(desk, "/v1/shop/orders/"+id+"/pay", ""); r.status != 409 || r.errCode(t) != "order_transition_refused" ||
		!strings.Contains(string(r.body), "is paid and cannot become paid") {
		t.Fatalf("pay twice: %d %s", r.status, r.body)
	}

	// Ana sends one unit back; the desk accepts it and refunds to credit.
	if r := e.post(ana, "/v1/me/orders/"+id+"/returns", `{"reason":"too strong","lines":[{"order_line_id":"`+id+`-1","qty":4}]}`); r.status != 409 ||
		r.errCode(t) != "return_exceeds_order" {
		t.Fatalf("returning too many: %d %s", r.status, r.body)
	}
	r = e.post(ana, "/v1/me/orders/"+id+"/returns", `{"reason":"too strong","lines":[{"order_line_id":"`+id+`-1","qty":1}]}`)
	if r.status != 201 {
		t.Fatalf("request return: %d %s", r.status, r.body)
	}
	ret := decode[returnJSON](t, r)
	pending := decode[returnPage](t, e.as(desk, "GET", "/v1/shop/returns?status=requested"))
	if len(pending.Returns) != 1 || pending.Returns[0].ID != ret.ID {
		t.Fatalf("pending returns: %+v", pending)
	}
	r = e.post(desk, "/v1/shop/returns/"+ret.ID+"/process", `{"accept":true,"reason":"sealed"}`)
	if r.status != 200 {
		t.Fatalf("process: %d %s", r.status, r.body)
	}
	done := decode[processJSON](t, r)
	if done.Order.Status != "partially_returned" || done.Credit == nil || done.Credit.AmountMinor != 5_355_000 {
		t.Fatalf("processed: %+v", done)
	}
	if got := e.onHand(t); got != 8 { // 10 - 3 + 1
		t.Fatalf("on hand after the return: %d", got)
	}
	if r := e.post(desk, "/v1/shop/returns/"+ret.ID+"/process", `{"accept":true}`); r.status != 409 {
		t.Fatalf("process twice: %d %s", r.status, r.body)
	}

	credit := decode[creditJSON](t, e.as(ana, "GET", "/v1/me/credit"))
	if credit.BalanceMinor != 5_355_000 || len(credit.Grants) != 1 {
		t.Fatalf("credit: %+v", credit)
	}
	if seen := decode[creditJSON](t, e.as(desk, "GET", "/v1/shop/clients/ana/credit")); seen.BalanceMinor != 5_355_000 {
		t.Fatalf("desk view of the credit: %+v", seen)
	}
	ledger := decode[ledgerPage](t, e.as(ana, "GET", "/v1/me/credit/ledger"))
	if len(ledger.Entries) != 1 || ledger.Entries[0].Kind != "grant" || ledger.Entries[0].AmountMinor != 5_355_000 {
		t.Fatalf("ledger: %+v", ledger)
	}
	full := decode[orderJSON](t, e.as(ana, "GET", "/v1/me/orders/"+id))
	if len(full.Returns) != 1 || full.Lines[0].ReturnedQty != 1 || full.Shipping == nil || full.Shipping.MunicipalityCode != "05001" {
		t.Fatalf("order with returns: %+v", full)
	}

	var audit []persistence.AuditEntry
	e.tx(t, func(ctx context.Context, tx persistence.Tx) (err error) {
		audit, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: "order/" + id, Limit: 20})
		return err
	})
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action+"@"+a.ActorID)
	}
	if want := "[order.return_completed@desk-1 order.partially_returned@desk-1 order.return_requested@ana order.paid@desk-1]"; fmt.Sprint(actions) != want {
		t.Fatalf("audit %v, want %s", actions, want)
	}
	e.mu.Lock()
	restocked := fmt.Sprint(e.restocked)
	e.mu.Unlock()
	if restocked != "[oil]" {
		t.Fatalf("restock notices: %s", restocked)
	}
}

func TestShopOrderCancelAndFilters(t *testing.T) {
	e := newShopOrderEnv(t)
	desk := e.token("desk-1", auth.RoleStaff)
	first := e.checkout(t, "ana", 2)
	second := e.checkout(t, "ben", 1)
	if r := e.post(desk, "/v1/shop/orders/"+first+"/cancel", `{"reason":"changed her mind"}`); r.status != 200 ||
		decode[orderJSON](t, r).Status != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if got := e.onHand(t); got != 9 { // 10 - 2 - 1 + 2
		t.Fatalf("on hand after cancel: %d", got)
	}
	if r := e.post(desk, "/v1/shop/orders/"+first+"/fulfil", ""); r.status != 409 || r.errCode(t) != "order_transition_refused" {
		t.Fatalf("fulfil a cancelled order: %d %s", r.status, r.body)
	}
	if r := e.post(e.token("ana", auth.RoleClient), "/v1/me/orders/"+second+"/returns",
		`{"reason":"not mine","lines":[{"order_line_id":"`+second+`-1","qty":1}]}`); r.status != 404 {
		t.Fatalf("return of someone else's order: %d", r.status)
	}
	if r := e.post(e.token("ben", auth.RoleClient), "/v1/me/orders/"+second+"/returns",
		`{"reason":"unpaid","lines":[{"order_line_id":"`+second+`-1","qty":1}]}`); r.status != 409 || r.errCode(t) != "not_returnable" {
		t.Fatalf("return of an unpaid order: %d %s", r.status, r.body)
	}
	page := decode[orderPage](t, e.as(desk, "GET", "/v1/shop/orders?limit=1"))
	if len(page.Orders) != 1 || page.Orders[0].ID != second || page.Next == nil {
		t.Fatalf("first page: %+v", page)
	}
	page = decode[orderPage](t, e.as(desk, "GET", "/v1/shop/orders?limit=1&before="+*page.Next))
	if len(page.Orders) != 1 || page.Orders[0].ID != first || page.Next != nil {
		t.Fatalf("second page: %+v", page)
	}
	cancelled := decode[orderPage](t, e.as(desk, "GET", "/v1/shop/orders?status=cancelled&client_id=ana"))
	if len(cancelled.Orders) != 1 || cancelled.Orders[0].ID != first {
		t.Fatalf("filtered: %+v", cancelled)
	}
	for _, q := range []string{"status=lost", "limit=0", "limit=201", "before=nope", "client_id=" + strings.Repeat("x", 65)} {
		if r := e.as(desk, "GET", "/v1/shop/orders?"+q); r.status != 422 || r.errCode(t) != "validation_failed" {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.post(desk, "/v1/shop/orders/nope/pay", ""); r.status != 404 {
		t.Fatalf("absent order: %d", r.status)
	}
}

func TestCreditGrantAPI(t *testing.T) {
	e := newShopOrderEnv(t)
	r := e.admin("POST", "/v1/admin/shop/credit-grants", `{"client_id":"ana","amount_minor":2500000,"reason":"birthday gift"}`)
	if r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	if g := decode[creditGrant](t, r); g.AmountMinor != 2_500_000 || g.RemainingMinor != 2_500_000 {
		t.Fatalf("grant: %+v", g)
	}
	if c := decode[creditJSON](t, e.as(e.token("ana", auth.RoleClient), "GET", "/v1/me/credit")); c.BalanceMinor != 2_500_000 {
		t.Fatalf("balance: %+v", c)
	}
	for name, body := range map[string]string{
		"zero amount":  `{"client_id":"ana","amount_minor":0,"reason":"oops"}`,
		"huge amount":  `{"client_id":"ana","amount_minor":10000000001,"reason":"oops"}`,
		"bad client":   `{"client_id":"a b","amount_minor":1,"reason":"oops"}`,
		"past expiry":  `{"client_id":"ana","amount_minor":1,"reason":"oops","expires_at":"2020-01-01T00:00:00Z"}`,
		"short reason": `{"client_id":"ana","amount_minor":1,"reason":""}`,
	} {
		if r := e.admin("POST", "/v1/admin/shop/credit-grants", body); r.status != 422 || r.errCode(t) != "validation_failed" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := e.admin("POST", "/v1/admin/shop/credit-grants", `{"client_id":"ana","amount_minor":1,"reason":"x","extra":1}`); r.status != 400 {
		t.Errorf("unknown field: %d", r.status)
	}
	if r := e.post(e.token("desk", auth.RoleReceptionist), "/v1/admin/shop/credit-grants", `{"client_id":"ana","amount_minor":1,"reason":"gift"}`); r.status != 403 {
		t.Errorf("receptionist granting: %d", r.status)
	}
}
