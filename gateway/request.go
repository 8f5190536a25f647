package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
)

// What every handler shares to read a request: the strict JSON decoder,
// path and query parameters, and the field-error collector. The rules of
// what a value means live in the services (actors/service/...); these
// only parse.

// decodeJSON strictly decodes one JSON object into dst: right media type,
// no unknown fields, nothing after it. Every failure is a 4xx.
func decodeJSON(c *fiber.Ctx, dst any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return fault.UnsupportedMediaType("Content-Type must be application/json")
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.BadRequest("a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.BadRequest("the body must hold exactly one JSON object")
	}
	return nil
}

// jsonError turns a decode failure into a safe 400: it names the field
// (bounded) but never echoes values.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fault.BadRequest("the body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fault.BadRequest("the body must be a JSON object")
		}
		return fault.BadRequest(fmt.Sprintf("field %q has the wrong type", bounded(typ.Field)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; the field name is
		// quoted in the message.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fault.BadRequest("unknown field " + bounded(name))
	}
	return fault.BadRequest("the body is not valid JSON")
}

// bounded keeps client-chosen names short and printable in our messages.
func bounded(s string) string { return check.Bounded(s) }

// fieldErrors collects every problem of one request (see check.Fields).
type fieldErrors []fault.FieldError

func (f *fieldErrors) add(field, msg string) { (*check.Fields)(f).Add(field, msg) }

func (f fieldErrors) err() error { return check.Fields(f).Err() }

func (f *fieldErrors) text(field, v string, min, max int) string {
	return (*check.Fields)(f).Text(field, v, min, max)
}

// slugRE is the shape of admin-chosen ids (check.Slug).
var slugRE = check.Slug

// slugParam reads an id from the path: lower-case letters, digits, - and _.
func slugParam(c *fiber.Ctx, name string) (string, error) {
	v := c.Params(name)
	if !slugRE.MatchString(v) {
		return "", fault.Invalid("", fault.FieldError{Field: name, Message: "must be 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit"})
	}
	return v, nil
}

const dateLayout = catalogue.DateLayout

// dateParam reads a date YYYY-MM-DD from the path, or else the query.
func dateParam(c *fiber.Ctx, name string) (string, error) {
	v := c.Params(name)
	if v == "" {
		v = c.Query(name)
	}
	if _, err := time.Parse(dateLayout, v); err != nil {
		return "", fault.Invalid("", fault.FieldError{Field: name, Message: "must be a date YYYY-MM-DD"})
	}
	return v, nil
}

// instantRange reads ?from=&to= as RFC 3339 instants, to after from, at
// most 400 days apart.
func instantRange(c *fiber.Ctx) (from, to time.Time, err error) {
	var f fieldErrors
	from, err1 := time.Parse(time.RFC3339, c.Query("from"))
	to, err2 := time.Parse(time.RFC3339, c.Query("to"))
	switch {
	case err1 != nil:
		f.add("from", "must be an RFC 3339 instant")
	case err2 != nil:
		f.add("to", "must be an RFC 3339 instant")
	case !to.After(from) || to.Sub(from) > 400*24*time.Hour:
		f.add("to", "must be after from, at most 400 days later")
	}
	return from, to, f.err()
}

// notFound and versionConflict are fault.IfNotFound and
// fault.IfVersionConflict, for the handlers that still read the store
// themselves.
var (
	notFound        = fault.IfNotFound
	versionConflict = fault.IfVersionConflict
)

// views maps a service's values to their JSON views.
func views[T, V any](in []T, view func(T) V) []V {
	out := make([]V, len(in))
	for i, v := range in {
		out[i] = view(v)
	}
	return out
}
