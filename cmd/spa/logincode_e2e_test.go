package main

import (
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/providers/twilio/twiliofake"
	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
)

// TestLoginCodeThroughNotificationsEndToEnd: on each driver, a node with
// WhatsApp (the fake Cloud API) and SMS (the fake Twilio) sends a login
// code the way it sends every notification: WhatsApp first, outside the
// client's 24-hour window as the authentication template; when WhatsApp
// is down, by SMS in the same request; the client signs in with either.
func TestLoginCodeThroughNotificationsEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			const sid, token = "AC00000000000000000000000000000003", "code-twilio-token"
			const phone, wa = "+573001234572", "573001234572"
			waFake := whatsappfake.New("code-wa-token", "106540352242922")
			t.Cleanup(waFake.Close)
			waFake.ApproveTemplate("codigo_acceso", "es", 1)
			tw := twiliofake.New(sid, token)
			t.Cleanup(tw.Close)
			env := envFor(t)
			env["SPA_WHATSAPP_TOKEN"], env["SPA_WHATSAPP_PHONE_NUMBER_ID"], env["SPA_WHATSAPP_BASE_URL"] = waFake.Token, waFake.PhoneNumberID, waFake.URL
			env["SPA_TWILIO_ACCOUNT_SID"], env["SPA_TWILIO_AUTH_TOKEN"] = sid, token
			env["SPA_TWILIO_FROM"], env["SPA_TWILIO_API_BASE_URL"] = "+15005550006", tw.APIBaseURL()
			env["SPA_WHATSAPP_TEMPLATES"] = "login_code=codigo_acceso:es:authentication:5m"
			dataDir := t.TempDir()
			base, _, _ := serveInProcess(t, env, dataDir)
			a := api{t, base}

			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			sent := waFake.Sent()
			if len(sent) != 1 || sent[0].To != wa || sent[0].Type != "template" || sent[0].Template != "codigo_acceso" || len(sent[0].Params) != 1 {
				t.Fatalf("WhatsApp got %+v, want the authentication template", sent)
			}
			if n := len(tw.Messages()); n != 0 {
				t.Fatalf("SMS carried %d messages too", n)
			}
			code := sixDigitCode.FindString(sent[0].Params[0])
			a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": code, "device": "e2e"})

			// WhatsApp down: another client's code goes by SMS in the same
			// request (the first's next code waits out its resend limit).
			const other = "+573001234573"
			waFake.Faults.Always(whatsappfake.Fault{Status: 500})
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": other})
			msgs := tw.Messages()
			if len(msgs) != 1 || msgs[0].To != other {
				t.Fatalf("SMS got %+v, want the code", msgs)
			}
			code = sixDigitCode.FindString(msgs[0].Body)
			a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": other, "code": code, "device": "e2e"})
			_, metrics := metricsOf(t, base)
			for _, want := range []string{
				`spa_notifications_sent_total{channel="whatsapp",kind="login_code"} 1`,
				`spa_notifications_sent_total{channel="sms",kind="login_code"} 1`,
				`spa_notifications_fallbacks_total{channel="sms",from="whatsapp",kind="login_code"} 1`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if rows := a.must(200, "GET", "/v1/admin/notifications", issueToken(t, dataDir, "owner", "admin"), nil)["notifications"].([]any); len(rows) != 0 {
				t.Errorf("login codes stored as notifications: %v", rows)
			}
		})
	}
}
