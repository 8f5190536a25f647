package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/totp"
)

// TestTOTPKioskEndToEnd runs the wiring of the second factor and the kiosk
// through a served node on each driver: SPA_TOTP_ISSUER reaches the
// otpauth URI, a promoted user enrols and confirms a factor, SPA_KIOSK_TTL
// sets a kiosk token's life, the token sends a check-in code and stops
// working when revoked, and the kiosk metrics are served. (The step-up at
// sign-in and the check-in itself are covered on both drivers by the
// gateway tests, which control the clock.)
func TestTOTPKioskEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			env, dataDir := envFor(t), t.TempDir()
			env["SPA_TOTP_ISSUER"], env["SPA_KIOSK_TTL"] = "Spa Test", "2h"
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "boss", "admin")
			const phone = "+573001234567"

			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			in := a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": lastCode(t, logs, phone), "device": "e2e"})
			uid := in["user_id"].(string)
			a.must(403, "POST", "/v1/me/totp/enrol", in["access_token"].(string), nil)
			a.must(200, "PUT", "/v1/admin/users/"+uid+"/roles", admin, map[string]any{"roles": []string{"staff"}, "reason": "hired"})
			staff := a.must(200, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": in["refresh_token"]})["access_token"].(string)

			enr := a.must(201, "POST", "/v1/me/totp/enrol", staff, nil)
			uri, err := url.Parse(enr["otpauth_uri"].(string))
			if err != nil || uri.Query().Get("issuer") != "Spa Test" {
				t.Fatalf("otpauth URI %q: %v", enr["otpauth_uri"], err)
			}
			auth, err := totp.New(totp.Config{Issuer: "Spa Test"})
			if err != nil {
				t.Fatal(err)
			}
			code, err := auth.CodeAt(enr["secret"].(string), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			codes := a.must(200, "POST", "/v1/me/totp/confirm", staff, map[string]any{"code": code})["recovery_codes"].([]any)
			if len(codes) != 10 {
				t.Fatalf("%d recovery codes", len(codes))
			}
			if st := a.must(200, "GET", "/v1/me/totp", staff, nil); st["enabled"] != true || st["recovery_codes_remaining"] != float64(10) {
				t.Fatalf("status %v", st)
			}
			if strings.Contains(logs.String(), enr["secret"].(string)) {
				t.Fatal("the TOTP secret is in the log")
			}

			k := a.must(201, "POST", "/v1/admin/kiosks", admin, map[string]any{"label": "front desk"})
			created, _ := time.Parse(time.RFC3339Nano, k["created_at"].(string))
			expires, _ := time.Parse(time.RFC3339Nano, k["expires_at"].(string))
			if expires.Sub(created) != 2*time.Hour {
				t.Fatalf("kiosk lives %v, want SPA_KIOSK_TTL", expires.Sub(created))
			}
			kiosk := k["token"].(string)
			a.must(403, "GET", "/v1/me/sessions", kiosk, nil)
			a.must(202, "POST", "/v1/kiosk/otp", kiosk, map[string]any{"phone": "+573109876543"})
			_, metrics := metricsOf(t, base)
			for _, want := range []string{"spa_kiosk_sessions_active 1", `spa_kiosk_codes_total{outcome="sent"} 1`, `spa_totp_verifications_total{outcome="ok"} 1`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
			a.must(204, "DELETE", "/v1/admin/kiosks/"+k["id"].(string), admin, nil)
			a.must(401, "POST", "/v1/kiosk/otp", kiosk, map[string]any{"phone": "+573109876543"})
		})
	}
}
