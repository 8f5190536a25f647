// Package twilio delivers SMS and WhatsApp messages through Twilio's Messages
// API, runs Twilio Verify OTP checks, and validates X-Twilio-Signature on
// inbound webhooks. It speaks the wire format of
// ../shared/design/external-apis.md §2 with a small net/http client (the
// official SDK hard-codes its base URLs), so twiliofake can stand in for it.
package twilio

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// Default base URLs; tests point them at twiliofake.
const (
	DefaultAPIBaseURL    = "https://api.twilio.com"
	DefaultVerifyBaseURL = "https://verify.twilio.com/v2"
)

// Config is the client's configuration. Secrets come from the environment
// (FromEnv) and are never logged: LogValue redacts them.
type Config struct {
	AccountSID string
	AuthToken  string
	// From is the SMS sender number (E.164); MessagingServiceSID may be
	// used instead.
	From                string
	MessagingServiceSID string
	// WhatsAppFrom is the WhatsApp-enabled sender number (E.164, without
	// the "whatsapp:" prefix); empty disables the WhatsApp channel.
	WhatsAppFrom string
	// VerifyServiceSID (VA...) enables the Verify methods.
	VerifyServiceSID string

	APIBaseURL    string
	VerifyBaseURL string

	// WebhookBaseURL is the public base URL Twilio calls us at
	// (https://api.spa.example): its status callbacks go to
	// WebhookBaseURL+StatusCallbackPath (asked for on every message sent)
	// and inbound messages to WebhookBaseURL+InboundPath (set on the
	// number in Twilio's console). The signatures cover these exact URLs.
	// Empty: no status callbacks are asked for and the webhooks refuse
	// everything.
	WebhookBaseURL string

	// Not from the environment.
	HTTPClient *http.Client
	Policy     resilient.Policy
}

// Environment variable names (documented in docs/providers.md).
const (
	EnvAccountSID          = "SPA_TWILIO_ACCOUNT_SID"
	EnvAuthToken           = "SPA_TWILIO_AUTH_TOKEN"
	EnvFrom                = "SPA_TWILIO_FROM"
	EnvMessagingServiceSID = "SPA_TWILIO_MESSAGING_SERVICE_SID"
	EnvWhatsAppFrom        = "SPA_TWILIO_WHATSAPP_FROM"
	EnvVerifyServiceSID    = "SPA_TWILIO_VERIFY_SERVICE_SID"
	EnvAPIBaseURL          = "SPA_TWILIO_API_BASE_URL"
	EnvVerifyBaseURL       = "SPA_TWILIO_VERIFY_BASE_URL"
	EnvWebhookBaseURL      = "SPA_TWILIO_WEBHOOK_BASE_URL"
)

// The webhook routes under WebhookBaseURL (mounted by the gateway).
const (
	StatusCallbackPath = "/v1/webhooks/twilio/status"
	InboundPath        = "/v1/webhooks/twilio/inbound"
)

// StatusCallbackURL and InboundURL are the webhooks' public URLs ("" when
// WebhookBaseURL is not set).
func (c Config) StatusCallbackURL() string { return c.webhookURL(StatusCallbackPath) }

// InboundURL: see StatusCallbackURL.
func (c Config) InboundURL() string { return c.webhookURL(InboundPath) }

func (c Config) webhookURL(path string) string {
	if c.WebhookBaseURL == "" {
		return ""
	}
	return strings.TrimRight(c.WebhookBaseURL, "/") + path
}

// FromEnv reads the configuration. ok is false when Twilio is not configured
// at all (no account SID and no token), so the caller can fall back to the
// dev log sink; a partial configuration is an error naming the missing
// variable.
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	cfg = Config{
		AccountSID:          strings.TrimSpace(getenv(EnvAccountSID)),
		AuthToken:           strings.TrimSpace(getenv(EnvAuthToken)),
		From:                strings.TrimSpace(getenv(EnvFrom)),
		MessagingServiceSID: strings.TrimSpace(getenv(EnvMessagingServiceSID)),
		WhatsAppFrom:        strings.TrimSpace(getenv(EnvWhatsAppFrom)),
		VerifyServiceSID:    strings.TrimSpace(getenv(EnvVerifyServiceSID)),
		APIBaseURL:          strings.TrimSpace(getenv(EnvAPIBaseURL)),
		VerifyBaseURL:       strings.TrimSpace(getenv(EnvVerifyBaseURL)),
		WebhookBaseURL:      strings.TrimSpace(getenv(EnvWebhookBaseURL)),
	}
	if cfg.AccountSID == "" && cfg.AuthToken == "" {
		return cfg, false, nil
	}
	return cfg, true, cfg.Validate()
}

// Validate reports the first missing or malformed setting by its variable.
func (c Config) Validate() error {
	switch {
	case c.AccountSID == "":
		return fmt.Errorf("%s is required when %s is set", EnvAccountSID, EnvAuthToken)
	case !strings.HasPrefix(c.AccountSID, "AC"):
		return fmt.Errorf("%s must start with AC", EnvAccountSID)
	case c.AuthToken == "":
		return fmt.Errorf("%s is required when %s is set", EnvAuthToken, EnvAccountSID)
	case c.From == "" && c.MessagingServiceSID == "" && c.WhatsAppFrom == "" && c.VerifyServiceSID == "":
		return errors.New("twilio: set at least one of " + EnvFrom + ", " + EnvMessagingServiceSID + ", " + EnvWhatsAppFrom + ", " + EnvVerifyServiceSID)
	case c.From != "" && !isE164(c.From):
		return fmt.Errorf("%s must be an E.164 number such as +573001234567", EnvFrom)
	case c.WhatsAppFrom != "" && !isE164(c.WhatsAppFrom):
		return fmt.Errorf("%s must be an E.164 number such as +573001234567", EnvWhatsAppFrom)
	case c.VerifyServiceSID != "" && !strings.HasPrefix(c.VerifyServiceSID, "VA"):
		return fmt.Errorf("%s must start with VA", EnvVerifyServiceSID)
	case c.WebhookBaseURL != "" && !absoluteHTTP(c.WebhookBaseURL):
		return fmt.Errorf("%s must be an absolute http(s) URL without query, such as https://api.spa.example", EnvWebhookBaseURL)
	}
	return nil
}

// LogValue redacts the auth token if a Config is ever logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("account_sid", c.AccountSID),
		slog.Bool("auth_token_set", c.AuthToken != ""),
		slog.String("api_base_url", c.APIBaseURL),
		slog.String("verify_base_url", c.VerifyBaseURL),
		slog.String("webhook_base_url", c.WebhookBaseURL),
	)
}

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}

// isE164 accepts "+" followed by 8 to 15 digits, the first not zero.
func isE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
