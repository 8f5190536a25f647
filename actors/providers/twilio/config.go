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
)

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
	)
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
