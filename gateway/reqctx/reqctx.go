// Package reqctx holds the per-request values every layer of the edge needs
// (request id, authenticated principal). It is its own package so apierr and
// idempotency can read them without importing the gateway that sets them.
package reqctx

import (
	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
)

// Unexported key types keep other packages from reading or overwriting the
// locals by accident.
type (
	requestIDKey struct{}
	principalKey struct{}
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-ID"

// RequestID returns the request id of c, or "" before one was assigned.
func RequestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey{}).(string)
	return id
}

// SetRequestID records id as the request id of c.
func SetRequestID(c *fiber.Ctx, id string) { c.Locals(requestIDKey{}, id) }

// Principal returns the verified claims of the caller; false when the
// request carried no valid token.
func Principal(c *fiber.Ctx) (auth.Claims, bool) {
	p, ok := c.Locals(principalKey{}).(auth.Claims)
	return p, ok
}

// SetPrincipal records the verified claims of the caller.
func SetPrincipal(c *fiber.Ctx, p auth.Claims) { c.Locals(principalKey{}, p) }
