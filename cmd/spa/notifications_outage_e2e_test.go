package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/twilio/twiliofake"
	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/testwait"
)

// TestProviderOutageThroughTheNode: a whole node (both drivers) sends
// through the fake WhatsApp Cloud API and the fake Twilio SMS, and both go
// down. The issue's "a provider down for a minute" is scaled with
// everything it is measured against: the retry table (SPA_NOTIFY_BACKOFF
// 1s,2s,4s for 10s,1m,5m,15m,30m) and the providers' breaker
// (SPA_PROVIDER_BREAKER_OPEN 1s for 30s). Three kinds go through it:
// confirmations and a move (WhatsApp templates) and a cancellation (no
// WhatsApp template outside the window, so SMS carries it).
//
//   - before the outage three bookings are confirmed and told;
//   - the first wave (two confirmations, a cancellation) meets the outage
//     for longer than its retries last: each is dead-lettered;
//   - the second wave (two confirmations, a move) has failed at least once
//     when the providers come back: each is delivered on its retry.
//
// Settled, every message is delivered exactly once or sits in the dead
// letters, none lost and none both; retrying the letters' classes then
// delivers each of those once, and the queue is empty.
func TestProviderOutageThroughTheNode(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			const sid, token = "AC00000000000000000000000000000002", "outage-twilio-token"
			const phone = "+573001234571"
			wa := whatsappfake.New("outage-wa-token", "106540352242922")
			t.Cleanup(wa.Close)
			wa.ApproveTemplate("cita_confirmada", "es", 1)
			wa.ApproveTemplate("cita_movida", "es", 1)
			tw := twiliofake.New(sid, token)
			t.Cleanup(tw.Close)
			env := envFor(t)
			env["SPA_WHATSAPP_TOKEN"], env["SPA_WHATSAPP_PHONE_NUMBER_ID"], env["SPA_WHATSAPP_BASE_URL"] = wa.Token, wa.PhoneNumberID, wa.URL
			env["SPA_TWILIO_ACCOUNT_SID"], env["SPA_TWILIO_AUTH_TOKEN"] = sid, token
			env["SPA_TWILIO_FROM"], env["SPA_TWILIO_API_BASE_URL"] = "+15005550006", tw.APIBaseURL()
			env["SPA_WHATSAPP_TEMPLATES"] = "appointment_confirmed=cita_confirmada:es:utility; appointment_rescheduled=cita_movida:es:utility"
			env["SPA_NOTIFY_BACKOFF"] = "1s,2s,4s"
			env["SPA_PROVIDER_BREAKER_OPEN"] = "1s"
			env["SPA_NOTIFY_STATUS_WINDOW"] = "10m" // no status comes from the fakes: no fallback for want of one in this test
			env["SPA_NOTIFY_QUIET_HOURS"] = "off"
			env["SPA_NOTIFY_REMINDERS"] = "off"
			dataDir := t.TempDir()
			base, _, _ := serveInProcess(t, env, dataDir)
			a := api{t, base}

			// The login code goes by SMS (Twilio), before the outage.
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			var code string
			for _, m := range tw.Messages() {
				if m.To == phone {
					code = sixDigitCode.FindString(m.Body)
				}
			}
			if code == "" {
				t.Fatalf("no code sent: %+v", tw.Messages())
			}
			access := a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": code, "device": "e2e"})["access_token"].(string)
			client := subjectOf(t, access)
			otps := len(tw.Messages())
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			a.seedAnaMassage(admin)
			bogota, _ := time.LoadLocation("America/Bogota")
			var starts []string
			for d := 2; len(starts) < 9; d++ {
				day := time.Now().In(bogota).AddDate(0, 0, d)
				from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, bogota)
				q := url.Values{"service": {"massage-60"}, "staff": {"ana"},
					"from": {from.Format(time.RFC3339)}, "to": {from.AddDate(0, 0, 1).Format(time.RFC3339)}}
				slots := a.must(200, "GET", "/v1/availability?"+q.Encode(), "", nil)["slots"].([]any)
				for i := 0; i < len(slots) && len(starts) < 9; i += 4 { // hour-long, no overlap
					starts = append(starts, slots[i].(map[string]any)["start"].(string))
				}
			}

			type cause struct{ appt, kind string }
			next := 0
			confirm := func() cause {
				i := next
				next++
				held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
					"start": starts[i], "client_id": client}, "Idempotency-Key", fmt.Sprintf("outage-hold-%d", i))
				id := held["id"].(string)
				a.must(200, "POST", "/v1/appointments/"+id+"/confirm", desk, nil, "Idempotency-Key", fmt.Sprintf("outage-confirm-%d", i))
				return cause{id, "appointment_confirmed"}
			}
			// rows are the notification rows of c, by channel.
			rows := func(c cause) map[string]map[string]any {
				out := map[string]map[string]any{}
				for _, r := range a.must(200, "GET", "/v1/admin/notifications?limit=200&kind="+c.kind, admin, nil)["notifications"].([]any) {
					row := r.(map[string]any)
					if strings.HasPrefix(row["id"].(string), "appointment:"+c.appt+":") {
						out[row["channel"].(string)] = row
					}
				}
				return out
			}
			// settled is c's one row that is done: delivered (sent or
			// beyond) or dead; an error while any row is still queued.
			settled := func(c cause) (map[string]any, error) {
				var done map[string]any
				for ch, r := range rows(c) {
					switch r["status"] {
					case "sent", "delivered", "read", "dead":
						if done != nil {
							return nil, fmt.Errorf("%v settled on two channels: %v", c, rows(c))
						}
						done = r
					case "queued":
						return nil, fmt.Errorf("%v still queued on %s (%v attempts)", c, ch, r["attempts"])
					}
				}
				if done == nil {
					return nil, fmt.Errorf("%v: no settled row: %v", c, rows(c))
				}
				return done, nil
			}
			// carried counts each body the providers accepted, the codes
			// aside.
			carried := func() map[string]int {
				out := map[string]int{}
				for _, m := range wa.Sent() {
					if m.Type == "template" && len(m.Params) > 0 {
						out[m.Params[0]]++
					} else {
						out[m.Text]++
					}
				}
				for _, m := range tw.Messages()[otps:] {
					out[m.Body]++
				}
				return out
			}
			letters := func() map[string]map[string]any {
				out := map[string]map[string]any{}
				for _, g := range a.must(200, "GET", "/v1/admin/notifications/dead-letters?limit=200", admin, nil)["groups"].([]any) {
					for _, l := range g.(map[string]any)["letters"].([]any) {
						l := l.(map[string]any)
						out[l["notification_id"].(string)] = l
					}
				}
				return out
			}

			// Before the outage.
			before := []cause{confirm(), confirm(), confirm()}
			testwait.Until(t, 30*time.Second, "the first confirmations delivered", func() error {
				for _, c := range before {
					if r, err := settled(c); err != nil || r["status"] != "sent" {
						return fmt.Errorf("%v: %v %v", c, r, err)
					}
				}
				return nil
			})

			// The outage: both providers answer 500 to everything.
			wa.Faults.Always(whatsappfake.Fault{Status: 500})
			tw.Faults.Always(twiliofake.Fault{Status: 500})
			first := []cause{confirm(), confirm()}
			a.must(200, "POST", "/v1/appointments/"+before[0].appt+"/cancel", desk, nil, "Idempotency-Key", "outage-cancel")
			first = append(first, cause{before[0].appt, "appointment_cancelled"})
			testwait.Until(t, 60*time.Second, "the first wave dead-lettered", func() error {
				if n := len(letters()); n != len(first) {
					return fmt.Errorf("%d dead letters", n)
				}
				return nil
			})
			second := []cause{confirm(), confirm()}
			moveTo := starts[len(starts)-1]
			a.must(200, "POST", "/v1/appointments/"+before[1].appt+"/reschedule", desk, map[string]any{"start": moveTo},
				"Idempotency-Key", "outage-move")
			second = append(second, cause{before[1].appt, "appointment_rescheduled"})
			testwait.Until(t, 30*time.Second, "the second wave failing", func() error {
				for _, c := range second {
					failing := false
					for _, r := range rows(c) {
						failing = failing || (r["status"] == "queued" && r["attempts"].(float64) >= 1)
					}
					if !failing {
						return fmt.Errorf("%v: %v", c, rows(c))
					}
				}
				return nil
			})
			// The providers are back.
			wa.Faults.Clear()
			tw.Faults.Clear()

			all := append(append(append([]cause{}, before...), first...), second...)
			outcome := map[cause]map[string]any{}
			testwait.Until(t, 60*time.Second, "every message settled", func() error {
				for _, c := range all {
					r, err := settled(c)
					if err != nil {
						return err
					}
					outcome[c] = r
				}
				return nil
			})
			dead := letters()
			bodies := carried()
			sentRows := 0
			for _, c := range all {
				r := outcome[c]
				id, body := r["id"].(string), r["body"].(string)
				wantDead := false
				for _, f := range first {
					wantDead = wantDead || f == c
				}
				switch {
				case wantDead && r["status"] != "dead":
					t.Errorf("%v met the whole outage and is %s on %s", c, r["status"], r["channel"])
				case !wantDead && r["status"] == "dead":
					t.Errorf("%v is dead; it was sent before the outage or was still retrying when it ended", c)
				case r["status"] == "dead":
					if dead[id] == nil {
						t.Errorf("%v is dead with no dead letter (lost): %v", c, r)
					}
					if bodies[body] != 0 {
						t.Errorf("%v is dead and was also carried %d times", c, bodies[body])
					}
				default:
					sentRows++
					if dead[id] != nil {
						t.Errorf("%v was delivered and is also a dead letter", c)
					}
					if bodies[body] != 1 {
						t.Errorf("%v carried %d times: %q", c, bodies[body], body)
					}
				}
			}
			if r := outcome[cause{before[0].appt, "appointment_cancelled"}]; r["channel"] != "sms" {
				t.Errorf("the cancellation settled on %s, want sms (no WhatsApp template outside the window)", r["channel"])
			}
			if len(dead) != len(first) {
				t.Errorf("%d dead letters, want %d: %v", len(dead), len(first), dead)
			}
			total := 0
			for _, n := range bodies {
				total += n
			}
			if total != sentRows {
				t.Errorf("the providers carried %d messages for %d delivered notifications: %v", total, sentRows, bodies)
			}

			// The admin retries every class: each letter is delivered once.
			classes := map[string]bool{}
			for _, l := range dead {
				classes[l["error_class"].(string)] = true
			}
			names := make([]string, 0, len(classes))
			for c := range classes {
				names = append(names, c)
			}
			sort.Strings(names)
			for _, class := range names {
				a.must(200, "POST", "/v1/admin/notifications/dead-letters/retry", admin, map[string]any{"error_class": class},
					"Idempotency-Key", "outage-retry-"+class)
			}
			testwait.Until(t, 60*time.Second, "the retried letters delivered", func() error {
				for _, c := range all {
					r, err := settled(c)
					if err != nil {
						return err
					}
					if r["status"] == "dead" {
						return fmt.Errorf("%v still dead", c)
					}
				}
				return nil
			})
			if n := len(letters()); n != 0 {
				t.Errorf("%d dead letters after the retry", n)
			}
			bodies = carried()
			for _, c := range all {
				r, _ := settled(c)
				if n := bodies[r["body"].(string)]; n != 1 {
					t.Errorf("after the retry %v was carried %d times", c, n)
				}
			}
			total = 0
			for _, n := range bodies {
				total += n
			}
			if total != len(all) {
				t.Errorf("the providers carried %d messages for %d notifications: %v", total, len(all), bodies)
			}
		})
	}
}
