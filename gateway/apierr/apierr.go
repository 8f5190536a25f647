// Package apierr renders failures as HTTP answers. The vocabulary (codes,
// statuses, messages) is actors/service/fault, shared with the use-case
// services; this package adds what only the HTTP edge knows: the errors
// Fiber raises itself and the wire shape of an error body.
package apierr

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
)

// Error is the failure a client is shown (see fault.Error).
type Error = fault.Error

// From maps any error to the Error the client sees: Fiber's own errors by
// their status, everything else through fault.From. The second result is
// false when err was not meant for clients, which tells the caller to log
// the original.
func From(err error) (*Error, bool) {
	var fe *fiber.Error
	if err != nil && errors.As(err, &fe) {
		return fromFiber(fe), true
	}
	return fault.From(err)
}

// IsClientError reports whether err maps to a 4xx: the request itself was
// wrong, so repeating it unchanged yields the same answer.
func IsClientError(err error) bool {
	e, _ := From(err)
	return e != nil && e.Status >= 400 && e.Status < 500
}
