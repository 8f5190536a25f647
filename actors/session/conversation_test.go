package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/persistence"
)

// echoBot keeps the texts it was given as its memory, and hands off when
// told "persona".
type echoBot struct{ fail error }

type echoMemory struct {
	Texts []string `json:"texts"`
	Human bool     `json:"human"`
}

func (b *echoBot) Turn(_ context.Context, phone string, in Inbound, raw []byte) ([]byte, ConversationView, error) {
	if b.fail != nil {
		return nil, ConversationView{}, b.fail
	}
	var m echoMemory
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &m)
	}
	m.Texts = append(m.Texts, phone+": "+in.Text)
	m.Human = m.Human || in.Text == "persona"
	v := ConversationView{ClientID: "client-1", Owner: persistence.ConversationBot}
	if m.Human {
		v.Owner = persistence.ConversationHuman
	}
	out, err := json.Marshal(m)
	return out, v, err
}

func (b *echoBot) Staff(_ context.Context, phone string, act StaffAct, raw []byte) ([]byte, ConversationView, error) {
	var m echoMemory
	_ = json.Unmarshal(raw, &m)
	m.Texts = append(m.Texts, act.StaffID+" to "+phone+": "+act.Text)
	out, err := json.Marshal(m)
	return out, ConversationView{ClientID: "client-1", Owner: persistence.ConversationHuman, StaffID: act.StaffID}, err
}

// xorSealer is a keyed.Sealer that visibly changes the bytes.
type xorSealer struct{}

func (xorSealer) Encrypt(p, _ []byte) ([]byte, error) {
	out := []byte{0x01}
	for _, c := range p {
		out = append(out, c^0x5a)
	}
	return out, nil
}

func (xorSealer) Decrypt(c, _ []byte) ([]byte, error) {
	out := []byte{}
	for _, b := range c[1:] {
		out = append(out, b^0x5a)
	}
	return out, nil
}

func (f *fixture) converse(text string) *ConverseReply {
	return NewClient(f.dir).Converse(context.Background(), key, &Converse{Phone: phone, Msg: Inbound{ID: "wamid." + text, Text: text}})
}

func (f *fixture) stored() persistence.Conversation {
	f.t.Helper()
	var c persistence.Conversation
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		c, err = tx.ConversationGet(context.Background(), key)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) memory() echoMemory {
	f.t.Helper()
	gotPhone, raw, err := OpenConversation(f.sealer, f.stored())
	var m echoMemory
	if err != nil || gotPhone != phone || json.Unmarshal(raw, &m) != nil {
		f.t.Fatalf("open: %q %s %v", gotPhone, raw, err)
	}
	return m
}

// TestConversationPersistsSealed: each message reaches the bot with the
// memory the previous one left, across a restart; the stored row is
// sealed (neither number nor text in it) and carries the bot's view; a
// failed turn stores nothing.
func TestConversationPersistsSealed(t *testing.T) {
	f := newFixtureWith(t, &echoBot{}, xorSealer{})
	for _, text := range []string{"hola", "masaje"} {
		if r := f.converse(text); r.Err != nil {
			t.Fatalf("%s: %v", text, r.Err)
		}
	}
	f.start() // a restart: the next activation loads the stored memory
	if r := f.converse("persona"); r.Err != nil {
		t.Fatal(r.Err)
	}
	row := f.stored()
	if bytes.Contains(row.Memory, []byte("masaje")) || bytes.Contains(row.Memory, []byte(phone)) {
		t.Fatalf("memory stored in clear: %q", row.Memory)
	}
	if row.Version != 3 || row.ClientID != "client-1" || row.Owner != persistence.ConversationHuman || row.WaitingSince.IsZero() {
		t.Fatalf("row %+v", row)
	}
	if m := f.memory(); len(m.Texts) != 3 || m.Texts[1] != phone+": masaje" {
		t.Fatalf("memory %+v", m)
	}

	f.bot.(*echoBot).fail = errors.New("calendar unreachable")
	if r := f.converse("otra"); r.Err == nil {
		t.Fatal("a failed turn answered nil")
	}
	if row := f.stored(); row.Version != 3 {
		t.Fatalf("a failed turn stored version %d", row.Version)
	}
	f.bot.(*echoBot).fail = nil

	r := NewClient(f.dir).Staff(context.Background(), key, &StaffAct{Action: StaffReply, StaffID: "desk", Text: "hola, soy Ana"})
	if r.Err != nil || r.Conversation.StaffID != "desk" || r.Conversation.Owner != persistence.ConversationHuman {
		t.Fatalf("staff: %+v", r)
	}
	if m := f.memory(); m.Texts[len(m.Texts)-1] != "desk to "+phone+": hola, soy Ana" {
		t.Fatalf("memory after the staff reply %+v", m)
	}
}

// TestConversationWrittenByRetriedTransactions: every transaction run
// twice, the first rolled back (PostgreSQL's serialization failure at
// COMMIT, retried by the driver): each turn is stored once, from the
// version it read, and the next turn finds it.
func TestConversationWrittenByRetriedTransactions(t *testing.T) {
	f := newFixtureWith(t, &echoBot{}, xorSealer{})
	f.store.retried.Store(true)
	for _, text := range []string{"hola", "masaje", "mañana"} {
		if r := f.converse(text); r.Err != nil {
			t.Fatalf("%s: %v", text, r.Err)
		}
	}
	if row := f.stored(); row.Version != 3 {
		t.Fatalf("stored version %d, want 3", row.Version)
	}
	if m := f.memory(); len(m.Texts) != 3 {
		t.Fatalf("memory %+v", m)
	}
}

// TestConversationsActiveGauge: an activation holding a conversation
// counts once however many turns it takes, and no more once stopped.
func TestConversationsActiveGauge(t *testing.T) {
	f := newFixtureWith(t, &echoBot{}, xorSealer{})
	for _, text := range []string{"hola", "masaje"} {
		if r := f.converse(text); r.Err != nil {
			t.Fatalf("%s: %v", text, r.Err)
		}
	}
	met := f.met
	if n := testutil.ToFloat64(met.conversations); n != 1 {
		t.Fatalf("active conversations %v, want 1", n)
	}
	f.start() // the old directory stops its actors
	if n := testutil.ToFloat64(met.conversations); n != 0 {
		t.Fatalf("active conversations after the stop %v, want 0", n)
	}
}

// TestConversationErasedUnderneath: a conversation deleted while its
// activation lives (the client anonymised) is not written back from the
// activation's copy: the write conflicts, and the next message starts a
// new conversation.
func TestConversationErasedUnderneath(t *testing.T) {
	f := newFixtureWith(t, &echoBot{}, xorSealer{})
	if r := f.converse("hola"); r.Err != nil {
		t.Fatal(r.Err)
	}
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
		_, err := tx.ConversationDeleteIdle(context.Background(), t0.AddDate(1, 0, 0), 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := f.converse("sigo"); !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("write over an erased conversation: %v", r.Err)
	}
	if r := f.converse("nuevo"); r.Err != nil {
		t.Fatal(r.Err)
	}
	if m := f.memory(); len(m.Texts) != 1 || m.Texts[0] != phone+": nuevo" {
		t.Fatalf("memory after erasure %+v, want only the new message", m)
	}
	if r := NewClient(f.dir).Staff(context.Background(), "other-key", &StaffAct{Action: StaffTake, StaffID: "desk"}); !errors.Is(r.Err, persistence.ErrNotFound) {
		t.Fatalf("staff action on no conversation: %v", r.Err)
	}
}

// TestConverseWithoutBot: a node without a bot refuses.
func TestConverseWithoutBot(t *testing.T) {
	f := newFixture(t)
	if r := f.converse("hola"); !errors.Is(r.Err, ErrNoBot) {
		t.Fatalf("converse without a bot: %v", r.Err)
	}
}

func newFixtureWith(t *testing.T, b Bot, s xorSealer) *fixture {
	f := newFixture(t)
	f.bot, f.sealer = b, s
	f.start()
	return f
}
