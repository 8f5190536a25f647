package notify

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

// windowFixture is the fixture keeping WhatsApp windows, with templates
// for the given kinds.
func windowFixture(t *testing.T, open func(*testing.T, persistence.Options) persistence.Store, templates map[Kind]WhatsAppTemplate) *fixture {
	f := newFixture(t, open, Config{})
	index, err := pii.NewBlindIndex(bytes.Repeat([]byte{7}, pii.MinIndexKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	d, cfg := f.svc.deps, f.svc.cfg
	d.PhoneIndex, cfg.WhatsAppTemplates = index, templates
	if f.svc, err = New(d, cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) inbound(channel string, at time.Time) {
	f.t.Helper()
	if err := f.svc.Receive(f.t.Context(), []inbound.Message{{Provider: "whatsapp", ID: "wamid.in", From: phone,
		Time: at, Channel: channel, Text: "hola"}}); err != nil {
		f.t.Fatal(err)
	}
}

// TestWindowFreeFormInsideTemplateOutside: a client who wrote on WhatsApp
// within 24 hours gets free-form text; one who wrote 25 hours ago, or
// only by SMS, gets the kind's approved template, its TTL capped at the
// time left before the appointment; a kind with no template outside the
// window goes by SMS without calling WhatsApp. Sending never extends the
// window.
func TestWindowFreeFormInsideTemplateOutside(t *testing.T) {
	tmpl := WhatsAppTemplate{Name: "cita_confirmada", Language: "es", Category: CategoryUtility, TTL: 12 * time.Hour}
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			// Inside: free-form.
			f := windowFixture(t, open, map[Kind]WhatsAppTemplate{KindAppointmentConfirmed: tmpl})
			f.inbound("whatsapp", f.now.Add(-23*time.Hour))
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			sent := f.sender.messages()
			if len(sent) != 1 || sent[0].Channel != sender.ChannelWhatsApp || sent[0].Template != nil {
				t.Fatalf("inside the window: %+v, want free-form WhatsApp", sent)
			}
			var last time.Time
			if err := f.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
				last, err = tx.MessagingWindowLast(t.Context(), f.svc.phoneKey(phone))
				return err
			}); err != nil || !last.Equal(persistence.CanonicalTime(f.now.Add(-23*time.Hour))) {
				t.Fatalf("window after sending: %v %v, want the inbound time unchanged", last, err)
			}

			// Outside (25 h ago; an SMS since opens none): the template,
			// its 12 h TTL within the 25 h left.
			f = windowFixture(t, open, map[Kind]WhatsAppTemplate{KindAppointmentConfirmed: tmpl})
			f.inbound("whatsapp", f.now.Add(-25*time.Hour))
			f.inbound("sms", f.now.Add(-time.Hour))
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			sent = f.sender.messages()
			if len(sent) != 1 || sent[0].Template == nil || sent[0].Template.Name != "cita_confirmada" ||
				sent[0].Template.Category != CategoryUtility || sent[0].Template.TTL != 12*time.Hour ||
				len(sent[0].Template.Params) != 1 || !strings.Contains(sent[0].Template.Params[0], "Masaje relajante con Ana") {
				t.Fatalf("outside the window: %+v", sent)
			}

			// An hour before the start: the TTL is the hour left.
			f = windowFixture(t, open, map[Kind]WhatsAppTemplate{KindAppointmentConfirmed: tmpl})
			f.now = f.confirmed().Start.AsTime().Add(-time.Hour)
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			if sent := f.sender.messages(); len(sent) != 1 || sent[0].Template == nil || sent[0].Template.TTL != time.Hour {
				t.Fatalf("an hour before: %+v", sent)
			}

			// No template for the kind: SMS, WhatsApp never called.
			f = windowFixture(t, open, nil)
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			sent = f.sender.messages()
			if len(sent) != 1 || sent[0].Channel != sender.ChannelSMS {
				t.Fatalf("no template: %+v, want SMS only", sent)
			}
			ns := f.list()
			var wa persistence.Notification
			for _, n := range ns {
				if n.Channel == "whatsapp" {
					wa = n
				}
			}
			if wa.Status != persistence.NotificationFailed || !strings.Contains(wa.LastError, "24-hour WhatsApp window") {
				t.Fatalf("the WhatsApp row: %+v", wa)
			}
			f.checkNoPhoneInLogs()
		})
	}
}

// TestLateInboundNeverMovesTheWindowBack: an inbound webhook delivered
// late (older than the last one) keeps the window of the newer.
func TestLateInboundNeverMovesTheWindowBack(t *testing.T) {
	f := windowFixture(t, sqliteOnly(), nil)
	f.inbound("whatsapp", f.now.Add(-time.Hour))
	f.inbound("whatsapp", f.now.Add(-30*time.Hour))
	if err := f.svc.whatsAppRules(t.Context(), &sender.Message{To: phone, Channel: sender.ChannelWhatsApp}, KindAppointmentConfirmed, time.Time{}); err != nil {
		t.Fatalf("inside the window after a late older inbound: %v", err)
	}
}

func sqliteOnly() func(*testing.T, persistence.Options) persistence.Store { return drivers()["sqlite"] }

func TestParseWhatsAppTemplates(t *testing.T) {
	got, err := ParseWhatsAppTemplates("appointment_reminder_24h=cita_recordatorio:es:utility:12h; waitlist_offer = HX0123:es:UTILITY")
	if err != nil {
		t.Fatal(err)
	}
	if got[KindReminder24h] != (WhatsAppTemplate{Name: "cita_recordatorio", Language: "es", Category: CategoryUtility, TTL: 12 * time.Hour}) ||
		got[KindWaitlistOffer] != (WhatsAppTemplate{Name: "HX0123", Language: "es", Category: CategoryUtility}) || len(got) != 2 {
		t.Fatalf("parsed %+v", got)
	}
	if got, err := ParseWhatsAppTemplates(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"nope=a:es:utility", "appointment_confirmed=a:es:promo", "appointment_confirmed=a:es", "appointment_confirmed=:es:utility",
		"appointment_confirmed=a:es:utility:-1h", "appointment_confirmed"} {
		if _, err := ParseWhatsAppTemplates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
