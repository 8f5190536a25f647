// Package whatsapp sends messages through the WhatsApp Cloud API (Meta) and
// verifies its webhooks (hub.challenge handshake, X-Hub-Signature-256), in
// the wire format of ../shared/design/external-apis.md §1. There is no
// official Go SDK; this small net/http client keeps the base URL injectable
// so whatsappfake can stand in for Meta.
package whatsapp

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// Defaults; the API version is configurable because Meta retires versions.
const (
	DefaultBaseURL          = "https://graph.facebook.com"
	DefaultAPIVersion       = "v23.0"
	DefaultTemplateLanguage = "es"
)

// Environment variable names (documented in docs/providers.md).
const (
	EnvToken            = "SPA_WHATSAPP_TOKEN"
	EnvPhoneNumberID    = "SPA_WHATSAPP_PHONE_NUMBER_ID"
	EnvAPIVersion       = "SPA_WHATSAPP_API_VERSION"
	EnvBaseURL          = "SPA_WHATSAPP_BASE_URL"
	EnvAppSecret        = "SPA_WHATSAPP_APP_SECRET"
	EnvVerifyToken      = "SPA_WHATSAPP_VERIFY_TOKEN"
	EnvOTPTemplate      = "SPA_WHATSAPP_OTP_TEMPLATE"
	EnvTemplateLanguage = "SPA_WHATSAPP_TEMPLATE_LANGUAGE"
)

// Config configures the client and the webhook checks. Secrets (Token,
// AppSecret, VerifyToken) come from the environment and are never logged.
type Config struct {
	Token         string
	PhoneNumberID string
	APIVersion    string
	BaseURL       string
	// AppSecret signs inbound webhooks (X-Hub-Signature-256).
	AppSecret string
	// VerifyToken is what Meta echoes in the hub.verify_token handshake.
	VerifyToken string
	// Templates maps a Message.Purpose (e.g. "otp") to an approved
	// template; such messages are sent as that template with the body as
	// its single body parameter, so they also reach users outside the
	// 24-hour window. Other purposes go as free-form text.
	Templates map[string]TemplateRef

	// Not from the environment.
	HTTPClient *http.Client
	Policy     resilient.Policy
}

// TemplateRef names an approved template and its language.
type TemplateRef struct {
	Name     string
	Language string
}

// FromEnv reads the configuration. ok is false when WhatsApp is not
// configured (no token and no phone number id); a partial configuration is
// an error naming the missing variable.
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg = Config{
		Token:         get(EnvToken),
		PhoneNumberID: get(EnvPhoneNumberID),
		APIVersion:    get(EnvAPIVersion),
		BaseURL:       get(EnvBaseURL),
		AppSecret:     get(EnvAppSecret),
		VerifyToken:   get(EnvVerifyToken),
	}
	if name := get(EnvOTPTemplate); name != "" {
		lang := get(EnvTemplateLanguage)
		if lang == "" {
			lang = DefaultTemplateLanguage
		}
		cfg.Templates = map[string]TemplateRef{"otp": {Name: name, Language: lang}}
	}
	if cfg.Token == "" && cfg.PhoneNumberID == "" {
		return cfg, false, nil
	}
	return cfg, true, cfg.Validate()
}

// Validate reports the first missing or malformed setting by its variable.
func (c Config) Validate() error {
	switch {
	case c.Token == "":
		return fmt.Errorf("%s is required when %s is set", EnvToken, EnvPhoneNumberID)
	case c.PhoneNumberID == "":
		return fmt.Errorf("%s is required when %s is set", EnvPhoneNumberID, EnvToken)
	case strings.Trim(c.PhoneNumberID, "0123456789") != "":
		return fmt.Errorf("%s must be the numeric phone number id", EnvPhoneNumberID)
	case c.APIVersion != "" && !strings.HasPrefix(c.APIVersion, "v"):
		return fmt.Errorf("%s must look like v23.0", EnvAPIVersion)
	}
	return nil
}

// LogValue redacts secrets if a Config is ever logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("phone_number_id", c.PhoneNumberID),
		slog.String("api_version", c.APIVersion),
		slog.String("base_url", c.BaseURL),
		slog.Bool("token_set", c.Token != ""),
		slog.Bool("app_secret_set", c.AppSecret != ""),
	)
}
