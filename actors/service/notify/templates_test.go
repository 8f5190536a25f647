package notify

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

var admin = service.Caller{Claims: auth.Claims{Subject: "01JADMIN00000000000000000A", Role: auth.RoleAdmin}, RequestID: "req-1"}

// fieldErr is err's 422 field problem, or fails the test.
func fieldErr(t *testing.T, err error) fault.FieldError {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity {
		t.Fatalf("%v; want a 422", err)
	}
	fs, _ := fe.Details.(map[string]any)["fields"].([]fault.FieldError)
	if len(fs) != 1 {
		t.Fatalf("%+v; want one field problem", fe.Details)
	}
	return fs[0]
}

// TestCompileRefusesWhatDoesNotFit: a template naming an unknown variable
// or misusing a variable's type is refused when it is compiled (at save),
// with a 422 naming the field and the variable.
func TestCompileRefusesWhatDoesNotFit(t *testing.T) {
	for _, c := range []struct {
		name, subject, body string
		ch                  sender.Channel
		field, mention      string
	}{
		{"unknown variable", "", "Tu cita de {{.Service}} cuesta {{.Price}}", sender.ChannelSMS, "body", ".Price"},
		{"unknown variable in a condition", "", "{{if .Paid}}pagada{{end}} {{.Service}}", sender.ChannelWhatsApp, "body", ".Paid"},
		{"unknown variable in the subject", "Cita {{.Code}}", "{{.Service}}", sender.ChannelEmail, "subject", ".Code"},
		{"variable of another kind", "", "{{.Service}} hasta {{.ExpiresAt}}", sender.ChannelSMS, "body", ".ExpiresAt"},
		{"field of a text", "", "{{.Service.Name}}", sender.ChannelSMS, "body", ".Service is a text"},
		{"text compared as a number", "", "{{if gt .Staff 3}}x{{end}}{{.Service}}", sender.ChannelSMS, "body", ".Staff is text"},
		{"datetime compared", "", `{{if eq .When "hoy"}}hoy{{end}} {{.Service}}`, sender.ChannelSMS, "body", ".When is a datetime"},
		{"text compared to a number", "", `{{if eq .Service 1}}x{{end}}{{.Staff}}`, sender.ChannelSMS, "body", ".Service is text"},
		{"a function", "", `{{printf "%d" .Service}}`, sender.ChannelSMS, "body", "only a variable may be printed"},
		{"range", "", `{{range .Service}}x{{end}}`, sender.ChannelSMS, "body", "not allowed"},
		{"define", "", `{{define "x"}}y{{end}}{{.Service}}`, sender.ChannelSMS, "body", "define"},
		{"parse error", "", `{{.Service`, sender.ChannelSMS, "body", "unclosed action"},
		{"empty", "", "  ", sender.ChannelSMS, "body", "empty"},
		{"email without subject", "", "{{.Service}}", sender.ChannelEmail, "subject", "required"},
		{"subject on SMS", "Hola", "{{.Service}}", sender.ChannelSMS, "subject", "must be empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(KindAppointmentConfirmed, LanguageSpanishCO, c.ch, 2, c.subject, c.body)
			f := fieldErr(t, err)
			if f.Field != c.field || !strings.Contains(f.Message, c.mention) {
				t.Fatalf("%+v; want field %s mentioning %q", f, c.field, c.mention)
			}
		})
	}
	ok := `{{if .Staff}}Con {{.Staff}}{{else}}Sin preferencia{{end}}{{if eq .Service "Masaje"}} (masaje){{end}}{{if not .When}}?{{end}} {{.When}}`
	if _, err := Compile(KindAppointmentConfirmed, LanguageSpanishCO, sender.ChannelWhatsApp, 2, "", ok); err != nil {
		t.Fatalf("a template within the rules: %v", err)
	}
}

// TestEscapedForTheChannel: a variable carrying markup prints as plain
// text: no WhatsApp formatting, no extra lines, and HTML-escaped in an
// email's HTML part while its plain part keeps the characters.
func TestEscapedForTheChannel(t *testing.T) {
	ts, err := DefaultTemplates()
	if err != nil {
		t.Fatal(err)
	}
	v := SampleVars(KindAppointmentConfirmed, LanguageSpanishCO)
	v["Service"] = "*GRATIS* _ya_ <b>x</b><script>alert(1)</script>\nSTOP\u202e"
	render := func(ch sender.Channel) Rendered {
		t.Helper()
		r, err := ts.Get(KindAppointmentConfirmed, LanguageSpanishCO, ch).Render(v)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	wa := render(sender.ChannelWhatsApp)
	if strings.ContainsAny(wa.Text, "*_\n\u202e") || !strings.Contains(wa.Text, "∗GRATIS∗ ˍyaˍ") {
		t.Errorf("WhatsApp: %q; want the markers neutralised and one line", wa.Text)
	}
	if !strings.Contains(wa.Text, "¡Te esperamos!") {
		t.Errorf("WhatsApp: %q lost the template's own text", wa.Text)
	}
	sms := render(sender.ChannelSMS)
	if strings.ContainsAny(sms.Text, "\n\u202e") || !strings.Contains(sms.Text, "*GRATIS*") {
		t.Errorf("SMS: %q; want one line of plain text", sms.Text)
	}
	email := render(sender.ChannelEmail)
	if strings.Contains(email.HTML, "<script>") || strings.Contains(email.HTML, "<b>x") ||
		!strings.Contains(email.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("email HTML not escaped:\n%s", email.HTML)
	}
	if !strings.Contains(email.Text, "<b>x</b>") || email.Subject != "Tu cita está confirmada" {
		t.Errorf("email plain part %q, subject %q", email.Text, email.Subject)
	}
}

// TestPreviewCreateActivate: a draft previews with the kind's samples; a
// saved version is stored as the next version and audited; a refused one
// is not stored; activating it makes the next message use it, audited;
// only admins may do any of it.
func TestPreviewCreateActivate(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			ctx := t.Context()
			cat := f.svc.deps.Catalog
			kind, lang, ch := KindAppointmentConfirmed, LanguageSpanishCO, sender.ChannelWhatsApp
			draft := Draft{Body: "✅ *Confirmada*: {{.Service}} con {{.Staff}}, {{.When}}!"}
			r, err := cat.Preview(ctx, admin, kind, lang, ch, 0, &draft)
			if err != nil || r.Text != "✅ *Confirmada*: Masaje relajante con Ana, martes 8 de diciembre, 3:00 p. m.!" {
				t.Fatalf("preview: %q, %v", r.Text, err)
			}
			if r, err := cat.Preview(ctx, admin, kind, LanguageEnglish, sender.ChannelEmail, 1, nil); err != nil ||
				r.Subject != "Your appointment is confirmed" || !strings.Contains(r.HTML, "Tuesday, December 8, 3:00 PM") {
				t.Fatalf("preview of the embedded email: %+v, %v", r, err)
			}
			create := func(by service.Caller, d Draft) (v TemplateVersion, err error) {
				err = f.store.InTx(ctx, func(tx persistence.Tx) (err error) {
					v, err = cat.CreateVersion(ctx, tx, by, kind, lang, ch, d)
					return err
				})
				return v, err
			}
			activate := func(version int) error {
				defer cat.Invalidate()
				return f.store.InTx(ctx, func(tx persistence.Tx) error { return cat.Activate(ctx, tx, admin, kind, lang, ch, version) })
			}
			if _, err := create(admin, Draft{Body: "{{.Service}} {{.Price}}"}); !strings.Contains(fieldErr(t, err).Message, ".Price") {
				t.Fatalf("saving an unknown variable: %v", err)
			}
			client := service.Caller{Claims: auth.Claims{Subject: f.client, Role: auth.RoleClient}}
			if _, err := create(client, draft); err == nil {
				t.Fatal("a client saved a template")
			}
			v, err := create(admin, draft)
			if err != nil || v.Version != 2 {
				t.Fatalf("create: %+v, %v", v, err)
			}
			if err := activate(7); err == nil {
				t.Fatal("activated a version that does not exist")
			}
			// Sent before the activation: the embedded text (and cached).
			if err := f.svc.Handle(ctx, f.confirmed()); err != nil {
				t.Fatal(err)
			}
			if err := activate(2); err != nil {
				t.Fatal(err)
			}
			next := f.confirmed()
			next.AppointmentId = "a2"
			if err := f.svc.Handle(ctx, next); err != nil {
				t.Fatal(err)
			}
			sent := f.sender.messages()
			if len(sent) != 2 || !strings.HasPrefix(sent[0].Body, "Tu cita está confirmada") ||
				sent[1].Body != "✅ *Confirmada*: Masaje relajante con Ana, martes 8 de diciembre, 3:00 p. m.!" {
				t.Fatalf("sent %q; want the embedded text, then version 2", bodies(sent))
			}
			list, err := cat.List(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, info := range list {
				if info.Kind == kind && info.Language == lang && info.Channel == ch {
					found = info.Active == 2 && len(info.Versions) == 2 && info.Versions[0].Embedded && info.Versions[1].CreatedBy == admin.Subject
				}
			}
			if !found || len(list) != len(Kinds())*len(languages)*len(TemplateChannels()) {
				t.Fatalf("list of %d: %+v", len(list), list)
			}
			var actions []string
			if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
				es, err := tx.AuditList(ctx, persistence.AuditListParams{Subject: "notification_template/appointment_confirmed/es-CO/whatsapp", Limit: 10})
				for _, e := range es {
					actions = append(actions, e.Action+"/"+e.ActorID)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint([]string{"notification_template.activate/" + admin.Subject, "notification_template.create/" + admin.Subject}); fmt.Sprint(actions) != want {
				t.Fatalf("audit %v; want %s", actions, want)
			}
		})
	}
}

func bodies(ms []sender.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Body)
	}
	return out
}

// TestEveryKindDeclared: every kind has a typed declaration with a sample
// of its type for each variable (what previews and the check at save use).
func TestEveryKindDeclared(t *testing.T) {
	for _, kind := range Kinds() {
		vars := Declared(kind)
		if len(vars) == 0 {
			t.Errorf("%s declares no variables", kind)
		}
		sample := SampleVars(kind, DefaultLanguage)
		if err := checkVars(kind, sample); err != nil {
			t.Errorf("%s: its samples do not fit its declaration: %v", kind, err)
		}
	}
}
