package openapitest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

var draftExamples = flag.Bool("draft-examples", false, "append drafted examples for operations that lack them to gateway/openapi/examples/<tag>.yaml")

// TestDocumentMetadata: servers, a licence, and a description for every
// tag, each used tag declared.
func TestDocumentMetadata(t *testing.T) {
	doc := load(t)
	if len(doc.Servers) == 0 {
		t.Error("no servers")
	}
	if doc.Info.License == nil || doc.Info.License.Name == "" {
		t.Error("no licence")
	}
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
		if strings.TrimSpace(tag.Description) == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if len(op.Tags) == 0 {
				t.Errorf("%s %s: no tag", method, path)
			}
			for _, tag := range op.Tags {
				if !declared[tag] {
					t.Errorf("%s %s: tag %q is not declared under tags", method, path, tag)
				}
			}
		}
	}
}

// TestEveryOperationHasExamples: every request body and every success
// response has an example (Load validates each against its schema). With
// -draft-examples the missing ones are drafted into examples/<tag>.yaml.
func TestEveryOperationHasExamples(t *testing.T) {
	doc := load(t)
	drafts := map[string]map[string]any{} // tag -> operationId -> draft
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			name := method + " " + path
			draft := map[string]any{}
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				for ct, mt := range rb.Value.Content {
					if !hasExample(mt) {
						t.Errorf("%s (%s): request body %s has no example", name, op.OperationID, ct)
						draft["request"] = exampleOf(mt.Schema, 0)
					}
				}
			}
			for status, res := range op.Responses.Map() {
				if !strings.HasPrefix(status, "2") || res.Value == nil {
					continue
				}
				for ct, mt := range res.Value.Content {
					if !hasExample(mt) {
						t.Errorf("%s (%s): response %s %s has no example", name, op.OperationID, status, ct)
						r, _ := draft["responses"].(map[string]any)
						if r == nil {
							r = map[string]any{}
							draft["responses"] = r
						}
						r[status] = exampleOf(mt.Schema, 0)
					}
				}
			}
			if len(draft) > 0 {
				tag := "misc"
				if len(op.Tags) > 0 {
					tag = op.Tags[0]
				}
				if drafts[tag] == nil {
					drafts[tag] = map[string]any{}
				}
				drafts[tag][op.OperationID] = draft
			}
		}
	}
	if *draftExamples {
		for tag, ops := range drafts {
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(wholeNumbers(ops)); err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			f, err := os.OpenFile(filepath.Join("..", "examples", tag+".yaml"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("drafted %d operations' examples into examples/%s.yaml", len(ops), tag)
		}
	}
}

func hasExample(mt *openapi3.MediaType) bool {
	return mt.Example != nil || len(mt.Examples) > 0 || (mt.Schema != nil && mt.Schema.Value != nil && mt.Schema.Value.Example != nil)
}

// exampleOf drafts a value of schema: its example or default, the first
// enum value, a value of its format, one item of an array, every property
// of an object.
func exampleOf(ref *openapi3.SchemaRef, depth int) any {
	if ref == nil || ref.Value == nil || depth > 8 {
		return nil
	}
	s := ref.Value
	switch {
	case s.Example != nil:
		return s.Example
	case s.Default != nil:
		return s.Default
	case len(s.Enum) > 0:
		return s.Enum[0]
	case len(s.AllOf) > 0:
		out := map[string]any{}
		for _, part := range s.AllOf {
			v := exampleOf(part, depth+1)
			m, ok := v.(map[string]any)
			if !ok {
				return v // a constrained scalar
			}
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	case len(s.OneOf) > 0:
		return exampleOf(s.OneOf[0], depth+1)
	case len(s.AnyOf) > 0:
		return exampleOf(s.AnyOf[0], depth+1)
	}
	switch {
	case s.Type.Is("object") || len(s.Properties) > 0:
		out := map[string]any{}
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			out[n] = valueFor(n, s.Properties[n], depth)
		}
		return out
	case s.Type.Is("array"):
		n := max(1, int(s.MinItems))
		items := make([]any, n)
		for i := range items {
			items[i] = exampleOf(s.Items, depth+1)
		}
		return items
	case s.Type.Is("integer"):
		v := 1.0
		if s.Min != nil {
			v = max(v, *s.Min)
		}
		if s.Max != nil {
			v = min(v, *s.Max)
		}
		return int(v)
	case s.Type.Is("number"):
		return 1.5
	case s.Type.Is("boolean"):
		return true
	case s.Type.Is("string"):
		return stringFor("", s)
	}
	return map[string]any{} // any JSON value: an empty object says so
}

// valueFor drafts a property, by its name when its schema says little.
func valueFor(name string, ref *openapi3.SchemaRef, depth int) any {
	if ref != nil && ref.Value != nil && ref.Value.Type.Is("string") && ref.Value.Example == nil && len(ref.Value.Enum) == 0 && ref.Value.Format == "" {
		return stringFor(name, ref.Value)
	}
	return exampleOf(ref, depth+1)
}

// patterned are candidates for strings with a pattern, tried in order.
var patterned = []string{"01JQ8Z5M3K4N7P2R9S6T1V0W8X", "09:00", "2026-03-14", "+573001234567", "COP", "es-CO", "en",
	"America/Bogota", "ana@example.com", "deep-tissue", "ABC123", "abc123", "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "0123456789abcdef", "123456", "a1", "SPA-2026-0001", "x"}

func stringFor(name string, s *openapi3.Schema) string {
	if s.Pattern != "" {
		if re, err := regexp.Compile(s.Pattern); err == nil {
			for _, c := range patterned {
				if re.MatchString(c) && (s.MaxLength == nil || uint64(len(c)) <= *s.MaxLength) && uint64(len(c)) >= s.MinLength {
					return c
				}
			}
			if c, ok := matching(s.Pattern); ok && re.MatchString(c) {
				return c
			}
		}
	}
	switch s.Format {
	case "date-time":
		return "2026-03-14T15:00:00Z"
	case "date":
		return "2026-03-14"
	case "email":
		return "ana@example.com"
	case "uri", "url":
		return "https://spa.example/path"
	case "uuid":
		return "3f6c1a2e-8b1d-4c7e-9a55-0d2f4b6e8a10"
	}
	n := strings.ToLower(name)
	switch {
	case n == "id" || strings.HasSuffix(n, "_id"):
		return "01JQ8Z5M3K4N7P2R9S6T1V0W8X"
	case strings.Contains(n, "phone"):
		return "+573001234567"
	case strings.Contains(n, "email"):
		return "ana@example.com"
	case strings.Contains(n, "currency"):
		return "COP"
	case strings.Contains(n, "time_zone") || n == "timezone" || n == "tz":
		return "America/Bogota"
	case strings.Contains(n, "name"):
		return "Ana Gómez"
	case strings.Contains(n, "url"):
		return "https://spa.example/path"
	}
	out := fmt.Sprintf("example %s", name)
	if name == "" {
		out = "example"
	}
	if s.MaxLength != nil && uint64(len(out)) > *s.MaxLength {
		out = out[:*s.MaxLength]
	}
	if uint64(len(out)) < s.MinLength {
		out += strings.Repeat("x", int(s.MinLength)-len(out))
	}
	return out
}

// matching builds the shortest string the pattern's parse tree suggests:
// each class's first character, each repetition at its minimum (at least
// once), each alternation's first branch.
func matching(pattern string) (string, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		switch r.Op {
		case syntax.OpLiteral:
			b.WriteString(string(r.Rune))
		case syntax.OpCharClass:
			if len(r.Rune) == 0 {
				return false
			}
			b.WriteRune(r.Rune[0])
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			b.WriteByte('x')
		case syntax.OpCapture:
			return walk(r.Sub[0])
		case syntax.OpConcat:
			for _, sub := range r.Sub {
				if !walk(sub) {
					return false
				}
			}
		case syntax.OpAlternate:
			return walk(r.Sub[0])
		case syntax.OpStar, syntax.OpQuest:
		case syntax.OpPlus:
			return walk(r.Sub[0])
		case syntax.OpRepeat:
			for range max(r.Min, 1) {
				if !walk(r.Sub[0]) {
					return false
				}
			}
		case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpEmptyMatch,
			syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		default:
			return false
		}
		return true
	}
	ok := walk(re)
	return b.String(), ok
}

// wholeNumbers turns the float64s of whole numbers that JSON decoding
// left in v into integers, so drafts say 12000000, not 1.2e+07.
func wholeNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = wholeNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = wholeNumbers(e)
		}
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
	}
	return v
}
