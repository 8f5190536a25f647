package phone

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in   string
		want       string
		wantCC     int
		wantRegion string
		wantErr    error
	}{
		{name: "national digits", in: "3001234567", want: "+573001234567", wantCC: 57, wantRegion: "CO"},
		{name: "national spaced", in: " 300 123 4567 ", want: "+573001234567", wantCC: 57, wantRegion: "CO"},
		{name: "international", in: "+57 300 1234567", want: "+573001234567", wantCC: 57, wantRegion: "CO"},
		{name: "parenthesised code", in: "(+57) 3001234567", want: "+573001234567", wantCC: 57, wantRegion: "CO"},
		{name: "tel URI", in: "tel:+57-300-123-4567", want: "+573001234567", wantCC: 57, wantRegion: "CO"},
		{name: "full-width digits", in: "３００１２３４５６７", want: "+573001234567", wantCC: 57, wantRegion: "CO"},
		{name: "foreign mobile", in: "+34 612 34 56 78", want: "+34612345678", wantCC: 34, wantRegion: "ES"},
		{name: "UK mobile", in: "+44 7400 123456", want: "+447400123456", wantCC: 44, wantRegion: "GB"},
		{name: "fixed or mobile is accepted", in: "+1 650 253 0000", want: "+16502530000", wantCC: 1, wantRegion: "US"},
		{name: "empty", in: "", wantErr: ErrEmpty},
		{name: "blank", in: " \t ", wantErr: ErrEmpty},
		{name: "too long", in: strings.Repeat("1", MaxInputLen+1), wantErr: ErrTooLong},
		{name: "letters", in: "abc", wantErr: ErrNotANumber},
		{name: "unknown country", in: "+999 1234567", wantErr: ErrInvalidCountryCode},
		{name: "too short", in: "1", wantErr: ErrNotANumber},
		{name: "too short for region", in: "12", wantErr: ErrInvalid},
		{name: "one digit too many", in: "+57 300 12345678", wantErr: ErrInvalid},
		{name: "Bogota landline", in: "601 2345678", wantErr: ErrNotMobile},
		{name: "UK landline", in: "+44 20 7946 0958", wantErr: ErrNotMobile},
		{name: "toll free", in: "01 8000 123456", wantErr: ErrNotMobile},
		{name: "premium rate", in: "+1 900 555 0123", wantErr: ErrNotMobile},
		{name: "international freephone", in: "+800 1234 5678", wantErr: ErrNotMobile},
		{name: "extension", in: "+573001234567 ext. 12", wantErr: ErrHasExtension},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				var pe *Error
				if !errors.As(err, &pe) || pe.Code == "" {
					t.Fatalf("error %v is not a coded *Error", err)
				}
				if got != (Number{}) {
					t.Fatalf("Parse(%q) returned %+v alongside an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			want := Number{E164: tt.want, CountryCode: tt.wantCC, Region: tt.wantRegion}
			if got != want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, want)
			}
		})
	}
}

func TestParserRegion(t *testing.T) {
	t.Parallel()
	es, err := NewParser("es")
	if err != nil {
		t.Fatal(err)
	}
	if es.Region() != "ES" {
		t.Fatalf("Region() = %q", es.Region())
	}
	n, err := es.Parse("612 34 56 78")
	if err != nil || n.E164 != "+34612345678" {
		t.Fatalf("Parse in ES = %+v, %v", n, err)
	}
	// An explicit country code wins over the default region.
	n, err = es.Parse("+57 300 123 4567")
	if err != nil || n.E164 != "+573001234567" {
		t.Fatalf("Parse +57 in ES = %+v, %v", n, err)
	}
	// The same national digits mean something else in Colombia.
	if _, err := Parse("612 34 56 78"); err == nil {
		t.Fatal("Spanish national number accepted in CO")
	}

	def, err := NewParser("")
	if err != nil || def.Region() != DefaultRegion {
		t.Fatalf("NewParser(\"\") = %v, %v", def.Region(), err)
	}
	if (Parser{}).Region() != DefaultRegion {
		t.Fatal("zero Parser does not use DefaultRegion")
	}
	if _, err := NewParser("XX"); !errors.Is(err, ErrUnknownRegion) {
		t.Fatalf("NewParser(XX) error = %v", err)
	}
}

// Errors must never echo the number: they end up in logs and responses.
func TestErrorsDoNotLeakInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"+57 300 12345678", "601 2345678", "+999 1234567", "abc123456789", "+573001234567 ext. 12"} {
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", in)
		}
		for _, frag := range []string{"300", "12345", "234567", "999", "abc"} {
			if strings.Contains(in, frag) && strings.Contains(err.Error(), frag) {
				t.Fatalf("error %q leaks %q from input", err, frag)
			}
		}
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"+573001234567", "+57********67"},
		{"+16502530000", "+1********00"},
		{"+447400123456", "+44********56"},
		{"+5215512345678", "+52*********78"},
		{"+80012345678", "+800******78"},
		{"300 123 4567", "********67"},      // not E.164: no country code kept
		{"+57 300 1234567", "**********67"}, // formatted: digits only, no guess at the code
		{"12345", "***"},
		{"", "***"},
		{"not a phone", "***"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNumberLogging(t *testing.T) {
	t.Parallel()
	n, err := Parse("3001234567")
	if err != nil {
		t.Fatal(err)
	}
	if n.String() != "+573001234567" || n.Masked() != "+57********67" {
		t.Fatalf("String/Masked = %q/%q", n.String(), n.Masked())
	}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("otp sent", "phone", n)
	if strings.Contains(buf.String(), "3001234567") || !strings.Contains(buf.String(), "+57********67") {
		t.Fatalf("log line %q does not mask the number", buf.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"3001234567", "+57 300 1234567", "(+57) 3001234567", "tel:+57-300-123-4567",
		"+1 650 253 0000", "+44 7400 123456", "601 2345678", "+800 1234 5678",
		"0057 3001234567", "+573001234567 ext. 12", "３００１２３４５６７", "", "+", "++57", "abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_ = Mask(in)
		n, err := Parse(in)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) returned a foreign error type %T: %v", in, err, err)
			}
			return
		}
		if !strings.HasPrefix(n.E164, "+") || len(n.E164) > 16 {
			t.Fatalf("Parse(%q) = %q, not E.164", in, n.E164)
		}
		again, err := Parse(n.E164)
		if err != nil {
			t.Fatalf("E.164 %q of %q does not parse again: %v", n.E164, in, err)
		}
		if again != n {
			t.Fatalf("round trip of %q: %+v then %+v", in, n, again)
		}
		if m := n.Masked(); len(m) != len(n.E164) || !strings.HasSuffix(m, n.E164[len(n.E164)-2:]) {
			t.Fatalf("Masked(%q) = %q", n.E164, m)
		}
	})
}
