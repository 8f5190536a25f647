package providers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/twilio/twiliofake"
	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/testwait"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDevFallsBackToLogSink(t *testing.T) {
	var buf bytes.Buffer
	s, err := FromEnv(Options{Getenv: env(nil), Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&buf, nil)), Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Twilio != nil || s.WhatsApp != nil || s.Recaptcha.Enabled("login") {
		t.Fatalf("unconfigured providers built: %+v", s)
	}
	for _, ch := range []sender.Channel{sender.ChannelSMS, sender.ChannelWhatsApp} {
		if err := s.Sender.Send(context.Background(), sender.Message{To: "+573001234567", Body: "code 123456", Channel: ch, Purpose: "otp"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "code 123456"); n != 2 {
		t.Fatalf("log sink printed %d messages, want 2:\n%s", n, buf.String())
	}
}

func TestProductionRequiresSMSProvider(t *testing.T) {
	s, err := FromEnv(Options{Getenv: env(nil), Registerer: prometheus.NewRegistry()})
	if !errors.Is(err, ErrNoSMSProvider) || !strings.Contains(err.Error(), "SPA_TWILIO_ACCOUNT_SID") {
		t.Fatalf("FromEnv = %v, want ErrNoSMSProvider naming SPA_TWILIO_ACCOUNT_SID", err)
	}
	// The fallback fails closed: nothing is delivered, nothing printed.
	if err := s.Sender.Send(context.Background(), sender.Message{To: "+573001234567", Body: "123456"}); !errors.Is(err, sender.ErrUnavailable) {
		t.Fatalf("unconfigured Send = %v, want ErrUnavailable", err)
	}
	_, err = FromEnv(Options{Getenv: env(map[string]string{"SPA_TWILIO_ACCOUNT_SID": "ACx"}), Registerer: prometheus.NewRegistry(), Dev: true})
	if err == nil || !strings.Contains(err.Error(), "SPA_TWILIO_AUTH_TOKEN") {
		t.Fatalf("partial Twilio config = %v, want an error naming SPA_TWILIO_AUTH_TOKEN", err)
	}
}

func TestRoutesToConfiguredProviders(t *testing.T) {
	tw := twiliofake.New("AC0123456789abcdef0123456789abcdef", "tok")
	defer tw.Close()
	wa := whatsappfake.New("wa-token", "106540352242922")
	defer wa.Close()
	s, err := FromEnv(Options{Registerer: prometheus.NewRegistry(), Getenv: env(map[string]string{
		"SPA_TWILIO_ACCOUNT_SID": tw.AccountSID, "SPA_TWILIO_AUTH_TOKEN": "tok", "SPA_TWILIO_FROM": "+15005550006",
		"SPA_TWILIO_API_BASE_URL": tw.APIBaseURL(),
		"SPA_WHATSAPP_TOKEN":      "wa-token", "SPA_WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
		"SPA_WHATSAPP_BASE_URL": wa.URL, "SPA_WHATSAPP_OTP_TEMPLATE": "codigo",
	})})
	if err != nil {
		t.Fatal(err)
	}
	wa.ApproveTemplate("codigo", "es", 1)
	ctx := context.Background()
	if err := s.Sender.Send(ctx, sender.Message{To: "+573001234567", Body: "111111", Purpose: "otp"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sender.Send(ctx, sender.Message{To: "+573001234567", Body: "222222", Channel: sender.ChannelWhatsApp, Purpose: "otp"}); err != nil {
		t.Fatal(err)
	}
	if m := tw.Messages(); len(m) != 1 || m[0].Body != "111111" {
		t.Fatalf("twilio got %+v, want the SMS", m)
	}
	if m := wa.Sent(); len(m) != 1 || m[0].Template != "codigo" || m[0].Params[0] != "222222" {
		t.Fatalf("whatsapp got %+v, want the template", m)
	}
	if err := s.Sender.Send(ctx, sender.Message{To: "+573001234567", Body: "x", Channel: "fax"}); !errors.Is(err, sender.ErrRejected) {
		t.Fatalf("unknown channel: %v, want ErrRejected", err)
	}
}

// TestBreakerOpenSetting: SPA_PROVIDER_BREAKER_OPEN shortens how long a
// messaging provider is left alone after it failed; a bad value names
// the variable.
func TestBreakerOpenSetting(t *testing.T) {
	for _, bad := range []string{"soon", "10ms", "1h"} {
		_, err := FromEnv(Options{Registerer: prometheus.NewRegistry(), Dev: true, Getenv: env(map[string]string{EnvBreakerOpen: bad})})
		if err == nil || !strings.Contains(err.Error(), EnvBreakerOpen) {
			t.Fatalf("%s=%q: %v, want an error naming it", EnvBreakerOpen, bad, err)
		}
	}
	wa := whatsappfake.New("wa-token", "106540352242922")
	defer wa.Close()
	wa.Inbound("573001234567", time.Now())
	s, err := FromEnv(Options{Registerer: prometheus.NewRegistry(), Dev: true, Getenv: env(map[string]string{
		"SPA_WHATSAPP_TOKEN": "wa-token", "SPA_WHATSAPP_PHONE_NUMBER_ID": "106540352242922", "SPA_WHATSAPP_BASE_URL": wa.URL,
		EnvBreakerOpen: "300ms",
	})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg := sender.Message{To: "+573001234567", Body: "hola", Channel: sender.ChannelWhatsApp}
	wa.Faults.Always(whatsappfake.Fault{Status: 500})
	var openErr error
	for range 10 {
		if openErr = s.Sender.Send(ctx, msg); errors.Is(openErr, resilient.ErrOpen) {
			break
		}
	}
	if !errors.Is(openErr, resilient.ErrOpen) {
		t.Fatalf("the breaker did not open: %v", openErr)
	}
	wa.Faults.Clear()
	// Open for 300 ms, not the default 30 s: the provider is tried again.
	testwait.Until(t, 5*time.Second, "the breaker lets a probe through", func() error {
		return s.Sender.Send(ctx, msg)
	})
}
