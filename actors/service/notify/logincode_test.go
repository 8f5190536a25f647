package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

func (f *fixture) code(channel sender.Channel) error {
	return NewLoginCodes(&fakeRefuser{}).withService(f.svc).Send(f.t.Context(),
		sender.Message{To: phone, Body: "Tu código de Spa es 123456", Channel: channel, Purpose: "otp"})
}

// withService is Use, for a one-line chain in tests.
func (l *LoginCodes) withService(s *Service) *LoginCodes { l.Use(s); return l }

// fakeRefuser is the sender a LoginCodes falls back to before Use: the
// tests must never reach it.
type fakeRefuser struct{}

func (fakeRefuser) Send(_ context.Context, m sender.Message) error {
	return fmt.Errorf("the node's sender was used for %q", m.Purpose)
}

// TestLoginCodeThroughTheService: a login code follows the notification
// rules: outside the 24-hour window as the authentication template (its
// TTL capped at the code's life), inside as text, by SMS when WhatsApp has
// no template or cannot take it now; the channel the client asked for
// first; quiet hours never hold it; nothing is stored (the body is the
// code); the metrics count it as login_code.
func TestLoginCodeThroughTheService(t *testing.T) {
	auth := WhatsAppTemplate{Name: "codigo_acceso", Language: "es", Category: CategoryAuthentication, TTL: 10 * time.Minute}
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := windowFixture(t, open, map[Kind]WhatsAppTemplate{KindLoginCode: auth})
			reg := prometheus.NewRegistry()
			met, err := NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			d, cfg := f.svc.deps, f.svc.cfg
			d.Metrics, cfg.LoginCodeTTL = met, 5*time.Minute
			d.QuietHours = holdAll{} // every message would wait: the code goes anyway
			if f.svc, err = New(d, cfg); err != nil {
				t.Fatal(err)
			}

			// Outside the window: the authentication template, 5 min TTL.
			if err := f.code(""); err != nil {
				t.Fatal(err)
			}
			sent := f.sender.messages()
			if len(sent) != 1 || sent[0].Channel != sender.ChannelWhatsApp || sent[0].Template == nil ||
				sent[0].Template.Name != "codigo_acceso" || sent[0].Template.Category != CategoryAuthentication ||
				sent[0].Template.TTL != 5*time.Minute || sent[0].Template.Params[0] != "Tu código de Spa es 123456" {
				t.Fatalf("outside the window: %+v", sent)
			}
			// Inside: text.
			f.inbound("whatsapp", f.now.Add(-time.Hour))
			if err := f.code(""); err != nil {
				t.Fatal(err)
			}
			if sent = f.sender.messages(); len(sent) != 2 || sent[1].Channel != sender.ChannelWhatsApp || sent[1].Template != nil {
				t.Fatalf("inside the window: %+v", sent[1:])
			}
			// WhatsApp down: SMS at once.
			f.sender.script[sender.ChannelWhatsApp] = []error{fmt.Errorf("%w: 503 for %s", sender.ErrUnavailable, phone)}
			if err := f.code(""); err != nil {
				t.Fatal(err)
			}
			if sent = f.sender.messages(); len(sent) != 4 || sent[2].Channel != sender.ChannelWhatsApp || sent[3].Channel != sender.ChannelSMS {
				t.Fatalf("WhatsApp down: %+v", sent[2:])
			}
			if strings.Contains(f.logs.String(), phone) {
				t.Fatal("the phone number is in the log unmasked")
			}
			// Asked for SMS: SMS alone.
			if err := f.code(sender.ChannelSMS); err != nil {
				t.Fatal(err)
			}
			if sent = f.sender.messages(); len(sent) != 5 || sent[4].Channel != sender.ChannelSMS {
				t.Fatalf("asked for SMS: %+v", sent[4:])
			}
			// Both down: the error says so, both channels tried.
			f.sender.always[sender.ChannelWhatsApp] = fmt.Errorf("%w: 500", sender.ErrUnavailable)
			f.sender.always[sender.ChannelSMS] = fmt.Errorf("%w: 500", sender.ErrUnavailable)
			if err := f.code(""); !errors.Is(err, sender.ErrUnavailable) {
				t.Fatalf("both down: %v, want unavailable", err)
			}
			if n := len(f.sender.messages()); n != 7 {
				t.Fatalf("both down: %d calls, want 7", n)
			}
			if rows := f.list(); len(rows) != 0 {
				t.Fatalf("a login code was stored: %+v", rows)
			}
			for series, want := range map[string]float64{
				`whatsapp/sent`: 2, `sms/sent`: 2, `whatsapp/unavailable`: 2, `sms/unavailable`: 1, `fallback`: 2,
			} {
				var got float64
				switch ch, what, _ := strings.Cut(series, "/"); {
				case series == "fallback":
					got = testutil.ToFloat64(met.fallbacks.WithLabelValues("sms", "whatsapp", string(KindLoginCode)))
				case what == "sent":
					got = testutil.ToFloat64(met.sends.WithLabelValues(ch, string(KindLoginCode)))
				default:
					got = testutil.ToFloat64(met.failures.WithLabelValues(ch, string(KindLoginCode), what))
				}
				if got != want {
					t.Errorf("%s = %v, want %v", series, got, want)
				}
			}

			// Without a login_code template, outside the window: SMS, with
			// no WhatsApp call.
			f = windowFixture(t, open, nil)
			if err := f.code(""); err != nil {
				t.Fatal(err)
			}
			if sent = f.sender.messages(); len(sent) != 1 || sent[0].Channel != sender.ChannelSMS {
				t.Fatalf("no template: %+v", sent)
			}
		})
	}
}

// holdAll is quiet hours that hold every message, whatever its category.
type holdAll struct{}

func (holdAll) Delay(persistence.Notification, time.Time, *time.Location) time.Duration {
	return time.Hour
}

// TestLoginCodeTemplateIsAuthentication: the login_code template must be
// of category authentication, and no other kind's may be.
func TestLoginCodeTemplateIsAuthentication(t *testing.T) {
	if _, err := ParseWhatsAppTemplates("login_code=codigo:es:authentication:5m"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"login_code=codigo:es:utility", "appointment_confirmed=cita:es:authentication"} {
		if _, err := ParseWhatsAppTemplates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// hangWhatsApp hangs every WhatsApp call until its context ends.
type hangWhatsApp struct{ next sender.Sender }

func (h hangWhatsApp) Send(ctx context.Context, m sender.Message) error {
	if m.Channel == sender.ChannelWhatsApp {
		<-ctx.Done()
		return fmt.Errorf("%w: %w", sender.ErrUnavailable, ctx.Err())
	}
	return h.next.Send(ctx, m)
}

// TestLoginCodeHungWhatsAppLeavesSMSTime: a WhatsApp provider that hangs
// takes at most half of the request's time; SMS carries the code within
// the rest.
func TestLoginCodeHungWhatsAppLeavesSMSTime(t *testing.T) {
	open := drivers()["sqlite"]
	f := windowFixture(t, open, nil)
	f.inbound("whatsapp", f.now.Add(-time.Hour))
	d, cfg := f.svc.deps, f.svc.cfg
	d.Sender = hangWhatsApp{f.sender}
	svc, err := New(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := svc.SendLoginCode(ctx, sender.Message{To: phone, Body: "123456", Purpose: "otp"}); err != nil {
		t.Fatalf("the code did not go by SMS after the hung WhatsApp: %v", err)
	}
	if sent := f.sender.messages(); len(sent) != 1 || sent[0].Channel != sender.ChannelSMS {
		t.Fatalf("sent %+v, want the SMS", sent)
	}
}
