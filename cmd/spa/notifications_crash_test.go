package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

// TestKillMidSendLosesNoNotification: thirty bookings are confirmed; after
// the provider (the WhatsApp fake) has taken the first five it hangs, so
// the others' sends are in flight, and the node is killed with SIGKILL.
// Restarted on the same data, the node sends the rest, those it was
// sending once their AckWait has passed: every booking's confirmation
// reaches the client. A message the provider took in the
// instant before the kill, before the node recorded it, can go twice
// (WhatsApp takes no idempotency key): at most one per lane in flight.
func TestKillMidSendLosesNoNotification(t *testing.T) {
	bin := buildBinary(t)
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			fake := whatsappfake.New("kill-token", "106540352242922")
			t.Cleanup(fake.Close)
			fake.ApproveTemplate("cita_confirmada", "es", 1)
			dataDir := t.TempDir()
			env := botEnv(fake, envFor(t))
			env["SPA_DATA_DIR"] = dataDir
			env["SPA_HTTP_ADDR"] = "127.0.0.1:0"
			env["SPA_NATS_PORT"] = strconv.Itoa(natstest.FreePort(t))
			env["SPA_NOTIFY_QUIET_HOURS"] = "off"
			env["SPA_NOTIFY_ACK_WAIT"] = "10s" // the dead node's messages are handed out again 10 s after their last sign of life
			env["SPA_WHATSAPP_TEMPLATES"] = "appointment_confirmed=cita_confirmada:es:utility"
			p := startProcess(t, bin, env)
			a := api{t, p.base}
			const phone = "+573001112233"
			// The process writes the code to its log a moment after it
			// answers: wait for the line rather than read it at once.
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			var code string
			testwait.Until(t, 20*time.Second, "the login code in the log", func() error {
				for _, line := range strings.Split(p.stderr.String(), "\n") {
					if strings.Contains(line, "dev message sink") && strings.Contains(line, `"otp"`) && strings.Contains(line, phone[len(phone)-4:]) {
						code = sixDigitCode.FindString(line[strings.Index(line, "dev message sink"):])
					}
				}
				if code == "" {
					return fmt.Errorf("no code yet")
				}
				return nil
			})
			access := a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": code, "device": "e2e"})["access_token"].(string)
			client := subjectOf(t, access)
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			a.seedAnaMassage(admin)

			// Thirty hour-long slots over three days, two days ahead.
			bogota, _ := time.LoadLocation("America/Bogota")
			var starts []string
			for d := 2; len(starts) < 30; d++ {
				day := time.Now().In(bogota).AddDate(0, 0, d)
				from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, bogota)
				q := url.Values{"service": {"massage-60"}, "staff": {"ana"},
					"from": {from.Format(time.RFC3339)}, "to": {from.AddDate(0, 0, 1).Format(time.RFC3339)}}
				slots := a.must(200, "GET", "/v1/availability?"+q.Encode(), "", nil)["slots"].([]any)
				for i := 0; i < len(slots) && len(starts) < 30; i += 4 { // every hour: no overlap
					starts = append(starts, slots[i].(map[string]any)["start"].(string))
				}
			}
			confirm := func(i int) {
				held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
					"start": starts[i], "client_id": client}, "Idempotency-Key", fmt.Sprintf("hold-%d", i))
				a.must(200, "POST", "/v1/appointments/"+held["id"].(string)+"/confirm", desk, nil, "Idempotency-Key", fmt.Sprintf("confirm-%d", i))
			}
			// Five go through; then the provider hangs, the other
			// twenty-five are confirmed and their sends are in flight
			// when the node dies.
			for i := range 5 {
				confirm(i)
			}
			testwait.Until(t, 30*time.Second, "the first confirmations sent", func() error {
				if n := len(fake.Sent()); n < 5 {
					return fmt.Errorf("%d sent", n)
				}
				return nil
			})
			requests := fake.Requests()
			fake.Faults.Always(whatsappfake.Fault{Hang: true})
			for i := 5; i < len(starts); i++ {
				confirm(i)
			}
			testwait.Until(t, 30*time.Second, "sends hanging at the provider", func() error {
				if n := fake.Requests() - requests; n < 3 {
					return fmt.Errorf("%d requests since the hang", n)
				}
				return nil
			})
			before := len(fake.Sent())
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-p.exited
			if before >= len(starts) {
				t.Fatalf("all %d confirmations went before the kill: nothing was in flight", before)
			}
			fake.Faults.Clear()

			p = startProcess(t, bin, env)
			texts := map[string]int{}
			testwait.Until(t, 90*time.Second, "every confirmation after the restart", func() error {
				clear(texts)
				for _, m := range fake.Sent() {
					body := m.Text
					if m.Type == "template" && len(m.Params) > 0 {
						body = m.Params[0]
					}
					texts[body]++
				}
				if len(texts) < len(starts) {
					return fmt.Errorf("%d of %d confirmations (%d before the kill)", len(texts), len(starts), before)
				}
				return nil
			})
			if len(texts) != len(starts) {
				t.Fatalf("%d distinct messages for %d bookings: %v", len(texts), len(starts), texts)
			}
			dups := 0
			for body, n := range texts {
				if n > 2 {
					t.Fatalf("sent %d times: %q", n, body)
				}
				dups += n - 1
			}
			if dups > notificationLanes {
				t.Fatalf("%d messages sent twice; at most %d (one per lane) could be in flight at the kill", dups, notificationLanes)
			}
			t.Logf("%d sent before the kill, %d sent twice", before, dups)
		})
	}
}
