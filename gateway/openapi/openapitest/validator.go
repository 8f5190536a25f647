// Package openapitest checks requests and responses against the API's
// OpenAPI document, for tests only: kin-openapi stays out of the server
// binary.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/spa-engine/spa/gateway/openapi"
)

// Load parses the document and checks it with kin-openapi's Validate
// (structure, references, examples against their schemas).
func Load() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("openapi: load: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi: validate: %w", err)
	}
	return doc, nil
}

// Validator checks requests and responses against the document. It is
// meant for tests and is safe for concurrent use. Security requirements
// are taken as met: who may call what is tested with the auth code.
type Validator struct {
	router   routers.Router
	errorDoc *openapi3.Schema
	opts     *openapi3filter.Options
}

// textBody decodes a text body (TwiML) as a string, as kin-openapi does
// text/plain.
func textBody(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	b, err := io.ReadAll(r)
	return string(b), err
}

// NewValidator loads the document and builds a Validator over it.
func NewValidator() (*Validator, error) {
	openapi3filter.RegisterBodyDecoder("text/xml", textBody)        // Twilio's inbound webhook answers TwiML
	openapi3filter.RegisterBodyDecoder("text/html", textBody)       // GET /docs
	openapi3filter.RegisterBodyDecoder("text/javascript", textBody) // its script
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: router: %w", err)
	}
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil || errSchema.Value == nil {
		return nil, fmt.Errorf("openapi: no Error schema")
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus:             true, // an undocumented status is a mismatch
		RejectWhenRequestBodyNotSpecified: true,
		SkipSettingDefaults:               true,
		MultiError:                        true,
	}
	opts.WithCustomSchemaErrorFunc(schemaError)
	return &Validator{router: router, errorDoc: errSchema.Value, opts: opts}, nil
}

// schemaError is a one-line schema failure: where and why, without the
// schema and value dumps kin-openapi prints by default.
func schemaError(err *openapi3.SchemaError) string {
	return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
}

// ValidateRequest checks req (path, query, headers, body) against its
// operation. It reads req.Body. A request no operation matches is an error.
func (v *Validator) ValidateRequest(req *http.Request) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s: no documented operation: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: v.opts}
	if err := openapi3filter.ValidateRequest(ctx(req), in); err != nil {
		return fmt.Errorf("%s: request: %w", operation(route), err)
	}
	return nil
}

// ValidateResponse checks the answer to req: that the status is documented
// for its operation, and the headers and body match what is documented for
// that status. req only selects the operation; its body is not read.
//
// A request no operation matches (unknown path, undocumented method) is
// answered by the server itself: that answer must be a 4xx or 5xx with the
// shared Error body.
func (v *Validator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return v.validateUnrouted(req, status, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: v.opts},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                v.opts,
	}
	if err := openapi3filter.ValidateResponse(ctx(req), in); err != nil {
		return fmt.Errorf("%s: response %d: %w", operation(route), status, err)
	}
	return nil
}

func (v *Validator) validateUnrouted(req *http.Request, status int, body []byte) error {
	where := req.Method + " " + req.URL.Path + " (undocumented)"
	if status < 400 {
		return fmt.Errorf("%s: answered %d; only errors may come from outside the document", where, status)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("%s: response %d: body is not JSON: %w", where, status, err)
	}
	if err := v.errorDoc.VisitJSON(value, openapi3.VisitAsResponse(), openapi3.MultiErrors(),
		openapi3.SetSchemaErrorMessageCustomizer(schemaError)); err != nil {
		return fmt.Errorf("%s: response %d: body is not the Error schema: %w", where, status, err)
	}
	return nil
}

// operation names a route for messages: "PUT /v1/admin/studio (putStudio)".
func operation(r *routers.Route) string {
	return fmt.Sprintf("%s %s (%s)", r.Method, r.Path, r.Operation.OperationID)
}

func ctx(req *http.Request) context.Context {
	if c := req.Context(); c != nil {
		return c
	}
	return context.Background()
}
