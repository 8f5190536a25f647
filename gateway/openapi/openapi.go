// Package openapi is the contract of the gateway's HTTP API: an OpenAPI
// 3.0 document (openapi.yaml, embedded), the handler that serves it as
// JSON, and a Validator that checks traffic against it so the gateway's
// tests keep the document true.
package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gofiber/fiber/v2"
	"go.yaml.in/yaml/v4"
)

//go:embed openapi.yaml
var source []byte

// document is source as JSON, converted once at start-up: a broken YAML
// file fails the first test and the first start, never a request.
var document = mustJSON(source)

// Document returns the OpenAPI document as JSON (a copy; callers may keep
// or change it).
func Document() []byte { return slices.Clone(document) }

// Serve is the handler of GET /openapi.json. The document is public: it
// says what the API accepts, nothing about its data.
func Serve(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(document)
}

func mustJSON(y []byte) []byte {
	b, err := yamlToJSON(y)
	if err != nil {
		panic("openapi: openapi.yaml: " + err.Error())
	}
	return b
}

// yamlToJSON converts a YAML document whose mapping keys are all strings
// (quote status codes: '200') into compact JSON.
func yamlToJSON(y []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, err
	}
	v, err := jsonValue(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the document quotes '<token>' and the like
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonValue turns what the YAML decoder produced into values encoding/json
// accepts, refusing mapping keys that are not strings.
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			v[k] = j
		}
		return v, nil
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping key %v is not a string; quote it", k)
			}
			j, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ks, err)
			}
			m[ks] = j
		}
		return m, nil
	case []any:
		for i, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			v[i] = j
		}
		return v, nil
	}
	return v, nil
}
