package apierr

import (
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/reqctx"
)

// fromFiber maps the errors fiber and fasthttp raise themselves (unknown
// route, body over the limit, …). Their messages can echo the request path
// or parser internals, so only the status is kept and the message comes
// from the table.
func fromFiber(fe *fiber.Error) *Error {
	switch fe.Code {
	case fiber.StatusBadRequest:
		return fault.New(fault.CodeBadRequest, "")
	case fiber.StatusUnauthorized:
		return fault.New(fault.CodeUnauthenticated, "")
	case fiber.StatusForbidden:
		return fault.New(fault.CodeForbidden, "")
	case fiber.StatusNotFound:
		return fault.New(fault.CodeNotFound, "")
	case fiber.StatusMethodNotAllowed:
		return fault.New(fault.CodeMethodNotAllowed, "")
	case fiber.StatusConflict:
		return fault.New(fault.CodeConflict, "")
	case fiber.StatusRequestTimeout:
		return fault.New(fault.CodeRequestTimeout, "")
	case fiber.StatusRequestEntityTooLarge:
		return fault.New(fault.CodePayloadTooLarge, "")
	case fiber.StatusUnsupportedMediaType:
		return fault.New(fault.CodeUnsupportedMediaType, "")
	case fiber.StatusUnprocessableEntity:
		return fault.New(fault.CodeValidationFailed, "")
	case fiber.StatusTooManyRequests:
		return fault.New(fault.CodeRateLimited, "")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return fault.New(fault.CodeHeadersTooLarge, "")
	case fiber.StatusBadGateway:
		// fasthttp reports a broken client connection this way; it is the
		// client's request that could not be read.
		return fault.New(fault.CodeBadRequest, "")
	case fiber.StatusServiceUnavailable:
		return fault.New(fault.CodeUnavailable, "")
	case fiber.StatusGatewayTimeout:
		return fault.New(fault.CodeTimeout, "")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return fault.New(fault.CodeBadRequest, "")
	}
	return fault.Internal()
}

// body is the wire shape of every error response. Write produces its
// encoding/json form by hand (appendBody); the type documents the shape and
// is what the tests compare against.
type body struct {
	Error bodyError `json:"error"`
}

type bodyError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Details   any    `json:"details,omitempty"`
}

// JSONAppender is a Details value that writes its own JSON: exactly what
// encoding/json writes for it, appended to b. A refused claim's
// alternatives are one; they are the most frequent error body there is.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// Write renders e as the response: status, JSON body with the request id.
// It leaves headers already set (request id, security headers) in place.
// The body is the bytes c.JSON(body{…}) would write, built without
// reflection in a pooled buffer.
func Write(c *fiber.Ctx, e *Error) error {
	c.Status(e.Status)
	buf := bodyBufs.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledBody {
			bodyBufs.Put(buf)
		}
	}()
	b, err := appendBody((*buf)[:0], e, reqctx.RequestID(c))
	*buf = b[:0]
	if err != nil {
		return err
	}
	c.Response().SetBody(b) // a copy: the buffer goes back to the pool
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

// maxPooledBody keeps the odd huge body's buffer out of the pool.
const maxPooledBody = 16 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendBody appends e's wire form (body) to b.
func appendBody(b []byte, e *Error, requestID string) ([]byte, error) {
	b = append(b, `{"error":{"code":`...)
	b = AppendJSONString(b, e.Code)
	b = append(b, `,"message":`...)
	b = AppendJSONString(b, e.Message)
	b = append(b, `,"request_id":`...)
	b = AppendJSONString(b, requestID)
	if e.Details != nil { // omitempty on an interface: only nil is left out
		b = append(b, `,"details":`...)
		if a, ok := e.Details.(JSONAppender); ok {
			b = a.AppendJSON(b)
		} else {
			d, err := json.Marshal(e.Details)
			if err != nil {
				return b, err
			}
			b = append(b, d...)
		}
	}
	return append(b, "}}"...), nil
}

// AppendJSONString appends s as encoding/json encodes it (HTML-safe):
// codes, ids and most messages are plain ASCII, which is copied; anything
// else takes encoding/json's own path.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UnavailableRetryAfter is the Retry-After of a 503 that names no wait of
// its own: short, since most outages a client meets are a moment long (a
// calendar moving, a database failing over), and a stuck store answers the
// retry within its deadline anyway.
const UnavailableRetryAfter = 2 * time.Second

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
	retryAfter := e.RetryAfter
	if retryAfter <= 0 && e.Status == fiber.StatusServiceUnavailable {
		// Every 503 is an outage the client should retry (the store
		// unreachable, refusing or stuck; a calendar recovering): say when.
		retryAfter = UnavailableRetryAfter
	}
	if retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(retryAfter.Seconds())))))
	}
	return Write(c, e)
}
