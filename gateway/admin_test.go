package gateway

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/resilient"
)

func TestAdminListener(t *testing.T) {
	e := newEnv(t)
	e.do("GET", "/healthz", "")
	admin, err := NewAdmin(AdminDeps{Tokens: e.tokens, Gatherer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr ...string) (int, string) {
		t.Helper()
		res, err := admin.Test(newRequest("GET", path, "", hdr), -1)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// Metrics are anonymous on the admin address: a scraper has no token.
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `spa_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Fatalf("/metrics: %d %.300s", code, body)
	}
	// Profiles need an admin.
	for who, hdr := range map[string][]string{
		"anonymous": nil,
		"client":    {"Authorization", "Bearer " + e.token("c", auth.RoleClient)},
		"bad token": {"Authorization", "Bearer nope"},
	} {
		if code, body := get("/debug/pprof/", hdr...); code != 401 && code != 403 {
			t.Errorf("%s reads pprof: %d %.200s", who, code, body)
		}
	}
	if code, body := get("/debug/pprof/", "Authorization", "Bearer "+e.token("root", auth.RoleAdmin)); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("admin pprof: %d %.300s", code, body)
	}
	// The ops console: a page over /metrics, anonymous like it.
	if code, body := get("/"); code != 200 || !strings.Contains(body, `<script src="/console/console.js">`) {
		t.Fatalf("console page: %d %.300s", code, body)
	}
	for _, asset := range []string{"/console/console.js", "/console/console.css"} {
		res, err := admin.Test(newRequest("GET", asset, "", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("%s: %d, CSP %q", asset, res.StatusCode, res.Header.Get("Content-Security-Policy"))
		}
	}
	if code, body := get("/v1/studio"); code != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("the admin app serves the API: %d %s", code, body)
	}
	// With the API app, the admin routes (and only those) answer here as
	// on the API port: same authentication, same bodies.
	admin, err = NewAdmin(AdminDeps{Tokens: e.tokens, Gatherer: e.reg, API: e.app})
	if err != nil {
		t.Fatal(err)
	}
	root := e.token("root", auth.RoleAdmin)
	if code, body := get("/v1/admin/audit"); code != 401 || !strings.Contains(body, `"code"`) {
		t.Fatalf("anonymous audit through the admin listener: %d %s", code, body)
	}
	if code, body := get("/v1/admin/audit", "Authorization", "Bearer "+e.token("c", auth.RoleClient)); code != 403 {
		t.Fatalf("a client reads the audit through the admin listener: %d %s", code, body)
	}
	if code, body := get("/v1/admin/audit?limit=5", "Authorization", "Bearer "+root); code != 200 || !strings.Contains(body, `"entries"`) {
		t.Fatalf("admin audit through the admin listener: %d %s", code, body)
	}
	if code, body := get("/v1/cluster", "Authorization", "Bearer "+root); code != 200 || !strings.Contains(body, `"mode":"single"`) {
		t.Fatalf("cluster through the admin listener: %d %s", code, body)
	}
	if code, body := get("/v1/studio"); code != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("the admin listener forwards a public route: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `route="/v1/admin/audit",status="200"`) {
		t.Fatalf("/metrics after forwarding: %d %.300s", code, body)
	}
	// A body larger than the API port takes is refused here too.
	big := `{"reason":"` + strings.Repeat("x", DefaultBodyLimit) + `"}`
	res, err := admin.Test(newRequest("POST", "/v1/admin/payments/exceptions/x/resolve", big,
		[]string{"Authorization", "Bearer " + root, "Content-Type", "application/json", "Idempotency-Key", "big-1"}), -1)
	switch {
	case err != nil && strings.Contains(err.Error(), "body size exceeds"): // fasthttp refused it while reading
	case err != nil:
		t.Fatal(err)
	default:
		res.Body.Close()
		if res.StatusCode != 413 {
			t.Fatalf("a body over the API's limit through the admin listener: %d", res.StatusCode)
		}
	}
	if _, err := NewAdmin(AdminDeps{Gatherer: prometheus.NewRegistry()}); err == nil {
		t.Fatal("admin app without tokens accepted")
	}
}

// TestReadyzShowsProvidersDegradedNotUnready: an open provider breaker is
// shown (degraded) and readiness still passes.
func TestReadyzShowsProvidersDegradedNotUnready(t *testing.T) {
	at := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	health := []resilient.Health{{Provider: "twilio", State: "open"}, {Provider: "wompi", State: "closed", LastSuccess: at}}
	e := newEnv(t, func(d *Deps) { d.Providers = func() []resilient.Health { return health } })
	r := e.do("GET", "/readyz", "")
	m := r.json(t)
	if r.status != 200 || m["status"] != "ready" || m["degraded"] != true {
		t.Fatalf("%d %s", r.status, r.body)
	}
	p := m["providers"].(map[string]any)
	if p["twilio"].(map[string]any)["state"] != "open" || p["wompi"].(map[string]any)["last_success"] != "2026-03-01T14:00:00Z" {
		t.Fatalf("providers %s", r.body)
	}
	health[0].State = "closed"
	if m := e.do("GET", "/readyz", "").json(t); m["degraded"] != false {
		t.Fatalf("all closed yet degraded: %v", m)
	}
}
