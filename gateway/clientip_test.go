package gateway

import (
	"net/netip"
	"testing"
)

func TestClientIPRightmostUntrusted(t *testing.T) {
	trusted := trustedPrefixes([]string{"10.0.0.0/8", "192.0.2.1", "not an address"})
	cases := []struct {
		name, peer string
		hops       []string
		want       string
	}{
		{"no header", "10.0.0.5", nil, "10.0.0.5"},
		{"one hop", "10.0.0.5", []string{"203.0.113.7"}, "203.0.113.7"},
		{"spoofed left entries are ignored", "10.0.0.5", []string{"1.1.1.1", " 2.2.2.2", " 203.0.113.7"}, "203.0.113.7"},
		{"trusted hops skipped", "10.0.0.5", []string{"1.1.1.1", "203.0.113.7", "192.0.2.1", "10.1.2.3"}, "203.0.113.7"},
		{"garbage stops the walk", "10.0.0.5", []string{"203.0.113.9", "junk", "10.1.2.3"}, "10.1.2.3"},
		{"garbage right of all", "10.0.0.5", []string{"203.0.113.9", "junk"}, "10.0.0.5"},
		{"all trusted", "10.0.0.5", []string{"10.9.9.9", "10.1.1.1"}, "10.9.9.9"},
		{"ipv4-mapped", "10.0.0.5", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"ipv6", "10.0.0.5", []string{"2001:db8::1"}, "2001:db8::1"},
	}
	for _, tc := range cases {
		if got := rightmostUntrusted(tc.peer, tc.hops, trusted); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if len(trusted) != 2 || !trusted[1].Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Fatalf("trusted prefixes %v", trusted)
	}
}

// TestIdentityOTPLimiterIgnoresSpoofedForwardedFor: behind a trusted proxy
// a client that writes a fresh X-Forwarded-For on every request is still
// one client to the per-IP limiter (the proxy appends the address it saw).
func TestIdentityOTPLimiterIgnoresSpoofedForwardedFor(t *testing.T) {
	ie := newIdentityEnvWith(t, 2, 0, func(d *Deps) {
		d.Config.ProxyHeader = "X-Forwarded-For"
		d.Config.TrustedProxies = []string{"0.0.0.0", "::"} // app.Test's peer
	})
	phones := []string{maria, juan, "+573205550123"}
	for i, ph := range phones {
		xff := []string{"X-Forwarded-For", "198.51.100." + string(rune('1'+i)) + ", 203.0.113.7"}
		r := ie.do("POST", "/v1/auth/otp", `{"phone":"`+ph+`"}`, jsonHdr("", xff...)...)
		want := 202
		if i == 2 {
			want = 429
		}
		if r.status != want {
			t.Fatalf("request %d with spoofed %q: %d %s, want %d", i, xff[1], r.status, r.body, want)
		}
	}
	// Another real client behind the same proxy is not limited.
	r := ie.do("POST", "/v1/auth/otp", `{"phone":"+573205550124"}`, jsonHdr("", "X-Forwarded-For", "203.0.113.8")...)
	if r.status != 202 {
		t.Fatalf("other client: %d %s", r.status, r.body)
	}
}

// TestIdentityOTPLimiterCountsIPv6Subnet: addresses of one /64 share one
// per-IP budget.
func TestIdentityOTPLimiterCountsIPv6Subnet(t *testing.T) {
	ie := newIdentityEnvWith(t, 2, 0, func(d *Deps) {
		d.Config.ProxyHeader = "X-Forwarded-For"
		d.Config.TrustedProxies = []string{"0.0.0.0", "::"}
	})
	for i, ph := range []string{maria, juan, "+573205550123"} {
		xff := "2001:db8:1:2::" + string(rune('a'+i))
		r := ie.do("POST", "/v1/auth/otp", `{"phone":"`+ph+`"}`, jsonHdr("", "X-Forwarded-For", xff)...)
		if want := map[bool]int{true: 429, false: 202}[i == 2]; r.status != want {
			t.Fatalf("request %d from %s: %d %s, want %d", i, xff, r.status, r.body, want)
		}
	}
}
