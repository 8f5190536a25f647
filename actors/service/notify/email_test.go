package notify

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/email"
	"github.com/spa-engine/spa/actors/providers/email/emailfake"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

const clientEmail = "maria.perez@example.com"

// TestFallsBackToEmailThroughSMTP: WhatsApp and SMS refuse the message,
// so it goes by email to the address in the client's (sealed) profile,
// through the SMTP client to a local SMTP sink: subject and HTML from the
// email template, a service name carrying markup escaped in the HTML
// part, the address masked in the log. A client without an email in the
// profile gets no email row at all.
func TestFallsBackToEmailThroughSMTP(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			ctx := t.Context()
			keyring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{5}, pii.KeyLen)}})
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := keyring.Encrypt([]byte(clientEmail), pii.ProfileContext("email", f.client))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
				if _, err := tx.ServicePut(ctx, persistence.Service{ID: "massage-60", Name: "Masaje <script>x</script>", Category: "body",
					Duration: time.Hour, PriceMinor: 12000000, RequiredSkills: []string{"massage"}, DepositPolicy: persistence.DepositNone,
					Active: true, UpdatedAt: f.now, Version: 1}); err != nil {
					return err
				}
				_, err := tx.ProfilePut(ctx, persistence.ClientProfile{UserID: f.client, EmailCipher: sealed, CreatedAt: f.now, UpdatedAt: f.now})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			sink := emailfake.Start(t)
			smtpClient, err := email.New(email.Config{Host: sink.Host(), Port: sink.Port(), TLS: email.TLSNone,
				From: "Spa <citas@spa.example>", Policy: resilient.Policy{Attempts: 1}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			refuse := sender.SenderFunc(func(_ context.Context, m sender.Message) error {
				return fmt.Errorf("%w: %s refused %s", sender.ErrRejected, m.Channel, m.To)
			})
			router := sender.NewRouter(sender.ChannelSMS, map[sender.Channel]sender.Sender{
				sender.ChannelWhatsApp: refuse, sender.ChannelSMS: refuse, sender.ChannelEmail: smtpClient})
			var logs bytes.Buffer
			svc, err := New(Deps{Store: f.store, Sender: router, Phones: keyring, Now: func() time.Time { return f.now },
				Log: slog.New(slog.NewJSONHandler(&logs, nil))}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := svc.Handle(ctx, f.confirmed()); err != nil {
					t.Fatal(err)
				}
			}
			got := sink.Messages()
			if len(got) != 1 || got[0].To[0] != clientEmail {
				t.Fatalf("sink got %+v; want one email to the client", got)
			}
			m, err := got[0].Parsed()
			if err != nil {
				t.Fatal(err)
			}
			subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			data := got[0].Data
			if subject != "Tu cita está confirmada" || !strings.Contains(data, "&lt;script&gt;") || strings.Contains(data, "<script>x</script></p>") {
				t.Fatalf("subject %q, message:\n%s", subject, data)
			}
			byChannel := map[string]persistence.Notification{}
			for _, n := range f.list() {
				byChannel[n.Channel] = n
			}
			if byChannel["whatsapp"].Status != persistence.NotificationFailed || byChannel["sms"].Status != persistence.NotificationFailed ||
				byChannel["email"].Status != persistence.NotificationSent || !strings.HasPrefix(byChannel["email"].Body, "Tu cita está confirmada\n\nTu cita está confirmada para el") {
				t.Fatalf("stored %+v", byChannel)
			}
			if strings.Contains(logs.String(), clientEmail) || strings.Contains(logs.String(), "3001234567") {
				t.Fatalf("a recipient is in the log unmasked:\n%s", logs.String())
			}

			// Without an email in the profile, the fallback ends at SMS.
			noEmail := f.confirmed()
			noEmail.ClientId = "01JNOMAIL0000000000000000A"
			phone, _ := keyring.Encrypt([]byte(phone), pii.PhoneContext(noEmail.ClientId))
			if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
				return tx.UserCreate(ctx, persistence.User{ID: noEmail.ClientId, PhoneIndex: []byte("another-index"), PhoneCipher: phone,
					Roles: []string{"client"}, CreatedAt: f.now, UpdatedAt: f.now})
			}); err != nil {
				t.Fatal(err)
			}
			noEmail.AppointmentId = "a9"
			if err := svc.Handle(ctx, noEmail); err != nil {
				t.Fatal(err)
			}
			for _, n := range f.list() {
				if n.UserID == noEmail.ClientId && n.Channel == "email" {
					t.Fatalf("an email row for a client without an email: %+v", n)
				}
			}
			if len(sink.Messages()) != 1 {
				t.Fatal("an email was sent to a client without an email")
			}
		})
	}
}
