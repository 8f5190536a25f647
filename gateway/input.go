package gateway

import (
	"bytes"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
)

// refuseUnstorableText answers 400 invalid_character to a request whose
// path, query string or body holds a NUL character (raw, percent-encoded
// or, in a body, the JSON escape \u0000), or whose path or query is not
// valid UTF-8. No field of the API accepts either, and PostgreSQL refuses
// both in text (SQLSTATE 22021), so a value that reached a query surfaced
// as a 500; SQLite stored them silently. Refusing them once, at the edge,
// keeps every route, present and future, from passing one on.
func refuseUnstorableText(c *fiber.Ctx) error {
	uri := c.Request().URI()
	if bad(uri.Path()) || bad(uri.PathOriginal()) {
		return invalidCharacter("the path")
	}
	query := false
	uri.QueryArgs().VisitAll(func(k, v []byte) { query = query || bad(k) || bad(v) })
	if query || bytes.IndexByte(uri.QueryString(), 0) >= 0 {
		return invalidCharacter("the query string")
	}
	// c.Body is what the handlers decode: decompressed when the client
	// sent Content-Encoding.
	if body := c.Body(); len(body) > 0 && (bytes.IndexByte(body, 0) >= 0 || hasJSONEscapedNUL(body)) {
		return invalidCharacter("the body")
	}
	return c.Next()
}

// bad reports a NUL byte or invalid UTF-8.
func bad(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b) }

func invalidCharacter(where string) error {
	return fault.New(fault.CodeInvalidCharacter, where+" holds a NUL character (U+0000) or invalid UTF-8, which no field accepts")
}

// hasJSONEscapedNUL finds the escape \u0000 in a JSON text: a backslash
// that is itself escaped (\\u0000, the six characters "\u0000") is not
// one, so it counts the backslashes before each candidate.
func hasJSONEscapedNUL(body []byte) bool {
	const esc = `\u0000`
	for off := 0; ; {
		i := bytes.Index(body[off:], []byte(esc))
		if i < 0 {
			return false
		}
		i += off
		n := 0 // backslashes before the escape's own
		for j := i - 1; j >= 0 && body[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		off = i + len(esc)
	}
}
