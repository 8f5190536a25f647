package check

import (
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/service/fault"
)

func TestFields(t *testing.T) {
	var f Fields
	if f.Err() != nil {
		t.Fatal("no problems must be a nil error")
	}
	if got := f.Text("name", "  Ana  ", 1, 10); got != "Ana" || len(f) != 0 {
		t.Fatalf("text %q, problems %v", got, f)
	}
	f.Text("name", "a\x01b", 1, 10)
	f.Text("reason", "", 3, 10)
	f.Add("qty", "must be positive")
	err, ok := f.Err().(*fault.Error)
	if !ok || err.Code != fault.CodeValidationFailed {
		t.Fatalf("err %v", f.Err())
	}
	got := err.Details.(map[string]any)["fields"].([]fault.FieldError)
	if len(got) != 3 || got[0].Field != "name" || got[1].Message != "must be 3 to 10 printable characters" || got[2].Field != "qty" {
		t.Fatalf("fields %+v", got)
	}
}

func TestPredicates(t *testing.T) {
	for s, want := range map[string]bool{"hola@serena.co": true, "nope": false, "a@b": false, "Ana <a@b.co>": false, "a@.co": false} {
		if Email(s) != want {
			t.Errorf("Email(%q) = %v", s, !want)
		}
	}
	for tz, want := range map[string]bool{"America/Bogota": true, "UTC": true, "": false, "Local": false, "Mars/Olympus": false} {
		if TimeZone(tz) != want {
			t.Errorf("TimeZone(%q) = %v", tz, !want)
		}
	}
	for id, want := range map[string]bool{"massage-60": true, "a": true, "-a": false, "Upper": false, strings.Repeat("a", 65): false} {
		if Slug.MatchString(id) != want {
			t.Errorf("Slug(%q) = %v", id, !want)
		}
	}
	for id, want := range map[string]bool{"ana": true, "01J+x.y:z": true, "a b": false, "": false} {
		if ClientID.MatchString(id) != want {
			t.Errorf("ClientID(%q) = %v", id, !want)
		}
	}
	if got := Bounded("a\nb" + strings.Repeat("x", 70)); !strings.HasPrefix(got, "a?b") || !strings.HasSuffix(got, "…") {
		t.Errorf("Bounded: %q", got)
	}
}
