package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
)

// TestPaymentSettings: dev mode pays against the fake when no key is set;
// production needs every SPA_WOMPI_* key once payments are on, and is off
// without them unless told otherwise; a partial or mixed set of keys stops
// the start naming the variable.
func TestPaymentSettings(t *testing.T) {
	k := wompifake.DefaultKeys()
	keys := map[string]string{"SPA_WOMPI_PUBLIC_KEY": k.Public, "SPA_WOMPI_PRIVATE_KEY": k.Private,
		"SPA_WOMPI_INTEGRITY_SECRET": k.Integrity, "SPA_WOMPI_EVENTS_SECRET": k.Events}
	prod := map[string]string{"SPA_MODE": "production", "SPA_TOKEN_SECRET": secret32}
	with := func(maps ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range maps {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		env           map[string]string
		enabled, fake bool
		err           string
	}{
		{"dev without keys", nil, true, true, ""},
		{"dev with keys", keys, true, false, ""},
		{"dev, off", map[string]string{"SPA_PAYMENTS": "false"}, false, false, ""},
		{"production without keys", prod, false, false, ""},
		{"production with keys", with(prod, keys), true, false, ""},
		{"production on without keys", with(prod, map[string]string{"SPA_PAYMENTS": "true"}), false, false, "SPA_WOMPI_PUBLIC_KEY: required"},
		{"partial keys", map[string]string{"SPA_WOMPI_PUBLIC_KEY": k.Public}, false, false, "SPA_WOMPI_PRIVATE_KEY is required"},
		{"mixed keys", with(keys, map[string]string{"SPA_WOMPI_PUBLIC_KEY": "pub_prod_abc"}), false, false, "SPA_WOMPI_"},
		{"bad value", map[string]string{"SPA_PAYMENTS": "maybe"}, false, false, "SPA_PAYMENTS: must be"},
		{"bad interval", map[string]string{"SPA_PAYMENTS_RECONCILE_INTERVAL": "1s"}, false, false, "SPA_PAYMENTS_RECONCILE_INTERVAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig("serve", nil, env(tc.env), io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				for _, secret := range []string{k.Private, k.Integrity, k.Events} {
					if strings.Contains(err.Error(), secret) {
						t.Fatal("a secret in the error")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Payments.Enabled != tc.enabled || c.Payments.Fake != tc.fake {
				t.Fatalf("enabled %v fake %v, want %v %v", c.Payments.Enabled, c.Payments.Fake, tc.enabled, tc.fake)
			}
		})
	}
}
