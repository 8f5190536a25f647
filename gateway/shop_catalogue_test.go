package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
)

// newShopEnv is a gateway with inventory and cart actors on its store.
// Clients whose subject starts with "vip-" pay VIP prices.
func newShopEnv(t testing.TB) *env { return newShopEnvWith(t, cart.Config{}) }

// newShopEnvWith is newShopEnv with the carts' configuration.
func newShopEnvWith(t testing.TB, cfg cart.Config, extra ...envOpt) *env {
	t.Helper()
	return newEnv(t, append([]envOpt{func(d *Deps) {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
		im, err := inventory.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		cm, err := cart.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.NewDirectory(system.Root, inventory.Deps{Store: d.Store, Log: quiet, Metrics: im}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		carts, err := cart.NewDirectory(system.Root, cart.Deps{Store: d.Store, Inventory: inv, Log: quiet, Metrics: cm, Config: cfg}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { carts.Stop(5 * time.Second); inv.Stop(5 * time.Second); system.Shutdown() })
		d.Inventory, d.Carts = inventory.NewClient(inv), cart.NewClient(carts)
		d.ShopVIP = func(c auth.Claims) bool { return len(c.Subject) > 4 && c.Subject[:4] == "vip-" }
		d.Config.BodyLimit = 1 << 16
	}}, extra...)...)
}

// stockShop creates a category, a product and a variant with units.
func (e *env) stockShop(t testing.TB, units int) {
	t.Helper()
	for _, step := range []struct{ method, path, body string }{
		{"PUT", "/v1/admin/shop/categories/oils", `{"name":"Oils","active":true,"version":0}`},
		{"PUT", "/v1/admin/shop/products/lavender", `{"name":"Lavender oil","description":"Calming","category_id":"oils",
			"images":[{"url":"https://cdn.example.com/lav.jpg","content_type":"image/jpeg","size_bytes":120000,"width":800,"height":800}],
			"active":true,"version":0}`},
		{"PUT", "/v1/admin/shop/variants/lavender-50", `{"product_id":"lavender","sku":"LAV-50","attributes":{"size":"50ml"},
			"price_minor":4500000,"vip_price_minor":4000000,"tax_rate_bp":1900,"low_stock_threshold":2,"active":true,"version":0}`},
	} {
		if r := e.admin(step.method, step.path, step.body); r.status != 200 {
			t.Fatalf("%s %s: %d %s", step.method, step.path, r.status, r.body)
		}
	}
	if units > 0 {
		r := e.admin("POST", "/v1/admin/shop/variants/lavender-50/stock-movements",
			`{"kind":"receipt","qty":`+strconv.Itoa(units)+`,"reason":"delivery from supplier"}`)
		if r.status != 201 {
			t.Fatalf("receipt: %d %s", r.status, r.body)
		}
	}
}

func TestShopCatalogueAdminAndBrowse(t *testing.T) {
	e := newShopEnv(t)
	e.stockShop(t, 10)
	// Public browsing: the product with its variant and what is available.
	p := decode[productJSON](t, e.do("GET", "/v1/shop/products/lavender", ""))
	if len(p.Variants) != 1 || p.Variants[0].Available == nil || *p.Variants[0].Available != 10 || len(p.Images) != 1 {
		t.Fatalf("product page %+v", p)
	}
	list := decode[struct{ Products []productJSON }](t, e.do("GET", "/v1/shop/products?category=oils", ""))
	if len(list.Products) != 1 || list.Products[0].Variants[0].SKU != "LAV-50" {
		t.Fatalf("listing %+v", list)
	}
	if cats := decode[struct{ Categories []shopCategoryJSON }](t, e.do("GET", "/v1/shop/categories", "")); len(cats.Categories) != 1 {
		t.Fatalf("categories %+v", cats)
	}
	// Stock movements: damage beyond what is free is refused; who and why are kept.
	if r := e.admin("POST", "/v1/admin/shop/variants/lavender-50/stock-movements", `{"kind":"damage","qty":11,"reason":"dropped"}`); r.status != 409 || r.errCode(t) != "out_of_stock" {
		t.Fatalf("damage beyond stock: %d %s", r.status, r.body)
	}
	r := e.admin("POST", "/v1/admin/shop/variants/lavender-50/stock-movements", `{"kind":"adjustment","qty":-3,"reason":"count"}`)
	if r.status != 201 || decode[stockJSON](t, r).OnHand != 7 {
		t.Fatalf("adjustment: %d %s", r.status, r.body)
	}
	st := decode[stockJSON](t, e.admin("GET", "/v1/admin/shop/variants/lavender-50/stock", ""))
	if st.Available != 7 || len(st.Movements) != 2 || st.Movements[0].ActorID != "boss" || st.Movements[0].Reason != "count" {
		t.Fatalf("stock %+v", st)
	}
	audit, _ := e.effects()
	found := false
	for _, a := range audit {
		found = found || (a.Action == "shop.stock.adjustment" && a.Subject == "shop_variant/lavender-50" && a.Reason == "count")
	}
	if !found {
		t.Fatalf("no audit entry for the adjustment in %+v", audit)
	}
	// Validation, conflicts and roles.
	for _, tc := range []struct {
		path, body, code string
		status           int
	}{
		{"/v1/admin/shop/products/bad", `{"name":"x","images":[{"url":"http://x.example/a.jpg","content_type":"image/jpeg","size_bytes":1,"width":1,"height":1}],"active":true,"version":0}`, "validation_failed", 422},
		{"/v1/admin/shop/products/big", `{"name":"x","images":[{"url":"https://x.example/a.jpg","content_type":"image/jpeg","size_bytes":6000000,"width":1,"height":1}],"active":true,"version":0}`, "validation_failed", 422},
		{"/v1/admin/shop/variants/dup", `{"product_id":"lavender","sku":"LAV-50","price_minor":1,"tax_rate_bp":0,"active":true,"version":0}`, "conflict", 409},
		{"/v1/admin/shop/variants/vip", `{"product_id":"lavender","sku":"V","price_minor":1,"vip_price_minor":2,"tax_rate_bp":0,"active":true,"version":0}`, "validation_failed", 422},
		{"/v1/admin/shop/products/lavender", `{"name":"x","active":true,"version":7}`, "version_conflict", 409},
	} {
		if r := e.admin("PUT", tc.path, tc.body); r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("PUT %s: %d %s", tc.path, r.status, r.body)
		}
	}
	client := e.token("ana", auth.RoleClient)
	if r := e.do("PUT", "/v1/admin/shop/categories/x", `{"name":"x","active":true,"version":0}`,
		"Authorization", "Bearer "+client, "Content-Type", "application/json"); r.status != 403 {
		t.Fatalf("client putting a category: %d", r.status)
	}
	if r := e.do("GET", "/v1/shop/products/nope", ""); r.status != 404 {
		t.Fatalf("unknown product: %d", r.status)
	}
}

// FuzzShopAdminBodies sends arbitrary bodies to the catalogue puts and the
// stock movement route: never a 5xx, always a JSON answer.
func FuzzShopAdminBodies(f *testing.F) {
	for _, s := range []string{`{"name":"x","active":true,"version":0}`, `{}`, `[]`, `null`, `{"qty":1e400}`,
		`{"images":[{"url":"https://x/a.jpg","content_type":"image/png","size_bytes":1,"width":1,"height":1}],"name":"n","active":true,"version":0}`,
		`{"product_id":"lavender","sku":"\u0000","price_minor":-1,"tax_rate_bp":1e9,"active":true,"version":0}`,
		`{"kind":"adjustment","qty":-9223372036854775808,"reason":"x"}`, `{"attributes":{"":""}}`, "\xff"} {
		f.Add([]byte(s))
	}
	e := newShopEnv(f) // one store for all inputs: opening SQLite per input is too slow
	e.stockShop(f, 1)
	admin := e.token("owner-1", auth.RoleAdmin)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range []struct{ method, path string }{
			{"PUT", "/v1/admin/shop/products/fuzz"},
			{"PUT", "/v1/admin/shop/variants/fuzz"},
			{"POST", "/v1/admin/shop/variants/lavender-50/stock-movements"},
		} {
			req := httptest.NewRequest(target.method, target.path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+admin)
			res, err := e.app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode >= 500 || !json.Valid(b) {
				t.Fatalf("%s %s %q → %d %s", target.method, target.path, body, res.StatusCode, b)
			}
		}
	})
}
