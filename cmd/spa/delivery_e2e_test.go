package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/testwait"
)

// metaStatus is a Cloud API status webhook body (external-apis.md §1)
// for one of our messages.
func metaStatus(wamid, status, recipient string, at time.Time) []byte {
	body, _ := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry": []any{map[string]any{"id": "102290129340398", "changes": []any{map[string]any{
			"field": "messages",
			"value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]string{"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
				"statuses": []any{map[string]any{"id": wamid, "status": status, "timestamp": strconv.FormatInt(at.Unix(), 10),
					"recipient_id": recipient}},
			},
		}}}},
	})
	return body
}

// metaInbound is a Cloud API webhook body with a text message from wa.
func metaInbound(wamid, wa, text string, at time.Time) []byte {
	body, _ := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry": []any{map[string]any{"id": "102290129340398", "changes": []any{map[string]any{
			"field": "messages",
			"value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]string{"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
				"contacts":          []any{map[string]any{"profile": map[string]string{"name": "Cliente"}, "wa_id": wa}},
				"messages": []any{map[string]any{"from": wa, "id": wamid, "timestamp": strconv.FormatInt(at.Unix(), 10),
					"type": "text", "text": map[string]string{"body": text}}},
			},
		}}}},
	})
	return body
}

// postWebhook posts body to the WhatsApp webhook with signature as
// X-Hub-Signature-256 and returns the status code.
func postWebhook(t *testing.T, base string, body []byte, signature string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/webhooks/whatsapp", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(whatsapp.SignatureHeader, signature)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestDeliveryStatusesEndToEnd: on each driver, a node sends WhatsApp
// through the fake Cloud API (SMS and email stay on the dev sink). Two
// confirmed bookings each send one WhatsApp message: the first, before the
// client ever wrote to us, as the kind's approved template (outside the
// 24-hour window); the second, after a signed inbound message opened the
// window, as free-form text. A status webhook
// signed as Meta signs it (HMAC-SHA256 of the body with the app secret,
// the format of the published test vector) marks the first delivered; a
// forged one for the second is refused (401) and changes nothing; the
// second, of which no status arrives within its window, falls back to
// SMS, once; the first does not. The metrics count it all by channel and
// kind.
func TestDeliveryStatusesEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			const token, phoneID, secret = "EAAG-e2e-token", "106540352242922", "e2e_app_secret"
			const phone, wa = "+573001234569", "573001234569"
			fake := whatsappfake.New(token, phoneID)
			t.Cleanup(fake.Close)
			fake.Inbound(wa, time.Now()) // the fake's own window: free-form text is accepted once ours opens
			fake.ApproveTemplate("cita_confirmada", "es", 1)
			env := envFor(t)
			env["SPA_WHATSAPP_TOKEN"], env["SPA_WHATSAPP_PHONE_NUMBER_ID"] = token, phoneID
			env["SPA_WHATSAPP_BASE_URL"], env["SPA_WHATSAPP_APP_SECRET"] = fake.URL, secret
			env["SPA_NOTIFY_STATUS_WINDOW"] = "3s"
			env["SPA_WHATSAPP_TEMPLATES"] = "appointment_confirmed=cita_confirmada:es:utility:12h"
			dataDir := t.TempDir()
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			access, _ := signIn(t, a, logs, phone)
			client := subjectOf(t, access)
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			a.seedAnaMassage(admin)
			slots := a.anaSlots(2, 9)
			// byAppointment is the admin list's rows of an appointment's
			// confirmation, by channel.
			byAppointment := func(id string) map[string]map[string]any {
				rows := map[string]map[string]any{}
				for _, r := range a.must(200, "GET", "/v1/admin/notifications?kind=appointment_confirmed", admin, nil)["notifications"].([]any) {
					row := r.(map[string]any)
					if strings.HasPrefix(row["id"].(string), "appointment:"+id+":") {
						rows[row["channel"].(string)] = row
					}
				}
				return rows
			}
			// confirmations are the notifications the fake carried (the bot
			// answers the inbound message through it too).
			confirmations := func() []whatsappfake.Sent {
				var out []whatsappfake.Sent
				for _, m := range fake.Sent() {
					if m.Type == "template" || strings.Contains(m.Text, "confirmada para") {
						out = append(out, m)
					}
				}
				return out
			}
			wamidOf := map[string]string{}
			var ids []string
			for i, slot := range []int{0, 8} {
				if i == 1 { // the client writes: the window opens
					in := metaInbound("wamid.INBOUND1", wa, "hola", time.Now())
					if code := postWebhook(t, base, in, whatsapp.Signature(secret, in)); code != 200 {
						t.Fatalf("signed inbound message: %d", code)
					}
				}
				held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
					"start": slots[slot].(map[string]any)["start"].(string), "client_id": client}, "Idempotency-Key", fmt.Sprintf("desk-%d", i))
				id := held["id"].(string)
				a.must(200, "POST", "/v1/appointments/"+id+"/confirm", desk, nil, "Idempotency-Key", fmt.Sprintf("desk-confirm-%d", i))
				var sent whatsappfake.Sent
				testwait.Until(t, 20*time.Second, "the confirmation on WhatsApp", func() error {
					msgs := confirmations()
					if len(msgs) != i+1 {
						return fmt.Errorf("%d WhatsApp messages", len(msgs))
					}
					sent = msgs[i]
					// and its id recorded (the fake answers before the row is written)
					if rows := byAppointment(id); rows["whatsapp"]["status"] != "sent" {
						return fmt.Errorf("rows %v", rows)
					}
					return nil
				})
				outside := sent.Type == "template" && sent.Template == "cita_confirmada" && sent.Language == "es" &&
					len(sent.Params) == 1 && strings.Contains(sent.Params[0], "confirmada para")
				inside := sent.Type == "text" && strings.Contains(sent.Text, "confirmada para")
				if sent.To != wa || (i == 0 && !outside) || (i == 1 && !inside) {
					t.Fatalf("confirmation %d: %+v", i, sent)
				}
				ids, wamidOf[id] = append(ids, id), sent.ID
			}
			first, second := ids[0], ids[1]

			delivered := metaStatus(wamidOf[first], "delivered", wa, time.Now())
			if code := postWebhook(t, base, delivered, whatsapp.Signature(secret, delivered)); code != 200 {
				t.Fatalf("signed status: %d", code)
			}
			if code := postWebhook(t, base, delivered, whatsapp.Signature(secret, delivered)); code != 200 {
				t.Fatalf("the same status again: %d", code)
			}
			forged := metaStatus(wamidOf[second], "failed", wa, time.Now())
			for _, sig := range []string{whatsapp.Signature("not-the-secret", forged), "", "sha256=" + strings.Repeat("0", 64)} {
				if code := postWebhook(t, base, forged, sig); code != 401 {
					t.Fatalf("forged status (%q): %d, want 401", sig, code)
				}
			}
			if rows := byAppointment(first); rows["whatsapp"]["status"] != "delivered" {
				t.Fatalf("after the signed status: %v", rows)
			}
			if rows := byAppointment(second); rows["whatsapp"]["status"] != "sent" || len(rows) != 1 {
				t.Fatalf("the forged status changed something: %v", rows)
			}

			// No status for the second: after its window it goes by SMS.
			testwait.Until(t, 30*time.Second, "the fallback to SMS", func() error {
				rows := byAppointment(second)
				if rows["sms"]["status"] != "sent" {
					return fmt.Errorf("rows %v", rows)
				}
				return nil
			})
			rows := byAppointment(second)
			if rows["whatsapp"]["status"] != "failed" || rows["whatsapp"]["last_error"] != "no delivery status within 3s" {
				t.Fatalf("the WhatsApp row after the window: %v", rows["whatsapp"])
			}
			// Past the first's window too: delivered, it stays alone.
			time.Sleep(4 * time.Second)
			if rows := byAppointment(first); len(rows) != 1 || rows["whatsapp"]["status"] != "delivered" {
				t.Fatalf("the delivered message fell back: %v", rows)
			}
			if rows := byAppointment(second); len(rows) != 2 {
				t.Fatalf("the fallback went more than once: %v", rows)
			}
			if n := len(confirmations()); n != 2 {
				t.Fatalf("%d WhatsApp messages, want 2", n)
			}
			_, metrics := metricsOf(t, base)
			for _, want := range []string{
				`spa_notifications_sent_total{channel="whatsapp",kind="appointment_confirmed"} 2`,
				`spa_notifications_sent_total{channel="sms",kind="appointment_confirmed"} 1`,
				`spa_notifications_delivered_total{channel="whatsapp",kind="appointment_confirmed"} 1`,
				`spa_notifications_failed_total{channel="whatsapp",kind="appointment_confirmed",reason="no_status"} 1`,
				`spa_notifications_fallbacks_total{channel="sms",from="whatsapp",kind="appointment_confirmed"} 1`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if strings.Contains(metrics, wa) || strings.Contains(metrics, "wamid") {
				t.Error("a phone number or a message id in the metrics")
			}
		})
	}
}
