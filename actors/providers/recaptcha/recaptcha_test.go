package recaptcha

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
	"github.com/spa-engine/spa/actors/providers/recaptcha/recaptchafake"
	"github.com/spa-engine/spa/actors/providers/resilient"
)

const secret = "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe"

func setup(t *testing.T, cfg Config) (*recaptchafake.Server, *Verifier) {
	t.Helper()
	fake := recaptchafake.New(secret)
	t.Cleanup(fake.Close)
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	cfg.VerifyURL = fake.VerifyURL()
	cfg.HTTPClient = fake.Client()
	if cfg.Policy.BaseDelay == 0 {
		cfg.Policy.BaseDelay, cfg.Policy.MaxDelay = time.Millisecond, 5*time.Millisecond
	}
	if cfg.Rules == nil {
		cfg.Rules = map[string]Rule{"otp_request": {MinScore: 0.7}, "login": {}}
	}
	v, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fake, v
}

func TestVerifyPerContext(t *testing.T) {
	fake, v := setup(t, Config{Hostname: "spa.example.co"})
	host := "spa.example.co"
	for _, tc := range []struct {
		name    string
		token   recaptchafake.Token
		context string
		want    error
	}{
		{"good otp", recaptchafake.Token{Action: "otp_request", Score: 0.9, Hostname: host}, "otp_request", nil},
		{"otp needs 0.7", recaptchafake.Token{Action: "otp_request", Score: 0.6, Hostname: host}, "otp_request", ErrLowScore},
		{"login default 0.5", recaptchafake.Token{Action: "login", Score: 0.6, Hostname: host}, "login", nil},
		{"login below 0.5", recaptchafake.Token{Action: "login", Score: 0.3, Hostname: host}, "login", ErrLowScore},
		{"token for another action", recaptchafake.Token{Action: "login", Score: 0.9, Hostname: host}, "otp_request", ErrMismatch},
		{"other hostname", recaptchafake.Token{Action: "login", Score: 0.9, Hostname: "evil.example"}, "login", ErrMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := fake.Issue(tc.token)
			res, err := v.Verify(context.Background(), tok, "203.0.113.7", tc.context)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if res.Score != tc.token.Score || res.Action != tc.token.Action {
				t.Fatalf("result %+v, want score %v action %q", res, tc.token.Score, tc.token.Action)
			}
		})
	}
	checks := fake.Checks()
	if len(checks) != 6 || checks[0].RemoteIP != "203.0.113.7" {
		t.Fatalf("fake saw %+v", checks)
	}
}

func TestInvalidTokens(t *testing.T) {
	fake, v := setup(t, Config{})
	now := time.Now()
	fake.SetNow(func() time.Time { return now })
	tok := fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})
	if _, err := v.Verify(context.Background(), tok, "", "login"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok, "", "login"); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "timeout-or-duplicate") {
		t.Fatalf("reused token: %v, want ErrInvalidToken (timeout-or-duplicate)", err)
	}
	old := fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})
	now = now.Add(3 * time.Minute)
	if _, err := v.Verify(context.Background(), old, "", "login"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token: %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(context.Background(), "forged", "", "login"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("forged token: %v, want ErrInvalidToken", err)
	}
	before := fake.Requests()
	if _, err := v.Verify(context.Background(), "", "", "login"); !errors.Is(err, ErrInvalidToken) || fake.Requests() != before {
		t.Fatalf("empty token: %v (requests %d->%d), want ErrInvalidToken without a call", err, before, fake.Requests())
	}
}

func TestWrongSecretIsUnavailable(t *testing.T) {
	fake, v := setup(t, Config{Secret: "not-the-secret"})
	tok := fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})
	_, err := v.Verify(context.Background(), tok, "", "login")
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("wrong secret: %v, want ErrUnavailable without the secret in it", err)
	}
}

func TestOutagesRetriesAndBreaker(t *testing.T) {
	fake, v := setup(t, Config{Policy: resilient.Policy{Attempts: 3, FailuresToOpen: 3, OpenFor: time.Hour, AttemptTimeout: 30 * time.Millisecond}})
	tok := fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})
	fake.Faults.Next(fakefault.Fault{Status: 503}, fakefault.Fault{Hang: true})
	if _, err := v.Verify(context.Background(), tok, "", "login"); err != nil {
		t.Fatalf("Verify after a 503 and a timeout = %v, want success on the 3rd try", err)
	}
	if fake.Requests() != 3 {
		t.Fatalf("%d requests, want 3", fake.Requests())
	}
	fake.Faults.Always(fakefault.Fault{Status: 500})
	tok = fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})
	if _, err := v.Verify(context.Background(), tok, "", "login"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("outage: %v, want ErrUnavailable", err)
	}
	before := fake.Requests()
	if _, err := v.Verify(context.Background(), tok, "", "login"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, resilient.ErrOpen) {
		t.Fatalf("after 3 failures: %v, want ErrUnavailable from the open breaker", err)
	}
	if fake.Requests() != before {
		t.Fatal("open breaker let a request through")
	}
}

func TestEnabledAndFromEnv(t *testing.T) {
	var nilV *Verifier
	if nilV.Enabled("login") {
		t.Fatal("nil Verifier enabled")
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, ok, err := FromEnv(env(nil)); ok || err != nil {
		t.Fatalf("empty env: ok=%v err=%v", ok, err)
	}
	if _, _, err := FromEnv(env(map[string]string{EnvSecret: "s"})); err == nil || !strings.Contains(err.Error(), EnvContexts) {
		t.Fatalf("no contexts: %v", err)
	}
	if _, _, err := FromEnv(env(map[string]string{EnvSecret: "s", EnvContexts: "login:1.5"})); err == nil || !strings.Contains(err.Error(), EnvContexts) {
		t.Fatalf("bad score: %v", err)
	}
	cfg, ok, err := FromEnv(env(map[string]string{EnvSecret: "s3cr3t", EnvContexts: "otp_request:0.7, login", EnvMinScore: "0.4"}))
	if !ok || err != nil || cfg.Rules["otp_request"].MinScore != 0.7 || cfg.MinScore != 0.4 {
		t.Fatalf("good env: %+v ok=%v err=%v", cfg, ok, err)
	}
	v, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Enabled("login") || v.Enabled("checkout") {
		t.Fatal("Enabled does not follow SPA_RECAPTCHA_CONTEXTS")
	}
	if strings.Contains(cfg.LogValue().String(), "s3cr3t") {
		t.Fatal("LogValue leaks the secret")
	}
}
