package sender

import (
	"context"
	"errors"
	"testing"
)

// tracked is a Sender that gives an id.
type tracked struct{ id string }

func (t tracked) Send(ctx context.Context, m Message) error {
	_, err := t.SendTracked(ctx, m)
	return err
}
func (t tracked) SendTracked(context.Context, Message) (string, error) {
	return t.id, nil
}

// TestRouterSendTracked: the router hands back the id of a channel whose
// Sender tracks, none for one that does not, and refuses a channel it has
// no route for.
func TestRouterSendTracked(t *testing.T) {
	plain := SenderFunc(func(context.Context, Message) error { return nil })
	r := NewRouter(ChannelSMS, map[Channel]Sender{ChannelWhatsApp: tracked{"wamid.1"}, ChannelSMS: plain})
	ctx := context.Background()
	if id, err := SendTracked(ctx, r, Message{To: "+573001234567", Body: "x", Channel: ChannelWhatsApp}); err != nil || id != "wamid.1" {
		t.Fatalf("whatsapp: %q %v, want wamid.1", id, err)
	}
	if id, err := SendTracked(ctx, r, Message{To: "+573001234567", Body: "x"}); err != nil || id != "" {
		t.Fatalf("sms (default, untracked): %q %v, want no id", id, err)
	}
	if _, err := SendTracked(ctx, r, Message{To: "a@b.co", Body: "x", Channel: ChannelEmail}); !errors.Is(err, ErrRejected) || !errors.Is(err, ErrNoRoute) {
		t.Fatalf("email without a route: %v", err)
	}
	if id, err := SendTracked(ctx, plain, Message{}); err != nil || id != "" {
		t.Fatalf("a plain Sender: %q %v", id, err)
	}
}
