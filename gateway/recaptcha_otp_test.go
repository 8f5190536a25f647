package gateway

import (
	"strconv"
	"testing"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/providers/recaptcha"
	"github.com/spa-engine/spa/actors/providers/recaptcha/recaptchafake"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/service/identity"
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

// TestTargetedLockoutByNetwork (issue 15 item 7): five wrong codes from one
// network lock the number there only (429 otp_locked), while its owner on
// another network signs in; wrong codes spread over networks make every
// check and code request for the number need a reCAPTCHA token of the
// otp_stepup action (403 captcha_required), which a human token passes.
func TestTargetedLockoutByNetwork(t *testing.T) {
	fake := recaptchafake.New("rc-secret")
	t.Cleanup(fake.Close)
	v, err := recaptcha.New(recaptcha.Config{Secret: "rc-secret", VerifyURL: fake.VerifyURL(),
		Rules:  map[string]recaptcha.Rule{identity.RecaptchaStepUpContext: {MinScore: 0.7}},
		Policy: resilient.Policy{Attempts: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ie := newIdentityEnvWith(t, 1000, 0, func(d *Deps) {
		d.Identity.Recaptcha = v
		d.Config.ProxyHeader = "X-Forwarded-For"
		d.Config.TrustedProxies = []string{"0.0.0.0", "::"} // app.Test's peer
	})
	p := otp.DefaultPolicy()
	from := func(ip string, extra ...string) []string {
		return jsonHdr("", append([]string{"X-Forwarded-For", ip}, extra...)...)
	}
	ask := func(ip, body string) result {
		t.Helper()
		ie.clk.add(p.ResendAfter)
		return ie.do("POST", "/v1/auth/otp", body, from(ip)...)
	}
	check := func(ip, code, token string) result {
		t.Helper()
		body := `{"phone":"` + maria + `","code":"` + code + `"}`
		if token != "" {
			body = `{"phone":"` + maria + `","code":"` + code + `","recaptcha_token":"` + token + `"}`
		}
		return ie.do("POST", "/v1/auth/otp/verify", body, from(ip)...)
	}
	const owner = "203.0.113.7"
	if r := ask(owner, `{"phone":"`+maria+`"}`); r.status != 202 {
		t.Fatalf("code: %d %s", r.status, r.body)
	}
	code := ie.sink.code(maria)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := range p.MaxFailures {
		if r := check("198.51.100."+strconv.Itoa(i+1), wrong, ""); r.status != 400 {
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	if r := check("198.51.100.99", code, ""); r.status != 429 || r.errCode(t) != "otp_locked" || r.header.Get("Retry-After") == "" {
		t.Fatalf("the attacker's /24 after five guesses: %d %s", r.status, r.body)
	}
	if r := check(owner, code, ""); r.status != 200 {
		t.Fatalf("the owner, elsewhere: %d %s", r.status, r.body)
	}

	// Guesses from ten networks: the step-up CAPTCHA for everyone.
	if r := ask(owner, `{"phone":"`+maria+`"}`); r.status != 202 {
		t.Fatalf("code: %d %s", r.status, r.body)
	}
	for i := range p.CaptchaAfter {
		check("192.0."+strconv.Itoa(i)+".1", wrong, "")
	}
	code = ie.sink.code(maria)
	r := check(owner, code, "")
	if r.status != 403 || r.errCode(t) != "captcha_required" ||
		r.json(t)["error"].(map[string]any)["details"].(map[string]any)["recaptcha_action"] != identity.RecaptchaStepUpContext {
		t.Fatalf("without a CAPTCHA: %d %s", r.status, r.body)
	}
	if r := ask(owner, `{"phone":"`+maria+`"}`); r.status != 403 || r.errCode(t) != "captcha_required" {
		t.Fatalf("code without a CAPTCHA: %d %s", r.status, r.body)
	}
	bot := fake.Issue(recaptchafake.Token{Action: identity.RecaptchaStepUpContext, Score: 0.1})
	if r := check(owner, code, bot); r.status != 403 || r.errCode(t) != "forbidden" {
		t.Fatalf("a bot's token: %d %s", r.status, r.body)
	}
	human := fake.Issue(recaptchafake.Token{Action: identity.RecaptchaStepUpContext, Score: 0.9})
	if r := check(owner, code, human); r.status != 200 {
		t.Fatalf("with a CAPTCHA: %d %s", r.status, r.body)
	}
}
