package gateway

import (
	"slices"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
)

// TestNotificationPreferences: a client reads the defaults, replaces them
// under an Idempotency-Key (a retry answers the same), reads them back;
// a stale version is 409, an unknown category 422 naming it; staff and
// anonymous callers have none (403, 401). Every exchange is checked
// against the OpenAPI document.
func TestNotificationPreferences(t *testing.T) {
	e := newEnv(t)
	maria := e.token("maria", auth.RoleClient)
	const path = "/v1/me/notification-preferences"
	r := e.do("GET", path, "", jsonHdr(maria)...)
	m := r.json(t)
	if r.status != 200 || m["version"] != float64(0) || m["categories"].(map[string]any)["marketing"].(map[string]any)["sms"] != true {
		t.Fatalf("defaults: %d %s", r.status, r.body)
	}
	body := `{"categories": {"marketing": {"whatsapp": false, "sms": false}}, "channel_order": ["email"], "version": 0}`
	first := e.do("PUT", path, body, jsonHdr(maria, "Idempotency-Key", "prefs-1")...)
	again := e.do("PUT", path, body, jsonHdr(maria, "Idempotency-Key", "prefs-1")...)
	if first.status != 200 || again.status != 200 || string(first.body) != string(again.body) {
		t.Fatalf("put: %d %s; retry %d %s", first.status, first.body, again.status, again.body)
	}
	r = e.do("GET", path, "", jsonHdr(maria)...)
	m = r.json(t)
	marketing := m["categories"].(map[string]any)["marketing"].(map[string]any)
	order, _ := m["channel_order"].([]any)
	if m["version"] != float64(1) || marketing["whatsapp"] != false || marketing["email"] != true || !slices.Equal(order, []any{"email"}) {
		t.Fatalf("read back: %s", r.body)
	}
	if r := e.do("PUT", path, body, jsonHdr(maria, "Idempotency-Key", "prefs-2")...); r.status != 409 || r.errCode(t) != "version_conflict" {
		t.Fatalf("stale version: %d %s", r.status, r.body)
	}
	r = e.do("PUT", path, `{"categories": {"news": {"sms": false}}, "version": 1}`, jsonHdr(maria, "Idempotency-Key", "prefs-3")...)
	if r.status != 422 || r.errCode(t) != "validation_failed" {
		t.Fatalf("unknown category: %d %s", r.status, r.body)
	}
	if fields := r.json(t)["error"].(map[string]any)["details"].(map[string]any)["fields"].([]any); fields[0].(map[string]any)["field"] != "categories.news" {
		t.Fatalf("unknown category: fields %v", fields)
	}
	if r := e.do("GET", path, "", jsonHdr(e.token("desk", auth.RoleReceptionist))...); r.status != 403 {
		t.Fatalf("receptionist: %d", r.status)
	}
	if r := e.do("GET", path, ""); r.status != 401 {
		t.Fatalf("anonymous: %d", r.status)
	}
}
