package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestHostileRequests replays, against a served node on each driver, the
// requests of the outside review behind issue 15 (docs/security.md), each
// with the answer it must now get. The per-item tests live beside the
// code; this suite is the attacker's view of one running node.
func TestHostileRequests(t *testing.T) {
	for name, driverEnv := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			env := driverEnv(t)
			env["SPA_TOKEN_SECRET"] = clusterSecret
			env["SPA_TRUSTED_PROXIES"] = "127.0.0.1/32"
			env["SPA_CORS_ORIGINS"] = "https://book.example.com"
			base, _, logs := serveInProcess(t, env, t.TempDir())
			admin := tokenFor(t, "owner", "admin")
			// each step has its own client, failing its own subtest
			clients := func(t *testing.T) (api, hostile) { return api{t: t, base: base}, hostile{t: t, base: base} }

			t.Run("item 3: a promoted admin signed in with the login code alone reaches no admin route", func(t *testing.T) {
				a, h := clients(t)
				me := signInFull(t, a, logs, "+573001110003") // what a SIM swap gives
				a.must(200, "PUT", "/v1/admin/users/"+me["user_id"].(string)+"/roles", admin, map[string]any{"roles": []string{"client", "admin"}, "reason": "promoted"})
				refreshed := a.must(200, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": me["refresh_token"]})
				tok := refreshed["access_token"].(string)
				if refreshed["role"] != "admin" {
					t.Fatalf("the refreshed token is not the admin's: %v", refreshed["role"])
				}
				for _, path := range []string{"/v1/admin/audit", "/v1/admin/kiosks", "/v1/agenda?staff_id=ana&date=2030-01-07"} {
					h.want(403, "second_factor_required", "GET", path, "", "Authorization", "Bearer "+tok)
				}
			})

			t.Run("item 5: one client firing holds in parallel keeps at most its cap", func(t *testing.T) {
				a, _ := clients(t)
				a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
					"time_zone": "America/Bogota", "weekly_hours": everyDay("06:00", "22:00"), "active": true, "version": 0})
				a.must(200, "PUT", "/v1/admin/services/massage-30", admin, map[string]any{"name": "Masaje", "category": "body",
					"duration_minutes": 30, "price_minor": 5000000, "required_skills": []string{"massage"}, "active": true, "version": 0})
				hoarder := tokenFor(t, "hoarder", "client")
				bogota, _ := time.LoadLocation("America/Bogota")
				day := time.Now().In(bogota).AddDate(0, 0, 3)
				first := time.Date(day.Year(), day.Month(), day.Day(), 7, 0, 0, 0, bogota)
				const tries = 24 // the review saw 48 holds in 0.3 s
				codes := make(chan int, tries)
				for i := range tries {
					go func() {
						start := first.Add(time.Duration(i) * 30 * time.Minute).Format(time.RFC3339)
						code, _ := a.call("POST", "/v1/appointments", hoarder, map[string]any{"service_id": "massage-30", "staff_id": "ana", "start": start},
							"Idempotency-Key", fmt.Sprintf("hoard-%d", i))
						codes <- code
					}()
				}
				held, capped := 0, 0
				for range tries {
					switch code := <-codes; code {
					case 201:
						held++
					case 429:
						capped++
					default:
						t.Errorf("a hold answered %d", code)
					}
				}
				if held > 10 || held+capped != tries || capped == 0 {
					t.Fatalf("%d holds granted, %d refused by the cap (SPA_HOLDS_PER_CLIENT 10)", held, capped)
				}
			})

			t.Run("item 7: a stranger's wrong codes lock the number for the stranger's network only", func(t *testing.T) {
				a, h := clients(t)
				phone := "+573001110007"
				stranger := []string{"X-Forwarded-For", "203.0.113.7"}
				a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone}, stranger...)
				for range 5 {
					code, _ := a.call("POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": "000000"}, stranger...)
					if code != 400 && code != 429 {
						t.Fatalf("wrong code: %d", code)
					}
				}
				h.want(429, "otp_locked", "POST", "/v1/auth/otp/verify", `{"phone":"`+phone+`","code":"000000"}`,
					"Content-Type", "application/json", "X-Forwarded-For", "203.0.113.7")
				// The code the stranger asked for went to the owner's phone.
				owner := []string{"X-Forwarded-For", "198.51.100.9"}
				a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": lastCode(t, logs, phone)}, owner...)
			})

			t.Run("items 8 and 9: a kiosk is issued once per key and a revoked one opens nothing", func(t *testing.T) {
				a, h := clients(t)
				first := a.must(201, "POST", "/v1/admin/kiosks", admin, map[string]any{"label": "front desk"}, "Idempotency-Key", "kiosk-1")
				again := a.must(201, "POST", "/v1/admin/kiosks", admin, map[string]any{"label": "front desk"}, "Idempotency-Key", "kiosk-1")
				if first["id"] != again["id"] || first["token"] == nil || again["token"] != nil {
					t.Fatalf("retried issue: first %v, again %v", first["id"], again)
				}
				kiosk := first["token"].(string)
				a.must(204, "DELETE", "/v1/admin/kiosks/"+first["id"].(string), admin, nil)
				for _, r := range [][2]string{{"POST", "/v1/carts"}, {"GET", "/v1/services"}, {"POST", "/v1/kiosk/otp"}} {
					h.want(401, "unauthenticated", r[0], r[1], `{}`, "Authorization", "Bearer "+kiosk, "Content-Type", "application/json")
				}
			})

			t.Run("item 10: input edges", func(t *testing.T) {
				_, h := clients(t)
				bearer := []string{"Authorization", "Bearer " + admin}
				jsonBearer := append([]string{"Content-Type", "application/json"}, bearer...)
				h.want(400, "invalid_character", "GET", "/v1/admin/audit?subject=user%00x", "", bearer...)
				h.want(400, "invalid_character", "PUT", "/v1/admin/services/nul", `{"name":"a\u0000b","category":"x","duration_minutes":30,"price_minor":1,"active":true,"version":0}`, jsonBearer...)
				h.want(422, "validation_failed", "PUT", "/v1/admin/services/huge", `{"name":"Huge","category":"x","duration_minutes":30,"price_minor":9223372036854775807,"active":true,"version":0}`, jsonBearer...)
				h.want(404, "not_found", "GET", "/V1/SERVICES", "")
				h.want(404, "not_found", "GET", "/v1/services/", "")
				h.want(404, "not_found", "GET", "/v1/clients/nobody-at-all/profile", "", bearer...)
				h.want(401, "unauthenticated", "GET", "/v1/admin/audit", "", "Authorization", "Bearer "+forgeLongToken(t))
			})

			t.Run("item 11: disclosure", func(t *testing.T) {
				_, h := clients(t)
				res := h.send("GET", "/readyz", "")
				if b := string(res.body); strings.Contains(b, "127.0.0.1") || strings.Contains(b, "sqlite") || strings.Contains(b, "postgres") || strings.Contains(b, "dial") {
					t.Errorf("anonymous /readyz discloses internals: %s", b)
				}
				// This node trusts 127.0.0.1 as its proxy; one that trusts no
				// proxy must not believe a client's X-Forwarded-Proto.
				if res := h.send("GET", "/healthz", "", "X-Forwarded-Proto", "https"); res.header.Get("Strict-Transport-Security") == "" {
					t.Errorf("no HSTS behind a trusted TLS proxy")
				}
				plainEnv := map[string]string{"SPA_TOKEN_SECRET": clusterSecret}
				plain, _, _ := serveInProcess(t, plainEnv, t.TempDir())
				if res := (hostile{t: t, base: plain}).send("GET", "/healthz", "", "X-Forwarded-Proto", "https"); res.header.Get("Strict-Transport-Security") != "" {
					t.Errorf("HSTS from a client's spoofed X-Forwarded-Proto")
				}
				res = h.send("OPTIONS", "/v1/legal/consents", "", "Origin", "https://book.example.com",
					"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-device-id")
				if allow := strings.ToLower(res.header.Get("Access-Control-Allow-Headers")); res.status >= 300 || !strings.Contains(allow, "x-device-id") {
					t.Errorf("CORS preflight for X-Device-ID: %d allow %q", res.status, allow)
				}
			})
		})
	}
}

// hostile sends raw requests (bodies as given, headers in pairs) and
// checks status and error code.
type hostile struct {
	t    *testing.T
	base string
}

type rawResult struct {
	status int
	header http.Header
	body   []byte
}

func (h hostile) send(method, path, body string, hdr ...string) rawResult {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return rawResult{res.StatusCode, res.Header, b}
}

func (h hostile) want(status int, code, method, path, body string, hdr ...string) {
	h.t.Helper()
	r := h.send(method, path, body, hdr...)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	if r.status != status || e.Error.Code != code {
		h.t.Errorf("%s %s: %d %s; want %d %s", method, path, r.status, r.body, status, code)
	}
}

// forgeLongToken signs, with the node's own secret, an admin token that
// claims ten years of life: only the lifetime cap can refuse it.
func forgeLongToken(t *testing.T) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(clusterSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "spa", "sub": "owner", "role": "admin", "amr": []string{"mfa"},
		"iat": now.Unix(), "exp": now.AddDate(10, 0, 0).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
