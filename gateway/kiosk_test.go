package gateway

import (
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// gauge reads an unlabelled gauge from the env's registry.
func (me *mfaEnv) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := me.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func (me *mfaEnv) kiosk(token, path, body string) result {
	me.t.Helper()
	return me.do("POST", path, body, jsonHdr(token)...)
}

type issuedKiosk struct {
	kioskJSON
	Token string `json:"token"`
}

func TestKioskCheckIn(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), bookingNow.Add(-15*time.Minute), true) // firstFactor moves it to 07:00 Bogota
			client := me.pair(t, me.firstFactor(t, maria))
			for _, start := range []time.Time{slotAt(8, 0), slotAt(8, 0).AddDate(0, 0, 1)} {
				ap := decode[appointmentJSON](t, me.book(client.Access, "ana", start))
				if r := me.post(client.Access, "/v1/appointments/"+ap.ID+"/confirm", ""); r.status != 200 {
					t.Fatalf("confirm: %d %s", r.status, r.body)
				}
			}

			if r := me.admin("POST", "/v1/admin/kiosks", `{"label":"front desk","ttl_seconds":10}`); r.status != 422 {
				t.Fatalf("ttl too short: %d %s", r.status, r.body)
			}
			if r := me.admin("POST", "/v1/admin/kiosks", `{"label":""}`); r.status != 422 {
				t.Fatalf("no label: %d %s", r.status, r.body)
			}
			r := me.admin("POST", "/v1/admin/kiosks", `{"label":"front desk"}`)
			if r.status != 201 {
				t.Fatalf("issue: %d %s", r.status, r.body)
			}
			k := decode[issuedKiosk](t, r)
			if !k.Active || !k.ExpiresAt.Equal(me.clk.now().Add(identity.DefaultKioskTTL).Truncate(time.Microsecond)) {
				t.Fatalf("kiosk %+v", k.kioskJSON)
			}

			// The kiosk token opens the kiosk routes and nothing else; nothing
			// else opens them.
			if r := me.do("GET", "/v1/me/sessions", "", jsonHdr(k.Token)...); r.status != 403 {
				t.Fatalf("kiosk on a client route: %d", r.status)
			}
			if r := me.do("GET", "/v1/admin/kiosks", "", jsonHdr(k.Token)...); r.status != 403 {
				t.Fatalf("kiosk on an admin route: %d", r.status)
			}
			if r := me.kiosk(client.Access, "/v1/kiosk/otp", `{"phone":"`+maria+`"}`); r.status != 403 {
				t.Fatalf("client on a kiosk route: %d", r.status)
			}
			if r := me.admin("PUT", "/v1/admin/users/"+client.User+"/roles", `{"roles":["kiosk"]}`); r.status != 422 {
				t.Fatalf("a user given the kiosk role: %d %s", r.status, r.body)
			}

			me.clk.add(time.Minute) // past the resend wait of the sign-in code
			if r := me.kiosk(k.Token, "/v1/kiosk/otp", `{"phone":"300 123 4567"}`); r.status != 202 {
				t.Fatalf("kiosk code: %d %s", r.status, r.body)
			}
			code := me.sink.code(maria)
			wrong := "000000"
			if code == wrong {
				wrong = "111111"
			}
			if r := me.kiosk(k.Token, "/v1/kiosk/check-in", `{"phone":"`+maria+`","code":"`+wrong+`"}`); r.status != 400 || r.errCode(t) != "invalid_code" {
				t.Fatalf("wrong code: %d %s", r.status, r.body)
			}
			if r := me.kiosk(k.Token, "/v1/kiosk/check-in", `{"phone":"`+maria+`","code":"12"}`); r.status != 422 {
				t.Fatalf("malformed code: %d %s", r.status, r.body)
			}
			r = me.kiosk(k.Token, "/v1/kiosk/check-in", `{"phone":"`+maria+`","code":"`+code+`"}`)
			if r.status != 200 {
				t.Fatalf("check in: %d %s", r.status, r.body)
			}
			done := decode[struct {
				CheckedIn []appointmentJSON `json:"checked_in"`
			}](t, r).CheckedIn
			// Today's appointment only: tomorrow's is the client's too, but not today's.
			if len(done) != 1 || done[0].CheckedInAt == nil || !done[0].Start.Equal(slotAt(8, 0)) {
				t.Fatalf("checked in %+v", done)
			}
			if r := me.kiosk(k.Token, "/v1/kiosk/check-in", `{"phone":"`+maria+`","code":"`+code+`"}`); r.status != 400 {
				t.Fatalf("code used twice: %d %s", r.status, r.body)
			}

			// A number with no user has no appointment; the answer comes only after
			// the code proves the phone.
			if r := me.kiosk(k.Token, "/v1/kiosk/otp", `{"phone":"`+juan+`"}`); r.status != 202 {
				t.Fatalf("code to a stranger: %d %s", r.status, r.body)
			}
			if r := me.kiosk(k.Token, "/v1/kiosk/check-in", `{"phone":"`+juan+`","code":"`+me.sink.code(juan)+`"}`); r.status != 404 {
				t.Fatalf("no appointment: %d %s", r.status, r.body)
			}

			for outcome, want := range map[string]float64{"checked_in": 1, "invalid_code": 2, "no_appointment": 1} {
				if got := me.counter(t, "spa_kiosk_checkins_total", outcome); got != want {
					t.Fatalf("check-ins %s = %v, want %v", outcome, got, want)
				}
			}
			if got := me.counter(t, "spa_kiosk_codes_total", "sent"); got != 2 {
				t.Fatalf("kiosk codes sent %v", got)
			}
			if got := me.gauge(t, "spa_kiosk_sessions_active"); got != 1 {
				t.Fatalf("active kiosks %v", got)
			}

			// Revocation takes effect on the next request.
			list := decode[struct{ Kiosks []kioskJSON }](t, me.admin("GET", "/v1/admin/kiosks", ""))
			if len(list.Kiosks) != 1 || list.Kiosks[0].ID != k.ID {
				t.Fatalf("list %+v", list)
			}
			if r := me.admin("DELETE", "/v1/admin/kiosks/"+k.ID, ""); r.status != 204 {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			if r := me.admin("DELETE", "/v1/admin/kiosks/nope", ""); r.status != 404 {
				t.Fatalf("revoke unknown: %d %s", r.status, r.body)
			}
			if r := me.kiosk(k.Token, "/v1/kiosk/otp", `{"phone":"`+maria+`"}`); r.status != 401 {
				t.Fatalf("revoked kiosk: %d %s", r.status, r.body)
			}
			if list := decode[struct{ Kiosks []kioskJSON }](t, me.admin("GET", "/v1/admin/kiosks", "")); len(list.Kiosks) != 0 {
				t.Fatalf("live list after revoke %+v", list)
			}
			all := decode[struct{ Kiosks []kioskJSON }](t, me.admin("GET", "/v1/admin/kiosks?all=true", ""))
			if len(all.Kiosks) != 1 || all.Kiosks[0].Active || all.Kiosks[0].RevokedAt == nil {
				t.Fatalf("all list %+v", all)
			}
			if got := me.gauge(t, "spa_kiosk_sessions_active"); got != 0 {
				t.Fatalf("active kiosks after revoke %v", got)
			}

			// Expiry: a five-minute kiosk stops once its time is up.
			short := decode[issuedKiosk](t, me.admin("POST", "/v1/admin/kiosks", `{"label":"tablet","ttl_seconds":300}`))
			me.clk.add(5 * time.Minute)
			if r := me.kiosk(short.Token, "/v1/kiosk/otp", `{"phone":"`+maria+`"}`); r.status != 401 {
				t.Fatalf("expired kiosk: %d %s", r.status, r.body)
			}
		})
	}
}

// TestKioskIssueRetryIssuesOnce: a kiosk token is a credential; retrying
// its issue under the same Idempotency-Key replays the first kiosk without
// the token and never issues a second one.
func TestKioskIssueRetryIssuesOnce(t *testing.T) {
	me := newMFAEnvOn(t, sqlitetest.Open(t, persistence.Options{}), bookingNow, true)
	body := `{"label":"front desk"}`
	first := me.admin("POST", "/v1/admin/kiosks", body, "Idempotency-Key", "kiosk-1")
	if first.status != 201 || decode[issuedKiosk](t, first).Token == "" {
		t.Fatalf("issue: %d %s", first.status, first.body)
	}
	k := decode[issuedKiosk](t, first)
	for i := range 2 {
		again := me.admin("POST", "/v1/admin/kiosks", body, "Idempotency-Key", "kiosk-1")
		got := decode[issuedKiosk](t, again)
		if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || got.ID != k.ID || got.Token != "" {
			t.Fatalf("retry %d: %d replayed=%q %s", i, again.status, again.header.Get("Idempotent-Replayed"), again.body)
		}
	}
	list := decode[struct{ Kiosks []kioskJSON }](t, me.admin("GET", "/v1/admin/kiosks", ""))
	if len(list.Kiosks) != 1 || list.Kiosks[0].ID != k.ID {
		t.Fatalf("kiosks after retries: %+v; want only %s", list.Kiosks, k.ID)
	}
}

// TestRevokedKioskRefusedOnEveryRoute: a kiosk token also opens what an
// anonymous caller may do (carts, stock, the catalogue); once the kiosk is
// revoked, or expired, every route refuses the token with 401, not the
// kiosk routes only.
func TestRevokedKioskRefusedOnEveryRoute(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), bookingNow, true)
			k := decode[issuedKiosk](t, me.admin("POST", "/v1/admin/kiosks", `{"label":"front desk"}`))
			routes := []struct{ method, path, body string }{
				{"POST", "/v1/carts", `{}`},
				{"GET", "/v1/services", ""},
				{"GET", "/v1/shop/products", ""},
				{"GET", "/v1/studio", ""},
			}
			for _, r := range routes {
				if got := me.do(r.method, r.path, r.body, jsonHdr(k.Token)...); got.status == 401 {
					t.Fatalf("live kiosk on %s %s: 401 %s", r.method, r.path, got.body)
				}
			}
			if r := me.admin("DELETE", "/v1/admin/kiosks/"+k.ID, ""); r.status != 204 {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			for _, r := range routes {
				got := me.do(r.method, r.path, r.body, jsonHdr(k.Token)...)
				if got.status != 401 || got.errCode(t) != "unauthenticated" || got.header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("revoked kiosk on %s %s: %d %s", r.method, r.path, got.status, got.body)
				}
			}
			// Anonymous callers are untouched.
			if r := me.do("GET", "/v1/services", ""); r.status != 200 {
				t.Fatalf("anonymous: %d %s", r.status, r.body)
			}

			short := decode[issuedKiosk](t, me.admin("POST", "/v1/admin/kiosks", `{"label":"tablet","ttl_seconds":300}`))
			me.clk.add(5 * time.Minute)
			if r := me.do("POST", "/v1/carts", `{}`, jsonHdr(short.Token)...); r.status != 401 {
				t.Fatalf("expired kiosk creating a cart: %d %s", r.status, r.body)
			}
		})
	}
}
