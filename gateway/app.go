package gateway

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/gateway/openapi"
)

// New builds the API's fiber app. It does not listen; cmd decides where.
func New(d Deps) (*fiber.App, error) {
	d, err := d.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newHTTPMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	cat := catalogue.New(catalogue.Deps{Store: d.Store, Now: d.Now})
	s := &server{deps: d, log: d.Logger, metrics: m, routes: map[string]bool{},
		cat: cat, catalogue: cat.Cache(),
		shop: shop.New(shop.Deps{Store: d.Store, Now: d.Now, OnRestock: d.OnRestock,
			Inventory: d.Inventory, Carts: d.Carts, VIP: d.ShopVIP, Keys: answers(d), Caps: d.CartCaps}),
		trustedProxies: trustedPrefixes(d.Config.TrustedProxies),
		idem: idempotency.Config{
			TTL:     d.Config.IdempotencyTTL,
			LockTTL: d.Config.IdempotencyLockTTL,
			Seal:    d.Sealer,
			Now:     d.Now,
			Logger:  d.Logger,
			Holders: d.Holders,
		}}
	// The use cases; identity first: privacy and legal end sessions through it.
	s.ident = s.newIdentity()
	s.booking = s.newBooking()
	s.privacy, s.legalSvc = s.newPrivacy(), s.newLegal()
	if s.templates = d.NotificationTemplates; s.templates == nil {
		if s.templates, err = notify.NewCatalog(d.Store, notify.CatalogOptions{Now: d.Now, Log: d.Logger}); err != nil {
			return nil, err
		}
	}
	cfg := d.Config

	corsMW, err := newCORS(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}

	app := fiber.New(fiber.Config{
		ErrorHandler:          s.errorHandler,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		// One spelling per route: /v1/Admin/studio or /v1/services/ would
		// otherwise reach the handler of /v1/admin/studio or /v1/services,
		// so anything keyed by the path (proxies' and WAFs' rules, caches,
		// our metrics and logs) would see two names for one route.
		CaseSensitive: true,
		StrictRouting: true,
		// Immutable copies request strings out of fasthttp's reused
		// buffers, so a value kept past the handler (a log line, a
		// goroutine) can never change under us. The API is small enough
		// that the allocations do not matter.
		Immutable:               true,
		ProxyHeader:             cfg.ProxyHeader,
		EnableTrustedProxyCheck: cfg.ProxyHeader != "",
		TrustedProxies:          cfg.TrustedProxies,
	})

	app.Use(requestID, s.observe, s.recoverPanic, s.securityHeadersMiddleware, deadline(cfg.RequestTimeout))
	if corsMW != nil {
		app.Use(corsMW)
	}
	app.Use(refuseUnstorableText) // before anything reads a value
	app.Use(s.refuseBlockedIPs)   // before any token work; blocks are set up in registerRoutes
	app.Use(Authenticate(d.Tokens), s.refuseDeadKiosks)

	s.registerRoutes(app)
	for _, r := range app.GetRoutes(true) {
		s.routes[r.Path] = true
	}
	return app, nil
}

// registerRoutes is the route table of the API.
func (s *server) registerRoutes(app *fiber.App) {
	admin := RequireRole(auth.RoleAdmin)

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/openapi.json", openapi.Serve)
	app.Get("/docs", openapi.ServeDocs)
	app.Get("/docs/redoc.standalone.js", openapi.ServeRedoc)

	app.Get("/v1/studio", s.getPublicStudio)
	app.Get("/v1/admin/studio", admin, s.getAdminStudio)
	app.Put("/v1/admin/studio", admin, s.mutate(s.putStudio))
	app.Get("/v1/admin/audit", admin, s.listAudit)
	app.Get("/v1/cluster", admin, s.getCluster)
	s.registerLegal(app)
	s.registerBlocking(app)
	s.registerShopOrders(app)
	s.registerShop(app)
	s.registerIdentity(app)
	s.registerTOTP(app)
	s.registerKiosk(app)
	s.registerProfiles(app)
	s.registerPayments(app)
	s.registerNotifications(app)
	s.registerMessagingWebhooks(app)
	s.registerConversations(app)

	mutate := s.mutate
	app.Get("/v1/services", s.listServices(true))
	app.Get("/v1/services/:id", s.getService(true))
	app.Get("/v1/staff", s.listStaff(false))
	app.Get("/v1/admin/services", admin, s.listServices(false))
	app.Get("/v1/admin/services/:id", admin, s.getService(false))
	app.Put("/v1/admin/services/:id", admin, mutate(s.putService))
	app.Get("/v1/admin/staff", admin, s.listStaff(true))
	app.Get("/v1/admin/staff/:id", admin, s.getStaff)
	app.Put("/v1/admin/staff/:id", admin, mutate(s.putStaff))
	app.Get("/v1/admin/staff/:id/overrides", admin, s.listOverrides)
	app.Put("/v1/admin/staff/:id/overrides/:date", admin, mutate(s.putOverride))
	app.Delete("/v1/admin/staff/:id/overrides/:date", admin, mutate(s.deleteOverride))
	app.Get("/v1/admin/staff/:id/time-off", admin, s.listTimeOff)
	app.Post("/v1/admin/staff/:id/time-off", admin, mutate(s.addTimeOff))
	app.Delete("/v1/admin/staff/:id/time-off/:timeOffID", admin, mutate(s.deleteTimeOff))
	app.Get("/v1/admin/resources", admin, s.listResources)
	app.Put("/v1/admin/resources/:id", admin, mutate(s.putResource))

	if s.deps.Calendars != nil {
		s.registerBooking(app)
	}
}

// utcOrNil is t in UTC, or nil when t is zero (an optional time in JSON).
func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// answers is how the use cases read answers actors stored under
// Idempotency-Keys: as long as the edge keeps its own, sealed alike.
func answers(d Deps) keyed.Config {
	return keyed.Config{TTL: d.Config.IdempotencyTTL, Seal: d.Sealer}
}

// mutate runs h, a state change, in one transaction with its
// Idempotency-Key record.
func (s *server) mutate(h idempotency.Handler) fiber.Handler {
	return idempotency.Wrap(s.deps.Store, s.idem, h)
}

// keyed wraps a handler whose effect one actor decides and remembers
// under the request's Idempotency-Key (idempotency.WrapKeyed).
func (s *server) keyed(h fiber.Handler) fiber.Handler {
	return idempotency.WrapKeyed(s.deps.Store, s.idem, h)
}

// external wraps a handler whose effect happens in an actor.
func (s *server) external(h fiber.Handler) fiber.Handler {
	return idempotency.WrapExternal(s.deps.Store, s.idem, idempotency.ExternalHandler(h))
}

// registerBooking adds the availability and appointment routes. Their
// effects are decided by schedule actors, which remember the answer under
// the request's Idempotency-Key (WrapKeyed); appointment ids derive from
// the key.
func (s *server) registerBooking(app *fiber.App) {
	anyone := RequireRole(personRoles...)
	staff := RequireRole(staffRoles...)
	app.Get("/v1/availability", s.availabilityHandler)
	app.Post("/v1/appointments", anyone, s.legal.RequireScope(s.bookingConsentScope), s.keyed(s.createAppointment))
	app.Get("/v1/appointments/:id", anyone, s.getAppointment)
	app.Post("/v1/appointments/:id/confirm", anyone, s.keyed(s.lifecycle(false, (*booking.Service).Confirm)))
	app.Post("/v1/appointments/:id/cancel", anyone, s.keyed(s.lifecycle(false, (*booking.Service).Cancel)))
	app.Post("/v1/appointments/:id/reschedule", anyone, s.keyed(s.lifecycle(true, (*booking.Service).Reschedule)))
	app.Post("/v1/appointments/:id/check-in", staff, s.keyed(s.lifecycle(false, (*booking.Service).CheckIn)))
	app.Post("/v1/appointments/:id/complete", staff, s.keyed(s.lifecycle(false, (*booking.Service).Complete)))
	app.Post("/v1/appointments/:id/no-show", staff, s.keyed(s.lifecycle(false, (*booking.Service).NoShow)))
	app.Get("/v1/me/appointments", anyone, s.myAppointments)
	app.Get("/v1/agenda", staff, s.agenda)

	admin, mutate := RequireRole(auth.RoleAdmin), s.mutate
	app.Post("/v1/waitlist", anyone, mutate(s.joinWaitlist))
	app.Get("/v1/me/waitlist", anyone, s.myWaitlist)
	app.Post("/v1/waitlist/:id/cancel", anyone, mutate(s.leaveWaitlist))
	app.Post("/v1/admin/packages", admin, mutate(s.grantPackage))
	app.Get("/v1/me/packages", anyone, s.myPackages)
	app.Post("/v1/admin/vouchers", admin, mutate(s.issueVoucher))
	app.Post("/v1/vouchers/balance", anyone, s.voucherBalance)
	app.Post("/v1/appointments/:id/pay-with-voucher", anyone, mutate(s.payWithVoucher))
	app.Post("/v1/appointments/:id/pay-with-credit", anyone, mutate(s.payWithCredit))
}

// newCORS builds the CORS middleware for origins, or nil when there are
// none: no CORS headers at all is the safe default for a server-to-server
// deployment. Bad origins are an error here rather than a panic inside
// fiber's constructor.
func newCORS(origins []string) (h fiber.Handler, err error) {
	var clean []string
	for _, o := range origins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" || strings.Contains(o, ",") {
			return nil, fmt.Errorf("gateway: CORS origin %q: list explicit origins", o)
		}
		clean = append(clean, o)
	}
	if len(clean) == 0 {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("gateway: CORS origins: %v", r)
		}
	}()
	return cors.New(cors.Config{
		AllowOrigins: strings.Join(clean, ","),
		AllowMethods: "GET,POST,PUT,PATCH,DELETE,HEAD",
		// X-Device-ID: anonymous consents are recorded against the device
		// (legal.go), so a browser must be allowed to send it.
		AllowHeaders:  "Authorization,Content-Type,Idempotency-Key,X-Request-ID,X-Cart-Token," + HeaderDeviceID,
		ExposeHeaders: "X-Request-ID,Idempotent-Replayed",
		MaxAge:        600,
	}), nil
}
