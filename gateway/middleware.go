package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/auth"
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
	c.Set(reqctx.HeaderRequestID, id)
	return id
}

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
	catalogue *catalogueCache
	idem      idempotency.Config // how mutating routes remember responses
	log       *slog.Logger
	metrics   *httpMetrics
	// routes are the registered route patterns; filled in New before the
	// app serves, read-only afterwards.
	routes map[string]bool
	legal  *ConsentGuard // set by registerLegal
	blocks *Blocklist    // set by registerBlocking
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
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
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
	securityHeaders(c)
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
			err = apierr.Internal()
		}
	}()
	return c.Next()
}

// securityHeadersMiddleware hardens every response: the API serves JSON to
// programs, so nothing may be sniffed, framed, cached or leak a referrer.
func securityHeadersMiddleware(c *fiber.Ctx) error {
	securityHeaders(c)
	return c.Next()
}

func securityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'")
	c.Set(fiber.HeaderCacheControl, "no-store")
	// HSTS only means something over HTTPS; behind a TLS-terminating proxy
	// X-Forwarded-Proto is how we learn the client used it.
	if c.Context().IsTLS() || strings.EqualFold(c.Get(fiber.HeaderXForwardedProto), "https") {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=63072000; includeSubDomains")
	}
}

// deadline gives each request a context that ends after RequestTimeout, so
// a stuck store call cannot hold a worker forever.
func deadline(d time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), d)
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
	return apierr.Unauthenticated(msg)
}

// RequireRole admits only principals holding one of roles: anonymous
// callers get 401 (they may log in), others 403 (logging in won't help).
func RequireRole(roles ...auth.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, ok := reqctx.Principal(c)
		if !ok {
			return unauthenticated(c, "")
		}
		for _, r := range roles {
			if p.Role == r {
				return c.Next()
			}
		}
		return apierr.Forbidden("")
	}
}

// personRoles are the roles a person signs in with (a kiosk is not one).
var personRoles = []auth.Role{auth.RoleClient, auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}
