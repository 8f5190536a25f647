package main

import (
	"io"
	"strings"
	"testing"
)

// TestServeTrustedProxies: with SPA_TRUSTED_PROXIES naming the balancer
// (here the test's own loopback), the client address a session records is
// the rightmost X-Forwarded-For entry, not the peer and not the entry the
// client wrote itself; without it the header is ignored.
func TestServeTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, trusted, wantIP string
	}{
		{"trusted", "127.0.0.1,::1", "203.0.113.9"},
		{"untrusted", "", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, logs := serveInProcess(t, map[string]string{"SPA_TRUSTED_PROXIES": tc.trusted}, t.TempDir())
			a := api{t, base}
			const phone = "+573001234567"
			xff := []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.9"}
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone}, xff...)
			in := a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": lastCode(t, logs, phone)}, xff...)
			sessions := a.must(200, "GET", "/v1/me/sessions", in["access_token"].(string), nil)["sessions"].([]any)
			if got := sessions[0].(map[string]any)["ip"]; got != tc.wantIP {
				t.Fatalf("session ip %v, want %s", got, tc.wantIP)
			}
		})
	}
	if _, err := parseConfig("serve", nil, env(map[string]string{"SPA_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "SPA_TRUSTED_PROXIES") {
		t.Fatalf("a host name in SPA_TRUSTED_PROXIES: err = %v", err)
	}
}
