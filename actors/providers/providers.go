// Package providers builds the outbound provider clients from the
// environment for cmd/spa: a sender.Router over Twilio (SMS, and WhatsApp
// through Twilio), the WhatsApp Cloud API, SMTP (email) and, in dev mode,
// the log sink;
// plus the optional Twilio Verify client and reCAPTCHA verifier. The
// clients themselves live in the subpackages and never import each other.
package providers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/email"
	"github.com/spa-engine/spa/actors/providers/recaptcha"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/twilio"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
)

// Options are what cmd/spa passes in.
type Options struct {
	Getenv func(string) string
	// Registerer receives the spa_provider_* series (required).
	Registerer prometheus.Registerer
	// Logger backs the dev log sink.
	Logger *slog.Logger
	// Dev lets unconfigured channels fall back to the log sink. Outside dev
	// an SMS provider is required and the sink is never used, because it
	// writes codes to the log.
	Dev bool
}

// Set is the configured providers.
type Set struct {
	// Sender routes by channel; SMS is the default channel.
	Sender *sender.Router
	// Twilio is nil when SPA_TWILIO_* is not set. Its Verify methods work
	// when SPA_TWILIO_VERIFY_SERVICE_SID is set.
	Twilio *twilio.Client
	// WhatsApp is nil when SPA_WHATSAPP_* is not set.
	WhatsApp *whatsapp.Client
	// Email is nil when SPA_SMTP_* is not set: no email channel (the dev
	// log sink carries it in dev mode).
	Email *email.Client
	// WhatsAppWebhook holds the app secret and verify token for the
	// webhook route (whatsapp.Handshake, whatsapp.ValidSignature).
	WhatsAppWebhook whatsapp.Config
	// TwilioWebhook holds the auth token and public base URL for the
	// Twilio webhook routes (twilio.VerifyWebhook).
	TwilioWebhook twilio.Config
	// Recaptcha is nil when SPA_RECAPTCHA_SECRET is not set; a nil
	// Verifier's Enabled is false for every context.
	Recaptcha *recaptcha.Verifier
	// Metrics is shared by all clients.
	Metrics *resilient.Metrics
}

// ErrNoSMSProvider: outside dev mode no SMS provider is configured. The
// Set is still returned, with a Sender that refuses every message as
// unavailable, so a node can serve everything but sign-in codes.
var ErrNoSMSProvider = errors.New("providers: outside dev mode an SMS provider is required")

// FromEnv builds the Set. Errors name the offending variable.
func FromEnv(o Options) (*Set, error) {
	if o.Getenv == nil || o.Registerer == nil {
		return nil, errors.New("providers: Options.Getenv and Options.Registerer are required")
	}
	m, err := resilient.NewMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Set{Metrics: m}
	routes := map[sender.Channel]sender.Sender{}
	openFor, err := breakerOpen(o.Getenv)
	if err != nil {
		return nil, err
	}

	tcfg, ok, err := twilio.FromEnv(o.Getenv)
	if err != nil {
		return nil, err
	}
	if ok {
		s.TwilioWebhook = twilio.Config{AuthToken: tcfg.AuthToken, WebhookBaseURL: tcfg.WebhookBaseURL}
		tcfg.Policy.OpenFor = openFor
		if s.Twilio, err = twilio.New(tcfg, m); err != nil {
			return nil, err
		}
		if tcfg.From != "" || tcfg.MessagingServiceSID != "" {
			routes[sender.ChannelSMS] = s.Twilio
		}
		if tcfg.WhatsAppFrom != "" {
			routes[sender.ChannelWhatsApp] = s.Twilio
		}
	}

	wcfg, ok, err := whatsapp.FromEnv(o.Getenv)
	if err != nil {
		return nil, err
	}
	s.WhatsAppWebhook = whatsapp.Config{AppSecret: wcfg.AppSecret, VerifyToken: wcfg.VerifyToken}
	if ok {
		wcfg.Policy.OpenFor = openFor
		if s.WhatsApp, err = whatsapp.New(wcfg, m); err != nil {
			return nil, err
		}
		routes[sender.ChannelWhatsApp] = s.WhatsApp // the Cloud API wins over Twilio's
	}

	ecfg, ok, err := email.FromEnv(o.Getenv)
	if err != nil {
		return nil, err
	}
	if ok {
		ecfg.Policy.OpenFor = openFor
		if s.Email, err = email.New(ecfg, m); err != nil {
			return nil, err
		}
		routes[sender.ChannelEmail] = s.Email
	}

	rcfg, ok, err := recaptcha.FromEnv(o.Getenv)
	if err != nil {
		return nil, err
	}
	if ok {
		if s.Recaptcha, err = recaptcha.New(rcfg, m); err != nil {
			return nil, err
		}
	}

	if o.Dev {
		sink := sender.LogSink{Logger: o.Logger}
		for _, c := range []sender.Channel{sender.ChannelSMS, sender.ChannelWhatsApp, sender.ChannelEmail} {
			if routes[c] == nil {
				routes[c] = sink
			}
		}
	} else if routes[sender.ChannelSMS] == nil {
		s.Sender = sender.NewRouter(sender.ChannelSMS, map[sender.Channel]sender.Sender{sender.ChannelSMS: unconfigured{}})
		return s, fmt.Errorf("%w: set %s, %s and %s (or %s)", ErrNoSMSProvider,
			twilio.EnvAccountSID, twilio.EnvAuthToken, twilio.EnvFrom, twilio.EnvMessagingServiceSID)
	}
	s.Sender = sender.NewRouter(sender.ChannelSMS, routes)
	return s, nil
}

// EnvBreakerOpen sets how long a messaging provider's breaker stays open
// (resilient.Policy.OpenFor) before a probe goes through. Production keeps
// the default; the outage tests shorten it with everything else they
// scale down, so a few seconds of outage stand for a minute.
const EnvBreakerOpen = "SPA_PROVIDER_BREAKER_OPEN"

// breakerOpen reads EnvBreakerOpen: 0 (unset) leaves resilient's default.
func breakerOpen(getenv func(string) string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(EnvBreakerOpen))
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
		return 0, fmt.Errorf("%s: want a duration from 100ms to 10m such as 30s, got %q", EnvBreakerOpen, v)
	}
	return d, nil
}

// unconfigured refuses every message: sign-in fails closed (503) rather
// than printing codes to a log.
type unconfigured struct{}

func (unconfigured) Send(context.Context, sender.Message) error {
	return fmt.Errorf("%w: no message provider configured", sender.ErrUnavailable)
}
