package notify

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

func (f *fixture) caller() service.Caller {
	return service.Caller{Claims: auth.Claims{Subject: f.client, Role: auth.RoleClient}, RequestID: "req-prefs"}
}

// setPreferences stores the client's preferences, at the version read.
func (f *fixture) setPreferences(on map[string]map[string]bool, order ...string) Preferences {
	f.t.Helper()
	cur, err := MyPreferences(f.t.Context(), f.store, f.caller())
	if err != nil {
		f.t.Fatal(err)
	}
	var out Preferences
	err = f.store.InTx(f.t.Context(), func(tx persistence.Tx) (err error) {
		out, err = SetMyPreferences(f.t.Context(), tx, f.caller(), PreferencesInput{On: on, ChannelOrder: order, Version: cur.Version}, f.now)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// cancelled is the event of the client's confirmed appointment a1 being
// cancelled: a booking message the client did not ask for.
func (f *fixture) cancelled() *messages.AppointmentChanged {
	ev := f.confirmed()
	ev.FromStatus, ev.ToStatus, ev.Version = "confirmed", "cancelled", 3
	return ev
}

// TestPreferencesReadWrite: the defaults are everything on at version 0;
// a write replaces them, is read back, and is audited with what is off;
// a stale version is a 409; unknown names are 422s naming the field;
// staff have no preferences (403).
func TestPreferencesReadWrite(t *testing.T) {
	f := newFixture(t, drivers()["sqlite"], Config{})
	ctx := t.Context()
	def, err := MyPreferences(ctx, f.store, f.caller())
	if err != nil {
		t.Fatal(err)
	}
	if def.Version != 0 || len(def.On) != 3 || !def.On[persistence.CategoryMarketing][sender.ChannelEmail] || len(def.ChannelOrder) != 0 {
		t.Fatalf("defaults %+v; want every category on every channel, version 0", def)
	}
	got := f.setPreferences(map[string]map[string]bool{"marketing": {"whatsapp": false, "sms": false, "email": true}}, "email")
	if got.Version != 1 || got.On[persistence.CategoryMarketing][sender.ChannelWhatsApp] || !got.On[persistence.CategoryMarketing][sender.ChannelEmail] ||
		!got.On[persistence.CategoryBooking][sender.ChannelWhatsApp] || !slices.Equal(got.ChannelOrder, []sender.Channel{sender.ChannelEmail}) {
		t.Fatalf("after the write: %+v", got)
	}
	read, err := MyPreferences(ctx, f.store, f.caller())
	if err != nil || read.Version != 1 || read.On[persistence.CategoryMarketing][sender.ChannelSMS] {
		t.Fatalf("read back %+v, %v", read, err)
	}
	var audit []persistence.AuditEntry
	if err := f.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		audit, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: "user/" + f.client, Limit: 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Action != "notification_preferences.update" || !strings.Contains(string(audit[0].Detail), "marketing:whatsapp") {
		t.Fatalf("audit %+v; want one notification_preferences.update naming what is off", audit)
	}

	set := func(by service.Caller, in PreferencesInput) error {
		return f.store.InTx(ctx, func(tx persistence.Tx) error {
			_, err := SetMyPreferences(ctx, tx, by, in, f.now)
			return err
		})
	}
	var fe *fault.Error
	if err := set(f.caller(), PreferencesInput{Version: 0}); !errors.As(err, &fe) || fe.Code != fault.CodeVersionConflict {
		t.Fatalf("a stale version: %v; want version_conflict", err)
	}
	for _, tc := range []struct {
		in    PreferencesInput
		field string
	}{
		{PreferencesInput{On: map[string]map[string]bool{"news": {"sms": false}}, Version: 1}, "categories.news"},
		{PreferencesInput{On: map[string]map[string]bool{"booking": {"telegram": false}}, Version: 1}, "categories.booking.telegram"},
		{PreferencesInput{ChannelOrder: []string{"sms", "pigeon"}, Version: 1}, "channel_order[1]"},
		{PreferencesInput{ChannelOrder: []string{"sms", "email", "sms"}, Version: 1}, "channel_order[2]"},
	} {
		if fe := fieldErr(t, set(f.caller(), tc.in)); fe.Field != tc.field {
			t.Errorf("%+v: field %q (%s); want %q", tc.in, fe.Field, fe.Message, tc.field)
		}
	}
	staff := service.Caller{Claims: auth.Claims{Subject: "01JSTAFF00000000000000000A", Role: auth.RoleReceptionist}}
	if err := set(staff, PreferencesInput{}); !errors.As(err, &fe) || fe.Status != http.StatusForbidden {
		t.Fatalf("staff: %v; want 403", err)
	}
}

// TestPreferencesRouteMessages: a category turned off on WhatsApp goes by
// SMS; turned off on every channel that reaches the client it is skipped
// (recorded with the reason, nothing sent, and a redelivery sends nothing
// either); the confirmation the client asked for is sent all the same;
// the client's order puts SMS first.
func TestPreferencesRouteMessages(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			f.setPreferences(map[string]map[string]bool{"booking": {"whatsapp": false}})
			if err := f.svc.Handle(t.Context(), f.cancelled()); err != nil {
				t.Fatal(err)
			}
			if sent := f.sender.messages(); len(sent) != 1 || sent[0].Channel != sender.ChannelSMS {
				t.Fatalf("booking off on WhatsApp: sent %+v; want one SMS", sent)
			}

			f.setPreferences(map[string]map[string]bool{"booking": {"whatsapp": false, "sms": false}})
			moved := f.cancelled()
			moved.AppointmentId = "a2"
			for range 2 {
				if err := f.svc.Handle(t.Context(), moved); err != nil {
					t.Fatal(err)
				}
			}
			if sent := f.sender.messages(); len(sent) != 1 {
				t.Fatalf("booking off on every channel: sent %+v; want nothing more", sent)
			}
			var skipped persistence.Notification
			for _, n := range f.list() {
				if strings.HasPrefix(n.ID, "appointment:a2:") {
					skipped = n
				}
			}
			if skipped.Status != persistence.NotificationSkipped || skipped.ID != "appointment:a2:cancelled:v3:whatsapp" ||
				!strings.Contains(skipped.LastError, "turned booking off on whatsapp, sms") {
				t.Fatalf("stored %+v; want a skipped row with the reason", skipped)
			}

			// Asked for by the client: not suppressed, on the kind's first channel.
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			if sent := f.sender.messages(); len(sent) != 2 || sent[1].Purpose != string(KindAppointmentConfirmed) || sent[1].Channel != sender.ChannelWhatsApp {
				t.Fatalf("the confirmation with booking off: sent %+v; want it on WhatsApp", sent)
			}

			// The order: SMS first, even for a payment.
			f.setPreferences(nil, "sms")
			approved := &messages.PaymentChanged{IntentId: "pi1", Kind: "order", SubjectId: "o1", ClientId: f.client,
				FromStatus: "pending", ToStatus: "approved", AmountMinor: 12000000, Currency: "COP"}
			if err := f.svc.Handle(t.Context(), approved); err != nil {
				t.Fatal(err)
			}
			if sent := f.sender.messages(); len(sent) != 3 || sent[2].Channel != sender.ChannelSMS {
				t.Fatalf("SMS first: sent %+v", sent)
			}
		})
	}
}

// TestRouteOrder: the client's order puts its channels first and keeps
// the kind's for the rest; a channel the kind does not use stays out.
func TestRouteOrder(t *testing.T) {
	kind := []sender.Channel{sender.ChannelWhatsApp, sender.ChannelSMS}
	for _, tc := range []struct {
		order []string
		want  []sender.Channel
	}{
		{nil, kind},
		{[]string{"sms"}, []sender.Channel{sender.ChannelSMS, sender.ChannelWhatsApp}},
		{[]string{"email", "sms", "whatsapp"}, []sender.Channel{sender.ChannelSMS, sender.ChannelWhatsApp}},
	} {
		if got := orderChannels(kind, tc.order); !slices.Equal(got, tc.want) {
			t.Errorf("order %v: %v; want %v", tc.order, got, tc.want)
		}
	}
}
