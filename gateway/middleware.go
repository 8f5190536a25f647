package gateway

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/gateway/reqctx"
)

// requestID adopts a well-formed incoming X-Request-ID (so a proxy's id
// follows the request through our logs) and mints a ULID otherwise.
func requestID(c *fiber.Ctx) error {
	ensureRequestID(c)
	return c.Next()
}

func ensureRequestID(c *fiber.Ctx) string {
	if id := reqctx.RequestID(c); id != "" {
		return id
	}
	id := c.Get(reqctx.HeaderRequestID)
	if !validRequestID(id) {
		id = ulid.Make().String()
	}
	reqctx.SetRequestID(c, id)
	c.Response().Header.SetCanonical(headerRequestID, []byte(id))
	return id
}

// Header names in fasthttp's canonical form (what c.Set would write), so
// that setting them on every response skips the normalising copy.
var (
	headerRequestID  = canonicalHeader(reqctx.HeaderRequestID)
	securityHeaderKV = [][2][]byte{
		{canonicalHeader(fiber.HeaderXContentTypeOptions), []byte("nosniff")},
		{canonicalHeader(fiber.HeaderXFrameOptions), []byte("DENY")},
		{canonicalHeader(fiber.HeaderReferrerPolicy), []byte("no-referrer")},
		{canonicalHeader(fiber.HeaderContentSecurityPolicy), []byte("default-src 'none'; frame-ancestors 'none'")},
		{canonicalHeader(fiber.HeaderCacheControl), []byte("no-store")},
	}
)

func canonicalHeader(name string) []byte { return fasthttp.AppendNormalizedHeaderKey(nil, name) }

// validRequestID: 1..128 of [A-Za-z0-9._:-]; anything else could smuggle
// log-injection or header tricks through our echo.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

// httpMetrics are the RED metrics of the edge.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// cached holds the series already looked up, copied on write: the
	// vectors' own lookup hashes every label value on every request.
	cached atomic.Pointer[map[seriesKey]series]
	mu     sync.Mutex // serialises the writers of cached
}

type seriesKey struct {
	method, route string
	status        int
}

// series are the children of the vectors for one method, route and status.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// maxCachedSeries bounds the cache; past it lookups go to the vectors. The
// labels are already bounded (methods fiber serves, route patterns,
// statuses), so this is a guard, not a limit that should ever bind.
const maxCachedSeries = 1024

// series returns the series of one request's labels.
func (m *httpMetrics) series(method, route string, status int) series {
	k := seriesKey{method, route, status}
	if cached := m.cached.Load(); cached != nil {
		if s, ok := (*cached)[k]; ok {
			return s
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cached.Load()
	if old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
	}
	s := series{
		requests: m.requests.WithLabelValues(method, route, strconv.Itoa(status)),
		duration: m.duration.WithLabelValues(method, route),
	}
	if old == nil || len(*old) < maxCachedSeries {
		next := map[seriesKey]series{}
		if old != nil {
			next = maps.Clone(*old)
		}
		// Keys outlive the request: never hold on to fasthttp's buffers.
		next[seriesKey{strings.Clone(method), strings.Clone(route), status}] = s
		m.cached.Store(&next)
	}
	return s
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spa_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return m, nil
}

// unmatchedRoute labels requests no route matched, so scanners probing
// random paths cannot blow up metric cardinality.
const unmatchedRoute = "unmatched"

// server is the state the middleware and handlers share.
type server struct {
	deps      Deps
	catalogue *catalogue.Cache   // the booking path's read model of the catalogue
	cat       *catalogue.Service // catalogue and studio use cases
	shop      *shop.Service      // orders, returns, credit, VIP list
	idem      idempotency.Config // how mutating routes remember responses
	log       *slog.Logger
	metrics   *httpMetrics
	// routes are the registered route patterns; filled in New before the
	// app serves, read-only afterwards.
	routes map[string]bool
	legal  *ConsentGuard // set by registerLegal
	blocks *Blocklist    // set by registerBlocking
	// ident runs sign-in, sessions, the second factor and kiosks.
	ident *identity.Service
	// The privacy and legal use cases (gateway/profiles.go, legal.go) and
	// the count of requests refused by an IP block.
	privacy  *privacy.Service
	legalSvc *legal.Service
	// templates are the notification templates in force (notifications.go).
	templates  *notify.Catalog
	blockedIPs prometheus.Counter
	// booking runs availability, the appointment lifecycle and its offers.
	booking *booking.Service
	// trustedProxies is Config.TrustedProxies parsed once, for clientIP.
	trustedProxies []netip.Prefix
}

// routeLabel is the pattern that served c, or unmatchedRoute.
func (s *server) routeLabel(c *fiber.Ctx) string {
	if r := c.Route(); r != nil && s.routes[r.Path] {
		return r.Path
	}
	return unmatchedRoute
}

// observe renders any error the chain returned (so the final status is
// known here), then writes the access log line and the metrics. It sits
// outside recovery so panics are logged and counted as the 500 they become.
func (s *server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if rerr := s.renderError(c, err); rerr != nil {
			s.log.Error("render error response", slog.String("error", rerr.Error()))
			c.Status(fiber.StatusInternalServerError)
		}
	}
	s.record(c, start)
	return nil
}

func (s *server) record(c *fiber.Ctx, start time.Time) {
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route := s.routeLabel(c)
	method := c.Method()
	series := s.metrics.series(method, route, status)
	series.requests.Inc()
	series.duration.Observe(elapsed.Seconds())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(context.Background(), level) {
		return // spares the attributes (and clientIP) when the line is off
	}
	// Deliberately no headers, query or body: they carry tokens and PII.
	s.log.LogAttrs(context.Background(), level, "http request",
		slog.String("request_id", reqctx.RequestID(c)),
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("remote_ip", s.clientIP(c)), // what the limits see, not the raw header
	)
}

// renderError writes err as the JSON error body.
func (s *server) renderError(c *fiber.Ctx, err error) error {
	return apierr.Render(c, s.log, err)
}

// errorHandler is fiber's ErrorHandler. Errors from handlers never reach it
// (observe renders them); what does are failures fasthttp raises before the
// chain runs, such as a body over the limit, so it supplies what the chain
// would have: request id, security headers, access log and metrics.
func (s *server) errorHandler(c *fiber.Ctx, err error) error {
	start := time.Now()
	outsideChain := reqctx.RequestID(c) == ""
	ensureRequestID(c)
	s.securityHeaders(c)
	rerr := s.renderError(c, err)
	if outsideChain {
		s.record(c, start)
	}
	return rerr
}

// recoverPanic turns a panic into a plain 500; the stack goes to the log,
// never to the client.
func (s *server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic serving request",
				slog.String("request_id", reqctx.RequestID(c)),
				slog.String("panic", fmt.Sprint(r)),
				slog.String("stack", string(debug.Stack())),
			)
			c.Response().ResetBody()
			err = fault.Internal()
		}
	}()
	return c.Next()
}

// securityHeadersMiddleware hardens every response: the API serves JSON to
// programs, so nothing may be sniffed, framed, cached or leak a referrer.
func (s *server) securityHeadersMiddleware(c *fiber.Ctx) error {
	s.securityHeaders(c)
	return c.Next()
}

func (s *server) securityHeaders(c *fiber.Ctx) {
	h := &c.Response().Header
	for _, kv := range securityHeaderKV {
		h.SetCanonical(kv[0], kv[1])
	}
	// HSTS only means something over HTTPS; behind a TLS-terminating proxy
	// X-Forwarded-Proto is how we learn the client used it, but only a
	// proxy of ours may say so: from anyone else the header is the
	// client's own word, and honouring it let any caller switch HSTS on.
	if c.Context().IsTLS() || (bytes.EqualFold(c.Request().Header.Peek(fiber.HeaderXForwardedProto), []byte("https")) && s.fromTrustedProxy(c)) {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=63072000; includeSubDomains")
	}
}

// fromTrustedProxy reports a request whose peer is one of the configured
// trusted proxies (none configured: no peer is).
func (s *server) fromTrustedProxy(c *fiber.Ctx) bool {
	if len(s.trustedProxies) == 0 {
		return false
	}
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	return ok && inPrefixes(peer.Unmap(), s.trustedProxies)
}

// deadline gives each request a context that ends after RequestTimeout, so
// a stuck store call cannot hold a worker forever. Its timer starts only if
// something waits on the context (see reqctx.WithDeadline).
func deadline(d time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := reqctx.WithDeadline(c.UserContext(), time.Now().Add(d))
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	}
}

// Authenticate verifies an `Authorization: Bearer …` header when one is
// present and records the principal. No header means anonymous; a header
// that does not verify is refused outright rather than silently treated as
// anonymous, so a client with an expired token learns it at once.
func Authenticate(tokens *auth.Tokens) fiber.Handler {
	return func(c *fiber.Ctx) error {
		h := c.Get(fiber.HeaderAuthorization)
		if h == "" {
			return c.Next()
		}
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return unauthenticated(c, "Authorization must be a Bearer token")
		}
		claims, err := tokens.Verify(strings.TrimSpace(token))
		if err != nil {
			return unauthenticated(c, "the access token is invalid or expired")
		}
		reqctx.SetPrincipal(c, claims)
		return c.Next()
	}
}

func unauthenticated(c *fiber.Ctx, msg string) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer`)
	return fault.Unauthenticated(msg)
}

// RequireRole admits only principals holding one of roles: anonymous
// callers get 401 (they may log in), others 403 (logging in won't help).
// A staff role's token without the second factor gets 403
// second_factor_required, except on the routes that enrol it
// (withoutSecondFactor).
func RequireRole(roles ...auth.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, ok := reqctx.Principal(c)
		if !ok {
			return unauthenticated(c, "")
		}
		for _, r := range roles {
			if p.Role == r {
				if c.Locals(enrolmentRoute{}) == nil {
					if err := identity.SecondFactorRequired(p); err != nil {
						return err
					}
				}
				return c.Next()
			}
		}
		return fault.Forbidden("")
	}
}

// personRoles are the roles a person signs in with (a kiosk is not one).
var personRoles = []auth.Role{auth.RoleClient, auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}
