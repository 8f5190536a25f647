package email

import (
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// Config is the SMTP client's configuration. The password comes from the
// environment (FromEnv) and is never logged: LogValue redacts it.
type Config struct {
	Host     string
	Port     int    // default 587 (465 with TLS "tls", 25 with "none")
	Username string // empty: no AUTH
	Password string
	From     string // the sender address, e.g. "Spa <citas@example.com>"
	// TLS is "starttls" (default: the connection is upgraded before AUTH
	// and MAIL, and a server without STARTTLS is refused), "tls" (TLS from
	// the first byte, port 465) or "none" (plain text; a local relay or
	// the test sink only).
	TLS string

	// Not from the environment.
	Policy resilient.Policy
	// Timeout bounds one delivery (connect to QUIT) when the caller's
	// context has no earlier deadline (default 20 s).
	Timeout time.Duration
}

// TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// Environment variable names (docs/notifications.md, Channels).
const (
	EnvHost     = "SPA_SMTP_HOST"
	EnvPort     = "SPA_SMTP_PORT"
	EnvUsername = "SPA_SMTP_USERNAME"
	EnvPassword = "SPA_SMTP_PASSWORD"
	EnvFrom     = "SPA_SMTP_FROM"
	EnvTLS      = "SPA_SMTP_TLS"
)

// FromEnv reads the configuration. ok is false when email is not
// configured at all (no host and no sender address); a partial or
// malformed configuration is an error naming the variable.
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	cfg = Config{
		Host:     strings.TrimSpace(getenv(EnvHost)),
		Username: strings.TrimSpace(getenv(EnvUsername)),
		Password: getenv(EnvPassword),
		From:     strings.TrimSpace(getenv(EnvFrom)),
		TLS:      strings.ToLower(strings.TrimSpace(getenv(EnvTLS))),
	}
	if cfg.Host == "" && cfg.From == "" {
		return cfg, false, nil
	}
	if p := strings.TrimSpace(getenv(EnvPort)); p != "" {
		if cfg.Port, err = strconv.Atoi(p); err != nil {
			return cfg, true, fmt.Errorf("%s must be a port number, got %q", EnvPort, p)
		}
	}
	return cfg, true, cfg.Validate()
}

// Validate reports the first missing or malformed setting by its variable.
func (c Config) Validate() error {
	switch {
	case c.Host == "":
		return fmt.Errorf("%s is required when %s is set", EnvHost, EnvFrom)
	case c.From == "":
		return fmt.Errorf("%s is required when %s is set", EnvFrom, EnvHost)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%s must be between 1 and 65535", EnvPort)
	case c.TLS != "" && c.TLS != TLSStartTLS && c.TLS != TLSImplicit && c.TLS != TLSNone:
		return fmt.Errorf("%s must be %s, %s or %s", EnvTLS, TLSStartTLS, TLSImplicit, TLSNone)
	case (c.Username == "") != (c.Password == ""):
		return fmt.Errorf("%s and %s go together", EnvUsername, EnvPassword)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("%s must be an email address such as \"Spa <citas@example.com>\": %v", EnvFrom, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		c.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[c.TLS]
	}
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Second
	}
	return c
}

// LogValue keeps the password out of logs if a Config is ever logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", c.Host), slog.Int("port", c.Port), slog.String("tls", c.TLS),
		slog.Bool("auth", c.Username != ""))
}
