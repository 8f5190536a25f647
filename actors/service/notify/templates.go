package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service/fault"
)

// Templates: the text of each kind, per language and channel, versioned
// (docs/notifications.md, Templates). Version 1 of every one is the file
// embedded in templates/<lang>/<kind>.tmpl (and <kind>.subject.tmpl, the
// email's subject); an admin stores further versions and activates one
// (catalog.go).
//
// A template is a text/template restricted to what its kind declares:
// {{.Var}} prints a declared variable, {{if .Var}}, {{if not .Var}} and
// {{if eq .Var "x"}} (with ne, lt, le, gt, ge for numbers) choose, with
// {{else}}; nothing else (no functions, no fields of a variable, no range,
// no define). Compile checks every node against the kind's typed
// declaration, so a template naming an unknown variable or misusing one's
// type is refused when it is saved, never when it is sent. Printing is
// escaped for the channel: the printed value goes through the channel's
// escaper (escape.go), added to every {{.Var}} by Compile.

// Languages the templates are written in; DefaultLanguage first.
const (
	LanguageSpanishCO = "es-CO"
	LanguageEnglish   = "en"
	DefaultLanguage   = LanguageSpanishCO
)

var languages = []string{LanguageSpanishCO, LanguageEnglish}

// Languages are the template languages, the default first.
func Languages() []string { return slices.Clone(languages) }

// TemplateChannels are the channels a template is written for.
func TemplateChannels() []sender.Channel {
	return []sender.Channel{sender.ChannelWhatsApp, sender.ChannelSMS, sender.ChannelEmail}
}

// VarType is what a variable holds, which decides what a template may do
// with it.
type VarType string

// The variable types. Text, datetime, duration and money values are
// strings already formatted in the message's language; a number is an int.
const (
	// TypeText is free text from the data (a service's or a staff
	// member's name): printed, tested, compared with eq/ne to a quoted text.
	TypeText VarType = "text"
	// TypeDateTime is a moment ("martes 8 de diciembre, 3:00 p. m."):
	// printed or tested only.
	TypeDateTime VarType = "datetime"
	// TypeDuration is a length of time ("15 minutos"): printed or tested.
	TypeDuration VarType = "duration"
	// TypeMoney is an amount with its currency ("$ 120.000"): printed or tested.
	TypeMoney VarType = "money"
	// TypeNumber is an integer: printed, tested, compared with eq, ne, lt,
	// le, gt, ge to an integer.
	TypeNumber VarType = "number"
)

// Var is one variable a kind's templates may use.
type Var struct {
	Name string
	Type VarType
	// Sample is its value in previews: a string (text, money), an int
	// (number), a time.Time (datetime) or a time.Duration (duration),
	// formatted in the preview's language.
	Sample any
}

// sampleAt is the moment the samples speak of: a Tuesday afternoon in
// Bogotá.
var sampleAt = time.Date(2026, 12, 8, 20, 0, 0, 0, time.UTC)

// The variables shared by the kinds.
var (
	varService      = Var{"Service", TypeText, "Masaje relajante"}
	varStaff        = Var{"Staff", TypeText, "Ana"}
	varWhen         = Var{"When", TypeDateTime, sampleAt}
	varPreviousWhen = Var{"PreviousWhen", TypeDateTime, sampleAt.Add(-24 * time.Hour)}
	varExpiresAt    = Var{"ExpiresAt", TypeDateTime, sampleAt.Add(-5 * time.Hour)}
	varExpiresIn    = Var{"ExpiresIn", TypeDuration, 15 * time.Minute}
)

// declared are the variables of each kind, with their types: the typed
// declaration every template of the kind is checked against.
var declared = map[Kind][]Var{
	KindAppointmentConfirmed:   {varService, varStaff, varWhen},
	KindAppointmentCancelled:   {varService, varStaff, varWhen},
	KindAppointmentRescheduled: {varService, varStaff, varWhen, varPreviousWhen},
	KindWaitlistOffer:          {varService, varStaff, varWhen, varExpiresAt, varExpiresIn},
	KindReminder24h:            {varService, varStaff, varWhen},
	KindReminder2h:             {varService, varStaff, varWhen},
	KindPaymentApproved:        {varAmount, varFor},
	KindPaymentDeclined:        {varAmount, varFor},
	KindPaymentRefunded:        {varAmount, varFor},
	KindOrderPaid:              {varOrder, varAmount, varFulfilment},
	KindOrderFulfilled:         {varOrder, varAmount, varFulfilment},
	KindOrderCancelled:         {varOrder, varAmount, varFulfilment},
	KindReturnProcessed:        {varOrder, varAmount, varOutcome},
	KindAppointmentFollowUp:    {varService, varStaff, varWhen},
	KindAppointmentHeld:        {varService, varStaff, varWhen, varExpiresAt, varExpiresIn, varDeposit},
}

// Declared are kind's variables (nil for an unknown kind).
func Declared(kind Kind) []Var { return slices.Clone(declared[kind]) }

func lookupVar(kind Kind, name string) (Var, bool) {
	i := slices.IndexFunc(declared[kind], func(v Var) bool { return v.Name == name })
	if i < 0 {
		return Var{}, false
	}
	return declared[kind][i], true
}

func varNames(kind Kind) string {
	var names []string
	for _, v := range declared[kind] {
		names = append(names, v.Name)
	}
	return strings.Join(names, ", ")
}

// Vars are a message's variables: strings already formatted for its
// language, ints for numbers.
type Vars map[string]any

// SampleVars are kind's sample values in lang, for previews and for the
// check at save.
func SampleVars(kind Kind, lang string) Vars {
	v := Vars{}
	for _, d := range declared[kind] {
		switch s := d.Sample.(type) {
		case time.Time:
			v[d.Name] = formatWhen(s, bogotaOrUTC(), lang)
		case time.Duration:
			v[d.Name] = formatDuration(s, lang)
		default:
			v[d.Name] = s
		}
	}
	return v
}

func bogotaOrUTC() *time.Location {
	if l, err := time.LoadLocation("America/Bogota"); err == nil {
		return l
	}
	return time.UTC
}

// checkVars refuses values that are not exactly the kind's declared
// variables with values of their types.
func checkVars(kind Kind, v Vars) error {
	if len(v) != len(declared[kind]) {
		return fmt.Errorf("notify: %s takes the variables %s, got %d", kind, varNames(kind), len(v))
	}
	for _, d := range declared[kind] {
		val, ok := v[d.Name]
		if !ok {
			return fmt.Errorf("notify: %s: variable %s missing", kind, d.Name)
		}
		_, isInt := val.(int)
		_, isString := val.(string)
		if (d.Type == TypeNumber && !isInt) || (d.Type != TypeNumber && !isString) {
			return fmt.Errorf("notify: %s: variable %s is a %s, got %T", kind, d.Name, d.Type, val)
		}
	}
	return nil
}

// Template is one version of a kind's text in a language on a channel,
// checked and ready to render.
type Template struct {
	Kind     Kind
	Language string
	Channel  sender.Channel
	Version  int
	// Subject (email only) and Body are the sources as written.
	Subject, Body string

	subject, body *template.Template
}

// Rendered is a message's text for its channel.
type Rendered struct {
	Subject string // email only
	Text    string // the message; an email's plain-text part
	HTML    string // email only: Text escaped into the HTML layout
}

// Compile checks a template's sources against its kind's declaration and
// renders it with the kind's samples in its language. Every refusal is a
// 422 naming the field (subject, body) and, where one is at fault, the
// variable.
func Compile(kind Kind, lang string, ch sender.Channel, version int, subject, body string) (*Template, error) {
	var f []fault.FieldError
	if declared[kind] == nil {
		f = append(f, fault.FieldError{Field: "kind", Message: "is not a known kind"})
	}
	if !slices.Contains(languages, lang) {
		f = append(f, fault.FieldError{Field: "language", Message: "must be one of " + strings.Join(languages, ", ")})
	}
	if !slices.Contains(TemplateChannels(), ch) {
		f = append(f, fault.FieldError{Field: "channel", Message: "must be whatsapp, sms or email"})
	}
	if len(f) > 0 {
		return nil, fault.Invalid("the template is not of a known kind, language and channel", f...)
	}
	t := &Template{Kind: kind, Language: lang, Channel: ch, Version: version, Subject: subject, Body: body}
	var err error
	if t.body, err = compileSource(kind, "body", body, escaperFor(ch)); err != nil {
		return nil, err
	}
	switch {
	case ch == sender.ChannelEmail && strings.TrimSpace(subject) == "":
		return nil, fault.Invalid("an email template needs a subject", fault.FieldError{Field: "subject", Message: "is required on the email channel"})
	case ch != sender.ChannelEmail && subject != "":
		return nil, fault.Invalid("only email templates have a subject", fault.FieldError{Field: "subject", Message: "must be empty on the " + string(ch) + " channel"})
	case ch == sender.ChannelEmail:
		if strings.ContainsAny(subject, "\r\n") {
			return nil, fault.Invalid("the subject is one line", fault.FieldError{Field: "subject", Message: "must be one line"})
		}
		if t.subject, err = compileSource(kind, "subject", subject, escapeLine); err != nil {
			return nil, err
		}
	}
	if _, err := t.Render(SampleVars(kind, lang)); err != nil {
		return nil, fault.Invalid("the template does not render with its kind's sample values", fault.FieldError{Field: "body", Message: err.Error()})
	}
	return t, nil
}

// maxSource bounds a template's source: a message, not a document.
const maxSource = 4000

// compileSource parses src as field of a kind's template, checks every
// node against the kind's declaration and adds escape to every print.
func compileSource(kind Kind, field, src string, escape func(string) string) (*template.Template, error) {
	refuse := func(msg string) error {
		return fault.Invalid("the template does not fit its kind's variables", fault.FieldError{Field: field, Message: msg})
	}
	if strings.TrimSpace(src) == "" {
		return nil, refuse("is empty")
	}
	if len(src) > maxSource {
		return nil, refuse(fmt.Sprintf("is longer than %d bytes", maxSource))
	}
	t, err := template.New(field).Option("missingkey=error").
		Funcs(template.FuncMap{escapeFunc: func(v any) string { return escape(fmt.Sprint(v)) }}).Parse(src)
	if err != nil {
		return nil, refuse(strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(t.Templates()) != 1 {
		return nil, refuse("must not define templates ({{define}}, {{block}})")
	}
	c := checker{kind: kind, tree: t.Tree}
	c.list(t.Tree.Root)
	if c.err != "" {
		return nil, refuse(c.err)
	}
	return t, nil
}

// Render is t with v, which must hold exactly the kind's variables, with
// values of their types. An email gets its subject and HTML part.
func (t *Template) Render(v Vars) (Rendered, error) {
	if err := checkVars(t.Kind, v); err != nil {
		return Rendered{}, err
	}
	exec := func(tt *template.Template) (string, error) {
		var b bytes.Buffer
		if err := tt.Execute(&b, map[string]any(v)); err != nil {
			return "", fmt.Errorf("notify: template %s/%s/%s v%d: %w", t.Kind, t.Language, t.Channel, t.Version, err)
		}
		return strings.TrimSpace(b.String()), nil
	}
	var r Rendered
	var err error
	if r.Text, err = exec(t.body); err != nil {
		return r, err
	}
	if r.Text == "" {
		return r, fmt.Errorf("notify: template %s/%s/%s v%d renders nothing", t.Kind, t.Language, t.Channel, t.Version)
	}
	if t.subject != nil {
		if r.Subject, err = exec(t.subject); err != nil {
			return r, err
		}
		if r.HTML, err = emailHTML(t.Language, r.Subject, r.Text); err != nil {
			return r, err
		}
	}
	return r, nil
}

// emailLayout is the HTML part of an email: the plain text, every byte of
// it escaped by html/template, a paragraph per blank-line-separated block.
var emailLayout = htmltemplate.Must(htmltemplate.New("email").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body>{{range .Paragraphs}}<p>{{range $i, $line := .}}{{if $i}}<br>{{end}}{{$line}}{{end}}</p>
{{end}}</body></html>
`))

func emailHTML(lang, subject, text string) (string, error) {
	var paragraphs [][]string
	for _, p := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			paragraphs = append(paragraphs, strings.Split(p, "\n"))
		}
	}
	var b bytes.Buffer
	err := emailLayout.Execute(&b, struct {
		Lang, Subject string
		Paragraphs    [][]string
	}{lang, subject, paragraphs})
	return b.String(), err
}

//go:embed templates
var embedded embed.FS

// Templates are the embedded texts, version 1 of every kind, language and
// channel.
type Templates struct {
	texts map[templateKey]*Template
}

type templateKey struct {
	kind    Kind
	lang    string
	channel sender.Channel
}

// Get is the embedded template of kind in lang on ch, or nil.
func (ts *Templates) Get(kind Kind, lang string, ch sender.Channel) *Template {
	return ts.texts[templateKey{kind, lang, ch}]
}

// DefaultTemplates loads the embedded texts.
func DefaultTemplates() (*Templates, error) {
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, err
	}
	return LoadTemplates(sub)
}

// LoadTemplates reads every <lang>/<kind>.tmpl (the text, on every
// channel) and <lang>/<kind>.subject.tmpl (the email's subject) of fsys
// and compiles them as version 1. A file of an unknown language or kind, a
// missing text or subject, or a template Compile refuses is an error
// naming the file.
func LoadTemplates(fsys fs.FS) (*Templates, error) {
	ts := &Templates{texts: map[templateKey]*Template{}}
	files, err := fs.Glob(fsys, "*/*")
	if err != nil {
		return nil, err
	}
	bodies, subjects := map[string]string{}, map[string]string{}
	for _, name := range files {
		lang, file := path.Split(name)
		lang = strings.TrimSuffix(lang, "/")
		base, isSubject := strings.CutSuffix(file, ".subject.tmpl")
		if !isSubject {
			base = strings.TrimSuffix(file, ".tmpl")
		}
		if !slices.Contains(languages, lang) || declared[Kind(base)] == nil || !strings.HasSuffix(file, ".tmpl") {
			return nil, fmt.Errorf("notify: template %s: not <language>/<kind>.tmpl or <kind>.subject.tmpl of a known language (%v) and kind", name, languages)
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		if isSubject {
			subjects[lang+"/"+base] = strings.TrimSpace(string(src))
		} else {
			bodies[lang+"/"+base] = string(src)
		}
	}
	for _, lang := range languages {
		for kind := range declared {
			key := lang + "/" + string(kind)
			body, ok := bodies[key]
			if !ok {
				return nil, fmt.Errorf("notify: no template %s.tmpl", key)
			}
			if _, ok := subjects[key]; !ok {
				return nil, fmt.Errorf("notify: no email subject %s.subject.tmpl", key)
			}
			for _, ch := range TemplateChannels() {
				subject := ""
				if ch == sender.ChannelEmail {
					subject = subjects[key]
				}
				t, err := Compile(kind, lang, ch, 1, subject, body)
				if err != nil {
					return nil, fmt.Errorf("notify: template %s (%s): %s", key, ch, describe(err))
				}
				ts.texts[templateKey{kind, lang, ch}] = t
			}
		}
	}
	return ts, nil
}
