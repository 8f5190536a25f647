package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// rawCall is api.call that also returns the Retry-After header.
func rawCall(t *testing.T, base, method, path, token string, body any, hdr ...string) (int, string, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, res.Header.Get("Retry-After"), out
}

// wantLimit checks a 429 with a positive Retry-After and the error code.
func wantLimit(t *testing.T, what string, status int, retry string, out map[string]any, code string) {
	t.Helper()
	e, _ := out["error"].(map[string]any)
	secs, err := strconv.Atoi(retry)
	if status != 429 || err != nil || secs < 1 || e["code"] != code {
		t.Fatalf("%s: %d Retry-After %q %v, want 429 %s with a wait", what, status, retry, out, code)
	}
}

// TestHoardingCapsEndToEnd is issue 15 item 5 through HTTP: a client's
// third live hold is 429 hold_limit_reached with Retry-After, a refused
// claim spends nothing, counting goes on after a restart, and an
// anonymous cart may not reserve more than its share of a variant's stock,
// nor may a second anonymous cart from the same address.
func TestHoardingCapsEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			env := envFor(t)
			env["SPA_SLOT_STEP"] = "30m"
			env["SPA_HOLDS_PER_CLIENT"] = "2"
			env["SPA_CART_VARIANT_SHARE"] = "25"
			base, stop, _ := serveInProcess(t, env, dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			maria := issueToken(t, dataDir, "maria", "client")
			a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "time_zone": "America/Bogota",
				"weekly_hours": everyDay("08:00", "18:00"), "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/services/facial", admin, map[string]any{"name": "Facial", "category": "face",
				"duration_minutes": 30, "active": true, "version": 0})
			bogota, _ := time.LoadLocation("America/Bogota")
			day := time.Now().In(bogota).AddDate(0, 0, 2)
			slot := func(h int) map[string]any {
				return map[string]any{"service_id": "facial", "staff_id": "ana",
					"start": time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, bogota).Format(time.RFC3339)}
			}
			a.must(201, "POST", "/v1/appointments", maria, slot(9))
			a.must(200, "POST", "/v1/appointments", maria, slot(9)) // her own hold back: no place spent
			juan := issueToken(t, dataDir, "juan", "client")
			a.must(409, "POST", "/v1/appointments", juan, slot(9)) // slot_taken: no place spent
			a.must(201, "POST", "/v1/appointments", maria, slot(10))
			status, retry, out := rawCall(t, base, "POST", "/v1/appointments", maria, slot(11))
			wantLimit(t, "third hold", status, retry, out, "hold_limit_reached")

			// The caps are counted in memory (a grant writes nothing): a
			// restart forgets them, and counting starts again at once.
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			base, _, _ = serveInProcess(t, env, dataDir)
			a = api{t, base}
			a.must(201, "POST", "/v1/appointments", maria, slot(11))
			a.must(201, "POST", "/v1/appointments", maria, slot(12))
			status, retry, out = rawCall(t, base, "POST", "/v1/appointments", maria, slot(13))
			wantLimit(t, "third hold after a restart", status, retry, out, "hold_limit_reached")

			// 8 units on hand, 25%: 2 per anonymous cart and per address.
			a.must(200, "PUT", "/v1/admin/shop/categories/oils", admin, map[string]any{"name": "Oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/products/oil", admin, map[string]any{"name": "Oil", "category_id": "oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/variants/oil-10", admin, map[string]any{"product_id": "oil", "sku": "OIL-10",
				"price_minor": 2000000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true, "version": 0})
			a.must(201, "POST", "/v1/admin/shop/variants/oil-10/stock-movements", admin,
				map[string]any{"kind": "receipt", "qty": 8, "reason": "delivery"}, "Idempotency-Key", "receipt-oil-10")
			cart := func() (string, string) {
				c := a.must(201, "POST", "/v1/carts", "", nil)
				return c["id"].(string), c["token"].(string)
			}
			id, tok := cart()
			status, retry, out = rawCall(t, base, "PUT", "/v1/carts/"+id+"/lines/oil-10", "", map[string]any{"qty": 3}, "X-Cart-Token", tok)
			wantLimit(t, "3 of 8 in one anonymous cart", status, retry, out, "reservation_limit_reached")
			a.must(200, "PUT", "/v1/carts/"+id+"/lines/oil-10", "", map[string]any{"qty": 2}, "X-Cart-Token", tok)
			other, otherTok := cart()
			status, retry, out = rawCall(t, base, "PUT", "/v1/carts/"+other+"/lines/oil-10", "", map[string]any{"qty": 1}, "X-Cart-Token", otherTok)
			wantLimit(t, "a second anonymous cart from the same address", status, retry, out, "reservation_limit_reached")
			// Lowering the first cart's line frees the address's share.
			a.must(200, "PUT", "/v1/carts/"+id+"/lines/oil-10", "", map[string]any{"qty": 1}, "X-Cart-Token", tok)
			a.must(200, "PUT", "/v1/carts/"+other+"/lines/oil-10", "", map[string]any{"qty": 1}, "X-Cart-Token", otherTok)
		})
	}
}
