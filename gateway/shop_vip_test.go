package gateway

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/service/shop"
)

// TestShopVIPList: a client an admin marks VIP sees VIP prices in their
// cart; unmarked, regular prices again. Only admins manage the list.
func TestShopVIPList(t *testing.T) {
	e := newShopEnvWith(t, cart.Config{}, func(d *Deps) {
		d.ShopVIP = shop.StoredVIP(d.Store, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	e.stockShop(t, 5)
	ana := []string{"Authorization", "Bearer " + e.token("ana", auth.RoleClient)}
	r := e.do("POST", "/v1/carts", "", ana...)
	if r.status != 201 {
		t.Fatalf("cart: %d %s", r.status, r.body)
	}
	id := decode[cartJSON](t, r).ID
	price := func() int64 {
		t.Helper()
		r := e.do("PUT", "/v1/carts/"+id+"/lines/lavender-50", `{"qty":1}`, append(ana, "Content-Type", "application/json")...)
		if v := decode[cartJSON](t, r); r.status != 200 || len(v.Lines) != 1 {
			t.Fatalf("line: %d %s", r.status, r.body)
		}
		return decode[cartJSON](t, r).Lines[0].UnitPriceMinor
	}
	if p := price(); p != 4500000 {
		t.Fatalf("regular client pays %d", p)
	}
	if r := e.admin("PUT", "/v1/admin/shop/vip-clients/ana", ""); r.status != 200 || !decode[vipJSON](t, r).VIP {
		t.Fatalf("mark VIP: %d %s", r.status, r.body)
	}
	if r := e.admin("GET", "/v1/admin/shop/vip-clients/ana", ""); r.status != 200 || !decode[vipJSON](t, r).VIP {
		t.Fatalf("get VIP: %d %s", r.status, r.body)
	}
	if p := price(); p != 4000000 {
		t.Fatalf("VIP client pays %d", p)
	}
	if r := e.admin("DELETE", "/v1/admin/shop/vip-clients/ana", ""); r.status != 200 || decode[vipJSON](t, r).VIP {
		t.Fatalf("unmark VIP: %d %s", r.status, r.body)
	}
	if p := price(); p != 4500000 {
		t.Fatalf("unmarked client pays %d", p)
	}
	if r := e.admin("PUT", "/v1/admin/shop/vip-clients/a%20b", ""); r.status != 422 || r.errCode(t) != "validation_failed" {
		t.Fatalf("bad id: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/admin/shop/vip-clients/ana", "", ana...); r.status != 403 {
		t.Fatalf("client marking itself VIP: %d", r.status)
	}
}
