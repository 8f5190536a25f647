package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/leakcheck"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const phone = "+573001234567"

// drivers are the stores the service is tested on: SQLite always,
// PostgreSQL when TEST_DATABASE_URL is set (or required).
func drivers() map[string]func(t *testing.T, opts persistence.Options) persistence.Store {
	d := map[string]func(t *testing.T, opts persistence.Options) persistence.Store{
		"sqlite": func(t *testing.T, opts persistence.Options) persistence.Store { return sqlitetest.Open(t, opts) },
	}
	if pgtest.Wanted() {
		d["postgres"] = func(t *testing.T, opts persistence.Options) persistence.Store { return pgtest.Open(t, "notify", opts) }
	}
	return d
}

// fakeSender records every message and answers each channel with its
// scripted errors in order, then nil.
type fakeSender struct {
	mu     sync.Mutex
	sent   []sender.Message
	script map[sender.Channel][]error
	always map[sender.Channel]error
}

func (f *fakeSender) Send(_ context.Context, m sender.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	if err := f.always[m.Channel]; err != nil {
		return err
	}
	if errs := f.script[m.Channel]; len(errs) > 0 {
		f.script[m.Channel] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeSender) messages() []sender.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sender.Message(nil), f.sent...)
}

// fixture is a store with a client who has a phone, staff member Ana in
// Bogotá and a massage, and a service over them with a fake sender.
type fixture struct {
	t      *testing.T
	store  persistence.Store
	sender *fakeSender
	svc    *Service
	client string
	logs   *bytes.Buffer
	now    time.Time
}

var bogota = func() *time.Location {
	l, err := time.LoadLocation("America/Bogota")
	if err != nil {
		panic(err)
	}
	return l
}()

func newFixture(t *testing.T, open func(*testing.T, persistence.Options) persistence.Store, cfg Config) *fixture {
	t.Helper()
	keyring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{5}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: open(t, persistence.Options{Personal: pii.ClientKeys{Keys: keyring}}),
		sender: &fakeSender{script: map[sender.Channel][]error{}, always: map[sender.Channel]error{}},
		client: "01JCLIENT0000000000000000A", logs: &bytes.Buffer{},
		now: time.Date(2026, 12, 7, 14, 0, 0, 0, bogota)}
	ctx := t.Context()
	sealed, err := keyring.Encrypt([]byte(phone), pii.PhoneContext(f.client))
	if err != nil {
		t.Fatal(err)
	}
	err = f.store.InTx(ctx, func(tx persistence.Tx) error {
		if err := tx.UserCreate(ctx, persistence.User{ID: f.client, PhoneIndex: []byte("index-of-the-phone"), PhoneCipher: sealed,
			Roles: []string{"client"}, CreatedAt: f.now, UpdatedAt: f.now}); err != nil {
			return err
		}
		if _, err := tx.StaffPut(ctx, persistence.StaffMember{ID: "ana", Name: "Ana", Skills: []string{"massage"},
			TimeZone: "America/Bogota", Active: true, UpdatedAt: f.now}); err != nil {
			return err
		}
		_, err := tx.ServicePut(ctx, persistence.Service{ID: "massage-60", Name: "Masaje relajante", Category: "body",
			Duration: time.Hour, PriceMinor: 12000000, RequiredSkills: []string{"massage"}, DepositPolicy: persistence.DepositNone, Active: true, UpdatedAt: f.now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = New(Deps{Store: f.store, Sender: f.sender, Phones: keyring, Now: func() time.Time { return f.now },
		Log: slog.New(slog.NewJSONHandler(f.logs, nil))}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// confirmed is the event of the client's appointment a1 going from held
// to confirmed, tomorrow at 15:00 in Bogotá.
func (f *fixture) confirmed() *messages.AppointmentChanged {
	start := time.Date(2026, 12, 8, 15, 0, 0, 0, bogota)
	return &messages.AppointmentChanged{AppointmentId: "a1", StaffId: "ana", ServiceId: "massage-60", ClientId: f.client,
		Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)), FromStatus: "held", ToStatus: "confirmed", Version: 2}
}

func (f *fixture) list() []persistence.Notification {
	f.t.Helper()
	var ns []persistence.Notification
	if err := f.store.InTx(f.t.Context(), func(tx persistence.Tx) (err error) {
		ns, err = tx.NotificationList(f.t.Context(), persistence.NotificationListParams{Limit: 100})
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return ns
}

func (f *fixture) checkNoPhoneInLogs() {
	f.t.Helper()
	if strings.Contains(f.logs.String(), "3001234567") {
		f.t.Fatalf("the phone number is in the log unmasked:\n%s", f.logs)
	}
}

// TestConfirmedSendsOnce: a confirmed appointment produces exactly one
// message, on WhatsApp, even when its event is handled twice.
func TestConfirmedSendsOnce(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			for range 2 {
				if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
					t.Fatalf("Handle: %v", err)
				}
			}
			sent := f.sender.messages()
			if len(sent) != 1 || sent[0].Channel != sender.ChannelWhatsApp || sent[0].To != phone || sent[0].Purpose != string(KindAppointmentConfirmed) {
				t.Fatalf("sent %+v; want one WhatsApp message to the client", sent)
			}
			want := "Tu cita está confirmada para el martes 8 de diciembre, 3:00 p. m.: Masaje relajante con Ana. ¡Te esperamos!"
			if sent[0].Body != want {
				t.Fatalf("body %q\nwant %q", sent[0].Body, want)
			}
			ns := f.list()
			if len(ns) != 1 || ns[0].ID != "appointment:a1:confirmed:v2:whatsapp" || ns[0].Status != persistence.NotificationSent ||
				ns[0].Attempts != 1 || ns[0].SentAt.IsZero() || ns[0].Body != want || ns[0].Category != persistence.CategoryBooking {
				t.Fatalf("stored %+v", ns)
			}
			f.checkNoPhoneInLogs()
		})
	}
}

// TestWhatsAppRejectedFallsBackToSMS: the channel that refuses the
// message is recorded as failed and the next one carries it; handling the
// event again sends nothing more.
func TestWhatsAppRejectedFallsBackToSMS(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			f.sender.always[sender.ChannelWhatsApp] = fmt.Errorf("%w: whatsapp: %s is not a WhatsApp user", sender.ErrRejected, phone)
			for range 2 {
				if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
					t.Fatalf("Handle: %v", err)
				}
			}
			sent := f.sender.messages()
			if len(sent) != 2 || sent[0].Channel != sender.ChannelWhatsApp || sent[1].Channel != sender.ChannelSMS || sent[0].Body != sent[1].Body {
				t.Fatalf("sent %+v; want WhatsApp then SMS, once each", sent)
			}
			byChannel := map[string]persistence.Notification{}
			for _, n := range f.list() {
				byChannel[n.Channel] = n
			}
			wa, sms := byChannel["whatsapp"], byChannel["sms"]
			if len(byChannel) != 2 || wa.Status != persistence.NotificationFailed || !strings.Contains(wa.LastError, "not a WhatsApp user") ||
				sms.Status != persistence.NotificationSent || sms.ID != "appointment:a1:confirmed:v2:sms" {
				t.Fatalf("stored %+v", byChannel)
			}
			if strings.Contains(wa.LastError, "3001234567") {
				t.Fatalf("the stored error names the number: %q", wa.LastError)
			}
			f.checkNoPhoneInLogs()
		})
	}
}

// TestUnavailableRetriedThenDead: a transient failure asks for a retry
// after each step of the backoff table; after the last attempt the
// notification is dead with its error, and nothing more is sent. The
// next channel is not tried: an outage is not a refusal.
func TestUnavailableRetriedThenDead(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			backoff := []time.Duration{time.Second, time.Minute}
			f := newFixture(t, open, Config{Backoff: backoff})
			f.sender.always[sender.ChannelWhatsApp] = fmt.Errorf("%w: 503 from the provider", sender.ErrUnavailable)
			for i, want := range backoff {
				err := f.svc.Handle(t.Context(), f.confirmed())
				var retry *RetryError
				if !errors.As(err, &retry) || retry.After != want || !errors.Is(err, sender.ErrUnavailable) {
					t.Fatalf("attempt %d: %v; want a retry after %s", i+1, err, want)
				}
				if ns := f.list(); len(ns) != 1 || ns[0].Status != persistence.NotificationQueued || ns[0].Attempts != i+1 {
					t.Fatalf("after attempt %d: %+v", i+1, ns)
				}
			}
			var dead *DeadError
			if err := f.svc.Handle(t.Context(), f.confirmed()); !errors.As(err, &dead) || dead.Class != ClassProviderUnavailable ||
				dead.Notification.Status != persistence.NotificationDead {
				t.Fatalf("last attempt: %v; want a DeadError (dead, parked, not retried) of class %s", err, ClassProviderUnavailable)
			}
			ns := f.list()
			if len(ns) != 1 || ns[0].Status != persistence.NotificationDead || ns[0].Attempts != 3 || !strings.Contains(ns[0].LastError, "503") {
				t.Fatalf("after the last attempt: %+v; want one dead letter", ns)
			}
			// Redelivered (the parking failed): dead again, the same class
			// read back from the stored error, nothing sent.
			if err := f.svc.Handle(t.Context(), f.confirmed()); !errors.As(err, &dead) || dead.Class != ClassProviderUnavailable {
				t.Fatalf("redelivered dead: %v", err)
			}
			if n := len(f.sender.messages()); n != 3 {
				t.Fatalf("%d provider calls; want 3 (none after the message died, none on SMS)", n)
			}
		})
	}
}

// TestUnavailableThenSent: a retry that gets through sends the message
// once, with the attempts counted.
func TestUnavailableThenSent(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{Backoff: []time.Duration{time.Second}})
			f.sender.script[sender.ChannelWhatsApp] = []error{fmt.Errorf("%w: timeout", sender.ErrUnavailable)}
			var retry *RetryError
			if err := f.svc.Handle(t.Context(), f.confirmed()); !errors.As(err, &retry) {
				t.Fatalf("first attempt: %v", err)
			}
			if err := f.svc.Handle(t.Context(), f.confirmed()); err != nil {
				t.Fatal(err)
			}
			if ns := f.list(); len(ns) != 1 || ns[0].Status != persistence.NotificationSent || ns[0].Attempts != 2 || ns[0].LastError != "" {
				t.Fatalf("%+v", ns)
			}
		})
	}
}

// TestWaitlistOfferCarriesTheExpiry: the client is told until when the
// freed slot is held, and how long that is.
func TestWaitlistOfferCarriesTheExpiry(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			start := time.Date(2026, 12, 8, 10, 30, 0, 0, bogota)
			ev := &messages.WaitlistOffered{EntryId: "e1", ClientId: f.client, ServiceId: "massage-60", StaffId: "ana",
				AppointmentId: "wl-e1", Start: timestamppb.New(start), HoldExpiresAt: timestamppb.New(f.now.Add(15 * time.Minute))}
			if err := f.svc.Handle(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
			sent := f.sender.messages()
			if len(sent) != 1 {
				t.Fatalf("sent %+v", sent)
			}
			for _, want := range []string{"Masaje relajante con Ana el martes 8 de diciembre, 10:30 a. m.",
				"hasta el lunes 7 de diciembre, 2:15 p. m. (15 minutos)"} {
				if !strings.Contains(sent[0].Body, want) {
					t.Errorf("body %q lacks %q", sent[0].Body, want)
				}
			}
			if ns := f.list(); len(ns) != 1 || ns[0].ID != "waitlist:e1:offer:wl-e1:whatsapp" || ns[0].Kind != string(KindWaitlistOffer) {
				t.Fatalf("%+v", ns)
			}
		})
	}
}

// TestClientWithoutPhone: no message; the notification is recorded as
// failed with a clear error and not retried.
func TestClientWithoutPhone(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			ev := f.confirmed()
			ev.ClientId = "01JNOPHONE0000000000000000"
			for range 2 {
				if err := f.svc.Handle(t.Context(), ev); err != nil {
					t.Fatalf("Handle: %v; want nil (not retried)", err)
				}
			}
			if sent := f.sender.messages(); len(sent) != 0 {
				t.Fatalf("sent %+v", sent)
			}
			ns := f.list()
			if len(ns) != 1 || ns[0].Status != persistence.NotificationFailed || ns[0].LastError != errNoPhone || ns[0].Attempts != 0 {
				t.Fatalf("%+v; want one failed notification saying why", ns)
			}
		})
	}
}

// TestQuietHoursHook: a message held by quiet hours is handed back for
// later without a provider call or an attempt counted.
func TestQuietHoursHook(t *testing.T) {
	f := newFixture(t, drivers()["sqlite"], Config{})
	f.svc.deps.QuietHours = holdFor(time.Hour)
	err := f.svc.Handle(t.Context(), f.confirmed())
	var retry *RetryError
	if !errors.As(err, &retry) || retry.After != time.Hour {
		t.Fatalf("%v; want a retry in 1h", err)
	}
	if ns := f.list(); len(f.sender.messages()) != 0 || len(ns) != 1 || ns[0].Attempts != 0 || ns[0].Status != persistence.NotificationQueued {
		t.Fatalf("sent %v, stored %+v", f.sender.messages(), ns)
	}
}

type holdFor time.Duration

func (h holdFor) Delay(persistence.Notification, time.Time, *time.Location) time.Duration {
	return time.Duration(h)
}

// TestWhichChangesSpeak: confirmations, cancellations and moves of
// confirmed appointments speak, each version once, and a completed visit
// its follow-up; holds and the rest are silent.
func TestWhichChangesSpeak(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 12, 8, 15, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		from, to string
		moved    bool
		want     string
	}{
		{"held", "confirmed", false, "appointment:a:confirmed:v4"},
		{"", "confirmed", false, "appointment:a:confirmed:v4"},
		{"confirmed", "cancelled", false, "appointment:a:cancelled:v4"},
		{"confirmed", "confirmed", true, "appointment:a:rescheduled:v4"},
		{"", "held", false, ""},
		{"held", "cancelled", false, ""},
		{"held", "expired", false, ""},
		{"held", "held", true, ""},
		{"confirmed", "completed", false, "appointment:a:follow_up:v4"},
		{"confirmed", "no_show", false, ""},
	} {
		ev := &messages.AppointmentChanged{AppointmentId: "a", ClientId: "c", Start: at, FromStatus: c.from, ToStatus: c.to, Version: 4}
		if c.moved {
			ev.PreviousStart = at
		}
		in, ok := appointmentIntent(ev)
		if got := map[bool]string{true: in.cause}[ok]; got != c.want {
			t.Errorf("%s → %s (moved %v): %q, want %q", c.from, c.to, c.moved, got, c.want)
		}
	}
}

// TestDefaultTemplates: every kind renders in every language on every
// channel, an email with its subject and HTML part.
func TestDefaultTemplates(t *testing.T) {
	ts, err := DefaultTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range languages {
		for _, kind := range Kinds() {
			for _, ch := range TemplateChannels() {
				vars := SampleVars(kind, lang)
				first := vars[Declared(kind)[0].Name].(string) // the service's name, the amount paid
				out, err := ts.Get(kind, lang, ch).Render(vars)
				if err != nil || !strings.Contains(out.Text, first) || (ch == sender.ChannelEmail) != (out.Subject != "" && out.HTML != "") {
					t.Errorf("%s %s %s: %+v, %v", lang, kind, ch, out, err)
				}
			}
		}
	}
	if _, err := ts.Get(KindAppointmentConfirmed, DefaultLanguage, sender.ChannelSMS).Render(Vars{"Service": "x"}); err == nil {
		t.Error("rendered with variables missing")
	}
	wrongType := SampleVars(KindAppointmentConfirmed, DefaultLanguage)
	wrongType["When"] = 3
	if _, err := ts.Get(KindAppointmentConfirmed, DefaultLanguage, sender.ChannelSMS).Render(wrongType); err == nil {
		t.Error("rendered a datetime given as an int")
	}
}

// TestTemplateWithUnknownVariableFailsAtLoad: a text naming a variable its
// kind does not declare is refused when the templates load, as are an
// unknown kind, a missing text and a broken one.
func TestTemplateWithUnknownVariableFailsAtLoad(t *testing.T) {
	good := fstest.MapFS{}
	if err := fs.WalkDir(embedded, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := embedded.ReadFile(p)
		good[strings.TrimPrefix(p, "templates/")] = &fstest.MapFile{Data: b}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTemplates(good); err != nil {
		t.Fatalf("the embedded templates: %v", err)
	}
	for name, change := range map[string]func(fstest.MapFS){
		"unknown variable": func(m fstest.MapFS) {
			m["en/appointment_confirmed.tmpl"] = &fstest.MapFile{Data: []byte("Confirmed: {{.Service}} for {{.Price}}")}
		},
		"variable of another kind": func(m fstest.MapFS) {
			m["es-CO/appointment_confirmed.tmpl"] = &fstest.MapFile{Data: []byte("{{.Service}} hasta {{.ExpiresAt}}")}
		},
		"unknown kind":     func(m fstest.MapFS) { m["en/birthday.tmpl"] = &fstest.MapFile{Data: []byte("Happy birthday")} },
		"unknown language": func(m fstest.MapFS) { m["fr/waitlist_offer.tmpl"] = &fstest.MapFile{Data: []byte("{{.Service}}")} },
		"missing text":     func(m fstest.MapFS) { delete(m, "en/waitlist_offer.tmpl") },
		"missing subject":  func(m fstest.MapFS) { delete(m, "en/waitlist_offer.subject.tmpl") },
		"misused type": func(m fstest.MapFS) {
			m["en/waitlist_offer.tmpl"] = &fstest.MapFile{Data: []byte("{{if gt .ExpiresIn 5}}soon{{end}} {{.Service}}")}
		},
		"parse error": func(m fstest.MapFS) { m["en/waitlist_offer.tmpl"] = &fstest.MapFile{Data: []byte("{{.Service")} },
		"empty text":  func(m fstest.MapFS) { m["en/waitlist_offer.tmpl"] = &fstest.MapFile{Data: []byte("  \n")} },
	} {
		m := fstest.MapFS{}
		for k, v := range good {
			m[k] = v
		}
		change(m)
		if _, err := LoadTemplates(m); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestFormat(t *testing.T) {
	at := time.Date(2026, 12, 7, 0, 5, 0, 0, bogota)
	for _, c := range []struct{ got, want string }{
		{formatWhen(at, bogota, LanguageSpanishCO), "lunes 7 de diciembre, 12:05 a. m."},
		{formatWhen(at.Add(12*time.Hour), bogota, LanguageSpanishCO), "lunes 7 de diciembre, 12:05 p. m."},
		{formatWhen(at, bogota, LanguageEnglish), "Monday, December 7, 12:05 AM"},
		{formatDuration(90*time.Minute+30*time.Second, LanguageSpanishCO), "1 hora 30 minutos"},
		{formatDuration(2*time.Hour, LanguageEnglish), "2 hours"},
		{formatDuration(time.Minute, LanguageEnglish), "1 minute"},
		{formatDuration(20*time.Second, LanguageSpanishCO), "menos de un minuto"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

// TestCancelledAndRescheduled: a move of a confirmed appointment says
// where it is now and where it was; its cancellation says which one; each
// is its own message beside the confirmation.
func TestCancelledAndRescheduled(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			moved := f.confirmed()
			moved.FromStatus, moved.Version = "confirmed", 3
			moved.PreviousStart = moved.Start
			moved.Start = timestamppb.New(time.Date(2026, 12, 9, 9, 0, 0, 0, bogota))
			cancelled := f.confirmed()
			cancelled.FromStatus, cancelled.ToStatus, cancelled.Version, cancelled.Start = "confirmed", "cancelled", 4, moved.Start
			for _, ev := range []*messages.AppointmentChanged{f.confirmed(), moved, cancelled, moved} {
				if err := f.svc.Handle(t.Context(), ev); err != nil {
					t.Fatal(err)
				}
			}
			sent := f.sender.messages()
			if len(sent) != 3 {
				t.Fatalf("sent %+v; want confirmation, move and cancellation once each", sent)
			}
			for i, want := range []string{"",
				"ahora es el miércoles 9 de diciembre, 9:00 a. m. (antes era el martes 8 de diciembre, 3:00 p. m.)",
				"Tu cita de Masaje relajante con Ana del miércoles 9 de diciembre, 9:00 a. m. fue cancelada"} {
				if !strings.Contains(sent[i].Body, want) {
					t.Errorf("message %d %q lacks %q", i, sent[i].Body, want)
				}
			}
			ids := map[string]bool{}
			for _, n := range f.list() {
				ids[n.ID] = true
			}
			for _, id := range []string{"appointment:a1:confirmed:v2:whatsapp", "appointment:a1:rescheduled:v3:whatsapp", "appointment:a1:cancelled:v4:whatsapp"} {
				if !ids[id] {
					t.Errorf("no notification %s in %v", id, ids)
				}
			}
		})
	}
}
