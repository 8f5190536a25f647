package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/gateway/openapi"
	"github.com/spa-engine/spa/persistence/pgtest"
)

// bodyOp is one operation of the API document that takes a request body.
type bodyOp struct{ method, path string }

// bodyOps lists, from the OpenAPI document, every operation that takes a
// body, with its path parameters filled in: the fuzzer then reaches each
// one the way a client would (the ids mostly name nothing, which is one
// more edge to hold).
func bodyOps(tb testing.TB) []bodyOp {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		tb.Fatal(err)
	}
	fill := strings.NewReplacer("{id}", "fuzz-1", "{slug}", "terms", "{variant}", "fuzz-1", "{date}", "2030-01-07")
	var ops []bodyOp
	for path, item := range doc.Paths {
		for _, method := range []string{"post", "put", "patch", "delete"} {
			var op struct {
				RequestBody json.RawMessage `json:"requestBody"`
			}
			if raw, ok := item[method]; ok && json.Unmarshal(raw, &op) == nil && len(op.RequestBody) > 0 {
				ops = append(ops, bodyOp{strings.ToUpper(method), fill.Replace(path)})
			}
		}
	}
	slices.SortFunc(ops, func(a, b bodyOp) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	if len(ops) < 40 {
		tb.Fatalf("only %d operations with a body in the document", len(ops))
	}
	return ops
}

// fuzzSeeds are bodies every operation gets as a start: well-formed ones of
// the shapes the API takes, and the edges that once broke something (a NUL,
// 2^63-1, -2^63, 1e400, deep nesting, invalid UTF-8).
var fuzzSeeds = []string{
	`{}`, `[]`, `null`, `""`, `0`, "\xff\xfe", `{"a":` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `}`,
	`{"name":"Ana\u0000","version":0}`, `{"reason":"x\u0000y"}`, `{"qty":9223372036854775807}`, `{"qty":-9223372036854775808}`,
	`{"price_minor":1e400,"version":0}`, `{"phone":"+573001234567"}`, `{"phone":"+573001234567","code":"123456"}`,
	`{"service_id":"facial","staff_id":"ana","start":"2030-01-07T15:00:00Z"}`,
	`{"name":"Facial","category":"face","duration_minutes":30,"price_minor":8000000,"active":true,"version":0}`,
	`{"client_id":"maria","balance_minor":10000,"expires_at":"2030-06-01T00:00:00Z"}`,
	`{"kind":"receipt","qty":5,"reason":"delivery"}`, `{"code":"ABCD-EFGH","amount_minor":100}`,
	`{"fulfilment":"shipping","shipping":{"line1":"Calle 1","municipality_code":"11001","department_code":"11"}}`,
	`{"full_name":"Ana","email":"ana@example.com","notes":"alergia"}`, `{"roles":["admin"]}`, `{"refresh_token":"x"}`,
}

// FuzzEveryBody sends fuzzed bodies to every operation of the OpenAPI
// document that takes one, through a whole node's router (every
// middleware, use case and actor; PostgreSQL when TEST_DATABASE_URL is set,
// else SQLite), as an anonymous caller, a client and an admin. No answer
// may be a 5xx or a body that is not JSON. `go test` runs the seeds; CI
// fuzzes it for a minute (.ci/test.sh).
func FuzzEveryBody(f *testing.F) {
	ops := bodyOps(f)
	// Every operation gets a few seeds, and every seed a few operations and
	// roles: the corpus stays small enough to be replayed by plain go test
	// and for the fuzzer's first coverage pass to finish in seconds.
	for i := range ops {
		for k := range 3 {
			f.Add(uint16(i), uint8(k), []byte(fuzzSeeds[(3*i+k)%len(fuzzSeeds)]))
		}
	}
	app, tokens := fuzzNode(f)
	f.Fuzz(func(t *testing.T, op uint16, role uint8, body []byte) {
		o := ops[int(op)%len(ops)]
		req := httptest.NewRequest(o.method, o.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok := tokens[int(role)%len(tokens)]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := app.Test(req, 10_000) // ms: a request that hangs is a finding too
		if err != nil {
			t.Fatalf("%s %s as %d with %q: %v", o.method, o.path, role%3, body, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 || (len(b) > 0 && !json.Valid(b)) {
			t.Fatalf("%s %s as %d with %q → %d %s", o.method, o.path, role%3, body, res.StatusCode, b)
		}
	})
}

// fuzzNode starts one node in the process (not listening: requests go
// straight to its Fiber app) with a catalogue to book against, and returns
// its app and tokens for nobody, a client and an admin.
func fuzzNode(tb testing.TB) (*fiber.App, []string) {
	env := map[string]string{"SPA_TOKEN_SECRET": clusterSecret, "SPA_LOG_LEVEL": "error"}
	if pgtest.Available(tb) {
		env["DATABASE_URL"] = pgtest.SchemaURL(tb, "fuzz")
	}
	cfg, err := parseConfig("serve", []string{"--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--nats-port", "-1", "--data-dir", tb.TempDir()},
		envFunc(env), io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := startNode(context.Background(), cfg, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.shutdown)
	tokens := []string{"", tokenFor(tb, "maria", "client"), tokenFor(tb, "owner", "admin")}
	for _, step := range []struct{ method, path, body string }{
		{"PUT", "/v1/admin/staff/ana", `{"name":"Ana","skills":["facial"],"time_zone":"America/Bogota","active":true,"version":0}`},
		{"PUT", "/v1/admin/services/facial", `{"name":"Facial","category":"face","duration_minutes":30,"price_minor":8000000,"required_skills":["facial"],"active":true,"version":0}`},
	} {
		req := httptest.NewRequest(step.method, step.path, strings.NewReader(step.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokens[2])
		if res, err := n.app.Test(req, -1); err != nil || res.StatusCode != 200 {
			tb.Fatalf("seed %s: %v %v", step.path, res.StatusCode, err)
		}
	}
	return n.app, tokens
}

// tokenFor is what `spa token` prints for subject and role under the
// tests' shared secret.
func tokenFor(tb testing.TB, subject, role string) string {
	tb.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--subject", subject, "--role", role},
		envFunc(map[string]string{"SPA_TOKEN_SECRET": clusterSecret}), &out, io.Discard); err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}
