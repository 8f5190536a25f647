package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
)

// TestStaffActions: a person replies only once they took the conversation
// over, only they (not another person) and only inside the 24-hour
// window; the reply reaches the client and the transcript; while a person
// owns it the bot stays silent; handed back (or expired) the bot answers
// again.
func TestStaffActions(t *testing.T) {
	f := newFixture(t, nil)
	f.say("quiero hablar con una persona")
	if f.mem.owner() != OwnerHuman || f.mem.Waiting.IsZero() {
		t.Fatalf("no hand-off: %+v", f.mem)
	}
	s := Session{S: f.bot}
	act := func(a session.StaffAct) (session.ConversationView, error) {
		raw, _ := json.Marshal(f.mem)
		next, v, err := s.Staff(context.Background(), f.phone, a, raw)
		if err == nil {
			f.mem = decodeMemory(next)
		}
		return v, err
	}
	if _, err := act(session.StaffAct{Action: session.StaffReply, StaffID: "ana", Text: "hola"}); !errors.Is(err, ErrNotTaken) {
		t.Fatalf("reply before taking over: %v", err)
	}
	v, err := act(session.StaffAct{Action: session.StaffTake, StaffID: "ana"})
	if err != nil || v.Owner != OwnerHuman || v.StaffID != "ana" || v.ClientID == "" || v.WaitingSince.IsZero() {
		t.Fatalf("take: %+v %v", v, err)
	}
	if _, err := act(session.StaffAct{Action: session.StaffTake, StaffID: "bea"}); !errors.Is(err, ErrTakenByOther) {
		t.Fatalf("taking one another person owns: %v", err)
	}
	if _, err := act(session.StaffAct{Action: session.StaffReply, StaffID: "bea", Text: "hola"}); !errors.Is(err, ErrTakenByOther) {
		t.Fatalf("a reply by another person: %v", err)
	}
	before := f.out.count()
	if got := f.say("¿hola?"); got.Text != "" || f.out.count() != before {
		t.Fatalf("the bot answered a conversation a person owns: %+v", got)
	}
	if _, err := act(session.StaffAct{Action: session.StaffReply, StaffID: "ana", Text: "Hola, soy Ana"}); err != nil {
		t.Fatal(err)
	}
	if last := f.out.last(t); last.Text != "Hola, soy Ana" || last.To != f.phone {
		t.Fatalf("sent %+v", last)
	}
	if tr := f.mem.Turns[len(f.mem.Turns)-1]; tr.Role != "staff" || tr.Text != "Hola, soy Ana" {
		t.Fatalf("transcript ends with %+v", tr)
	}

	// 25 hours after the client's last message the window is closed.
	f.clock = func() time.Time { return now.Add(25 * time.Hour) }
	f.bot.d.Now = f.clock
	if _, err := act(session.StaffAct{Action: session.StaffReply, StaffID: "ana", Text: "¿sigues ahí?"}); !errors.Is(err, ErrWindowClosed) {
		t.Fatalf("a reply outside the window: %v", err)
	}
	v, err = act(session.StaffAct{Action: session.StaffExpire})
	if err != nil || v.Owner != OwnerBot || !v.WaitingSince.IsZero() || v.StaffID != "" {
		t.Fatalf("expire: %+v %v", v, err)
	}
	if got := f.say("hola"); got.Text == "" {
		t.Fatal("the bot did not answer after the hand-back")
	}
	if _, err := act(session.StaffAct{Action: "delete"}); err == nil {
		t.Fatal("an unknown action was accepted")
	}
}

// refusing is a Clients that refuses every number as identity does for
// blocked ones, or fails as when the store is down.
type refusing struct{ err error }

func (r refusing) ClientByPhone(context.Context, string) (string, error) { return "", r.err }

// TestBlockedNumberIsHandledSilently: a message from a blocked number is
// handled (no error: nothing to retry) without any answer; a store that
// cannot say is an error (the message is tried again).
func TestBlockedNumberIsHandledSilently(t *testing.T) {
	f := newFixture(t, nil)
	f.bot.d.Clients = refusing{fault.New(fault.CodeBlocked, "")}
	if _, err := f.bot.Handle(context.Background(), Inbound{ID: "wamid.b1", Phone: f.phone, Text: "hola"}, Memory{}); err != nil {
		t.Fatalf("blocked number: %v", err)
	}
	if f.out.count() != 0 {
		t.Fatal("a blocked number was answered")
	}
	f.bot.d.Clients = refusing{fault.Unavailable("")}
	if _, err := f.bot.Handle(context.Background(), Inbound{ID: "wamid.b2", Phone: f.phone, Text: "hola"}, Memory{}); err == nil {
		t.Fatal("an unavailable store was taken as an answer")
	}
}

// TestStaffNoticesAndTemplate: a client whose conversation a person takes
// over unasked is told so; one who asked for a person is not told twice;
// a hand-back tells the client the bot is back; outside the 24-hour
// window a person's reply goes as the approved template (the text its
// parameter) and a notice is not sent at all.
func TestStaffNoticesAndTemplate(t *testing.T) {
	f := newFixture(t, nil)
	f.say("hola")
	s := Session{S: f.bot}
	act := func(a session.StaffAct) error {
		t.Helper()
		raw, _ := json.Marshal(f.mem)
		next, _, err := s.Staff(context.Background(), f.phone, a, raw)
		if err == nil {
			f.mem = decodeMemory(next)
		}
		return err
	}
	if err := act(session.StaffAct{Action: session.StaffTake, StaffID: "ana"}); err != nil {
		t.Fatal(err)
	}
	if last := f.out.last(t); !strings.Contains(last.Text, "Una persona del equipo continúa") || last.To != f.phone {
		t.Fatalf("take-over notice %+v", last)
	}
	if tr := f.mem.Turns[len(f.mem.Turns)-1]; tr.Role != "bot" || !strings.Contains(tr.Text, "continúa") {
		t.Fatalf("the notice is not in the transcript: %+v", tr)
	}
	if err := act(session.StaffAct{Action: session.StaffRelease, StaffID: "ana"}); err != nil {
		t.Fatal(err)
	}
	if last := f.out.last(t); !strings.Contains(last.Text, "Sigo yo, el asistente") {
		t.Fatalf("hand-back notice %+v", last)
	}
	f.say("quiero hablar con una persona")
	n := f.out.count()
	if err := act(session.StaffAct{Action: session.StaffTake, StaffID: "ana"}); err != nil {
		t.Fatal(err)
	}
	if f.out.count() != n {
		t.Fatalf("a client who asked for a person was told again: %+v", f.out.last(t))
	}

	f.clock = func() time.Time { return now.Add(25 * time.Hour) }
	f.bot.d.Now = f.clock
	var templated []string
	f.bot.d.StaffTemplate = func(_ context.Context, to, text string) error {
		templated = append(templated, to+"|"+text)
		return nil
	}
	if err := act(session.StaffAct{Action: session.StaffReply, StaffID: "ana", Text: "¿Sigues interesada en la cita?"}); err != nil {
		t.Fatal(err)
	}
	if len(templated) != 1 || templated[0] != f.phone+"|¿Sigues interesada en la cita?" || f.out.count() != n {
		t.Fatalf("outside the window: template %q, %d free-form sends (want %d)", templated, f.out.count(), n)
	}
	if tr := f.mem.Turns[len(f.mem.Turns)-1]; tr.Role != "staff" || tr.Text != "¿Sigues interesada en la cita?" {
		t.Fatalf("transcript ends with %+v", tr)
	}
	f.bot.d.StaffTemplate = func(context.Context, string, string) error { return errors.New("template paused by Meta") }
	if err := act(session.StaffAct{Action: session.StaffReply, StaffID: "ana", Text: "hola"}); err == nil {
		t.Fatal("a template that failed was taken as sent")
	}
	if err := act(session.StaffAct{Action: session.StaffRelease, StaffID: "ana"}); err != nil || f.out.count() != n {
		t.Fatalf("release outside the window: %v, %d sends (want %d: no notice)", err, f.out.count(), n)
	}
}
