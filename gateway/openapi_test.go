package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/gateway/openapi"
	"github.com/spa-engine/spa/gateway/openapi/openapitest"
)

// contract is the OpenAPI validator shared by every test in the package.
var contract = sync.OnceValues(openapitest.NewValidator)

// conform checks one exchange made by do against the OpenAPI document: the
// response always, the request too when the server accepted it (status
// below 400), since tests send invalid requests on purpose. CORS preflights
// are middleware, not operations, and benchmarks are left unmeasured by
// validation. Mismatches are reported with Errorf, which is safe from the
// goroutines some tests run requests in.
func (e *env) conform(method, path, body string, hdr []string, r result) {
	e.t.Helper()
	if _, bench := e.t.(*testing.B); bench || method == http.MethodOptions {
		return
	}
	v, err := contract()
	if err != nil {
		e.t.Errorf("openapi: %v", err)
		return
	}
	if err := v.ValidateResponse(newRequest(method, path, body, hdr), r.status, r.header, r.body); err != nil {
		e.t.Errorf("OpenAPI mismatch: %v\n\t%s %s → %d %s", err, method, path, r.status, clip(r.body))
	}
	if r.status < 400 {
		if err := v.ValidateRequest(newRequest(method, path, body, hdr)); err != nil {
			e.t.Errorf("OpenAPI mismatch: %v\n\t%s %s %s → %d", err, method, path, clip([]byte(body)), r.status)
		}
	}
}

// newRequest builds the request do sends; hdr is name, value, name, value….
func newRequest(method, path, body string, hdr []string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

func clip(b []byte) []byte {
	if len(b) > 400 {
		return append(b[:400:400], "…"...)
	}
	return b
}

// noCalendars lets New register the booking routes without actors.
type noCalendars struct{}

func (noCalendars) Ask(context.Context, string, any) (any, error) {
	return nil, errors.New("no calendars in this test")
}

var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPICoversEveryRoute: the routes fiber serves and the operations
// the document describes are the same set, so a route added without
// documentation (or documentation left behind by a removed route) fails.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t, func(d *Deps) { d.Calendars = schedule.NewClient(noCalendars{}) })
	served := map[string]bool{}
	for _, r := range e.app.GetRoutes(true) {
		if r.Method == http.MethodHead || r.Method == http.MethodOptions {
			continue // fiber adds HEAD for every GET; CORS answers OPTIONS
		}
		served[r.Method+" "+fiberParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, op := range sortedKeys(served) {
		if !documented[op] {
			t.Errorf("route %s is not in gateway/openapi/openapi.yaml", op)
		}
	}
	for _, op := range sortedKeys(documented) {
		if !served[op] {
			t.Errorf("the document describes %s, which no route serves", op)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/openapi.json", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || !bytes.Equal(r.body, openapi.Document()) {
		t.Fatalf("%d %q %.80s", r.status, r.header.Get("Content-Type"), r.body)
	}
}

// TestDocsPage: /docs is a page rendering /openapi.json with the embedded
// Redoc, under a CSP that admits only this origin's script.
func TestDocsPage(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/docs", "")
	csp := r.header.Get("Content-Security-Policy")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(r.body, []byte(`spec-url="/openapi.json"`)) || !bytes.Contains(r.body, []byte(`src="/docs/redoc.standalone.js"`)) {
		t.Fatalf("/docs: %d %q %.200s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("/docs CSP %q", csp)
	}
	js := e.do("GET", "/docs/redoc.standalone.js", "")
	if js.status != 200 || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") ||
		!bytes.Contains(js.body[:min(len(js.body), 200)], []byte("Version: "+openapi.RedocVersion)) {
		t.Fatalf("/docs/redoc.standalone.js: %d %q %.120s", js.status, js.header.Get("Content-Type"), js.body)
	}
}
