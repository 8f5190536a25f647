package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/twilio"
	"github.com/spa-engine/spa/actors/providers/twilio/twiliofake"
	"github.com/spa-engine/spa/actors/testwait"
)

// postTwilioStatus posts a status callback form for sid to the node, signed
// as Twilio signs it (external-apis.md §2: HMAC-SHA1 over the public URL
// and the sorted parameters, the algorithm of the official vectors) with
// token, and returns the status code.
func postTwilioStatus(t *testing.T, base, publicBase, token, sid, status string) int {
	t.Helper()
	form := url.Values{"MessageSid": {sid}, "MessageStatus": {status}, "AccountSid": {"AC00000000000000000000000000000001"},
		"To": {"+573001234570"}, "From": {"+15005550006"}}
	if status == "undelivered" {
		form.Set("ErrorCode", "63016")
	}
	req, err := http.NewRequest(http.MethodPost, base+twilio.StatusCallbackPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(token, publicBase+twilio.StatusCallbackPath, form))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestTwilioStatusFallbackEndToEnd: on each driver, with Twilio carrying
// WhatsApp (a content template: the client never wrote) and SMS, a
// confirmation goes by WhatsApp; Twilio's signed "undelivered" callback
// marks it failed and falls back to SMS at once (no waiting for the
// window); a callback signed with another token is refused (401) and
// changes nothing; the signed "delivered" for the SMS marks it delivered.
func TestTwilioStatusFallbackEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			const sid, token, publicBase = "AC00000000000000000000000000000001", "twilio-e2e-token", "https://api.spa.example"
			const phone = "+573001234570"
			fake := twiliofake.New(sid, token)
			t.Cleanup(fake.Close)
			env := envFor(t)
			env["SPA_TWILIO_ACCOUNT_SID"], env["SPA_TWILIO_AUTH_TOKEN"] = sid, token
			env["SPA_TWILIO_FROM"], env["SPA_TWILIO_WHATSAPP_FROM"] = "+15005550006", "+14155238886"
			env["SPA_TWILIO_API_BASE_URL"], env["SPA_TWILIO_WEBHOOK_BASE_URL"] = fake.APIBaseURL(), publicBase
			env["SPA_WHATSAPP_TEMPLATES"] = "appointment_confirmed=HX0123456789abcdef0123456789abcdef:es:utility:2h"
			env["SPA_NOTIFY_STATUS_WINDOW"] = "1h" // only the failed status can make it fall back in time
			dataDir := t.TempDir()
			base, _, _ := serveInProcess(t, env, dataDir)
			a := api{t, base}

			// Sign in with the code the fake carried by SMS.
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			var code string
			for _, m := range fake.Messages() {
				if m.To == phone {
					code = sixDigitCode.FindString(m.Body)
				}
			}
			if code == "" {
				t.Fatalf("no code sent to the client: %+v", fake.Messages())
			}
			access := a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": code, "device": "e2e"})["access_token"].(string)
			client := subjectOf(t, access)
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			a.seedAnaMassage(admin)
			slots := a.anaSlots(2, 1)
			held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
				"start": slots[0].(map[string]any)["start"].(string), "client_id": client}, "Idempotency-Key", "desk-1")
			a.must(200, "POST", "/v1/appointments/"+held["id"].(string)+"/confirm", desk, nil, "Idempotency-Key", "desk-confirm-1")

			// sent is the fake's message to the client on a channel.
			sent := func(whatsApp bool) (twiliofake.Message, bool) {
				for _, m := range fake.Messages() {
					if strings.HasPrefix(m.To, "whatsapp:") == whatsApp && strings.HasSuffix(m.To, phone) && m.Body != "" == !whatsApp &&
						(whatsApp || strings.Contains(m.Body, "confirmada")) {
						return m, true
					}
				}
				return twiliofake.Message{}, false
			}
			rows := func() map[string]map[string]any {
				out := map[string]map[string]any{}
				for _, r := range a.must(200, "GET", "/v1/admin/notifications?kind=appointment_confirmed", admin, nil)["notifications"].([]any) {
					out[r.(map[string]any)["channel"].(string)] = r.(map[string]any)
				}
				return out
			}
			var wa twiliofake.Message
			testwait.Until(t, 20*time.Second, "the confirmation on WhatsApp", func() error {
				var ok bool
				if wa, ok = sent(true); !ok {
					return fmt.Errorf("messages %+v", fake.Messages())
				}
				if r := rows(); r["whatsapp"]["status"] != "sent" {
					return fmt.Errorf("the WhatsApp row: %v", r["whatsapp"])
				}
				return nil
			})
			if wa.ContentSID != "HX0123456789abcdef0123456789abcdef" || !strings.Contains(wa.ContentVariables, "confirmada") || wa.ValidityPeriod != "7200" {
				t.Fatalf("the WhatsApp template: %+v", wa)
			}
			if code := postTwilioStatus(t, base, publicBase, token, wa.SID, "undelivered"); code != 200 {
				t.Fatalf("signed undelivered: %d", code)
			}
			var sms twiliofake.Message
			testwait.Until(t, 20*time.Second, "the fallback to SMS", func() error {
				var ok bool
				if sms, ok = sent(false); !ok {
					return fmt.Errorf("messages %+v", fake.Messages())
				}
				// and recorded sent (the fake answers before the row is written)
				if r := rows(); r["sms"]["status"] != "sent" {
					return fmt.Errorf("the SMS row: %v", r["sms"])
				}
				return nil
			})
			if r := rows(); r["whatsapp"]["status"] != "failed" || r["whatsapp"]["last_error"] != "twilio reported the message failed (code 63016)" {
				t.Fatalf("the WhatsApp row: %v", r["whatsapp"])
			}
			if code := postTwilioStatus(t, base, publicBase, "another-token", sms.SID, "delivered"); code != 401 {
				t.Fatalf("forged delivered: %d, want 401", code)
			}
			if r := rows(); r["sms"]["status"] != "sent" {
				t.Fatalf("the forged status changed the SMS row: %v", r["sms"])
			}
			if code := postTwilioStatus(t, base, publicBase, token, sms.SID, "delivered"); code != 200 {
				t.Fatalf("signed delivered: %d", code)
			}
			if r := rows(); r["sms"]["status"] != "delivered" || len(r) != 2 {
				t.Fatalf("rows after the SMS was delivered: %v", r)
			}
			_, metrics := metricsOf(t, base)
			for _, want := range []string{
				`spa_notifications_failed_total{channel="whatsapp",kind="appointment_confirmed",reason="status"} 1`,
				`spa_notifications_fallbacks_total{channel="sms",from="whatsapp",kind="appointment_confirmed"} 1`,
				`spa_notifications_delivered_total{channel="sms",kind="appointment_confirmed"} 1`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}
