package gateway

import (
	"slices"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
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
