package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
)

// raw sends one request without the OpenAPI check of do: edge refusals
// such as invalid_character may answer any route, as 413 does.
func (e *env) raw(method, target, body string, hdr ...string) result {
	e.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{res.StatusCode, res.Header, b}
}

// TestNULRefusedAtTheEdge: a NUL character in the query string, the path
// or a JSON body (raw or as the escape \u0000), or invalid UTF-8 in the
// path or query, is 400 invalid_character on every route, before any value
// reaches the store: PostgreSQL refused it with SQLSTATE 22021, a 500. On
// each driver.
func TestNULRefusedAtTheEdge(t *testing.T) {
	drivers := map[string]envOpt{"sqlite": func(*Deps) {}}
	if pgtest.Available(t) {
		drivers["postgres"] = func(d *Deps) { d.Store = pgtest.Open(t, "gateway", persistence.Options{}) }
	}
	for name, opt := range drivers {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, opt)
			admin := "Bearer " + e.token("root", auth.RoleAdmin)
			service := `{"name":"Facial","category":"face","duration_minutes":30,"price_minor":8000000,"required_skills":["facial"]}`
			for _, tc := range []struct{ method, target, body string }{
				{"GET", "/v1/admin/audit?subject=user%00x", ""},
				{"GET", "/v1/admin/audit?sub%00ject=x", ""},
				{"GET", "/v1/admin/audit?subject=%ff%fe", ""},
				{"GET", "/v1/admin/services/fa%00cial", ""},
				{"GET", "/v1/services/fa%c3", ""},
				{"PUT", "/v1/admin/services/facial", strings.Replace(service, "Facial", `Fa\u0000cial`, 1)},
				{"PUT", "/v1/admin/services/facial", strings.Replace(service, "Facial", `Fa\\\u0000cial`, 1)}, // "\" then NUL
				{"PUT", "/v1/admin/services/facial", strings.Replace(service, "Facial", "Fa\x00cial", 1)},
			} {
				r := e.raw(tc.method, tc.target, tc.body, "Authorization", admin, "Content-Type", "application/json")
				if r.status != 400 || r.errCode(t) != "invalid_character" {
					t.Errorf("%s %s %q: %d %s", tc.method, tc.target, tc.body, r.status, r.body)
				}
			}
			// The six characters \u0000 (an escaped backslash, then
			// "u0000") are text like any other.
			r := e.raw("PUT", "/v1/admin/services/facial", strings.Replace(service, "Facial", `Fa\\u0000cial`, 1),
				"Authorization", admin, "Content-Type", "application/json")
			if r.status >= 500 || (r.status == 400 && r.errCode(t) == "invalid_character") {
				t.Errorf("escaped backslash refused: %d %s", r.status, r.body)
			}
			if r := e.raw("GET", "/v1/admin/audit?subject=Mar%C3%ADa", "", "Authorization", admin); r.status != 200 {
				t.Errorf("UTF-8 query: %d %s", r.status, r.body)
			}
		})
	}
}

func TestHasJSONEscapedNUL(t *testing.T) {
	for body, want := range map[string]bool{
		`{"a":"\u0000"}`:        true,
		`{"a":"x\\\u0000"}`:     true,
		`{"a":"\\u0000"}`:       false,
		`{"a":"\\\\u0000"}`:     false,
		`{"a":"\\u0000\u0000"}`: true,
		`{"a":"\u00001"}`:       true,
		`{"a":"\u0001"}`:        false,
		`\u0000`:                true,
		``:                      false,
	} {
		if got := hasJSONEscapedNUL([]byte(body)); got != want {
			t.Errorf("%s: %v, want %v", body, got, want)
		}
	}
}

// TestRoutingIsStrict: a route answers under its one spelling; another
// case or a trailing slash is 404, so nothing keyed by the path (rules in
// front of the API, metrics, logs) sees two names for one route.
func TestRoutingIsStrict(t *testing.T) {
	e := newEnv(t)
	admin := "Bearer " + e.token("root", auth.RoleAdmin)
	for _, path := range []string{"/v1/services", "/v1/admin/services", "/healthz"} {
		if r := e.do("GET", path, "", "Authorization", admin); r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	for _, path := range []string{"/v1/SERVICES", "/v1/Services", "/v1/services/", "/V1/admin/services", "/v1/Admin/services", "/v1/admin/services/", "/HEALTHZ"} {
		if r := e.do("GET", path, "", "Authorization", admin); r.status != 404 || r.errCode(t) != "not_found" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}
