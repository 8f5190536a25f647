package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/testwait"
)

// TestPaymentEndToEnd: a dev node with no SPA_WOMPI_* keys takes a payment
// against its own fake Wompi, on each driver: check out, ask for the
// payment, open the checkout page, press "Aprobar" as a browser would; the
// fake posts its signed event to the node's webhook and the order becomes
// paid. A forged event is refused; the metrics show the payment series.
func TestPaymentEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			base, _, logs := serveInProcess(t, envFor(t), dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			client := issueToken(t, dataDir, "maria", "client")

			orderID, _, p := payOrderInBrowser(t, a, admin, client)
			u, _ := url.Parse(p["checkout_url"].(string)) // the fake Wompi's address
			testwait.For(t, 10*time.Second, "the order to be paid by the webhook", func() bool {
				return a.must(200, "GET", "/v1/me/orders/"+orderID, client, nil)["status"] == "paid"
			})
			a.must(409, "POST", "/v1/shop/orders/"+orderID+"/payments", client, nil, "Idempotency-Key", "pay-2")

			// A forged event: 401, nothing changes.
			req, _ := http.NewRequest("POST", base+"/v1/webhooks/wompi", strings.NewReader(`{"event":"transaction.updated"}`))
			req.Header.Set("X-Event-Checksum", strings.Repeat("a", 64))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 401 {
				t.Fatalf("forged event: %d", res.StatusCode)
			}
			_, metrics := metricsOf(t, base)
			for _, want := range []string{`spa_payments_webhook_events_total{outcome="applied"} 1`,
				`spa_payments_webhook_events_total{outcome="forged"} 1`, `spa_payments_exceptions_open{class="orphan"} 0`,
				`spa_payments_exception_oldest_seconds 0`, `provider="wompi"`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if strings.Contains(logs.String(), "pagador@example.com") {
				t.Fatal("the payer's e-mail reached the log")
			}

			// A saved card pays the next order without a checkout page: the
			// client's device tokenizes the card at (fake) Wompi, the node
			// saves it, and the charge's event pays the order.
			fake := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/v1"}
			k := wompifake.DefaultKeys()
			wc, err := wompi.New(wompi.Config{PublicKey: k.Public, PrivateKey: k.Private, IntegritySecret: k.Integrity,
				EventsSecret: k.Events, BaseURL: fake.String()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := wc.TokenizeCard(t.Context(), wompi.Card{Number: "4242424242424242", CVC: "123", ExpMonth: "08", ExpYear: "28", CardHolder: "María"})
			if err != nil {
				t.Fatal(err)
			}
			acc, err := wc.AcceptanceTokens(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			src := a.must(201, "POST", "/v1/me/payment-sources", client, map[string]any{"type": "CARD", "token": tok.ID,
				"acceptance_token": acc.Acceptance, "accept_personal_auth": acc.PersonalDataAuth, "customer_email": "maria@example.com"},
				"Idempotency-Key", "source-1")
			if src["label"] != "CARD 4242" || src["customer_email"] != nil {
				t.Fatalf("saved source: %v", src)
			}
			c := a.must(201, "POST", "/v1/carts", client, nil)
			a.must(200, "PUT", "/v1/carts/"+c["id"].(string)+"/lines/lavender-50", client, map[string]any{"qty": 1})
			o := a.must(201, "POST", "/v1/carts/"+c["id"].(string)+"/checkout", client, map[string]any{"fulfilment": "pickup"},
				"Idempotency-Key", "checkout-2")
			second := o["id"].(string)
			charged := a.must(200, "POST", "/v1/shop/orders/"+second+"/payments/charge", client,
				map[string]any{"payment_source_id": src["id"]}, "Idempotency-Key", "charge-1")
			if pay := charged["payment"].(map[string]any); pay["amount_minor"] != o["total_minor"] {
				t.Fatalf("charge: %v", charged)
			}
			testwait.For(t, 10*time.Second, "the second order to be paid by the charge's event", func() bool {
				return a.must(200, "GET", "/v1/me/orders/"+second, client, nil)["status"] == "paid"
			})
			if strings.Contains(logs.String(), "maria@example.com") {
				t.Fatal("the payer's e-mail reached the log")
			}
		})
	}
}

// payOrderInBrowser has client check out one bottle of a product admin
// creates, ask for the payment, open the fake Wompi's checkout page and
// press "Aprobar" as a browser would: the fake then posts its signed
// event to the node's webhook. It returns the order's id, the order and
// the payment as created.
func payOrderInBrowser(t *testing.T, a api, admin, client string) (orderID string, o, p map[string]any) {
	t.Helper()
	a.must(200, "PUT", "/v1/admin/shop/products/lavender", admin, map[string]any{"name": "Lavender oil", "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/shop/variants/lavender-50", admin, map[string]any{"product_id": "lavender", "sku": "LAV-50",
		"price_minor": 5000000, "tax_rate_bp": 1900, "active": true, "version": 0})
	a.must(201, "POST", "/v1/admin/shop/variants/lavender-50/stock-movements", admin,
		map[string]any{"kind": "receipt", "qty": 4, "reason": "first delivery"}, "Idempotency-Key", "receipt-1")
	c := a.must(201, "POST", "/v1/carts", client, nil)
	cartID := c["id"].(string)
	a.must(200, "PUT", "/v1/carts/"+cartID+"/lines/lavender-50", client, map[string]any{"qty": 1})
	o = a.must(201, "POST", "/v1/carts/"+cartID+"/checkout", client, map[string]any{"fulfilment": "pickup"},
		"Idempotency-Key", "checkout-1")
	orderID = o["id"].(string)

	p = a.must(201, "POST", "/v1/shop/orders/"+orderID+"/payments", client, nil, "Idempotency-Key", "pay-1")
	link := p["checkout_url"].(string)
	if pay := p["payment"].(map[string]any); pay["amount_minor"] != o["total_minor"] || pay["status"] != "pending" {
		t.Fatalf("payment %v for order %v", pay, o)
	}

	// The checkout page, then its approve button (a form POST).
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "Aprobar") {
		t.Fatalf("checkout page: %d %s", res.StatusCode, page)
	}
	u, _ := url.Parse(link)
	form := u.Query()
	form.Set("outcome", "APPROVED")
	u.Path, u.RawQuery = strings.TrimSuffix(u.Path, "/")+"/pay", ""
	res, err = http.PostForm(u.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("approve: %d", res.StatusCode)
	}
	return orderID, o, p
}
