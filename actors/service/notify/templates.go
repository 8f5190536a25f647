package notify

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"text/template"
)

// Templates: one text per kind and language, in templates/<lang>/<kind>.tmpl,
// embedded in the binary. Every variable a kind's texts may use is
// declared below; at load each text is parsed and executed against a
// sample of exactly those variables with missingkey=error, so a text that
// names an unknown variable fails the start (and the tests), never a send.

// Languages the templates are written in; DefaultLanguage first.
const (
	LanguageSpanishCO = "es-CO"
	LanguageEnglish   = "en"
	DefaultLanguage   = LanguageSpanishCO
)

var languages = []string{LanguageSpanishCO, LanguageEnglish}

// Vars are a message's variables, already formatted for its language.
type Vars map[string]string

// declared are the variables each kind's texts may use.
var declared = map[Kind][]string{
	KindAppointmentConfirmed:   {"Service", "Staff", "When"},
	KindAppointmentCancelled:   {"Service", "Staff", "When"},
	KindAppointmentRescheduled: {"Service", "Staff", "When", "PreviousWhen"},
	KindWaitlistOffer:          {"Service", "Staff", "When", "ExpiresAt", "ExpiresIn"},
	KindReminder24h:            {"Service", "Staff", "When"},
	KindReminder2h:             {"Service", "Staff", "When"},
}

// sample is a value for every declared variable of kind.
func sample(kind Kind) Vars {
	v := Vars{}
	for _, name := range declared[kind] {
		v[name] = "sample " + name
	}
	return v
}

//go:embed templates
var embedded embed.FS

// Templates are the parsed texts, by language and kind.
type Templates struct {
	texts map[string]*template.Template // "<lang>/<kind>"
}

// DefaultTemplates loads the embedded texts.
func DefaultTemplates() (*Templates, error) {
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, err
	}
	return LoadTemplates(sub)
}

// LoadTemplates parses every <lang>/<kind>.tmpl of fsys and executes it
// against its kind's sample. A file of an unknown language or kind, a
// missing kind × language, a parse error, an unknown variable or an empty
// text is an error naming the file.
func LoadTemplates(fsys fs.FS) (*Templates, error) {
	ts := &Templates{texts: map[string]*template.Template{}}
	files, err := fs.Glob(fsys, "*/*")
	if err != nil {
		return nil, err
	}
	for _, name := range files {
		lang, file := path.Split(name)
		lang = strings.TrimSuffix(lang, "/")
		kind := Kind(strings.TrimSuffix(file, ".tmpl"))
		if !slices.Contains(languages, lang) || declared[kind] == nil || !strings.HasSuffix(file, ".tmpl") {
			return nil, fmt.Errorf("notify: template %s: not <language>/<kind>.tmpl of a known language (%v) and kind", name, languages)
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(name).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("notify: template %s: %w", name, err)
		}
		ts.texts[lang+"/"+string(kind)] = t
		if _, err := ts.Render(kind, lang, sample(kind)); err != nil {
			return nil, err
		}
	}
	for _, lang := range languages {
		for _, kind := range slices.Sorted(maps.Keys(declared)) {
			if ts.texts[lang+"/"+string(kind)] == nil {
				return nil, fmt.Errorf("notify: no template %s/%s.tmpl", lang, kind)
			}
		}
	}
	return ts, nil
}

// Render is kind's text in lang (the default language when lang has no
// texts) with v, which must hold exactly the kind's declared variables.
func (ts *Templates) Render(kind Kind, lang string, v Vars) (string, error) {
	if !slices.Contains(languages, lang) {
		lang = DefaultLanguage
	}
	t := ts.texts[lang+"/"+string(kind)]
	if t == nil {
		return "", fmt.Errorf("notify: no template for %s in %s", kind, lang)
	}
	if want, got := declared[kind], slices.Sorted(maps.Keys(v)); !slices.Equal(slices.Sorted(slices.Values(want)), got) {
		return "", fmt.Errorf("notify: %s takes the variables %v, got %v", kind, want, got)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("notify: template %s: %w", t.Name(), err)
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", fmt.Errorf("notify: template %s renders nothing", t.Name())
	}
	return out, nil
}
