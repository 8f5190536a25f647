package openapi

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

func TestYAMLKeysMustBeStrings(t *testing.T) {
	if _, err := yamlToJSON([]byte("responses:\n  200: {description: ok}\n")); err == nil {
		t.Fatal("an unquoted status code key was accepted")
	}
	b, err := yamlToJSON([]byte("a: '<b>'\nc: [1, true]\n"))
	if err != nil || string(b) != `{"a":"<b>","c":[1,true]}` {
		t.Fatalf("%s %v", b, err)
	}
}

func TestMergedFragments(t *testing.T) {
	main := []byte("openapi: 3.0.3\npaths:\n  /a: {}\ncomponents:\n  schemas:\n    A: {type: string}\n")
	part := []byte("paths:\n  /b: {}\ncomponents:\n  schemas:\n    B: {type: integer}\n")
	fsys := fstest.MapFS{"paths/b.yaml": {Data: part}}
	b, err := merged(main, fsys)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]any
		Components struct{ Schemas map[string]any }
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Paths) != 2 || doc.Paths["/b"] == nil || doc.Components.Schemas["B"] == nil || doc.Components.Schemas["A"] == nil {
		t.Fatalf("merged document: %s", b)
	}
	fsys["paths/dup.yaml"] = &fstest.MapFile{Data: []byte("paths:\n  /a: {}\n")}
	if _, err := merged(main, fsys); err == nil || !strings.Contains(err.Error(), `"/a" is defined twice`) {
		t.Fatalf("duplicate path: err = %v", err)
	}
}
