package main

import (
	"testing"

	"github.com/spa-engine/spa/actors/providers/recaptcha/recaptchafake"
)

// TestIdentityRecaptchaWired: a node configured with SPA_RECAPTCHA_* and the
// otp_request context refuses a code request without a passing token and
// sends one with it.
func TestIdentityRecaptchaWired(t *testing.T) {
	fake := recaptchafake.New("e2e-rc-secret")
	t.Cleanup(fake.Close)
	base, _, logs := serveInProcess(t, map[string]string{
		"SPA_RECAPTCHA_SECRET":     "e2e-rc-secret",
		"SPA_RECAPTCHA_VERIFY_URL": fake.VerifyURL(),
		"SPA_RECAPTCHA_CONTEXTS":   "otp_request:0.6",
	}, t.TempDir())
	a := api{t, base}
	const phone = "+573001234567"
	a.must(403, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
	bot := fake.Issue(recaptchafake.Token{Action: "otp_request", Score: 0.2})
	a.must(403, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone, "recaptcha_token": bot})
	human := fake.Issue(recaptchafake.Token{Action: "otp_request", Score: 0.9})
	a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone, "recaptcha_token": human})
	if lastCode(t, logs, phone) == "" {
		t.Fatal("no code sent")
	}
	if n := len(fake.Checks()); n != 2 {
		t.Fatalf("siteverify asked %d times, want 2 (a missing token is refused without asking)", n)
	}
}
