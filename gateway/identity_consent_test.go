package gateway

import (
	"slices"
	"testing"

	"github.com/spa-engine/spa/actors/auth/otp"
)

// TestIdentitySignInAdoptsDeviceConsents: terms a visitor accepted on a
// device before signing up are the user's once they sign in on it; a
// sign-in from another device adopts nothing.
func TestIdentitySignInAdoptsDeviceConsents(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	ie.activateLegal("terms", ie.newLegalVersion("terms", "Terms", "one\n").Version)
	ie.activateLegal("privacy", ie.newLegalVersion("privacy", "Privacy", "p\n").Version)
	if r := ie.do("POST", "/v1/legal/consents", `{"documents":[{"slug":"terms","version":1}]}`,
		"Content-Type", "application/json", "X-Device-ID", testDevice); r.status != 200 {
		t.Fatalf("device accepts: %d %s", r.status, r.body)
	}
	signIn := func(phone, device string) string {
		t.Helper()
		ie.clk.add(otp.DefaultPolicy().ResendAfter)
		if r := ie.requestCode(phone); r.status != 202 {
			t.Fatalf("request code: %d %s", r.status, r.body)
		}
		return ie.pair(t, ie.do("POST", "/v1/auth/otp/verify", `{"phone":"`+phone+`","code":"`+ie.sink.code(phone)+`"}`,
			jsonHdr("", "X-Device-ID", device)...)).Access
	}
	required := func(access string) []string {
		t.Helper()
		return legalSlugs(t, ie.do("GET", "/v1/legal/required", "", jsonHdr(access)...))
	}
	if got := required(signIn(maria, testDevice)); !slices.Equal(got, []string{"privacy@1"}) {
		t.Fatalf("after sign-in on the device that accepted the terms: required %v", got)
	}
	if got := required(signIn(juan, "01JOTHERDEVICE00000000000B")); !slices.Equal(got, []string{"privacy@1", "terms@1"}) {
		t.Fatalf("sign-in on another device: required %v", got)
	}
}
