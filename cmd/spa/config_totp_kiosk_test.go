package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestParseConfigTOTPKiosk: the kiosk TTL and the TOTP issuer have
// defaults, take the environment, and refuse bad values naming the
// variable.
func TestParseConfigTOTPKiosk(t *testing.T) {
	c, err := parseConfig("serve", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.KioskTTL != 12*time.Hour || c.TOTPIssuer != "Spa" {
		t.Fatalf("defaults: %v %q", c.KioskTTL, c.TOTPIssuer)
	}
	c, err = parseConfig("serve", nil, env(map[string]string{"SPA_KIOSK_TTL": "8h", "SPA_TOTP_ISSUER": "Spa Bogotá"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.KioskTTL != 8*time.Hour || c.TOTPIssuer != "Spa Bogotá" {
		t.Fatalf("from the environment: %v %q", c.KioskTTL, c.TOTPIssuer)
	}
	for name, e := range map[string]map[string]string{
		"SPA_KIOSK_TTL:":   {"SPA_KIOSK_TTL": "1m"},
		"SPA_TOTP_ISSUER:": {"SPA_TOTP_ISSUER": "Spa:Admin"},
	} {
		if _, err := parseConfig("serve", nil, env(e), io.Discard); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: err = %v, want it to name %s", e, err, name)
		}
	}
}
