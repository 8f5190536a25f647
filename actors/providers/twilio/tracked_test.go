package twilio

import (
	"context"
	"strings"
	"testing"

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
