package whatsapp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

// TestSendTrackedReturnsTheWamid: the id a send returns is the one the
// fake recorded, for text and for a template, through the router too.
func TestSendTrackedReturnsTheWamid(t *testing.T) {
	fake, c := setup(t, resilient.Policy{}, map[string]TemplateRef{"otp": {Name: "codigo_acceso", Language: "es"}})
	fake.ApproveTemplate("codigo_acceso", "es", 1)
	fake.Inbound(waPhone, time.Now().Add(-time.Hour))
	r := sender.NewRouter(sender.ChannelWhatsApp, map[sender.Channel]sender.Sender{sender.ChannelWhatsApp: c})
	text, err := sender.SendTracked(context.Background(), r, sender.Message{To: phone, Body: "Hola", Channel: sender.ChannelWhatsApp, Purpose: "appointment_confirmed"})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := c.SendTracked(context.Background(), sender.Message{To: phone, Body: "123456", Channel: sender.ChannelWhatsApp, Purpose: "otp"})
	if err != nil {
		t.Fatal(err)
	}
	got := fake.Sent()
	if len(got) != 2 || got[0].ID != text || got[1].ID != tmpl || text == tmpl || !strings.HasPrefix(text, "wamid.") {
		t.Fatalf("ids %q, %q; the fake recorded %+v", text, tmpl, got)
	}
	if _, err := c.SendTracked(context.Background(), sender.Message{To: "3001234567", Body: "x"}); err == nil {
		t.Fatal("a number that is not E.164 was sent")
	}
}

// TestMessageTemplate: a message carrying a template goes as that
// approved template with its parameters, outside the window too.
func TestMessageTemplate(t *testing.T) {
	fake, c := setup(t, resilient.Policy{}, nil)
	fake.ApproveTemplate("cita_confirmada", "es", 1)
	id, err := c.SendTracked(context.Background(), sender.Message{To: phone, Body: "Tu cita está confirmada", Channel: sender.ChannelWhatsApp,
		Template: &sender.Template{Name: "cita_confirmada", Language: "es", Category: "utility", Params: []string{"Tu cita está confirmada"}, TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	got := fake.Sent()
	if len(got) != 1 || got[0].ID != id || got[0].Type != "template" || got[0].Template != "cita_confirmada" ||
		len(got[0].Params) != 1 || got[0].Params[0] != "Tu cita está confirmada" || len(fake.Statuses()) != 0 {
		t.Fatalf("fake recorded %+v, statuses %+v", got, fake.Statuses())
	}
}
