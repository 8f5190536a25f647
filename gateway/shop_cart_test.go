package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence"
)

// Browse, fill an anonymous cart, sign in and merge it, check out with
// credit (idempotently), and see the stock and the cart follow.
func TestShopCartEndToEnd(t *testing.T) {
	e := newShopEnv(t)
	e.stockShop(t, 5)
	jsonH := []string{"Content-Type", "application/json"}

	// An anonymous cart: its token is shown once and opens it.
	r := e.do("POST", "/v1/carts", "")
	if r.status != 201 {
		t.Fatalf("anonymous cart: %d %s", r.status, r.body)
	}
	anon := decode[cartJSON](t, r)
	if !anon.Anonymous || anon.Token == "" || len(anon.ID) != 32 {
		t.Fatalf("anonymous cart %+v", anon)
	}
	tok := []string{"X-Cart-Token", anon.Token}
	r = e.do("PUT", "/v1/carts/"+anon.ID+"/lines/lavender-50", `{"qty":2}`, append(tok, jsonH...)...)
	if r.status != 200 {
		t.Fatalf("add line: %d %s", r.status, r.body)
	}
	if v := decode[cartJSON](t, r); len(v.Lines) != 1 || v.Lines[0].UnitPriceMinor != 4500000 || v.TotalMinor != 2*4500000+1710000 {
		t.Fatalf("anonymous cart lines %+v", v)
	}
	if r := e.do("GET", "/v1/carts/"+anon.ID, "", "X-Cart-Token", "wrong"); r.status != 404 {
		t.Fatalf("wrong token: %d", r.status)
	}
	if r := e.do("PUT", "/v1/carts/"+anon.ID+"/lines/lavender-50", `{"qty":9}`, append(tok, jsonH...)...); r.status != 409 || r.errCode(t) != "out_of_stock" {
		t.Fatalf("beyond stock: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/carts/"+anon.ID+"/checkout", `{"fulfilment":"pickup"}`, append(tok, jsonH...)...); r.status != 401 {
		t.Fatalf("anonymous checkout: %d", r.status)
	}
	if p := decode[productJSON](t, e.do("GET", "/v1/shop/products/lavender", "")); *p.Variants[0].Available != 3 {
		t.Fatalf("available while the cart holds 2: %d", *p.Variants[0].Available)
	}

	// Signing in: the client's cart takes the anonymous cart's lines.
	vip := e.token("vip-maria", auth.RoleClient)
	bearer := []string{"Authorization", "Bearer " + vip}
	r = e.do("POST", "/v1/carts", "", bearer...)
	if r.status != 201 {
		t.Fatalf("client cart: %d %s", r.status, r.body)
	}
	mine := decode[cartJSON](t, r)
	if mine.Anonymous || mine.Token != "" {
		t.Fatalf("client cart %+v", mine)
	}
	if again := e.do("POST", "/v1/carts", "", bearer...); again.status != 200 || decode[cartJSON](t, again).ID != mine.ID {
		t.Fatalf("second POST /v1/carts: %d %s", again.status, again.body)
	}
	r = e.do("POST", "/v1/carts/"+mine.ID+"/merge", `{"from_cart_id":"`+anon.ID+`","from_token":"`+anon.Token+`"}`, append(bearer, jsonH...)...)
	if r.status != 200 {
		t.Fatalf("merge: %d %s", r.status, r.body)
	}
	merged := decode[cartJSON](t, r)
	if len(merged.Lines) != 1 || merged.Lines[0].Qty != 2 || merged.Lines[0].UnitPriceMinor != 4000000 {
		t.Fatalf("merged cart (VIP prices) %+v", merged)
	}
	if r := e.do("GET", "/v1/carts/"+anon.ID, "", tok...); r.status != 200 || decode[cartJSON](t, r).State != "merged" {
		t.Fatalf("anonymous cart after merge: %d %s", r.status, r.body)
	}

	// Credit, then checkout with an Idempotency-Key, twice.
	ctx := context.Background()
	if err := e.store.InTx(ctx, func(tx persistence.Tx) error {
		return tx.CreditGrant(ctx, persistence.CreditGrant{ID: ulid.Make().String(), ClientID: "vip-maria", AmountMinor: 1000000,
			Reason: "return", GrantedBy: "system", ExpiresAt: time.Now().Add(90 * 24 * time.Hour), CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	co := append(append(bearer, jsonH...), "Idempotency-Key", "checkout-1")
	r = e.do("POST", "/v1/carts/"+mine.ID+"/checkout", `{"fulfilment":"pickup","credit_minor":1000000}`, co...)
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.body)
	}
	o := decode[orderJSON](t, r)
	if o.Status != "pending_payment" || o.CreditAppliedMinor != 1000000 || o.TotalMinor != 8000000+1520000-1000000 || len(o.Lines) != 1 {
		t.Fatalf("order %+v", o)
	}
	if again := e.do("POST", "/v1/carts/"+mine.ID+"/checkout", `{"fulfilment":"pickup","credit_minor":1000000}`, co...); again.status != 201 ||
		decode[orderJSON](t, again).ID != o.ID || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed checkout: %d %s", again.status, again.body)
	}
	other := append(append(bearer, jsonH...), "Idempotency-Key", "checkout-2")
	if r := e.do("POST", "/v1/carts/"+mine.ID+"/checkout", `{"fulfilment":"pickup"}`, other...); r.status != 409 || r.errCode(t) != "cart_closed" {
		t.Fatalf("second checkout: %d %s", r.status, r.body)
	}
	st := decode[stockJSON](t, e.admin("GET", "/v1/admin/shop/variants/lavender-50/stock", ""))
	if st.OnHand != 3 || st.Available != 3 || st.Movements[0].Kind != "sale" {
		t.Fatalf("stock after the sale %+v", st)
	}
	// A bad shipping address is a 422 naming the field.
	next := decode[cartJSON](t, e.do("POST", "/v1/carts", "", bearer...))
	e.do("PUT", "/v1/carts/"+next.ID+"/lines/lavender-50", `{"qty":1}`, append(bearer, jsonH...)...)
	if r := e.do("POST", "/v1/carts/"+next.ID+"/checkout", `{"fulfilment":"shipping","shipping_address":{"recipient":"Ana","phone":"3001234567","line1":"Calle 1","department_code":"11","municipality_code":"99999"}}`,
		append(bearer, jsonH...)...); r.status != 422 {
		t.Fatalf("bad address: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/carts/"+next.ID+"/lines/lavender-50", "", bearer...); r.status != 200 || len(decode[cartJSON](t, r).Lines) != 0 {
		t.Fatalf("remove line: %d %s", r.status, r.body)
	}
}

// A client's cart left past its TTL closes by itself and gives its units
// back; asking for the cart then makes a new one.
func TestShopCartExpiryMakesANewCart(t *testing.T) {
	e := newShopEnvWith(t, cart.Config{SignedInTTL: 200 * time.Millisecond})
	e.stockShop(t, 2)
	bearer := []string{"Authorization", "Bearer " + e.token("ana", auth.RoleClient)}
	first := decode[cartJSON](t, e.do("POST", "/v1/carts", "", bearer...))
	if r := e.do("PUT", "/v1/carts/"+first.ID+"/lines/lavender-50", `{"qty":2}`, append(bearer, "Content-Type", "application/json")...); r.status != 200 {
		t.Fatalf("add line: %d %s", r.status, r.body)
	}
	// Wait, without touching the cart (looking at it is activity), until
	// its reservation has lapsed: the stock is free again.
	testwait.For(t, 10*time.Second, "the cart's reservation to lapse", func() bool {
		p := decode[productJSON](t, e.do("GET", "/v1/shop/products/lavender", ""))
		return *p.Variants[0].Available == 2
	})
	// The cart is closed (by its timer, or on this request) rather than
	// revived.
	if r := e.do("GET", "/v1/carts/"+first.ID, "", bearer...); r.status != 200 || decode[cartJSON](t, r).State != "expired" {
		t.Fatalf("cart after its TTL: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/carts", "", bearer...)
	if next := decode[cartJSON](t, r); r.status != 201 || next.ID == first.ID || next.State != "open" {
		t.Fatalf("cart after expiry: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/carts/"+first.ID+"/lines/lavender-50", `{"qty":1}`, append(bearer, "Content-Type", "application/json")...); r.status != 409 || r.errCode(t) != "cart_closed" {
		t.Fatalf("line on the expired cart: %d %s", r.status, r.body)
	}
}
