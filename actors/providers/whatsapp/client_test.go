package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/testwait"
)

const (
	testToken   = "EAAG-test-token"
	testPhoneID = "106540352242922"
	phone       = "+573001234567"
	waPhone     = "573001234567"
)

func setup(t *testing.T, p resilient.Policy, templates map[string]TemplateRef) (*whatsappfake.Server, *Client) {
	t.Helper()
	fake := whatsappfake.New(testToken, testPhoneID)
	t.Cleanup(fake.Close)
	if p.BaseDelay == 0 {
		p.BaseDelay, p.MaxDelay = time.Millisecond, 5*time.Millisecond
	}
	c, err := New(Config{Token: testToken, PhoneNumberID: testPhoneID, BaseURL: fake.URL, APIVersion: "v23.0",
		Templates: templates, HTTPClient: fake.Client(), Policy: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func TestSendTextInsideWindow(t *testing.T) {
	fake, c := setup(t, resilient.Policy{}, nil)
	fake.Inbound(waPhone, time.Now().Add(-time.Hour))
	id, err := c.SendText(context.Background(), phone, "Tu cita es mañana 3pm")
	if err != nil || !strings.HasPrefix(id, "wamid.") {
		t.Fatalf("SendText = %q, %v", id, err)
	}
	got := fake.Sent()
	want := whatsappfake.Sent{ID: id, To: waPhone, Type: "text", Text: "Tu cita es mañana 3pm"}
	if len(got) != 1 || got[0].ID != want.ID || got[0].To != want.To || got[0].Type != want.Type || got[0].Text != want.Text {
		t.Fatalf("fake recorded %+v, want %+v", got, want)
	}
	if st := fake.Statuses(); len(st) != 0 {
		t.Fatalf("statuses %+v inside the window, want none", st)
	}
}

func TestOTPGoesAsTemplate(t *testing.T) {
	fake, c := setup(t, resilient.Policy{}, map[string]TemplateRef{"otp": {Name: "codigo_acceso", Language: "es"}})
	fake.ApproveTemplate("codigo_acceso", "es", 1)
	// No inbound message: outside the window only a template may go.
	if err := c.Send(context.Background(), sender.Message{To: phone, Body: "123456", Channel: sender.ChannelWhatsApp, Purpose: "otp"}); err != nil {
		t.Fatal(err)
	}
	got := fake.Sent()
	if len(got) != 1 || got[0].Type != "template" || got[0].Template != "codigo_acceso" || got[0].Language != "es" || !slices.Equal(got[0].Params, []string{"123456"}) {
		t.Fatalf("fake recorded %+v", got)
	}
	if len(fake.Statuses()) != 0 {
		t.Fatalf("template send failed: %+v", fake.Statuses())
	}

	// A template the fake has not approved in that shape is rejected.
	_, err := c.SendTemplate(context.Background(), phone, Template{Name: "codigo_acceso", Language: "es", BodyParams: []string{"1", "2"}})
	var ge *GraphError
	if !errors.Is(err, sender.ErrRejected) || !errors.As(err, &ge) || ge.Code != 132000 {
		t.Fatalf("param mismatch = %v, want ErrRejected with code 132000", err)
	}
}

func TestOutsideWindowFailsByWebhook(t *testing.T) {
	const secret = "test_app_secret"
	got := make(chan []byte, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !ValidSignature(secret, body, r.Header.Get(SignatureHeader)) {
			w.WriteHeader(http.StatusForbidden)
			got <- nil
			return
		}
		got <- body
	}))
	defer hook.Close()
	fake, c := setup(t, resilient.Policy{}, nil)
	fake.SetWebhook(hook.URL, secret)
	fake.Inbound(waPhone, time.Now().Add(-25*time.Hour))

	id, err := c.SendText(context.Background(), phone, "hola")
	if err != nil {
		t.Fatalf("SendText = %v; Meta accepts and fails later", err)
	}
	select {
	case body := <-got:
		if body == nil {
			t.Fatal("webhook signature did not validate")
		}
		s := string(body)
		if !strings.Contains(s, `"status":"failed"`) || !strings.Contains(s, `"code":131047`) || !strings.Contains(s, id) {
			t.Fatalf("webhook body %s, want a failed status 131047 for %s", s, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no status webhook")
	}
}

func TestErrorMappingAndRetries(t *testing.T) {
	rateLimited := `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"x"}}`
	for _, tc := range []struct {
		name      string
		faults    []fakefault.Fault
		token     string
		to        string
		wantErr   []error
		wantCalls int
	}{
		{"500 then ok", []fakefault.Fault{{Status: 500}}, testToken, phone, nil, 2},
		{"throughput limit then ok", []fakefault.Fault{{Status: 400, Body: rateLimited}}, testToken, phone, nil, 2},
		{"429 three times", []fakefault.Fault{{Status: 429}, {Status: 429}, {Status: 429}}, testToken, phone, []error{sender.ErrUnavailable}, 3},
		{"bad token", nil, "wrong", phone, []error{sender.ErrUnavailable, ErrAuth}, 1},
		{"not E.164", nil, testToken, "3001234567", []error{sender.ErrRejected}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, c := setup(t, resilient.Policy{Attempts: 3}, nil)
			fake.Inbound(waPhone, time.Now())
			c.cfg.Token = tc.token
			fake.Faults.Next(tc.faults...)
			_, err := c.SendText(context.Background(), tc.to, "hola")
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("SendText = %v, want %v", err, want)
				}
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("SendText = %v, want success", err)
			}
			if fake.Requests() != tc.wantCalls {
				t.Fatalf("%d requests, want %d", fake.Requests(), tc.wantCalls)
			}
			if err != nil && (strings.Contains(err.Error(), "300123") || strings.Contains(err.Error(), tc.token)) {
				t.Fatalf("error %q leaks the number or token", err)
			}
		})
	}
}

func TestTimeoutBreakerAndRecovery(t *testing.T) {
	fake, c := setup(t, resilient.Policy{Attempts: 1, AttemptTimeout: 30 * time.Millisecond, FailuresToOpen: 2, OpenFor: 40 * time.Millisecond}, nil)
	fake.Inbound(waPhone, time.Now())
	fake.Faults.Always(fakefault.Fault{Hang: true})
	for range 2 {
		if _, err := c.SendText(context.Background(), phone, "x"); !errors.Is(err, sender.ErrUnavailable) {
			t.Fatalf("hanging provider: %v, want ErrUnavailable", err)
		}
	}
	before := fake.Requests()
	if _, err := c.SendText(context.Background(), phone, "x"); !errors.Is(err, resilient.ErrOpen) {
		t.Fatalf("open breaker: %v, want ErrOpen", err)
	}
	if fake.Requests() != before {
		t.Fatal("open breaker let a request through")
	}
	fake.Faults.Clear()
	testwait.Until(t, 5*time.Second, "the breaker to half-open", func() error {
		if s := c.caller.State(); s != "half-open" {
			return fmt.Errorf("breaker %s, want half-open", s)
		}
		return nil
	})
	if _, err := c.SendText(context.Background(), phone, "x"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if c.caller.State() != "closed" {
		t.Fatalf("breaker %s, want closed", c.caller.State())
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, ok, err := FromEnv(env(nil)); ok || err != nil {
		t.Fatalf("empty env: ok=%v err=%v", ok, err)
	}
	if _, _, err := FromEnv(env(map[string]string{EnvToken: "t"})); err == nil || !strings.Contains(err.Error(), EnvPhoneNumberID) {
		t.Fatalf("missing phone id: %v", err)
	}
	cfg, ok, err := FromEnv(env(map[string]string{EnvToken: "secret-tok", EnvPhoneNumberID: testPhoneID, EnvOTPTemplate: "codigo"}))
	if !ok || err != nil || cfg.Templates["otp"] != (TemplateRef{Name: "codigo", Language: "es"}) {
		t.Fatalf("good env: %+v ok=%v err=%v", cfg, ok, err)
	}
	if strings.Contains(cfg.LogValue().String(), "secret-tok") {
		t.Fatal("LogValue leaks the token")
	}
}
