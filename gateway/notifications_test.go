package gateway

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/gateway/openapi"
	"github.com/spa-engine/spa/persistence"
)

// TestAdminNotifications: the admin lists recent notifications newest
// first with their bodies, filtered by status and kind; nobody else may,
// and an unknown filter is a 422 naming it.
func TestAdminNotifications(t *testing.T) {
	e := newEnv(t)
	at := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	if err := e.store.InTx(t.Context(), func(tx persistence.Tx) error {
		for i, n := range []persistence.Notification{
			{ID: "appointment:a1:confirmed:v2:whatsapp", Kind: "appointment_confirmed", Channel: "whatsapp", Status: persistence.NotificationSent, SentAt: at},
			{ID: "waitlist:e1:offer:wl-e1:whatsapp", Kind: "waitlist_offer", Channel: "whatsapp", Status: persistence.NotificationDead, LastError: "503"},
		} {
			n.UserID, n.Category, n.Body, n.CreatedAt = "maria", persistence.CategoryBooking, "Hola "+n.ID, at.Add(time.Duration(i)*time.Minute)
			if _, _, err := tx.NotificationCreate(t.Context(), n); err != nil {
				return err
			}
			if err := tx.NotificationUpdate(t.Context(), n); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ids := func(r result) []string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var out []string
		for _, n := range decode[struct {
			Notifications []struct {
				ID     string     `json:"id"`
				Body   string     `json:"body"`
				SentAt *time.Time `json:"sent_at"`
			} `json:"notifications"`
		}](t, r).Notifications {
			if n.Body != "Hola "+n.ID {
				t.Errorf("%s: body %q", n.ID, n.Body)
			}
			out = append(out, n.ID)
		}
		return out
	}
	for path, want := range map[string][]string{
		"/v1/admin/notifications":                                 {"waitlist:e1:offer:wl-e1:whatsapp", "appointment:a1:confirmed:v2:whatsapp"},
		"/v1/admin/notifications?limit=1":                         {"waitlist:e1:offer:wl-e1:whatsapp"},
		"/v1/admin/notifications?status=dead":                     {"waitlist:e1:offer:wl-e1:whatsapp"},
		"/v1/admin/notifications?kind=appointment_confirmed":      {"appointment:a1:confirmed:v2:whatsapp"},
		"/v1/admin/notifications?kind=waitlist_offer&status=sent": nil,
	} {
		if got := ids(e.admin("GET", path, "")); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	for _, path := range []string{"/v1/admin/notifications?status=lost", "/v1/admin/notifications?kind=birthday", "/v1/admin/notifications?limit=0"} {
		if r := e.admin("GET", path, ""); r.status != 422 {
			t.Errorf("%s: %d %s, want 422", path, r.status, r.body)
		}
	}
	if r := e.as(e.token("desk", auth.RoleReceptionist), "GET", "/v1/admin/notifications"); r.status != 403 {
		t.Errorf("receptionist: %d, want 403", r.status)
	}
	if r := e.do("GET", "/v1/admin/notifications", ""); r.status != 401 {
		t.Errorf("anonymous: %d, want 401", r.status)
	}
}

// TestAdminNotificationTemplates: the admin previews a draft, is refused
// a template naming an unknown variable (422 naming it), saves a version,
// activates it and sees it active in the list; nobody else may.
func TestAdminNotificationTemplates(t *testing.T) {
	e := newEnv(t)
	const base = "/v1/admin/notifications/templates/appointment_confirmed/es-CO/email"
	r := e.admin("POST", base+"/preview", `{"subject":"Cita {{.Service}}","body":"Hola, {{.Service}} con {{.Staff}}, {{.When}}"}`)
	preview := decode[struct {
		Subject, Text, HTML string
	}](t, r)
	if r.status != 200 || preview.Subject != "Cita Masaje relajante" || !strings.Contains(preview.HTML, "<p>Hola, Masaje relajante con Ana") {
		t.Fatalf("preview: %d %s", r.status, r.body)
	}
	r = e.admin("POST", base+"/versions", `{"subject":"Cita","body":"{{.Service}} por {{.Price}}"}`)
	if r.status != 422 || r.errCode(t) != "validation_failed" || !strings.Contains(string(r.body), ".Price") {
		t.Fatalf("unknown variable: %d %s; want a 422 naming .Price", r.status, r.body)
	}
	r = e.admin("POST", base+"/versions", `{"subject":"Cita","body":"{{if gt .When 3}}x{{end}}{{.Service}}"}`)
	if r.status != 422 || !strings.Contains(string(r.body), ".When is a datetime") {
		t.Fatalf("misused type: %d %s; want a 422 naming .When", r.status, r.body)
	}
	r = e.admin("POST", base+"/versions", `{"subject":"Tu cita: {{.Service}}","body":"Confirmada: {{.Service}}, {{.When}}."}`)
	if v := decode[struct{ Version int }](t, r); r.status != 201 || v.Version != 2 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", base+"/versions/9/activate", ""); r.status != 404 {
		t.Fatalf("activate a missing version: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", base+"/versions/2/activate", ""); r.status != 200 {
		t.Fatalf("activate: %d %s", r.status, r.body)
	}
	r = e.admin("GET", "/v1/admin/notifications/templates", "")
	list := decode[struct {
		Templates []struct {
			Kind, Language, Channel string
			Active                  int
			Versions                []struct{ Version int }
		}
	}](t, r)
	found := false
	for _, tm := range list.Templates {
		if tm.Kind == "appointment_confirmed" && tm.Language == "es-CO" && tm.Channel == "email" {
			found = tm.Active == 2 && len(tm.Versions) == 2
		}
	}
	if r.status != 200 || !found {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if r := e.as(e.token("desk", auth.RoleReceptionist), "GET", "/v1/admin/notifications/templates"); r.status != 403 {
		t.Errorf("receptionist: %d, want 403", r.status)
	}
}

// TestNotificationEnumsMatchTheService: the OpenAPI document's kinds and
// channels are the service's, so a new kind cannot make the template
// list break its own schema.
func TestNotificationEnumsMatchTheService(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	var kinds, channels []string
	for _, k := range notify.Kinds() {
		kinds = append(kinds, string(k))
	}
	for _, c := range notify.TemplateChannels() {
		channels = append(channels, string(c))
	}
	for name, want := range map[string][]string{"NotificationKind": kinds, "NotificationChannel": channels} {
		if got := doc.Components.Schemas[name].Enum; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: the document says %v, the service %v", name, got, want)
		}
	}
}
