package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

type env struct {
	t      testing.TB
	app    *fiber.App
	store  persistence.Store
	tokens *auth.Tokens
	logs   *bytes.Buffer
	// reg is the registry the app's metrics went to.
	reg prometheus.Gatherer
}

type envOpt func(*Deps)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	st := sqlitetest.Open(t, persistence.Options{})
	tokens, err := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "spa-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	d := Deps{
		Store:  st,
		Tokens: tokens,
		Logger: slog.New(slog.NewJSONHandler(&syncWriter{w: logs}, nil)),
		Config: Config{BodyLimit: 4096, CORSOrigins: []string{"https://book.example.com"}},
	}
	for _, o := range opts {
		o(&d)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	reg, ok := d.Registerer.(prometheus.Gatherer)
	if !ok {
		t.Fatal("test registerer is not a gatherer")
	}
	app, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, app: app, store: st, tokens: tokens, logs: logs, reg: reg}
}

// metrics is what the admin listener's /metrics serves for the env's
// registry (the public app serves none).
func (e *env) metrics() result {
	e.t.Helper()
	admin, err := NewAdmin(AdminDeps{Tokens: e.tokens, Gatherer: e.reg})
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := admin.Test(newRequest("GET", "/metrics", "", nil), -1)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{res.StatusCode, res.Header, b}
}

// syncWriter serialises log writes from concurrent requests.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (e *env) token(sub string, role auth.Role) string {
	e.t.Helper()
	s, _, err := e.tokens.Mint(sub, role, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return m
}

func (r result) errCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %s", r.body)
	}
	if e["request_id"] == "" || e["request_id"] != r.header.Get("X-Request-ID") {
		t.Fatalf("error request_id %v, header %q", e["request_id"], r.header.Get("X-Request-ID"))
	}
	code, _ := e["code"].(string)
	return code
}

// do sends one request through the app. Every exchange is also checked
// against the OpenAPI document (see conform in openapi_test.go), so a test
// that exercises a behaviour the document does not describe fails.
func (e *env) do(method, path string, body string, hdr ...string) result {
	e.t.Helper()
	res, err := e.app.Test(newRequest(method, path, body, hdr), -1)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := result{res.StatusCode, res.Header, b}
	e.conform(method, path, body, hdr, r)
	return r
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "")
	if r.status != 200 || r.json(t)["status"] != "ok" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "", "X-Request-ID", "abc-123:x.y_z")
	if got := r.header.Get("X-Request-ID"); got != "abc-123:x.y_z" {
		t.Fatalf("echo: %q", got)
	}
	r = e.do("GET", "/healthz", "")
	if got := r.header.Get("X-Request-ID"); len(got) != 26 {
		t.Fatalf("generated: %q", got)
	}
	for _, bad := range []string{"has space", "semi;colon", strings.Repeat("a", 129), "<script>"} {
		r = e.do("GET", "/healthz", "", "X-Request-ID", bad)
		if got := r.header.Get("X-Request-ID"); got == bad || len(got) != 26 {
			t.Fatalf("bad id %q accepted as %q", bad, got)
		}
	}
}

func TestPanicIsAPlain500(t *testing.T) {
	e := newEnv(t)
	e.app.Get("/boom", func(c *fiber.Ctx) error { panic("secret database password") })
	r := e.do("GET", "/boom", "")
	if r.status != 500 || r.errCode(t) != "internal" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "secret") {
		t.Fatalf("panic text leaked: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "secret database password") {
		t.Fatal("panic not logged")
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatal("security headers missing on a panic")
	}
}

func TestUnknownErrorIsGeneric(t *testing.T) {
	e := newEnv(t)
	e.app.Get("/err", func(c *fiber.Ctx) error { return errors.New("pq: relation users does not exist") })
	r := e.do("GET", "/err", "")
	if r.status != 500 || r.errCode(t) != "internal" || strings.Contains(string(r.body), "relation") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), "relation users does not exist") {
		t.Fatal("cause not logged")
	}
}

// TestBodyLimit goes through a real listener: fasthttp rejects the body
// while reading it, and app.Test reports that as its own error instead of
// returning the response the client gets.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.Shutdown() })

	req, _ := http.NewRequest("PUT", "http://"+ln.Addr().String()+"/v1/admin/studio", strings.NewReader(strings.Repeat("x", 10_000)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token("a", auth.RoleAdmin))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := result{res.StatusCode, res.Header, b}
	if r.status != 413 || r.errCode(t) != "payload_too_large" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r.header.Get("X-Frame-Options") != "DENY" {
		t.Fatal("security headers missing on 413")
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "")
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP")
	}
	// X-Forwarded-Proto is believed from a trusted proxy only: from anyone
	// else it is the client's own word.
	r = e.do("GET", "/healthz", "", "X-Forwarded-Proto", "https")
	if r.header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on the word of a client that is no proxy of ours")
	}
	behind := newEnv(t, func(d *Deps) {
		d.Config.ProxyHeader = "X-Forwarded-For"
		d.Config.TrustedProxies = []string{"0.0.0.0", "::"} // app.Test's peer
	})
	r = behind.do("GET", "/healthz", "", "X-Forwarded-Proto", "https")
	if !strings.HasPrefix(r.header.Get("Strict-Transport-Security"), "max-age=") {
		t.Error("no HSTS behind a trusted TLS proxy")
	}
	if r = behind.do("GET", "/healthz", ""); r.header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS behind a trusted proxy that forwarded plain HTTP")
	}
	other := newEnv(t, func(d *Deps) {
		d.Config.ProxyHeader = "X-Forwarded-For"
		d.Config.TrustedProxies = []string{"10.0.0.0/8"} // not the peer
	})
	if r = other.do("GET", "/healthz", "", "X-Forwarded-Proto", "https"); r.header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on the word of a peer outside the trusted proxies")
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t)
	pre := func(origin string) result {
		return e.do("OPTIONS", "/v1/admin/studio", "", "Origin", origin,
			"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "authorization,content-type")
	}
	r := pre("https://book.example.com")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://book.example.com" {
		t.Fatalf("allowed origin: %d %v", r.status, r.header)
	}
	if !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PUT") {
		t.Fatalf("methods: %q", r.header.Get("Access-Control-Allow-Methods"))
	}
	// Anonymous consents name the device: a browser must be let send it.
	consent := e.do("OPTIONS", "/v1/legal/consents", "", "Origin", "https://book.example.com",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-device-id")
	if allowed := strings.Split(strings.ToLower(consent.header.Get("Access-Control-Allow-Headers")), ","); consent.status != 204 ||
		!slices.Contains(allowed, "x-device-id") || !slices.Contains(allowed, "x-cart-token") || !slices.Contains(allowed, "idempotency-key") {
		t.Fatalf("allowed headers: %d %q", consent.status, consent.header.Get("Access-Control-Allow-Headers"))
	}
	r = pre("https://evil.example.net")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", r.header)
	}

	// No configured origins: no CORS headers at all.
	e2 := newEnv(t, func(d *Deps) { d.Config.CORSOrigins = nil })
	r = e2.do("OPTIONS", "/v1/admin/studio", "", "Origin", "https://book.example.com", "Access-Control-Request-Method", "PUT")
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("CORS headers without config: %v", r.header)
	}
}

func TestBadCORSConfig(t *testing.T) {
	st := &nopStore{}
	tokens, _ := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "x", nil)
	for _, o := range []string{"*", "not a url"} {
		if _, err := New(Deps{Store: st, Tokens: tokens, Config: Config{CORSOrigins: []string{o}}}); err == nil {
			t.Errorf("origin %q accepted", o)
		}
	}
}

// nopStore satisfies persistence.Store for constructor tests.
type nopStore struct{ persistence.Store }

func (*nopStore) Ping(context.Context) error { return nil }

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/nope/<script>", "")
	if r.status != 404 || r.errCode(t) != "not_found" || strings.Contains(string(r.body), "script") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = e.do("DELETE", "/healthz", "")
	if r.status != 405 || r.errCode(t) != "method_not_allowed" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t, func(d *Deps) {
		d.Checks = []Check{{Name: "nats", Check: func(context.Context) error { return nil }}}
	})
	r := e.do("GET", "/readyz", "")
	m := r.json(t)
	checks, _ := m["checks"].(map[string]any)
	if r.status != 200 || m["status"] != "ready" || checks["store"] != "ok" || checks["nats"] != "ok" {
		t.Fatalf("%d %s", r.status, r.body)
	}

	e = newEnv(t, func(d *Deps) {
		d.Config.ReadyTimeout = 100 * time.Millisecond
		d.Checks = []Check{
			{Name: "nats", Check: func(context.Context) error { return errors.New("no servers available: " + strings.Repeat("x", 500)) }},
			{Name: "slow", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		}
	})
	start := time.Now()
	r = e.do("GET", "/readyz", "")
	m = r.json(t)
	checks, _ = m["checks"].(map[string]any)
	if r.status != 503 || m["status"] != "unready" || checks["store"] != "ok" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if checks["nats"] != "error" || checks["slow"] != "error" {
		t.Fatalf("anonymous: %s", r.body)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("checks did not run concurrently with a timeout")
	}
	r = e.do("GET", "/readyz", "", "Authorization", "Bearer "+e.token("root", auth.RoleAdmin))
	m = r.json(t)
	checks, _ = m["checks"].(map[string]any)
	nats, _ := checks["nats"].(string)
	if r.status != 503 || !strings.HasPrefix(nats, "error: no servers available") || len(nats) > 200 {
		t.Fatalf("admin: nats = %q", nats)
	}
	if s, _ := checks["slow"].(string); !strings.HasPrefix(s, "error: context deadline") {
		t.Fatalf("admin: slow = %q", s)
	}
}

// TestReadyzHidesInternalsFromNonAdmins: a failing check's text names the
// database's user, name, host and port; anonymous callers and non-admin
// tokens get the status and the component names only, an admin token the
// text.
func TestReadyzHidesInternalsFromNonAdmins(t *testing.T) {
	const detail = `failed to connect to user=spa_prod database=spa host=10.20.30.40 port=5432: connection refused`
	e := newEnv(t, func(d *Deps) {
		d.Checks = []Check{{Name: "store", Check: func(context.Context) error { return errors.New(detail) }}}
	})
	for who, hdr := range map[string][]string{
		"anonymous": nil,
		"client":    {"Authorization", "Bearer " + e.token("u1", auth.RoleClient)},
		"staff":     {"Authorization", "Bearer " + e.token("u2", auth.RoleStaff)},
	} {
		r := e.do("GET", "/readyz", "", hdr...)
		for _, leak := range []string{"spa_prod", "10.20.30.40", "5432", "connect"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("%s sees %q: %s", who, leak, r.body)
			}
		}
		if m := r.json(t); r.status != 503 || m["status"] != "unready" || m["checks"].(map[string]any)["store"] != "error" {
			t.Errorf("%s: %d %s", who, r.status, r.body)
		}
	}
	r := e.do("GET", "/readyz", "", "Authorization", "Bearer "+e.token("root", auth.RoleAdmin))
	if !strings.Contains(string(r.body), "10.20.30.40") {
		t.Errorf("admin does not see the detail: %s", r.body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(d *Deps) { d.Registerer = reg })
	e.do("GET", "/healthz", "")
	e.do("GET", "/random/path/123", "")
	if r := e.do("GET", "/metrics", ""); r.status != 404 {
		t.Fatalf("the public app serves /metrics: %d", r.status)
	}
	r := e.metrics()
	body := string(r.body)
	if r.status != 200 || !strings.Contains(body, `spa_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
		t.Fatalf("%d %s", r.status, body)
	}
	if !strings.Contains(body, `route="unmatched",status="404"`) || strings.Contains(body, "/random/path") {
		t.Fatal("raw path used as a label")
	}
	if !strings.Contains(body, "spa_http_request_duration_seconds_bucket") {
		t.Fatal("no duration histogram")
	}
	// Registering twice on one registry is a wiring bug and must be said.
	if _, err := New(Deps{Store: e.store, Tokens: e.tokens, Registerer: reg}); err == nil {
		t.Fatal("duplicate registration not reported")
	}
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	e.do("GET", "/v1/admin/studio", "", "Authorization", "Bearer "+e.token("a", auth.RoleAdmin), "X-Request-ID", "trace-1")
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
			line = m
		}
	}
	if line == nil || line["request_id"] != "trace-1" || line["route"] != "/v1/admin/studio" ||
		line["method"] != "GET" || line["status"] != float64(404) || line["remote_ip"] == nil || line["duration_ms"] == nil {
		t.Fatalf("access log: %v", line)
	}
	if strings.Contains(e.logs.String(), "Bearer") {
		t.Fatal("Authorization logged")
	}
}

func TestAuthErrors(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/admin/studio", "", "Authorization", "Bearer garbage")
	if r.status != 401 || r.errCode(t) != "unauthenticated" || r.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	r = e.do("GET", "/v1/admin/studio", "", "Authorization", "Basic Zm9vOmJhcg==")
	if r.status != 401 {
		t.Fatalf("basic: %d", r.status)
	}
	// A bad token is refused even on public routes: the client must know.
	r = e.do("GET", "/v1/studio", "", "Authorization", "Bearer garbage")
	if r.status != 401 {
		t.Fatalf("public with bad token: %d", r.status)
	}
}

const goodStudio = `{"name":"  Casa Calma  ","time_zone":"America/Bogota","currency":"COP","phone":"+573001234567","email":"hola@casacalma.co","version":0}`

func (e *env) putStudio(token, body string, hdr ...string) result {
	e.t.Helper()
	h := append([]string{"Content-Type", "application/json"}, hdr...)
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	return e.do("PUT", "/v1/admin/studio", body, h...)
}

func (e *env) effects() (audit []persistence.AuditEntry, outbox []persistence.OutboxEvent) {
	e.t.Helper()
	ctx := context.Background()
	err := e.store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		if audit, err = tx.AuditList(ctx, persistence.AuditListParams{Limit: 1000}); err != nil {
			return err
		}
		outbox, err = tx.OutboxPending(ctx, 1000)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return audit, outbox
}

func TestStudioFlow(t *testing.T) {
	e := newEnv(t)
	admin := e.token("owner-1", auth.RoleAdmin)

	if r := e.do("GET", "/v1/studio", ""); r.status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("before setup: %d %s", r.status, r.body)
	}
	if r := e.putStudio("", goodStudio); r.status != 401 || r.errCode(t) != "unauthenticated" {
		t.Fatalf("no token: %d %s", r.status, r.body)
	}
	if r := e.putStudio(e.token("c-1", auth.RoleClient), goodStudio); r.status != 403 || r.errCode(t) != "forbidden" {
		t.Fatalf("client: %d %s", r.status, r.body)
	}

	r := e.putStudio(admin, goodStudio, "X-Request-ID", "req-put-1")
	if r.status != 200 {
		t.Fatalf("admin put: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["name"] != "Casa Calma" || m["version"] != float64(1) || m["phone"] != "+573001234567" || m["email"] != "hola@casacalma.co" {
		t.Fatalf("admin view: %s", r.body)
	}

	pub := e.do("GET", "/v1/studio", "")
	if pub.status != 200 || string(pub.body) != `{"name":"Casa Calma","time_zone":"America/Bogota","currency":"COP"}` {
		t.Fatalf("public: %d %s", pub.status, pub.body)
	}
	adm := e.do("GET", "/v1/admin/studio", "", "Authorization", "Bearer "+admin)
	if adm.status != 200 || adm.json(t)["version"] != float64(1) {
		t.Fatalf("admin get: %d %s", adm.status, adm.body)
	}

	// The audit entry and the event were written with the studio.
	audit, outbox := e.effects()
	if len(audit) != 1 || len(outbox) != 1 {
		t.Fatalf("audit %d outbox %d", len(audit), len(outbox))
	}
	a := audit[0]
	if a.Action != "studio.update" || a.ActorID != "owner-1" || a.ActorRole != "admin" || a.RequestID != "req-put-1" || a.Subject != "studio/default" {
		t.Fatalf("audit entry %+v", a)
	}
	if bytes.Contains(a.Detail, []byte("3001234567")) || bytes.Contains(a.Detail, []byte("hola@")) {
		t.Fatalf("PII in audit detail: %s", a.Detail)
	}
	ev := outbox[0]
	if ev.Subject != "spa.events.studio_updated" || ev.Type != "spa.v1.StudioUpdated" {
		t.Fatalf("outbox %+v", ev)
	}
	var env messages.Event
	if err := proto.Unmarshal(ev.Payload, &env); err != nil {
		t.Fatal(err)
	}
	var su messages.StudioUpdated
	if err := env.GetPayload().UnmarshalTo(&su); err != nil {
		t.Fatal(err)
	}
	if env.GetId() != ev.ID || env.GetRequestId() != "req-put-1" || env.GetActor() != "owner-1" || su.GetVersion() != 1 || su.GetName() != "Casa Calma" {
		t.Fatalf("event %v / %v", &env, &su)
	}

	// A stale version is a conflict and writes nothing.
	r = e.putStudio(admin, goodStudio)
	if r.status != 409 || r.errCode(t) != "version_conflict" {
		t.Fatalf("stale: %d %s", r.status, r.body)
	}
	// The current version updates.
	r = e.putStudio(admin, strings.Replace(goodStudio, `"version":0`, `"version":1`, 1))
	if r.status != 200 || r.json(t)["version"] != float64(2) {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	if audit, outbox = e.effects(); len(audit) != 2 || len(outbox) != 2 {
		t.Fatalf("after update: audit %d outbox %d", len(audit), len(outbox))
	}
}

func TestStudioValidation(t *testing.T) {
	e := newEnv(t)
	admin := e.token("owner-1", auth.RoleAdmin)
	cases := []struct {
		name, body, ct string
		status         int
		code           string
	}{
		{"wrong content type", goodStudio, "text/plain", 415, "unsupported_media_type"},
		{"unknown field", `{"name":"x","time_zone":"UTC","currency":"COP","extra":1}`, "", 400, "bad_request"},
		{"not json", `{"name":`, "", 400, "bad_request"},
		{"trailing data", goodStudio + `{}`, "", 400, "bad_request"},
		{"array", `[]`, "", 400, "bad_request"},
		{"wrong type", `{"version":"1"}`, "", 400, "bad_request"},
		{"empty", ``, "", 400, "bad_request"},
		{"empty name", `{"name":"   ","time_zone":"UTC","currency":"COP"}`, "", 422, "validation_failed"},
		{"long name", `{"name":"` + strings.Repeat("a", 121) + `","time_zone":"UTC","currency":"COP"}`, "", 422, "validation_failed"},
		{"bad zone", `{"name":"x","time_zone":"Mars/Olympus","currency":"COP"}`, "", 422, "validation_failed"},
		{"local zone", `{"name":"x","time_zone":"Local","currency":"COP"}`, "", 422, "validation_failed"},
		{"bad currency", `{"name":"x","time_zone":"UTC","currency":"cop"}`, "", 422, "validation_failed"},
		{"bad phone", `{"name":"x","time_zone":"UTC","currency":"COP","phone":"3001234567"}`, "", 422, "validation_failed"},
		{"bad email", `{"name":"x","time_zone":"UTC","currency":"COP","email":"Bob <bob@x.co>"}`, "", 422, "validation_failed"},
		{"negative version", `{"name":"x","time_zone":"UTC","currency":"COP","version":-1}`, "", 422, "validation_failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" {
				ct = "application/json"
			}
			r := e.do("PUT", "/v1/admin/studio", tc.body, "Content-Type", ct, "Authorization", "Bearer "+admin)
			if r.status != tc.status || r.errCode(t) != tc.code {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	// Every problem is reported at once.
	r := e.putStudio(admin, `{"name":"","time_zone":"nope","currency":"x","phone":"1","email":"x","version":-1}`)
	fields := r.json(t)["error"].(map[string]any)["details"].(map[string]any)["fields"].([]any)
	if len(fields) != 6 {
		t.Fatalf("fields: %v", fields)
	}
	if audit, outbox := e.effects(); len(audit) != 0 || len(outbox) != 0 {
		t.Fatalf("failed validation wrote audit %d outbox %d", len(audit), len(outbox))
	}
}

func TestStudioIdempotentPut(t *testing.T) {
	e := newEnv(t)
	admin := e.token("owner-1", auth.RoleAdmin)
	first := e.putStudio(admin, goodStudio, "Idempotency-Key", "setup-1")
	second := e.putStudio(admin, goodStudio, "Idempotency-Key", "setup-1")
	if first.status != 200 || second.status != 200 || !bytes.Equal(first.body, second.body) || second.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s / second %d %s", first.status, first.body, second.status, second.body)
	}
	if audit, outbox := e.effects(); len(audit) != 1 || len(outbox) != 1 {
		t.Fatalf("replayed PUT wrote audit %d outbox %d", len(audit), len(outbox))
	}
}

func TestAuditList(t *testing.T) {
	e := newEnv(t)
	admin := e.token("owner-1", auth.RoleAdmin)
	body := goodStudio
	for v := 0; v < 5; v++ {
		b := strings.Replace(body, `"version":0`, `"version":`+string(rune('0'+v)), 1)
		if r := e.putStudio(admin, b); r.status != 200 {
			t.Fatalf("put %d: %d %s", v, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/admin/audit", "", "Authorization", "Bearer "+e.token("s", auth.RoleStaff)); r.status != 403 {
		t.Fatalf("staff: %d", r.status)
	}
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/v1/admin/audit?limit=2&subject=studio/default"
		if cursor != "" {
			path += "&before=" + cursor
		}
		r := e.do("GET", path, "", "Authorization", "Bearer "+admin)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var p struct {
			Entries []struct {
				ID     string          `json:"id"`
				Action string          `json:"action"`
				Detail json.RawMessage `json:"detail"`
			} `json:"entries"`
			Next *string `json:"next"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		for _, en := range p.Entries {
			if en.Action != "studio.update" || len(en.Detail) == 0 {
				t.Fatalf("entry %+v", en)
			}
			seen = append(seen, en.ID)
		}
		if p.Next == nil {
			break
		}
		cursor = *p.Next
	}
	if len(seen) != 5 {
		t.Fatalf("paged %d entries: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("not newest first: %v", seen)
		}
	}
	for _, q := range []string{"limit=0", "limit=abc", "before=nope"} {
		if r := e.do("GET", "/v1/admin/audit?"+q, "", "Authorization", "Bearer "+admin); r.status != 422 {
			t.Fatalf("%s: %d", q, r.status)
		}
	}
	if r := e.do("GET", "/v1/admin/audit?limit=5000", "", "Authorization", "Bearer "+admin); r.status != 200 {
		t.Fatalf("limit clamp: %d", r.status)
	}
}

func FuzzStudioPutBody(f *testing.F) {
	for _, s := range []string{goodStudio, `{}`, `[]`, `null`, `{"version":1e400}`, `{"name":"\u0000"}`, `{"name":1}`, `{"version":9223372036854775807}`, "\xff", `{"time_zone":"../../etc/passwd"}`} {
		f.Add([]byte(s))
	}
	e := newEnv(f) // one store for all inputs: opening SQLite per input is too slow
	admin := e.token("owner-1", auth.RoleAdmin)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("PUT", "/v1/admin/studio", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := e.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 || !json.Valid(b) {
			t.Fatalf("%q → %d %s", body, res.StatusCode, b)
		}
	})
}
