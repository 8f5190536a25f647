// Package openapi is the contract of the gateway's HTTP API: an OpenAPI
// 3.0 document (openapi.yaml, embedded), the handler that serves it as
// JSON, and a Validator that checks traffic against it so the gateway's
// tests keep the document true.
package openapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.yaml.in/yaml/v4"
)

//go:embed openapi.yaml
var source []byte

// parts holds one fragment per API area (paths/*.yaml), each a document
// with its own paths and components/schemas, merged into source so areas
// can grow without editing one shared file.
//
//go:embed paths examples
var parts embed.FS

// document is source and its parts as JSON, converted once at start-up: a
// broken YAML file fails the first test and the first start, never a
// request.
var document = mustJSON(source, parts)

// Document returns the OpenAPI document as JSON (a copy; callers may keep
// or change it).
func Document() []byte { return slices.Clone(document) }

// Serve is the handler of GET /openapi.json. The document is public: it
// says what the API accepts, nothing about its data.
func Serve(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(document)
}

func mustJSON(y []byte, fsys fs.FS) []byte {
	b, err := merged(y, fsys)
	if err != nil {
		panic("openapi: " + err.Error())
	}
	return b
}

// merged converts the main document and every paths/*.yaml fragment to
// JSON and merges the fragments' paths and components into the main
// document; a path or component defined twice is an error.
func merged(main []byte, fsys fs.FS) ([]byte, error) {
	doc, err := yamlMap(main)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	names, err := fs.Glob(fsys, "paths/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		y, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		part, err := yamlMap(y)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := mergeInto(doc, part, "paths"); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		comps, _ := part["components"].(map[string]any)
		docComps, _ := doc["components"].(map[string]any)
		if docComps == nil {
			docComps = map[string]any{}
			doc["components"] = docComps
		}
		for kind := range comps {
			if err := mergeInto(docComps, comps, kind); err != nil {
				return nil, fmt.Errorf("%s: components: %w", name, err)
			}
		}
	}
	if err := applyExamples(doc, fsys); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the document quotes '<token>' and the like
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// applyExamples sets the examples of examples/*.yaml on the operations
// they name. Each file maps an operationId to its request body's example
// (request) and its responses' (responses: status -> example); an
// example written in the operation itself wins. Kept apart from paths/
// so the fragments stay readable and an area's examples change without
// touching its routes. An operationId or status that does not exist is
// an error: examples cannot outlive their operation.
func applyExamples(doc map[string]any, fsys fs.FS) error {
	ops := map[string]map[string]any{}
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		methods, _ := item.(map[string]any)
		for _, op := range methods {
			if o, ok := op.(map[string]any); ok {
				if id, _ := o["operationId"].(string); id != "" {
					ops[id] = o
				}
			}
		}
	}
	names, err := fs.Glob(fsys, "examples/*.yaml")
	if err != nil {
		return err
	}
	for _, name := range names {
		y, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		all, err := yamlMap(y)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for id, v := range all {
			op := ops[id]
			ex, _ := v.(map[string]any)
			if op == nil || ex == nil {
				return fmt.Errorf("%s: %q is no operation's id", name, id)
			}
			if req, ok := ex["request"]; ok {
				body, _ := op["requestBody"].(map[string]any)
				if err := setExample(doc, body, req); err != nil {
					return fmt.Errorf("%s: %s request: %w", name, id, err)
				}
			}
			res, _ := ex["responses"].(map[string]any)
			responses, _ := op["responses"].(map[string]any)
			for status, e := range res {
				r, _ := responses[status].(map[string]any)
				if err := setExample(doc, r, e); err != nil {
					return fmt.Errorf("%s: %s response %s: %w", name, id, status, err)
				}
			}
		}
	}
	return nil
}

// setExample sets example on every media type of a request body or
// response that has none; a shared one (a $ref into components) gets it
// for every operation that uses it.
func setExample(doc, holder map[string]any, example any) error {
	if ref, _ := holder["$ref"].(string); ref != "" {
		holder = nil
		if rest, ok := strings.CutPrefix(ref, "#/"); ok {
			var at any = doc
			for _, key := range strings.Split(rest, "/") {
				m, _ := at.(map[string]any)
				at = m[key]
			}
			holder, _ = at.(map[string]any)
		}
		if holder == nil {
			return fmt.Errorf("%s does not resolve", ref)
		}
	}
	content, _ := holder["content"].(map[string]any)
	if len(content) == 0 {
		return fmt.Errorf("no inline content to hold an example")
	}
	for _, mt := range content {
		m, _ := mt.(map[string]any)
		if m == nil {
			continue
		}
		if _, has := m["example"]; !has && m["examples"] == nil {
			m["example"] = example
		}
	}
	return nil
}

// mergeInto adds src[key]'s entries to dst[key], refusing duplicates.
func mergeInto(dst, src map[string]any, key string) error {
	from, _ := src[key].(map[string]any)
	if len(from) == 0 {
		return nil
	}
	to, _ := dst[key].(map[string]any)
	if to == nil {
		to = map[string]any{}
		dst[key] = to
	}
	for k, v := range from {
		if _, dup := to[k]; dup {
			return fmt.Errorf("%s %q is defined twice", key, k)
		}
		to[k] = v
	}
	return nil
}

// yamlMap decodes a YAML document whose top level is a mapping.
func yamlMap(y []byte) (map[string]any, error) {
	b, err := yamlToJSON(y)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
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
