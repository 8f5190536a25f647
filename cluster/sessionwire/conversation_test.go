package sessionwire

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// TestConversationMessagesRoundTrip: a WhatsApp message and staff actions
// travel whole; a conversation message carries its provider id as its
// idempotency key (safe to resend), a login code none; refusals keep
// their sentinel or their fault code and text.
func TestConversationMessagesRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 1, 15, 4, 5, 0, time.UTC)
	for _, msg := range []any{
		&session.Converse{Phone: "+573001234567", Msg: session.Inbound{ID: "wamid.1", Time: at, Text: "Confirmar", Payload: "confirm:apt_1"}},
		&session.Converse{Phone: "+573001234567", Msg: session.Inbound{ID: "wamid.2", Text: "hola"}},
		&session.StaffAct{Action: session.StaffReply, StaffID: "desk", Text: "Hola, soy Ana"},
	} {
		req, err := Encode("ab12", msg)
		if err != nil {
			t.Fatal(err)
		}
		key, got, err := Decode(viaBytes(t, req, &messages.SessionRequest{}))
		if err != nil || key != "ab12" || !reflect.DeepEqual(got, msg) {
			t.Fatalf("%T: got %q %#v %v", msg, key, got, err)
		}
	}
	c := Codec()
	if k := c.IdempotencyKey(&session.Converse{Msg: session.Inbound{ID: "wamid.1"}}); k != "converse/wamid.1" {
		t.Fatalf("converse key %q", k)
	}
	if k := c.IdempotencyKey(&session.RequestCode{Phone: "+573001234567"}); k != "" {
		t.Fatalf("a login code request has key %q: it would be resent", k)
	}

	view := session.ConversationView{ClientID: "c1", Owner: "human", StaffID: "desk", WaitingSince: at, Updated: at.Add(time.Minute)}
	for _, reply := range []any{
		&session.ConverseReply{},
		&session.StaffActReply{Conversation: view},
	} {
		enc, err := EncodeReply(reply)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeReply(viaBytes(t, enc, &messages.SessionReply{}))
		if err != nil || !reflect.DeepEqual(got, reply) {
			t.Fatalf("%T: got %#v %v", reply, got, err)
		}
	}
	for _, tc := range []struct {
		err   error
		check func(error) bool
	}{
		{session.ErrNoBot, func(e error) bool { return errors.Is(e, session.ErrNoBot) }},
		{persistence.ErrNotFound, func(e error) bool { return errors.Is(e, persistence.ErrNotFound) }},
		{fault.New(fault.CodeConflict, "take it over first"), func(e error) bool {
			var f *fault.Error
			return errors.As(e, &f) && f.Code == fault.CodeConflict && f.Message == "take it over first"
		}},
	} {
		enc, _ := EncodeReply(&session.StaffActReply{Err: tc.err})
		got, err := DecodeReply(viaBytes(t, enc, &messages.SessionReply{}))
		if err != nil || !tc.check(got.(*session.StaffActReply).Err) {
			t.Fatalf("%v came back as %#v (%v)", tc.err, got, err)
		}
	}
}
