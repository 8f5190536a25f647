// Package gateway is the HTTP edge of the engine: it turns requests into
// store transactions and store outcomes into responses. It owns transport
// concerns only (ids, auth, limits, headers, metrics, error shape); wiring
// of the store, token key and checks is done by cmd.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/bot"
	"github.com/spa-engine/spa/actors/service/inbox"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/service/payments"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// Defaults for zero Config fields. They are conservative for a small JSON
// API: bodies are forms, not uploads.
const (
	DefaultBodyLimit      = 1 << 20 // 1 MiB
	DefaultRequestTimeout = 10 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 15 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultReadyTimeout   = 2 * time.Second
)

// Config holds the edge's tunables; zero values take the defaults above.
type Config struct {
	// BodyLimit is the largest request body accepted, in bytes; larger
	// bodies get 413 payload_too_large before any handler runs.
	BodyLimit int
	// CORSOrigins are the browser origins allowed to call the API, e.g.
	// "https://book.example.com". Empty: no CORS headers at all.
	CORSOrigins []string
	// IdempotencyTTL is how long a completed response stays replayable.
	IdempotencyTTL time.Duration
	// IdempotencyLockTTL is how long an unfinished request holds its key.
	IdempotencyLockTTL time.Duration
	// RequestTimeout bounds the work of one request (its context deadline).
	RequestTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout are the server's socket
	// timeouts; they stop slow clients from holding connections.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ReadyTimeout bounds each readiness check.
	ReadyTimeout time.Duration
	// ProxyHeader, when set (e.g. "X-Forwarded-For"), is where the client
	// IP is read from, but only for requests from TrustedProxies.
	ProxyHeader    string
	TrustedProxies []string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ReadyTimeout, DefaultReadyTimeout)
	// Idempotency TTLs keep their zero: the idempotency package owns
	// those defaults.
	return c
}

// Check is one readiness probe, e.g. the store's ping or the NATS
// connection. It should honour ctx's deadline.
type Check struct {
	Name  string
	Check func(context.Context) error
}

// Deps is everything New needs from the process.
type Deps struct {
	// Store is required.
	Store persistence.Store
	// Tokens verifies bearer tokens; required.
	Tokens *auth.Tokens
	// Logger receives access logs and internal errors (nil: slog.Default()).
	Logger *slog.Logger
	// Registerer receives the HTTP metrics (nil: a private registry, so
	// tests never share global state). The admin listener (NewAdmin)
	// serves them, never this app.
	Registerer prometheus.Registerer
	// Providers reports the external providers' health (breaker state,
	// last success) for /readyz, which shows it as degraded without
	// failing readiness: a provider outage must not take nodes out of the
	// load balancer (nil: none shown).
	Providers func() []resilient.Health
	// Checks run on /readyz. A "store" check pinging Store is added unless
	// one with that name is given.
	Checks []Check
	// Calendars reaches the schedule actors; nil disables the booking
	// routes (a gateway that only serves the catalogue, as in some tests).
	Calendars *schedule.Client
	// Identity serves OTP sign-in, refresh tokens and sessions; nil: those
	// routes answer 503.
	Identity *Identity
	// Sealer encrypts responses stored for Idempotency-Key replays (they
	// may carry personal data); nil stores them as they are.
	Sealer keyed.Sealer
	// TOTP configures the second factor of staff roles and KioskTTL the
	// default lifetime of a kiosk token (actors/service/identity);
	// zero values take the defaults.
	TOTP     TOTPConfig
	KioskTTL time.Duration
	// Resources reaches the resource actors (one per room or sauna): the
	// same door, keyed by resource id. Nil: services that need a shared
	// resource are refused with a 422, as the lock baseline does.
	Resources *resource.Client
	// Cluster reports the node's cluster for GET /v1/cluster (nil: the
	// node runs alone).
	Cluster ClusterView
	// Holders tells which process holds an in-progress Idempotency-Key,
	// so a retry takes over the key of a crashed or restarted node at once
	// (nil: this process alone, idempotency.Process; a cluster passes its
	// membership).
	Holders idempotency.Holders
	// BlindIndex hashes phone and document numbers for the person
	// blocklist (nil: phone and document blocks are refused with 503).
	BlindIndex *pii.BlindIndex
	// Blocklist, when set, is the blocklist the gateway checks and updates,
	// so cmd can share it with the login and call Invalidate on another
	// node's change (nil: built from Store and BlindIndex).
	Blocklist *Blocklist
	// OnRestock, when set, is told after commit which shop variants got
	// units back (a cancelled order, a return) so their inventory actors
	// reload their stock.
	OnRestock func(variantIDs []string)
	// Inventory reaches the inventory actors (one per shop variant) and
	// Carts the cart actors; nil: those routes answer 503.
	Inventory *inventory.Client
	Carts     *cart.Client
	// Payments takes online payments (Wompi) and serves its webhook; nil:
	// the payment routes answer 503.
	Payments *payments.Service
	// Inbox takes the messaging webhooks (WhatsApp, Twilio); nil: every
	// webhook is refused as forged (nothing is configured to verify it).
	Inbox *inbox.Service
	// ShopVIP says whether a principal pays VIP prices (nil: nobody).
	ShopVIP func(auth.Claims) bool
	// HoldCaps and CartCaps are the hoarding caps of holds and of
	// anonymous carts (zero: none).
	HoldCaps booking.HoldCaps
	CartCaps shop.CartCaps
	// NotificationTemplates is the catalog the admin's template routes
	// change, shared with the node's notifications so an activation
	// applies at once on this node (nil: one over Store).
	NotificationTemplates *notify.Catalog
	// NotificationDeadLetters is the dead-letter admin (nil: notifications
	// are off and its routes answer 503).
	NotificationDeadLetters *notify.DeadLetters
	// Conversations is the WhatsApp bot's hand-off desk (nil: no bot on
	// this node; its routes answer 503).
	Conversations *bot.Desk
	// Now is the clock (nil: time.Now).
	Now    func() time.Time
	Config Config
}

func (d Deps) withDefaults() (Deps, error) {
	if d.Store == nil {
		return d, errors.New("gateway: Deps.Store is required")
	}
	if d.Tokens == nil {
		return d, errors.New("gateway: Deps.Tokens is required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	hasStore := false
	for _, c := range d.Checks {
		if c.Name == "" || c.Check == nil {
			return d, errors.New("gateway: every Check needs a Name and a Check func")
		}
		hasStore = hasStore || c.Name == "store"
	}
	if !hasStore {
		d.Checks = append([]Check{{Name: "store", Check: d.Store.Ping}}, d.Checks...)
	}
	d.Config = d.Config.withDefaults()
	return d, nil
}
