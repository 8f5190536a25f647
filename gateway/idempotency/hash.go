// Package idempotency makes unsafe requests safe to retry.
//
// A client that sends an Idempotency-Key gets exactly one execution of the
// handler per (principal, key): a retry of the same request replays the
// stored response, a different request under the same key is refused, and a
// concurrent duplicate is told to wait. The record is written in the same
// transaction as the handler's effects, so "effects committed" and "response
// remembered" can never disagree.
//
// Handlers whose effect one actor decides (WrapKeyed) hand the key to that
// actor instead (actors/keyed): it stores a success with the change and
// decides a refusal again on retry. docs/http.md says which is which.
package idempotency

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"sort"
	"strings"
)

// RequestHash fingerprints a request so a retry can be told apart from a
// different request reusing the key. It covers method, request target
// (path and query: one key on /v1/things/1 and /v1/things/2 is two
// requests), media type and body. A JSON body is hashed in canonical form (keys sorted,
// insignificant whitespace dropped, numbers as written) because clients
// re-serialise on retry and may reorder keys; anything else is hashed raw.
// Each part is length-prefixed so no two part lists share an encoding.
func RequestHash(method, target string, contentType string, body []byte) []byte {
	h := sha256.New()
	part := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	mediaType := mediaTypeOf(contentType)
	part([]byte(method))
	part([]byte(target))
	part([]byte(mediaType))
	if canon, ok := canonicalJSON(body); ok {
		part([]byte("json"))
		part(canon)
	} else {
		part([]byte("raw"))
		part(body)
	}
	return h.Sum(nil)
}

// mediaTypeOf drops parameters and case so "application/json; charset=utf-8"
// and "Application/JSON" count as the same request.
func mediaTypeOf(contentType string) string {
	if contentType == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(contentType))
	}
	return mt
}

// canonicalJSON returns the canonical encoding of body when it holds exactly
// one JSON value.
func canonicalJSON(body []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data: not one JSON document
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, v); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case json.Number:
		buf.WriteString(x.String())
	case string:
		writeString(buf, x)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeCanonical(buf, x[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return errUnexpected
	}
	return nil
}

// writeString encodes s the one way encoding/json does without HTML
// escaping, so "\u0041" and "A" in the input canonicalise alike.
func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}

// errUnexpected cannot happen for values json.Decoder produces; it guards
// the switch against a future decoder option adding a type.
var errUnexpected = errors.New("idempotency: unexpected JSON value")
