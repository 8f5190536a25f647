package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/persistence"
)

func TestExportAndAnonymise(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	p := ie.signIn(t, maria)
	other := ie.signIn(t, juan)
	for _, who := range []pair{p, other} {
		if r := ie.do("PUT", "/v1/me/profile", fullProfile, jsonHdr(who.Access, "Idempotency-Key", "profile")...); r.status != 200 {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
	}
	admin := ie.token("owner", auth.RoleAdmin)
	if r := ie.do("PUT", "/v1/me/notification-preferences", `{"categories": {"marketing": {"sms": false}}, "version": 0}`,
		jsonHdr(p.Access, "Idempotency-Key", "prefs")...); r.status != 200 {
		t.Fatalf("preferences: %d %s", r.status, r.body)
	}

	r := ie.do("GET", "/v1/me/export", "", jsonHdr(p.Access)...)
	exp := r.json(t)
	if r.status != 200 || exp["user"].(map[string]any)["phone"] != maria ||
		exp["profile"].(map[string]any)["clinical_notes"] != "Alérgica al látex" || len(exp["sessions"].([]any)) != 1 {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	if prefs, _ := exp["notification_preferences"].(map[string]any); fmt.Sprint(prefs["off"]) != "[marketing:sms]" {
		t.Fatalf("export: notification preferences %v", exp["notification_preferences"])
	}
	if !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("export headers %v", r.header)
	}
	if r := ie.do("GET", "/v1/admin/users/"+p.User+"/export", "", jsonHdr(p.Access)...); r.status != 403 {
		t.Fatalf("a client exports by the admin route: %d", r.status)
	}
	if r := ie.do("GET", "/v1/admin/users/nobody/export", "", jsonHdr(admin)...); r.status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("export of nobody: %d %s", r.status, r.body)
	}

	// Refusals first: no confirmation, unknown user, not an admin.
	if r := ie.do("POST", "/v1/admin/users/"+p.User+"/anonymise", `{"reason":"x"}`, jsonHdr(admin)...); r.status != 422 {
		t.Fatalf("unconfirmed: %d %s", r.status, r.body)
	}
	if r := ie.do("POST", "/v1/admin/users/nobody/anonymise", `{"confirm":true}`, jsonHdr(admin)...); r.status != 404 {
		t.Fatalf("unknown user: %d %s", r.status, r.body)
	}
	if r := ie.do("POST", "/v1/admin/users/"+p.User+"/anonymise", `{"confirm":true}`, jsonHdr(other.Access)...); r.status != 403 {
		t.Fatalf("a client anonymises another: %d %s", r.status, r.body)
	}

	r = ie.do("POST", "/v1/admin/users/"+p.User+"/anonymise", `{"confirm":true,"reason":"ticket 42"}`, jsonHdr(admin, "Idempotency-Key", "a1")...)
	if r.status != 200 || r.json(t)["revoked_sessions"] != float64(1) {
		t.Fatalf("anonymise: %d %s", r.status, r.body)
	}
	if r := ie.do("GET", "/v1/me/profile", "", jsonHdr(p.Access)...); r.status != 401 {
		t.Fatalf("the anonymised user's token still works: %d", r.status)
	}
	if r := ie.refresh(p.Refresh); r.status != 401 {
		t.Fatalf("the anonymised user's refresh token still works: %d", r.status)
	}
	r = ie.do("GET", "/v1/admin/users/"+p.User+"/export", "", jsonHdr(admin)...)
	exp = r.json(t)
	prof := exp["profile"].(map[string]any)
	if r.status != 200 || prof["anonymised"] != true || prof["name"] != "" || prof["phone"] != "" || prof["clinical_notes"] != "" ||
		exp["notification_preferences"] != nil {
		t.Fatalf("export after anonymisation: %d %s", r.status, r.body)
	}
	// The audit keeps the act, with counts and no personal data.
	r = ie.do("GET", "/v1/admin/audit?subject=user/"+p.User, "", jsonHdr(admin)...)
	if !strings.Contains(string(r.body), "user.anonymise") || strings.Contains(string(r.body), "maria") {
		t.Fatalf("audit: %s", r.body)
	}
	// The other client is untouched, and the number signs up afresh.
	if r := ie.do("GET", "/v1/me/profile", "", jsonHdr(other.Access)...); r.status != 200 || r.json(t)["name"] != "María Pérez" {
		t.Fatalf("the other client's profile: %d %s", r.status, r.body)
	}
	again := ie.signIn(t, maria)
	if again.User == p.User {
		t.Fatal("the anonymised user is found by the old number")
	}
	err := ie.store.InTx(context.Background(), func(tx persistence.Tx) error {
		u, err := tx.UserGet(context.Background(), p.User)
		if err != nil {
			return err
		}
		if len(u.PhoneCipher) != 0 {
			t.Error("the phone cipher outlived anonymisation")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Self-service: the caller's own data, all sessions included.
	r = ie.do("POST", "/v1/me/anonymise", `{"confirm":true}`, jsonHdr(other.Access, "Idempotency-Key", "self")...)
	if r.status != 200 || r.json(t)["user_id"] != other.User {
		t.Fatalf("self-service: %d %s", r.status, r.body)
	}
	if r := ie.do("GET", "/v1/me/export", "", jsonHdr(other.Access)...); r.status != 401 {
		t.Fatalf("token after self-service anonymisation: %d", r.status)
	}
}
