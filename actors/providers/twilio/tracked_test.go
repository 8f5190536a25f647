package twilio

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

// TestSendTrackedReturnsTheSid: the id a send returns is the MessageSid
// the fake recorded, on SMS and WhatsApp.
func TestSendTrackedReturnsTheSid(t *testing.T) {
	f := setup(t, resilient.Policy{})
	var ids []string
	for _, ch := range []sender.Channel{sender.ChannelSMS, sender.ChannelWhatsApp} {
		id, err := f.client.SendTracked(context.Background(), sender.Message{To: phone, Body: "Hola", Channel: ch})
		if err != nil || !strings.HasPrefix(id, "SM") {
			t.Fatalf("%s: %q %v", ch, id, err)
		}
		ids = append(ids, id)
	}
	got := f.fake.Messages()
	if len(got) != 2 || got[0].SID != ids[0] || got[1].SID != ids[1] || ids[0] == ids[1] {
		t.Fatalf("ids %v; the fake recorded %+v", ids, got)
	}
}

// TestWhatsAppTemplate: a message with a template goes as its
// ContentSid with the parameters as ContentVariables and its TTL as
// ValidityPeriod (rounded up, at most 36000 s), without a Body; a
// template not named by a ContentSid is refused before any call.
func TestWhatsAppTemplate(t *testing.T) {
	f := setup(t, resilient.Policy{})
	ctx := context.Background()
	tmpl := &sender.Template{Name: "HX0123456789abcdef0123456789abcdef", Language: "es", Category: "utility",
		Params: []string{"Tu cita es mañana"}, TTL: 90*time.Minute + 500*time.Millisecond}
	if _, err := f.client.SendTracked(ctx, sender.Message{To: phone, Body: "Tu cita es mañana", Channel: sender.ChannelWhatsApp, Template: tmpl}); err != nil {
		t.Fatal(err)
	}
	long := *tmpl
	long.TTL = 30 * time.Hour
	if _, err := f.client.SendTracked(ctx, sender.Message{To: phone, Body: "x", Channel: sender.ChannelWhatsApp, Template: &long}); err != nil {
		t.Fatal(err)
	}
	got := f.fake.Messages()
	if len(got) != 2 || got[0].Body != "" || got[0].ContentSID != tmpl.Name || got[0].ContentVariables != `{"1":"Tu cita es mañana"}` ||
		got[0].ValidityPeriod != "5401" || got[1].ValidityPeriod != "36000" {
		t.Fatalf("fake recorded %+v", got)
	}
	bad := *tmpl
	bad.Name = "cita_recordatorio"
	if _, err := f.client.SendTracked(ctx, sender.Message{To: phone, Body: "x", Channel: sender.ChannelWhatsApp, Template: &bad}); !errors.Is(err, sender.ErrRejected) {
		t.Fatalf("a template without a ContentSid: %v", err)
	}
	if n := len(f.fake.Messages()); n != 2 {
		t.Fatalf("%d messages, want the refused one not sent", n)
	}
}
