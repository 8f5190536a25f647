package idempotency

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestRequestHashCanonicalJSON(t *testing.T) {
	const ct = "application/json"
	base := RequestHash("PUT", "/v1/x", ct, []byte(`{"a":1,"b":[true,null,"s"],"c":{"d":2.50}}`))
	same := [][]byte{
		[]byte("{\n  \"c\": {\"d\": 2.50},\n  \"b\": [ true, null, \"s\" ],\n  \"a\": 1\n}\n"),
		[]byte(`{"b":[true,null,"\u0073"],"a":1,"c":{"d":2.50}}`),
	}
	for _, b := range same {
		if !bytes.Equal(base, RequestHash("PUT", "/v1/x", ct, b)) {
			t.Fatalf("%s hashed differently", b)
		}
	}
	if !bytes.Equal(base, RequestHash("PUT", "/v1/x", "Application/JSON; charset=utf-8", same[0])) {
		t.Fatal("content-type parameters changed the hash")
	}
	differ := []struct {
		method, route, ct string
		body              []byte
	}{
		{"POST", "/v1/x", ct, same[0]},
		{"PUT", "/v1/y", ct, same[0]},
		{"PUT", "/v1/x", "text/plain", same[0]},
		{"PUT", "/v1/x", ct, []byte(`{"a":1,"b":[true,null,"s"],"c":{"d":2.5}}`)},  // 2.5 ≠ 2.50 literally
		{"PUT", "/v1/x", ct, []byte(`{"a":1,"b":[null,true,"s"],"c":{"d":2.50}}`)}, // array order matters
	}
	for _, d := range differ {
		if bytes.Equal(base, RequestHash(d.method, d.route, d.ct, d.body)) {
			t.Fatalf("%+v collided", d)
		}
	}
}

func TestRequestHashParts(t *testing.T) {
	// Without length prefixes these would concatenate identically.
	if bytes.Equal(RequestHash("PU", "T/x", "", nil), RequestHash("PUT", "/x", "", nil)) {
		t.Fatal("parts ran into each other")
	}
	// Invalid or trailing JSON is hashed raw, so formatting matters again.
	a := RequestHash("PUT", "/x", "application/json", []byte(`{"a":1} x`))
	b := RequestHash("PUT", "/x", "application/json", []byte(`{"a":1}  x`))
	if bytes.Equal(a, b) {
		t.Fatal("invalid JSON was canonicalised")
	}
	if len(a) != 32 {
		t.Fatalf("hash length %d", len(a))
	}
}

func FuzzRequestHash(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":1,"b":[1,2,{"c":null}]}`, `"x"`, `1e5`, `not json`, ``, `{"a":1}{"b":2}`, "{\"\\u00e9\":\"<>&\"}"} {
		f.Add("PUT", "/v1/admin/studio", "application/json", []byte(s))
	}
	f.Fuzz(func(t *testing.T, method, route, ct string, body []byte) {
		h := RequestHash(method, route, ct, body)
		if len(h) != 32 {
			t.Fatalf("hash length %d", len(h))
		}
		if !bytes.Equal(h, RequestHash(method, route, ct, body)) {
			t.Fatal("not deterministic")
		}
		if bytes.Equal(h, RequestHash(method+"X", route, ct, body)) || bytes.Equal(h, RequestHash(method, route+"/", ct, body)) {
			t.Fatal("method or route did not change the hash")
		}
		// Re-marshalling the decoded value (keys sorted, whitespace gone,
		// numbers as written) is canonical-equivalent and must hash alike.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil || dec.More() {
			return
		}
		if _, ok := canonicalJSON(body); !ok {
			return // trailing garbage after the value: hashed raw
		}
		re, err := json.Marshal(v)
		if err != nil {
			return
		}
		if !bytes.Equal(h, RequestHash(method, route, ct, re)) {
			t.Fatalf("%q and its re-marshalled form %q hash differently", body, re)
		}
		indented, _ := json.MarshalIndent(v, "", "  ")
		if !bytes.Equal(h, RequestHash(method, route, ct, indented)) {
			t.Fatalf("indentation changed the hash of %q", body)
		}
	})
}
