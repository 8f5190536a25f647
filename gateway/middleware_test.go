package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"
)

// TestHTTPMetricsSeriesCache: cached series count into the same children
// the vectors hold, one per method, route and status, and past the cache's
// bound requests are still counted.
func TestHTTPMetricsSeriesCache(t *testing.T) {
	m, err := newHTTPMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m.series("POST", "/v1/appointments", 409).requests.Inc()
	}
	m.series("POST", "/v1/appointments", 201).requests.Inc()
	m.series("GET", "/v1/appointments", 409).duration.Observe(0.5)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("POST", "/v1/appointments", "409")); got != 3 {
		t.Fatalf("409s counted %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("POST", "/v1/appointments", "201")); got != 1 {
		t.Fatalf("201s counted %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.duration); got != 2 {
		t.Fatalf("%d duration series, want 2 (GET and POST)", got)
	}
	for i := range maxCachedSeries + 10 {
		m.series("GET", "/r", 1000+i).requests.Inc()
		m.series("GET", "/r", 1000+i).requests.Inc()
	}
	if n := len(*m.cached.Load()); n != maxCachedSeries {
		t.Fatalf("cache holds %d series, bound %d", n, maxCachedSeries)
	}
	last := fmt.Sprint(1000 + maxCachedSeries + 9)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("GET", "/r", last)); got != 2 {
		t.Fatalf("an uncached series counted %v, want 2", got)
	}
}

// TestResponseHeadersOnTheWire: the request id and security headers are
// written under the names c.Set wrote them (fasthttp's canonical form),
// with their values, once each.
func TestResponseHeadersOnTheWire(t *testing.T) {
	e := newEnv(t)
	h := e.app.Handler()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/healthz")
	ctx.Request.Header.Set("X-Request-ID", "abc-123")
	h(&ctx)
	raw := ctx.Response.Header.String()
	for _, line := range []string{"X-Request-Id: abc-123\r\n", "X-Content-Type-Options: nosniff\r\n", "X-Frame-Options: DENY\r\n",
		"Referrer-Policy: no-referrer\r\n", "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n", "Cache-Control: no-store\r\n"} {
		if strings.Count(raw, line) != 1 {
			t.Errorf("response headers lack %q once:\n%s", line, raw)
		}
	}
	if strings.Contains(raw, "Strict-Transport-Security") {
		t.Errorf("HSTS over plain HTTP:\n%s", raw)
	}
	ctx.Response.Reset()
	ctx.ResetUserValues()
	ctx.Request.Header.Set("X-Forwarded-Proto", "HTTPS")
	h(&ctx)
	if raw := ctx.Response.Header.String(); strings.Contains(raw, "Strict-Transport-Security") {
		t.Errorf("HSTS on the word of an untrusted peer:\n%s", raw)
	}
	behind := newEnv(t, func(d *Deps) { d.Config.ProxyHeader, d.Config.TrustedProxies = "X-Forwarded-For", []string{"0.0.0.0"} })
	ctx.Response.Reset()
	ctx.ResetUserValues()
	behind.app.Handler()(&ctx)
	if raw := ctx.Response.Header.String(); !strings.Contains(raw, "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n") {
		t.Errorf("no HSTS behind a trusted TLS proxy:\n%s", raw)
	}
}
