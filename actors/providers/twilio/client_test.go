package twilio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/twilio/twiliofake"
	"github.com/spa-engine/spa/actors/testwait"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "test-auth-token"
	phone     = "+573001234567"
)

type fixture struct {
	fake   *twiliofake.Server
	client *Client
	reg    *prometheus.Registry
}

func setup(t *testing.T, p resilient.Policy) fixture {
	t.Helper()
	fake := twiliofake.New(testSID, testToken)
	t.Cleanup(fake.Close)
	reg := prometheus.NewRegistry()
	m, err := resilient.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = time.Millisecond
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = 5 * time.Millisecond
	}
	c, err := New(Config{
		AccountSID: testSID, AuthToken: testToken,
		From: "+15005550006", WhatsAppFrom: "+14155238886", VerifyServiceSID: fake.VerifyServiceSID,
		APIBaseURL: fake.APIBaseURL(), VerifyBaseURL: fake.VerifyBaseURL(),
		HTTPClient: fake.Client(), Policy: p,
	}, m)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{fake: fake, client: c, reg: reg}
}

func TestSendSMSAndWhatsApp(t *testing.T) {
	f := setup(t, resilient.Policy{})
	res, err := f.client.SendMessage(context.Background(), sender.Message{To: phone, Body: "Tu código es 123456", Channel: sender.ChannelSMS, Purpose: "otp"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.SID, "SM") || res.Status != "queued" || res.To != phone {
		t.Fatalf("reply = %+v", res)
	}
	if err := f.client.Send(context.Background(), sender.Message{To: phone, Body: "Hola", Channel: sender.ChannelWhatsApp}); err != nil {
		t.Fatal(err)
	}
	got := f.fake.Messages()
	want := []twiliofake.Message{
		{SID: res.SID, To: phone, From: "+15005550006", Body: "Tu código es 123456"},
		{SID: got[len(got)-1].SID, To: "whatsapp:" + phone, From: "whatsapp:+14155238886", Body: "Hola"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("fake recorded %+v, want %+v", got, want)
	}
	if got := metricValue(t, f.reg, "spa_provider_requests_total", "twilio", "ok"); got != 2 {
		t.Fatalf("ok requests metric = %v, want 2", got)
	}
}

func TestErrorMapping(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	f.fake.Block(phone)

	for _, tc := range []struct {
		name      string
		msg       sender.Message
		wantErr   error
		wantCode  int
		wantCalls int
	}{
		{"bad number, refused locally", sender.Message{To: "3001234567", Body: "x"}, sender.ErrRejected, 0, 0},
		{"blocked number", sender.Message{To: phone, Body: "x"}, sender.ErrRejected, 21610, 1},
		{"unknown channel", sender.Message{To: "+573009999999", Body: "x", Channel: "pigeon"}, sender.ErrRejected, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.fake.Requests()
			err := f.client.Send(context.Background(), tc.msg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Send = %v, want %v", err, tc.wantErr)
			}
			var apiErr *APIError
			if tc.wantCode != 0 && (!errors.As(err, &apiErr) || apiErr.Code != tc.wantCode) {
				t.Fatalf("Send = %v, want Twilio code %d", err, tc.wantCode)
			}
			if calls := f.fake.Requests() - before; calls != tc.wantCalls {
				t.Fatalf("%d requests, want %d (rejections are not retried)", calls, tc.wantCalls)
			}
			if strings.Contains(err.Error(), "573") {
				t.Fatalf("error %q leaks the phone number", err)
			}
		})
	}
}

func TestWrongTokenIsUnavailableAndNotRetried(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	f.client.cfg.AuthToken = "wrong"
	err := f.client.Send(context.Background(), sender.Message{To: phone, Body: "x"})
	if !errors.Is(err, sender.ErrUnavailable) || !errors.Is(err, ErrAuth) {
		t.Fatalf("Send = %v, want ErrUnavailable and ErrAuth", err)
	}
	if f.fake.Requests() != 1 {
		t.Fatalf("%d requests, want 1", f.fake.Requests())
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error %q leaks the token", err)
	}
}

func TestRetriesServerErrorsThenSucceeds(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	f.fake.Faults.Next(fakefault.Fault{Status: 500}, fakefault.Fault{Status: 503})
	if err := f.client.Send(context.Background(), sender.Message{To: phone, Body: "x"}); err != nil {
		t.Fatalf("Send = %v, want success on the 3rd try", err)
	}
	if f.fake.Requests() != 3 || len(f.fake.Messages()) != 1 {
		t.Fatalf("requests=%d messages=%d, want 3 and 1", f.fake.Requests(), len(f.fake.Messages()))
	}
}

func TestHonoursRetryAfterOn429(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 2})
	var waits []time.Duration
	f.client.msgs.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	f.fake.Faults.Next(fakefault.Fault{Status: 429, RetryAfter: "2", Body: `{"code":20429,"message":"Too Many Requests","status":429}`})
	if err := f.client.Send(context.Background(), sender.Message{To: phone, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 || waits[0] < 2*time.Second {
		t.Fatalf("waits = %v, want one wait of at least the 2s Retry-After", waits)
	}
}

func TestTimeoutAndCancellation(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 2, AttemptTimeout: 50 * time.Millisecond})
	f.fake.Faults.Always(fakefault.Fault{Hang: true})
	err := f.client.Send(context.Background(), sender.Message{To: phone, Body: "x"})
	if !errors.Is(err, sender.ErrUnavailable) {
		t.Fatalf("Send to a hanging provider = %v, want ErrUnavailable", err)
	}
	if f.fake.Requests() != 2 {
		t.Fatalf("%d requests, want 2 (a timeout is retried)", f.fake.Requests())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = f.client.Send(ctx, sender.Message{To: phone, Body: "x"})
	if !errors.Is(err, sender.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context = %v, want ErrUnavailable wrapping Canceled", err)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 1, FailuresToOpen: 3, OpenFor: 40 * time.Millisecond})
	f.fake.Faults.Always(fakefault.Fault{Status: 500})
	msg := sender.Message{To: phone, Body: "x"}
	for range 3 {
		if err := f.client.Send(context.Background(), msg); !errors.Is(err, sender.ErrUnavailable) {
			t.Fatalf("Send = %v, want ErrUnavailable", err)
		}
	}
	before := f.fake.Requests()
	err := f.client.Send(context.Background(), msg)
	if !errors.Is(err, sender.ErrUnavailable) || !errors.Is(err, resilient.ErrOpen) {
		t.Fatalf("Send with open breaker = %v, want ErrUnavailable wrapping ErrOpen", err)
	}
	if f.fake.Requests() != before {
		t.Fatal("an open breaker still called the provider")
	}
	f.fake.Faults.Clear()
	testwait.Until(t, 5*time.Second, "the breaker to half-open", func() error {
		if s := f.client.msgs.State(); s != "half-open" {
			return fmt.Errorf("breaker %s, want half-open", s)
		}
		return nil
	})
	if err := f.client.Send(context.Background(), msg); err != nil {
		t.Fatalf("probe = %v", err)
	}
	if f.client.msgs.State() != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", f.client.msgs.State())
	}
	if got := metricValue(t, f.reg, "spa_provider_requests_total", "twilio", "breaker_open"); got != 1 {
		t.Fatalf("breaker_open count = %v, want 1", got)
	}
}

// metricValue reads the counter name{provider, outcome} from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, provider, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestVerifyFlow(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.fake.SetNow(func() time.Time { return now })
	ctx := context.Background()

	v, err := f.client.StartVerification(ctx, phone, sender.ChannelSMS, "es")
	if err != nil || v.Status != "pending" || !strings.HasPrefix(v.SID, "VE") {
		t.Fatalf("Start = %+v, %v", v, err)
	}
	code, ok := f.fake.PendingCode(phone)
	if !ok {
		t.Fatal("fake has no pending code")
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	v, err = f.client.CheckVerification(ctx, phone, wrong)
	if err != nil || v.Valid || v.Status != "pending" {
		t.Fatalf("wrong code = %+v, %v; want pending and not valid", v, err)
	}
	v, err = f.client.CheckVerification(ctx, phone, code)
	if err != nil || !v.Valid || v.Status != "approved" {
		t.Fatalf("right code = %+v, %v; want approved", v, err)
	}
	_, err = f.client.CheckVerification(ctx, phone, code)
	if !errors.Is(err, ErrVerificationNotFound) || !errors.Is(err, sender.ErrRejected) {
		t.Fatalf("reused code = %v, want ErrVerificationNotFound", err)
	}

	// Expiry after 10 minutes.
	if _, err := f.client.StartVerification(ctx, phone, sender.ChannelWhatsApp, ""); err != nil {
		t.Fatal(err)
	}
	code, _ = f.fake.PendingCode(phone)
	now = now.Add(10 * time.Minute)
	if _, err := f.client.CheckVerification(ctx, phone, code); !errors.Is(err, ErrVerificationNotFound) {
		t.Fatalf("expired code = %v, want ErrVerificationNotFound", err)
	}

	// 60203 after 5 sends in 10 minutes (the two above are now outside the
	// window), final: no retry.
	for range 5 {
		if _, err := f.client.StartVerification(ctx, phone, sender.ChannelSMS, ""); err != nil {
			t.Fatal(err)
		}
	}
	before := f.fake.Requests()
	_, err = f.client.StartVerification(ctx, phone, sender.ChannelSMS, "")
	if !errors.Is(err, ErrVerifyLimited) || !errors.Is(err, sender.ErrRejected) {
		t.Fatalf("6th send = %v, want ErrVerifyLimited", err)
	}
	if f.fake.Requests()-before != 1 {
		t.Fatalf("the 60203 reply was retried (%d requests)", f.fake.Requests()-before)
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, ok, err := FromEnv(env(nil)); ok || err != nil {
		t.Fatalf("empty env: ok=%v err=%v, want not configured", ok, err)
	}
	_, ok, err := FromEnv(env(map[string]string{EnvAccountSID: testSID}))
	if !ok || err == nil || !strings.Contains(err.Error(), EnvAuthToken) {
		t.Fatalf("missing token: ok=%v err=%v, want an error naming %s", ok, err, EnvAuthToken)
	}
	_, _, err = FromEnv(env(map[string]string{EnvAccountSID: testSID, EnvAuthToken: "t", EnvFrom: "3001234567"}))
	if err == nil || !strings.Contains(err.Error(), EnvFrom) {
		t.Fatalf("bad From: err=%v, want an error naming %s", err, EnvFrom)
	}
	cfg, ok, err := FromEnv(env(map[string]string{EnvAccountSID: testSID, EnvAuthToken: "secret-token", EnvFrom: "+15005550006"}))
	if !ok || err != nil || cfg.From != "+15005550006" {
		t.Fatalf("good env: %+v ok=%v err=%v", cfg, ok, err)
	}
	if s := cfg.LogValue().String(); strings.Contains(s, "secret-token") {
		t.Fatalf("LogValue %q leaks the token", s)
	}
}
