package openapi

import "testing"

func TestYAMLKeysMustBeStrings(t *testing.T) {
	if _, err := yamlToJSON([]byte("responses:\n  200: {description: ok}\n")); err == nil {
		t.Fatal("an unquoted status code key was accepted")
	}
	b, err := yamlToJSON([]byte("a: '<b>'\nc: [1, true]\n"))
	if err != nil || string(b) != `{"a":"<b>","c":[1,true]}` {
		t.Fatalf("%s %v", b, err)
	}
}
