package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
)

// subjectOf is the user id an access token was issued to.
func subjectOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Sub string `json:"sub"`
	}
	if err != nil || json.Unmarshal(b, &claims) != nil || claims.Sub == "" {
		t.Fatalf("claims of %q: %s %v", token, b, err)
	}
	return claims.Sub
}

// TestNotificationsEndToEnd: on a dev node (no provider keys: messages go
// to the log sink), a client who signed in with her phone is booked and
// confirmed at the desk; the admin list then shows exactly one
// appointment_confirmed message, sent on WhatsApp, with the booking in
// its text, and the log shows it with the number masked. On each driver.
func TestNotificationsEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			base, _, logs := serveInProcess(t, envFor(t), dataDir)
			a := api{t, base}
			const phone = "+573001234567"
			access, _ := signIn(t, a, logs, phone)
			client := subjectOf(t, access)
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")

			a.seedAnaMassage(admin)
			slots := a.anaSlots(2, 1)
			start := slots[2].(map[string]any)["start"].(string)

			held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
				"start": start, "client_id": client}, "Idempotency-Key", "desk-1")
			id := held["id"].(string)
			a.must(200, "POST", "/v1/appointments/"+id+"/confirm", desk, nil, "Idempotency-Key", "desk-confirm-1")

			var got map[string]any
			testwait.Until(t, 20*time.Second, "the confirmation in the admin list", func() error {
				list := a.must(200, "GET", "/v1/admin/notifications?kind=appointment_confirmed", admin, nil)["notifications"].([]any)
				if len(list) == 0 || list[0].(map[string]any)["status"] != "sent" {
					return fmt.Errorf("notifications: %v", list)
				}
				got = list[0].(map[string]any)
				return nil
			})
			all := a.must(200, "GET", "/v1/admin/notifications", admin, nil)["notifications"].([]any)
			if len(all) != 1 {
				t.Fatalf("%d notifications, want exactly one: %v", len(all), all)
			}
			wantID := fmt.Sprintf("appointment:%s:confirmed:v", id)
			if !strings.HasPrefix(got["id"].(string), wantID) || !strings.HasSuffix(got["id"].(string), ":whatsapp") ||
				got["user_id"] != client || got["channel"] != "whatsapp" || got["attempts"] != float64(1) || got["sent_at"] == nil {
				t.Fatalf("notification %v", got)
			}
			body, _ := got["body"].(string)
			if !strings.Contains(body, "Masaje con Ana") || !strings.Contains(body, "confirmada") {
				t.Fatalf("body %q", body)
			}
			if !strings.Contains(logs.String(), `"purpose":"appointment_confirmed"`) {
				t.Fatal("the dev sink did not log the message")
			}
			if strings.Contains(logs.String(), "3001234567") {
				t.Fatal("the phone number is in the log unmasked")
			}
		})
	}
}

// TestPaymentNotificationEndToEnd: on each driver, a client signed in
// with their phone pays an order at the node's fake Wompi; the approval's
// PaymentChanged event reaches the client as exactly one payment_approved
// message (payments category) naming the amount and the order.
func TestPaymentNotificationEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			base, _, logs := serveInProcess(t, envFor(t), dataDir)
			a := api{t, base}
			access, _ := signIn(t, a, logs, "+573001234568")
			client := subjectOf(t, access)
			admin := issueToken(t, dataDir, "owner", "admin")
			orderID, o, _ := payOrderInBrowser(t, a, admin, access)

			var got map[string]any
			testwait.Until(t, 20*time.Second, "the payment message in the admin list", func() error {
				list := a.must(200, "GET", "/v1/admin/notifications?kind=payment_approved", admin, nil)["notifications"].([]any)
				if len(list) == 0 || list[0].(map[string]any)["status"] != "sent" {
					return fmt.Errorf("notifications: %v", list)
				}
				got = list[0].(map[string]any)
				return nil
			})
			if n := len(a.must(200, "GET", "/v1/admin/notifications?kind=payment_approved", admin, nil)["notifications"].([]any)); n != 1 {
				t.Fatalf("%d payment messages, want exactly one", n)
			}
			if !strings.HasPrefix(got["id"].(string), "payment:") || !strings.HasSuffix(got["id"].(string), ":approved:whatsapp") ||
				got["user_id"] != client || got["category"] != "payments" {
				t.Fatalf("notification %v (order %s)", got, orderID)
			}
			// 59.500 COP: the 50.000 bottle and its 19% tax, in minor units.
			total := int64(o["total_minor"].(float64)) / 100
			want := fmt.Sprintf("$%d.%03d COP", total/1000, total%1000)
			if body, _ := got["body"].(string); !strings.Contains(body, "Recibimos tu pago de "+want+" por tu pedido") {
				t.Fatalf("body %q, want the amount %s and the order", body, want)
			}
		})
	}
}
