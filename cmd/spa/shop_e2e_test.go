package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
)

// TestShopEndToEnd is the shop's done-when through HTTP against a served
// node, on each driver: browse, add to cart, check out, mark paid, return a
// line, see the credit, and spend it at the next checkout.
func TestShopEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			base, _, _ := serveInProcess(t, envFor(t), dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			client := issueToken(t, dataDir, "maria", "client")

			a.must(200, "PUT", "/v1/admin/shop/categories/oils", admin, map[string]any{"name": "Oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/products/lavender", admin, map[string]any{"name": "Lavender oil", "description": "Calming",
				"category_id": "oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/variants/lavender-50", admin, map[string]any{"product_id": "lavender", "sku": "LAV-50",
				"price_minor": 5000000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true, "version": 0})
			a.must(201, "POST", "/v1/admin/shop/variants/lavender-50/stock-movements", admin,
				map[string]any{"kind": "receipt", "qty": 4, "reason": "first delivery"}, "Idempotency-Key", "receipt-1")

			// Browse.
			p := a.must(200, "GET", "/v1/shop/products/lavender", "", nil)
			if v := p["variants"].([]any)[0].(map[string]any); v["available"] != float64(4) {
				t.Fatalf("product page %v", p)
			}
			// Cart and checkout.
			c := a.must(201, "POST", "/v1/carts", client, nil)
			cartID := c["id"].(string)
			a.must(200, "PUT", "/v1/carts/"+cartID+"/lines/lavender-50", client, map[string]any{"qty": 2})
			o := a.must(201, "POST", "/v1/carts/"+cartID+"/checkout", client, map[string]any{"fulfilment": "pickup"},
				"Idempotency-Key", "checkout-1")
			orderID := o["id"].(string)
			if o["total_minor"] != float64(2*5000000+1900000) {
				t.Fatalf("order %v", o)
			}
			// Paid at the front desk, then one unit comes back undamaged.
			a.must(200, "POST", "/v1/shop/orders/"+orderID+"/pay", desk, nil, "Idempotency-Key", "pay-1")
			lineID := o["lines"].([]any)[0].(map[string]any)["id"].(string)
			ret := a.must(201, "POST", "/v1/me/orders/"+orderID+"/returns", client, map[string]any{"reason": "too much",
				"lines": []map[string]any{{"order_line_id": lineID, "qty": 1}}}, "Idempotency-Key", "return-1")
			a.must(200, "POST", "/v1/shop/returns/"+ret["id"].(string)+"/process", desk, map[string]any{"accept": true},
				"Idempotency-Key", "process-1")
			credit := a.must(200, "GET", "/v1/me/credit", client, nil)
			balance, _ := credit["balance_minor"].(float64)
			if balance <= 0 {
				t.Fatalf("credit after the return: %v", credit)
			}
			// The returned unit is on sale again.
			testwait.For(t, 10*time.Second, "the restocked unit to be available", func() bool {
				p := a.must(200, "GET", "/v1/shop/products/lavender", "", nil)
				return p["variants"].([]any)[0].(map[string]any)["available"] == float64(3)
			})
			// Spend the credit on the next cart.
			c = a.must(201, "POST", "/v1/carts", client, nil)
			next := c["id"].(string)
			a.must(200, "PUT", "/v1/carts/"+next+"/lines/lavender-50", client, map[string]any{"qty": 1})
			o2 := a.must(201, "POST", "/v1/carts/"+next+"/checkout", client, map[string]any{"fulfilment": "pickup",
				"credit_minor": int64(balance)}, "Idempotency-Key", "checkout-2")
			if o2["credit_applied_minor"] != balance || o2["total_minor"] != float64(5000000+950000)-balance {
				t.Fatalf("second order %v with credit %v", o2, balance)
			}
			if after := a.must(200, "GET", "/v1/me/credit", client, nil); after["balance_minor"] != float64(0) {
				t.Fatalf("credit after spending it: %v", after)
			}
			stock := a.must(200, "GET", "/v1/admin/shop/variants/lavender-50/stock", admin, nil)
			if stock["on_hand"] != float64(2) || stock["available"] != float64(2) {
				t.Fatalf("stock at the end: %s", fmt.Sprint(stock))
			}
			// An admin makes the client VIP: her next cart pays the VIP price.
			a.must(200, "PUT", "/v1/admin/shop/vip-clients/maria", admin, nil, "Idempotency-Key", "vip-1")
			a.must(200, "PUT", "/v1/admin/shop/variants/lavender-50", admin, map[string]any{"product_id": "lavender", "sku": "LAV-50",
				"price_minor": 5000000, "vip_price_minor": 4500000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true,
				"version": p["variants"].([]any)[0].(map[string]any)["version"]})
			c = a.must(201, "POST", "/v1/carts", client, nil)
			v := a.must(200, "PUT", "/v1/carts/"+c["id"].(string)+"/lines/lavender-50", client, map[string]any{"qty": 1})
			if price := v["lines"].([]any)[0].(map[string]any)["unit_price_minor"]; price != float64(4500000) {
				t.Fatalf("VIP client's price %v", price)
			}
		})
	}
}
