package loadgen

import "testing"

// TestReadHead: the fast path reads the usual answers as json would, and
// anything else falls back to decoding.
func TestReadHead(t *testing.T) {
	for _, tc := range []struct{ body, id, code string }{
		{`{"error":{"code":"slot_taken","message":"x","details":{"alternatives":[]}}}`, "", "slot_taken"},
		{`{"id":"01ABC","status":"held"}`, "01ABC", ""},
		{`{"status":"held","id":"01ABC"}`, "01ABC", ""},                         // another order: decoded
		{`{"error":{"message":"m","code":"rate_limited"}}`, "", "rate_limited"}, // decoded
		{`{"id":"a\"b"}`, `a"b`, ""},                                            // an escape: decoded
		{`not json`, "", ""},
		{``, "", ""},
	} {
		if id, code := readHead([]byte(tc.body)); id != tc.id || code != tc.code {
			t.Errorf("%s: id %q code %q; want %q %q", tc.body, id, code, tc.id, tc.code)
		}
	}
}
