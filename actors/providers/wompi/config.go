// Package wompi takes payments through Wompi (Colombia): acceptance tokens,
// card tokens, transactions (create with an integrity signature, get by id,
// find by reference), payment sources for recurring charges, card voids, the
// web checkout URL, and the verification of signed events (webhooks). It
// speaks the wire format of ../shared/design/external-apis.md §3 with a
// small net/http client behind the resilience wrapper (there is no official
// Go SDK), so wompifake can stand in for Wompi in every test and on the dev
// node.
//
// Money is int64 cents ("amount_in_cents": COP 95.000 is 9500000); the only
// currency is COP.
package wompi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// Environment is Wompi's sandbox or production, told apart by key prefixes.
type Environment string

const (
	Sandbox    Environment = "sandbox"
	Production Environment = "production"
)

// Default base URLs per environment, and the web checkout page.
const (
	SandboxBaseURL     = "https://sandbox.wompi.co/v1"
	ProductionBaseURL  = "https://production.wompi.co/v1"
	DefaultCheckoutURL = "https://checkout.wompi.co/p/"
)

// CurrencyCOP is the only currency Wompi Colombia takes.
const CurrencyCOP = "COP"

// Environment variable names (documented in docs/providers.md).
const (
	EnvPublicKey       = "SPA_WOMPI_PUBLIC_KEY"
	EnvPrivateKey      = "SPA_WOMPI_PRIVATE_KEY"
	EnvIntegritySecret = "SPA_WOMPI_INTEGRITY_SECRET"
	EnvEventsSecret    = "SPA_WOMPI_EVENTS_SECRET"
	EnvBaseURL         = "SPA_WOMPI_BASE_URL"
	EnvCheckoutURL     = "SPA_WOMPI_CHECKOUT_URL"
	EnvEnvironment     = "SPA_WOMPI_ENVIRONMENT"
)

// Config is the client's configuration. The four keys come from the
// environment (FromEnv) and are never logged: LogValue redacts them.
type Config struct {
	// PublicKey (pub_test_… / pub_prod_…) authorizes acceptance tokens,
	// card tokens, card and Nequi transactions and the web checkout.
	PublicKey string
	// PrivateKey (prv_test_… / prv_prod_…) authorizes reading
	// transactions, payment sources, charges to a payment source and voids.
	PrivateKey string
	// IntegritySecret (test_integrity_… / prod_integrity_…) signs the
	// amount and reference of every transaction we create.
	IntegritySecret string
	// EventsSecret (test_events_… / prod_events_…) checks the checksum of
	// the events Wompi posts to us (VerifyEvent).
	EventsSecret string

	// Environment is derived from the key prefixes when empty; when set,
	// every key must belong to it.
	Environment Environment
	// BaseURL defaults to the environment's API (…/v1); tests and the dev
	// node point it at wompifake.
	BaseURL string
	// CheckoutURL is the web checkout page (default DefaultCheckoutURL).
	CheckoutURL string

	// Not from the environment.
	HTTPClient *http.Client
	Policy     resilient.Policy
}

// keyPrefixes are the documented prefixes of each key per environment.
var keyPrefixes = []struct {
	env                 string
	get                 func(Config) string
	sandbox, production string
}{
	{EnvPublicKey, func(c Config) string { return c.PublicKey }, "pub_test_", "pub_prod_"},
	{EnvPrivateKey, func(c Config) string { return c.PrivateKey }, "prv_test_", "prv_prod_"},
	{EnvIntegritySecret, func(c Config) string { return c.IntegritySecret }, "test_integrity_", "prod_integrity_"},
	{EnvEventsSecret, func(c Config) string { return c.EventsSecret }, "test_events_", "prod_events_"},
}

// FromEnv reads the configuration. ok is false when Wompi is not configured
// at all (none of the four keys set), so the dev node can fall back to
// wompifake; a partial configuration is an error naming the missing
// variable.
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg = Config{
		PublicKey:       get(EnvPublicKey),
		PrivateKey:      get(EnvPrivateKey),
		IntegritySecret: get(EnvIntegritySecret),
		EventsSecret:    get(EnvEventsSecret),
		Environment:     Environment(get(EnvEnvironment)),
		BaseURL:         get(EnvBaseURL),
		CheckoutURL:     get(EnvCheckoutURL),
	}
	if cfg.PublicKey == "" && cfg.PrivateKey == "" && cfg.IntegritySecret == "" && cfg.EventsSecret == "" {
		return cfg, false, nil
	}
	return cfg, true, cfg.Validate()
}

// Validate reports the first missing or malformed setting by its variable.
// A payment flow needs all four keys: the public key to start payments, the
// integrity secret to sign them, the private key to read and void them and
// the events secret to trust what Wompi tells us. Keys of the two
// environments are never mixed: a test key with a production key is a
// configuration mistake that would lose payments.
func (c Config) Validate() error {
	_, err := c.environment()
	if err != nil {
		return err
	}
	for _, u := range []struct{ env, v string }{{EnvBaseURL, c.BaseURL}, {EnvCheckoutURL, c.CheckoutURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s must be an absolute http(s) URL", u.env)
		}
	}
	return nil
}

// environment checks the keys and returns the environment they belong to.
func (c Config) environment() (Environment, error) {
	var env Environment
	switch c.Environment {
	case "", Sandbox, Production:
	default:
		return "", fmt.Errorf("%s must be %q or %q", EnvEnvironment, Sandbox, Production)
	}
	for _, k := range keyPrefixes {
		v := k.get(c)
		var got Environment
		switch {
		case v == "":
			return "", fmt.Errorf("%s is required when any SPA_WOMPI_* key is set", k.env)
		case strings.HasPrefix(v, k.sandbox) && len(v) > len(k.sandbox):
			got = Sandbox
		case strings.HasPrefix(v, k.production) && len(v) > len(k.production):
			got = Production
		default:
			return "", fmt.Errorf("%s must start with %s or %s", k.env, k.sandbox, k.production)
		}
		if env != "" && got != env {
			return "", fmt.Errorf("%s is a %s key but the others are %s keys", k.env, got, env)
		}
		env = got
	}
	if c.Environment != "" && c.Environment != env {
		return "", fmt.Errorf("%s is %s but the keys are %s keys", EnvEnvironment, c.Environment, env)
	}
	return env, nil
}

// LogValue redacts the keys if a Config is ever logged. The public key is
// not secret but is left out too: it names the merchant.
func (c Config) LogValue() slog.Value {
	env, _ := c.environment()
	return slog.GroupValue(
		slog.String("environment", string(env)),
		slog.String("base_url", c.BaseURL),
		slog.String("checkout_url", c.CheckoutURL),
		slog.Bool("public_key_set", c.PublicKey != ""),
		slog.Bool("private_key_set", c.PrivateKey != ""),
		slog.Bool("integrity_secret_set", c.IntegritySecret != ""),
		slog.Bool("events_secret_set", c.EventsSecret != ""),
	)
}
