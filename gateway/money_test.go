package gateway

import (
	"slices"
	"strconv"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/persistence/money"
)

// TestMoneyIsBounded: no price or balance above money.Max (10^12 minor
// units) is accepted, so no cart total can wrap around to a negative
// number; a cart whose total would leave that range is refused with
// amount_too_large and keeps no stock for the refused line.
func TestMoneyIsBounded(t *testing.T) {
	e := newShopEnv(t)
	e.stockShop(t, 50)
	huge := "9223372036854775807" // 2^63-1, accepted before
	for _, tc := range []struct{ method, path, body, field string }{
		{"PUT", "/v1/admin/services/huge", `{"name":"Huge","category":"x","duration_minutes":30,"price_minor":` + huge + `,"active":true,"version":0}`, "price_minor"},
		{"PUT", "/v1/admin/shop/variants/huge", `{"product_id":"lavender","sku":"H","price_minor":` + huge + `,"tax_rate_bp":1900,"active":true,"version":0}`, "price_minor"},
		{"PUT", "/v1/admin/shop/variants/over", `{"product_id":"lavender","sku":"O","price_minor":` + strconv.FormatInt(money.Max+1, 10) + `,"tax_rate_bp":0,"active":true,"version":0}`, "price_minor"},
	} {
		if got := fieldNames(t, e.admin(tc.method, tc.path, tc.body)); !slices.Contains(got, tc.field) {
			t.Errorf("%s %s: fields %v; want %s", tc.method, tc.path, got, tc.field)
		}
	}

	voucher := `{"client_id":"maria","balance_minor":` + huge + `,"expires_at":"2099-06-01T00:00:00Z"}`
	if got := fieldNames(t, newBookingEnv(t).admin("POST", "/v1/admin/vouchers", voucher)); !slices.Equal(got, []string{"balance_minor"}) {
		t.Errorf("voucher of 2^63-1: fields %v", got)
	}

	// The largest price is accepted; two units of it make a total above
	// the bound, which the cart refuses without keeping the second unit.
	if r := e.admin("PUT", "/v1/admin/shop/variants/max", `{"product_id":"lavender","sku":"MAX","price_minor":`+
		strconv.FormatInt(money.Max, 10)+`,"tax_rate_bp":1900,"active":true,"version":0}`); r.status != 200 {
		t.Fatalf("price at the bound: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", "/v1/admin/shop/variants/max/stock-movements", `{"kind":"receipt","qty":5,"reason":"delivery"}`); r.status != 201 {
		t.Fatalf("receipt: %d %s", r.status, r.body)
	}
	bearer := []string{"Authorization", "Bearer " + e.token("maria", auth.RoleClient), "Content-Type", "application/json"}
	r := e.do("POST", "/v1/carts", "", bearer...)
	if r.status != 201 {
		t.Fatalf("cart: %d %s", r.status, r.body)
	}
	id := decode[cartJSON](t, r).ID
	if r := e.do("PUT", "/v1/carts/"+id+"/lines/lavender-50", `{"qty":1}`, bearer...); r.status != 200 {
		t.Fatalf("a small line: %d %s", r.status, r.body)
	}
	r = e.do("PUT", "/v1/carts/"+id+"/lines/max", `{"qty":2}`, bearer...)
	if r.status != 422 || r.errCode(t) != "amount_too_large" {
		t.Fatalf("a total above 10^12: %d %s", r.status, r.body)
	}
	v := decode[cartJSON](t, e.do("GET", "/v1/carts/"+id, "", bearer...))
	if len(v.Lines) != 1 || v.Lines[0].VariantID != "lavender-50" || v.TotalMinor <= 0 {
		t.Fatalf("the refused line stayed in the cart: %+v", v)
	}
	if p := decode[productJSON](t, e.do("GET", "/v1/shop/products/lavender", "")); availableOf(p, "max") != 5 {
		t.Fatalf("the refused line holds stock: %+v", p.Variants)
	}
}

func availableOf(p productJSON, variant string) int64 {
	for _, v := range p.Variants {
		if v.ID == variant && v.Available != nil {
			return *v.Available
		}
	}
	return -1
}
