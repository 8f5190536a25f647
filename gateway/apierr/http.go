package apierr

import (
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/gateway/reqctx"
)

// fromFiber maps the errors fiber and fasthttp raise themselves (unknown
// route, body over the limit, …). Their messages can echo the request path
// or parser internals, so only the status is kept and the message comes
// from the table.
func fromFiber(fe *fiber.Error) *Error {
	switch fe.Code {
	case fiber.StatusBadRequest:
		return New(CodeBadRequest, "")
	case fiber.StatusUnauthorized:
		return New(CodeUnauthenticated, "")
	case fiber.StatusForbidden:
		return New(CodeForbidden, "")
	case fiber.StatusNotFound:
		return New(CodeNotFound, "")
	case fiber.StatusMethodNotAllowed:
		return New(CodeMethodNotAllowed, "")
	case fiber.StatusConflict:
		return New(CodeConflict, "")
	case fiber.StatusRequestTimeout:
		return New(CodeRequestTimeout, "")
	case fiber.StatusRequestEntityTooLarge:
		return New(CodePayloadTooLarge, "")
	case fiber.StatusUnsupportedMediaType:
		return New(CodeUnsupportedMediaType, "")
	case fiber.StatusUnprocessableEntity:
		return New(CodeValidationFailed, "")
	case fiber.StatusTooManyRequests:
		return New(CodeRateLimited, "")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return New(CodeHeadersTooLarge, "")
	case fiber.StatusBadGateway:
		// fasthttp reports a broken client connection this way; it is the
		// client's request that could not be read.
		return New(CodeBadRequest, "")
	case fiber.StatusServiceUnavailable:
		return New(CodeUnavailable, "")
	case fiber.StatusGatewayTimeout:
		return New(CodeTimeout, "")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return New(CodeBadRequest, "")
	}
	return Internal()
}

// body is the wire shape of every error response.
type body struct {
	Error bodyError `json:"error"`
}

type bodyError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Details   any    `json:"details,omitempty"`
}

// Write renders e as the response: status, JSON body with the request id.
// It leaves headers already set (request id, security headers) in place.
func Write(c *fiber.Ctx, e *Error) error {
	c.Status(e.Status)
	return c.JSON(body{Error: bodyError{
		Code:      e.Code,
		Message:   e.Message,
		RequestID: reqctx.RequestID(c),
		Details:   e.Details,
	}})
}

// Render maps err with From and writes it. Errors that were not meant for
// clients are logged with their full text here, the only place that still
// knows the cause once the client got a generic answer.
func Render(c *fiber.Ctx, log *slog.Logger, err error) error {
	e, safe := From(err)
	if !safe && log != nil {
		log.Error("request failed",
			slog.String("request_id", reqctx.RequestID(c)),
			slog.String("method", c.Method()),
			slog.String("route", c.Route().Path),
			slog.Int("status", e.Status),
			slog.String("error", err.Error()),
		)
	}
	return Write(c, e)
}
