package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/persistence"
)

// setLocale stores the client's profile with a language and a time zone,
// sealed as actors/service/privacy seals them.
func (f *fixture) setLocale(lang, zone string) {
	f.t.Helper()
	keys := f.svc.deps.Phones.(*pii.Keyring)
	seal := func(field, v string) []byte {
		ct, err := keys.Encrypt([]byte(v), pii.ProfileContext(field, f.client))
		if err != nil {
			f.t.Fatal(err)
		}
		return ct
	}
	if err := f.store.InTx(f.t.Context(), func(tx persistence.Tx) error {
		_, err := tx.ProfilePut(f.t.Context(), persistence.ClientProfile{UserID: f.client,
			LanguageCipher: seal("language", lang), TimeZoneCipher: seal("time_zone", zone), CreatedAt: f.now, UpdatedAt: f.now})
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
}

// TestClientLanguageAndTimeZone: a client whose profile says English gets
// the English text (the appointment's time still on the studio's clock);
// quiet hours are read on the client's own clock: 14:00 on a Monday in
// Bogotá is 20:00 in Madrid, so a Madrid client's marketing waits until
// 7:00 there while a Bogotá client's goes; without a profile, the
// studio's language and clock.
func TestClientLanguageAndTimeZone(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			f.setLocale("en", "Europe/Madrid")
			f.svc.deps.QuietHours = MarketingHours{Policy: quiethours.Colombia(bogota)}
			f.now = time.Date(2026, 12, 14, 14, 0, 0, 0, bogota) // Monday 14:00 in Bogotá, 20:00 in Madrid
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			sent := f.sender.messages()
			if len(sent) != 1 || !strings.HasPrefix(sent[0].Body, "Your appointment is confirmed") ||
				!strings.Contains(sent[0].Body, "Tuesday, December 8, 3:00 PM") {
				t.Fatalf("sent %+v, want the English confirmation on the studio's clock", sent)
			}
			completed := f.confirmed()
			completed.FromStatus, completed.ToStatus, completed.Version = "confirmed", "completed", 4
			var retry *RetryError
			madrid7 := time.Date(2026, 12, 15, 7, 0, 0, 0, mustZone(t, "Europe/Madrid"))
			if err := f.svc.Handle(t.Context(), completed); !errors.As(err, &retry) || retry.After != madrid7.Sub(f.now) {
				t.Fatalf("marketing at 20:00 in Madrid: %v, want held %s (until 7:00 there)", err, madrid7.Sub(f.now))
			}

			// The studio's: Spanish, and 14:00 in Bogotá is inside the window.
			g := newFixture(t, open, Config{})
			g.svc.deps.QuietHours = MarketingHours{Policy: quiethours.Colombia(bogota)}
			g.now = f.now
			if err := g.svc.Handle(t.Context(), completed); err != nil {
				t.Fatalf("marketing at 14:00 in Bogotá: %v, want sent", err)
			}
			if err := g.svc.Handle(t.Context(), g.confirmed()); err != nil {
				t.Fatal(err)
			}
			if sent := g.sender.messages(); len(sent) != 2 || !strings.Contains(sent[1].Body, "martes 8 de diciembre") {
				t.Fatalf("sent %+v, want the Spanish texts", sent)
			}
		})
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRemindersMoveOnTheClientsClock: quiet hours move a reminder on the
// client's clock: a Madrid client's reminders due at 22:00 and 20:00
// there (16:00 and 14:00 in Bogotá) move to 19:00 Madrid time, while a
// client without a zone keeps the studio's, where both times are allowed.
func TestRemindersMoveOnTheClientsClock(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			start := time.Date(2026, 12, 15, 16, 0, 0, 0, bogota) // Tuesday
			schedule := func(f *fixture) map[string]time.Time {
				sched := newFakeScheduler()
				f.svc.deps.Reminders, f.svc.deps.ReminderHours = sched, quiethours.Colombia(bogota)
				f.now = time.Date(2026, 12, 14, 9, 0, 0, 0, bogota)
				f.storeAppointment(persistence.StatusConfirmed, start)
				if err := f.svc.syncReminders(t.Context(), "a1"); err != nil {
					t.Fatal(err)
				}
				return sched.schedules()
			}
			madrid := mustZone(t, "Europe/Madrid")
			f := newFixture(t, open, Config{})
			f.setLocale("es-CO", "Europe/Madrid")
			want := map[string]time.Time{
				"a1/appointment_reminder_24h": time.Date(2026, 12, 14, 19, 0, 0, 0, madrid),
				"a1/appointment_reminder_2h":  time.Date(2026, 12, 15, 19, 0, 0, 0, madrid),
			}
			if got := schedule(f); !equalTimes(got, want) {
				t.Fatalf("Madrid client: %v, want %v", got, want)
			}
			want = map[string]time.Time{"a1/appointment_reminder_24h": start.Add(-24 * time.Hour), "a1/appointment_reminder_2h": start.Add(-2 * time.Hour)}
			if got := schedule(newFixture(t, open, Config{})); !equalTimes(got, want) {
				t.Fatalf("no zone: %v, want %v", got, want)
			}
		})
	}
}
