package gateway

import (
	"errors"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/pprof"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/console"
)

// AdminDeps is what the admin listener needs.
type AdminDeps struct {
	// Tokens verifies the admin tokens /debug/pprof asks for; required.
	Tokens *auth.Tokens
	// Gatherer is served on /metrics; required.
	Gatherer prometheus.Gatherer
	// Logger receives internal errors (nil: slog.Default()).
	Logger *slog.Logger
	// API is the node's API app (New). When set, the admin listener hands
	// it /v1/admin/*, GET /v1/cluster and GET /readyz unchanged, so the ops console
	// acts through the very routes an admin client calls (their token and
	// second-factor checks, Idempotency-Key, audit) on its own origin:
	// no CORS, and its CSP keeps connect-src 'self'. Nil: the console is
	// read-only.
	API *fiber.App
}

// NewAdmin builds the admin listener's app: /metrics for Prometheus,
// /debug/pprof for an admin token, the ops console and, for it, the API's
// admin routes. It is meant for a private address
// (SPA_ADMIN_ADDR, loopback or the pod network), never the public port:
// metrics name routes and counts that are nobody else's business, and
// profiles cost CPU. /metrics stays anonymous so a scraper needs no
// token; the address is what protects it.
func NewAdmin(d AdminDeps) (*fiber.App, error) {
	if d.Tokens == nil || d.Gatherer == nil {
		return nil, errors.New("gateway: AdminDeps.Tokens and AdminDeps.Gatherer are required")
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg := fiber.Config{
		ErrorHandler:          func(c *fiber.Ctx, err error) error { return apierr.Render(c, log, err) },
		DisableStartupMessage: true,
		CaseSensitive:         true,
		StrictRouting:         true,
		Immutable:             true,
	}
	if d.API != nil {
		// The server reads the body before any handler runs: the admin
		// routes forwarded here take no larger body than on the API port.
		cfg.BodyLimit = d.API.Config().BodyLimit
	}
	app := fiber.New(cfg)
	app.Use(requestID)
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{})))
	// The ops console: a page over /metrics (gateway/console) and, with
	// an admin token, the admin routes forwarded below.
	console.Register(app)
	if d.API != nil {
		api := d.API.Handler()
		// The API app answers on this request's own context: its
		// middleware, routes and error bodies run as on the API port.
		forward := func(c *fiber.Ctx) error {
			api(c.Context())
			return nil
		}
		app.All("/v1/admin/*", forward)
		app.Get("/v1/cluster", forward)
		// Readiness with each provider's breaker as it is now: the
		// breaker gauge in /metrics only moves when something asks the
		// breaker, and an open one turns half-open only when asked.
		app.Get("/readyz", forward)
	}
	// Profiles need an admin token: they show code paths and cost CPU.
	app.Use("/debug/pprof", Authenticate(d.Tokens), RequireRole(auth.RoleAdmin))
	app.Use(pprof.New())
	return app, nil
}
