package gateway

import (
	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/gateway/reqctx"
)

// RequestID returns the id of the request c is serving; handlers pass it to
// audit entries and events so a request can be traced end to end.
func RequestID(c *fiber.Ctx) string { return reqctx.RequestID(c) }

// Principal returns the authenticated caller; false for anonymous requests.
func Principal(c *fiber.Ctx) (auth.Claims, bool) { return reqctx.Principal(c) }

// caller is who a use-case service sees asking: the principal, the
// request id and the client IP.
func (s *server) caller(c *fiber.Ctx) service.Caller {
	p, _ := Principal(c)
	return service.Caller{Claims: p, RequestID: RequestID(c), IP: s.clientIP(c)}
}
