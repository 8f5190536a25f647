package gateway

import (
	"testing"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/providers/recaptcha"
	"github.com/spa-engine/spa/actors/providers/recaptcha/recaptchafake"
	"github.com/spa-engine/spa/actors/providers/resilient"
)

// TestIdentityOTPRecaptcha: with the otp_request context checked, a code
// goes out only for a token Google scores as human, made for that action;
// a bot, a token for another action, a missing or replayed token are
// refused with 403 and nothing is sent; Google down fails closed.
func TestIdentityOTPRecaptcha(t *testing.T) {
	fake := recaptchafake.New("rc-secret")
	t.Cleanup(fake.Close)
	v, err := recaptcha.New(recaptcha.Config{Secret: "rc-secret", VerifyURL: fake.VerifyURL(),
		Rules:  map[string]recaptcha.Rule{RecaptchaOTPContext: {MinScore: 0.7}},
		Policy: resilient.Policy{Attempts: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ie := newIdentityEnvWith(t, 100, 0, func(d *Deps) { d.Identity.Recaptcha = v })
	ask := func(phone, token string) result {
		t.Helper()
		ie.clk.add(otp.DefaultPolicy().ResendAfter)
		body := `{"phone":"` + phone + `"}`
		if token != "" {
			body = `{"phone":"` + phone + `","recaptcha_token":"` + token + `"}`
		}
		return ie.do("POST", "/v1/auth/otp", body, jsonHdr("")...)
	}
	human := fake.Issue(recaptchafake.Token{Action: RecaptchaOTPContext, Score: 0.9})
	refused := []struct {
		name, token string
	}{
		{"missing", ""},
		{"bot", fake.Issue(recaptchafake.Token{Action: RecaptchaOTPContext, Score: 0.3})},
		{"other action", fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})},
		{"made up", "03AFcWeAnotissued"},
	}
	for _, tc := range refused {
		if r := ask(maria, tc.token); r.status != 403 || r.errCode(t) != "forbidden" {
			t.Fatalf("%s token: %d %s", tc.name, r.status, r.body)
		}
	}
	ie.sink.mu.Lock()
	sent := ie.sink.sent
	ie.sink.mu.Unlock()
	if sent != 0 {
		t.Fatalf("%d codes sent for refused tokens", sent)
	}
	if r := ask(maria, human); r.status != 202 {
		t.Fatalf("human token: %d %s", r.status, r.body)
	}
	if ie.sink.code(maria) == "" {
		t.Fatal("no code sent for a human token")
	}
	if r := ask(juan, human); r.status != 403 {
		t.Fatalf("replayed token: %d %s", r.status, r.body)
	}
	checks := fake.Checks()
	if len(checks) == 0 || checks[len(checks)-1].RemoteIP == "" {
		t.Fatalf("siteverify got no remote IP: %+v", checks)
	}
	fake.Close() // Google unreachable: fail closed
	if r := ask(juan, fake.Issue(recaptchafake.Token{Action: RecaptchaOTPContext, Score: 0.9})); r.status != 503 {
		t.Fatalf("google down: %d %s", r.status, r.body)
	}
	if ie.sink.code(juan) != "" {
		t.Fatal("a code went out while reCAPTCHA could not be checked")
	}
}
