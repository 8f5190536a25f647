package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/messages"
)

// TestNotificationPreferencesEndToEnd, on each driver, on a dev node (the
// log sink carries every message):
//
//   - Maria turns marketing off on every channel; her booking's
//     confirmation still reaches her, and after her visit the follow-up
//     (marketing) is recorded skipped with the reason and never sent,
//     while Juan, who kept marketing on, gets his;
//   - an order of Maria's the desk marks paid sends her an order_paid
//     message naming the order;
//   - when Maria cancels, the slot is offered to Juan from the waitlist,
//     and the message tells him until when the slot is held for him.
//
// The end of a visit is the one event published by hand: the schedule
// actor completes an appointment only once it has started, two days from
// now; the test publishes the AppointmentChanged it would write.
func TestNotificationPreferencesEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			natsPort := natstest.FreePort(t)
			env := envFor(t)
			env["SPA_NATS_PORT"] = strconv.Itoa(natsPort)
			env["SPA_NOTIFY_QUIET_HOURS"] = "off" // marketing may go whenever the test runs
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			mariaAccess, _ := signIn(t, a, logs, "+573005550001")
			juanAccess, _ := signIn(t, a, logs, "+573005550002")
			maria, juan := subjectOf(t, mariaAccess), subjectOf(t, juanAccess)
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")

			prefs := a.must(200, "PUT", "/v1/me/notification-preferences", mariaAccess, map[string]any{
				"categories": map[string]any{"marketing": map[string]bool{"whatsapp": false, "sms": false, "email": false}},
				"version":    0}, "Idempotency-Key", "prefs-1")
			if prefs["version"] != float64(1) {
				t.Fatalf("preferences: %v", prefs)
			}

			a.seedAnaMassage(admin)
			bogota, _ := time.LoadLocation("America/Bogota")
			slots := a.anaSlots(2, 3)
			start := slots[2].(map[string]any)["start"].(string)
			held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
				"start": start, "client_id": maria}, "Idempotency-Key", "desk-1")
			id := held["id"].(string)
			a.must(200, "POST", "/v1/appointments/"+id+"/confirm", desk, nil, "Idempotency-Key", "desk-confirm-1")

			// notification waits for the message of kind to user in status.
			notification := func(kind, user, status string) map[string]any {
				t.Helper()
				var got map[string]any
				testwait.Until(t, 20*time.Second, kind+" "+status+" for "+user, func() error {
					list := a.must(200, "GET", "/v1/admin/notifications?kind="+kind, admin, nil)["notifications"].([]any)
					for _, n := range list {
						if n := n.(map[string]any); n["user_id"] == user && n["status"] == status {
							got = n
							return nil
						}
					}
					return fmt.Errorf("notifications: %v", list)
				})
				return got
			}
			notification("appointment_confirmed", maria, "sent")

			// The visits end: Maria's, and one of Juan's.
			nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			startT, _ := time.Parse(time.RFC3339, start)
			for client, appointment := range map[string]string{maria: id, juan: "01JVISITOFJUAN0000000000001"} {
				ev := &messages.AppointmentChanged{AppointmentId: appointment, StaffId: "ana", ServiceId: "massage-60",
					ClientId: client, Start: timestamppb.New(startT), End: timestamppb.New(startT.Add(time.Hour)),
					FromStatus: "confirmed", ToStatus: "completed", Version: 9}
				env, err := messages.NewEvent("appointment/"+appointment, "e2e", "desk", ev, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				data, _ := proto.Marshal(env)
				msg := nats.NewMsg(messages.Subject(ev))
				msg.Data = data
				msg.Header.Set(jetstream.MsgIDHeader, env.Id)
				if _, err := js.PublishMsg(t.Context(), msg); err != nil {
					t.Fatal(err)
				}
			}
			thanks := notification("appointment_follow_up", juan, "sent")
			if body, _ := thanks["body"].(string); !strings.Contains(body, "Masaje con Ana") || thanks["category"] != "marketing" {
				t.Fatalf("Juan's follow-up: %v", thanks)
			}
			skipped := notification("appointment_follow_up", maria, "skipped")
			if reason, _ := skipped["last_error"].(string); !strings.Contains(reason, "marketing off") || skipped["sent_at"] != nil {
				t.Fatalf("Maria's follow-up: %v", skipped)
			}
			if strings.Count(logs.String(), `"purpose":"appointment_follow_up"`) != 1 {
				t.Fatalf("the sink carried %d follow-ups, want Juan's only", strings.Count(logs.String(), `"purpose":"appointment_follow_up"`))
			}

			// An order paid at the desk.
			a.must(200, "PUT", "/v1/admin/shop/products/lavender", admin, map[string]any{"name": "Lavender oil", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/variants/lavender-50", admin, map[string]any{"product_id": "lavender", "sku": "LAV-50",
				"price_minor": 5000000, "tax_rate_bp": 1900, "active": true, "version": 0})
			a.must(201, "POST", "/v1/admin/shop/variants/lavender-50/stock-movements", admin,
				map[string]any{"kind": "receipt", "qty": 4, "reason": "first delivery"}, "Idempotency-Key", "receipt-1")
			cartID := a.must(201, "POST", "/v1/carts", mariaAccess, nil)["id"].(string)
			a.must(200, "PUT", "/v1/carts/"+cartID+"/lines/lavender-50", mariaAccess, map[string]any{"qty": 1})
			order := a.must(201, "POST", "/v1/carts/"+cartID+"/checkout", mariaAccess, map[string]any{"fulfilment": "pickup"},
				"Idempotency-Key", "checkout-1")
			orderID := order["id"].(string)
			a.must(200, "POST", "/v1/shop/orders/"+orderID+"/pay", desk, map[string]any{"reason": "paid in cash"}, "Idempotency-Key", "pay-desk-1")
			paid := notification("order_paid", maria, "sent")
			ref := "#" + strings.ToUpper(orderID[len(orderID)-8:])
			if body, _ := paid["body"].(string); !strings.Contains(body, ref) || !strings.Contains(body, "$59.500 COP") ||
				!strings.HasPrefix(paid["id"].(string), "order:"+orderID+":paid:") {
				t.Fatalf("order message %v; want the order %s and its total", paid, ref)
			}

			// Juan waits for Maria's morning; she cancels, and the slot is
			// held for him.
			a.must(201, "POST", "/v1/waitlist", juanAccess, map[string]any{"service_id": "massage-60",
				"from": startT.Add(-time.Hour).Format(time.RFC3339), "to": startT.Add(3 * time.Hour).Format(time.RFC3339)})
			a.must(200, "POST", "/v1/appointments/"+id+"/cancel", mariaAccess, map[string]any{"reason": "cannot make it"})
			var offered string
			testwait.For(t, 10*time.Second, "the waitlist offer", func() bool {
				entries := a.must(200, "GET", "/v1/me/waitlist", juanAccess, nil)["entries"].([]any)
				e := entries[0].(map[string]any)
				offered, _ = e["offered_appointment_id"].(string)
				return e["status"] == "offered"
			})
			hold := a.must(200, "GET", "/v1/appointments/"+offered, juanAccess, nil)
			expires, err := time.Parse(time.RFC3339, hold["hold_expires_at"].(string))
			if err != nil {
				t.Fatalf("offered hold %v: %v", hold, err)
			}
			offer := notification("waitlist_offer", juan, "sent")
			exp := expires.In(bogota)
			h, suffix := exp.Hour()%12, "a. m."
			if h == 0 {
				h = 12
			}
			if exp.Hour() >= 12 {
				suffix = "p. m."
			}
			date, clock := fmt.Sprintf(" %d de ", exp.Day()), fmt.Sprintf("%d:%02d %s", h, exp.Minute(), suffix)
			body, _ := offer["body"].(string)
			_, until, _ := strings.Cut(body, "hasta el ")
			if !strings.Contains(until, date) || !strings.Contains(until, clock) {
				t.Fatalf("offer %q; want the hold's expiry (%s, %s) after \"hasta el\"", body, date, clock)
			}
		})
	}
}
