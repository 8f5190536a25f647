package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/cluster/notifyjs"
)

// TestRemindersEndToEnd: on each driver, with the lead times shortened so
// that the reminders of a booking two days ahead fire seconds after the
// node starts, a confirmation schedules both reminders in JetStream, a
// reschedule moves them, a cancellation removes them; the reminders of a
// second booking fire and reach the client once each, and the cancelled
// one's never do.
func TestRemindersEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			bogota, _ := time.LoadLocation("America/Bogota")
			day := time.Now().In(bogota).AddDate(0, 0, 2)
			start := time.Date(day.Year(), day.Month(), day.Day(), 10, 0, 0, 0, bogota)
			// Fire the 24 h reminder 12 s from now and the 2 h one 16 s from
			// now: after the bookings are made, before the test runs long.
			t0 := time.Now()
			lead24 := start.Sub(t0.Add(12 * time.Second)).Truncate(time.Second)
			lead2 := start.Sub(t0.Add(16 * time.Second)).Truncate(time.Second)
			env := envFor(t)
			env["SPA_NOTIFY_REMINDERS"] = lead24.String() + "," + lead2.String()
			// The reminders fire seconds from now, whatever the clock says:
			// quiet hours (which would move them earlier) are tested apart.
			env["SPA_NOTIFY_QUIET_HOURS"] = "off"
			natsPort := natstest.FreePort(t)
			env["SPA_NATS_PORT"] = strconv.Itoa(natsPort)
			dataDir := t.TempDir()
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			access, _ := signIn(t, a, logs, "+573001112233")
			client := subjectOf(t, access)
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			a.seedAnaMassage(admin)

			nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			schedules, err := notifyjs.NewReminders(t.Context(), js, 1)
			if err != nil {
				t.Fatal(err)
			}
			// waitSchedules waits until the appointment's schedules fire at
			// want (zero: none scheduled).
			waitSchedules := func(id string, want24, want2 time.Time) {
				t.Helper()
				testwait.Until(t, 15*time.Second, "the schedules of "+id, func() error {
					for kind, want := range map[notify.Kind]time.Time{notify.KindReminder24h: want24, notify.KindReminder2h: want2} {
						at, ok, err := schedules.Scheduled(t.Context(), id, kind)
						if err != nil {
							return err
						}
						if ok != !want.IsZero() || (ok && !at.Equal(want)) {
							return fmt.Errorf("%s scheduled %v (%v), want %v", kind, at, ok, want)
						}
					}
					return nil
				})
			}

			book := func(key string, at time.Time) string {
				held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
					"start": at.Format(time.RFC3339), "client_id": client}, "Idempotency-Key", key)
				id := held["id"].(string)
				a.must(200, "POST", "/v1/appointments/"+id+"/confirm", desk, nil, "Idempotency-Key", key+"-confirm")
				return id
			}
			moved := book("first", start)
			waitSchedules(moved, start.Add(-lead24), start.Add(-lead2))
			later := start.Add(time.Hour)
			a.must(200, "POST", "/v1/appointments/"+moved+"/reschedule", desk, map[string]any{"start": later.Format(time.RFC3339)},
				"Idempotency-Key", "first-move")
			waitSchedules(moved, later.Add(-lead24), later.Add(-lead2))

			kept := book("second", start)
			a.must(200, "POST", "/v1/appointments/"+moved+"/cancel", desk, nil, "Idempotency-Key", "first-cancel")
			waitSchedules(moved, time.Time{}, time.Time{})

			var reminders []map[string]any
			testwait.Until(t, 40*time.Second, "both reminders of the kept appointment", func() error {
				reminders = reminders[:0]
				for _, n := range a.must(200, "GET", "/v1/admin/notifications?limit=200", admin, nil)["notifications"].([]any) {
					if n := n.(map[string]any); strings.HasPrefix(n["kind"].(string), "appointment_reminder_") && n["status"] == "sent" {
						reminders = append(reminders, n)
					}
				}
				if len(reminders) < 2 {
					return fmt.Errorf("%d reminders sent", len(reminders))
				}
				return nil
			})
			kinds := map[string]bool{}
			for _, n := range reminders {
				if !strings.HasPrefix(n["id"].(string), "appointment:"+kept+":reminder_") || !strings.Contains(n["body"].(string), "Masaje con Ana") {
					t.Fatalf("reminder %v is not the kept appointment's", n)
				}
				kinds[n["kind"].(string)] = true
			}
			if len(reminders) != 2 || !kinds["appointment_reminder_24h"] || !kinds["appointment_reminder_2h"] {
				t.Fatalf("reminders %v; want the 24 h and the 2 h one, once each", reminders)
			}
			// The fired schedules are gone: nothing is left to fire.
			waitSchedules(kept, time.Time{}, time.Time{})
		})
	}
}
