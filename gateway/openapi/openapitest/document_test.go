package openapitest

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/openapi"
)

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestDocumentLoadsAndValidates(t *testing.T) {
	doc := load(t)
	if doc.OpenAPI != "3.0.3" {
		t.Fatalf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	if !json.Valid(openapi.Document()) {
		t.Fatal("Document() is not JSON")
	}
}

// TestErrorCodesMatchAPIErr: the ErrorCode enum lists exactly the codes
// of gateway/apierr's table, so a new code cannot go undocumented.
func TestErrorCodesMatchAPIErr(t *testing.T) {
	codes := fault.Codes()
	var enum []string
	for _, v := range load(t).Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	if len(codes) == 0 || !slices.Equal(codes, enum) {
		t.Fatalf("apierr codes %v\ndocumented   %v", codes, enum)
	}
}

var roles = []string{"anonymous", "client", "staff", "receptionist", "admin", "kiosk"}

// TestOperationsAreComplete holds every operation to the document's own
// conventions, so a new one cannot leave them out.
func TestOperationsAreComplete(t *testing.T) {
	doc := load(t)
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || ids[op.OperationID] != "" {
				t.Errorf("%s: operationId %q missing or shared with %s", name, op.OperationID, ids[op.OperationID])
			}
			ids[op.OperationID] = name

			// x-roles: who may call it; anonymous exactly when no token is needed.
			raw, _ := op.Extensions["x-roles"].([]any)
			var admitted []string
			for _, r := range raw {
				s, _ := r.(string)
				if !slices.Contains(roles, s) {
					t.Errorf("%s: unknown role %v in x-roles", name, r)
				}
				admitted = append(admitted, s)
			}
			if len(admitted) == 0 {
				t.Errorf("%s: no x-roles", name)
			}
			public := op.Security != nil && slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 })
			if public != slices.Contains(admitted, "anonymous") {
				t.Errorf("%s: x-roles %v disagree with security (public: %v)", name, admitted, public)
			}

			// A provider's webhook carries no Idempotency-Key: it names what
			// makes it idempotent instead (x-idempotent-by).
			if method != http.MethodGet && !hasParam(op, "header", "Idempotency-Key") && op.Extensions["x-idempotent-by"] == nil {
				t.Errorf("%s: mutating operation without the Idempotency-Key parameter or x-idempotent-by", name)
			}
			if op.Responses.Status(http.StatusInternalServerError) == nil || op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s: 401 and 500 can happen on every operation", name)
			}
			for status, res := range op.Responses.Map() {
				if res.Value.Headers["X-Request-ID"] == nil {
					t.Errorf("%s: response %s lacks the X-Request-ID header", name, status)
				}
			}
		}
	}
}

func hasParam(op *openapi3.Operation, in, name string) bool {
	return slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool {
		return p.Value.In == in && p.Value.Name == name
	})
}
