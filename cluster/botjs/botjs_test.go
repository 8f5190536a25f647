package botjs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

// xorSealer is a Sealer that visibly changes the body.
type xorSealer struct{}

func (xorSealer) Encrypt(p, _ []byte) ([]byte, error) { return xor(p, 0x01), nil }
func (xorSealer) Decrypt(c, _ []byte) ([]byte, error) { return xor(c[1:], 0), nil }

func xor(b []byte, version byte) []byte {
	out := []byte{}
	if version != 0 {
		out = append(out, version)
	}
	for _, c := range b {
		out = append(out, c^0x5a)
	}
	return out
}

// lane maps a number to a token without it (tests: the digits reversed).
func lane(from string) string {
	r := []byte(strings.TrimPrefix(from, "+"))
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return "k" + string(r)
}

type recorder struct {
	mu   sync.Mutex
	got  map[string][]string // phone -> texts in order
	fail map[string]int      // text -> failures left
}

func (r *recorder) handle(_ context.Context, m inbound.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[m.Text] > 0 {
		r.fail[m.Text]--
		return errors.New("calendar unreachable")
	}
	r.got[m.From] = append(r.got[m.From], m.Text)
	return nil
}

func (r *recorder) snapshot() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.got {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func msg(from string, i int) inbound.Message {
	return inbound.Message{Provider: inbound.ProviderWhatsApp, ID: fmt.Sprintf("wamid.%s.%d", from, i), From: from,
		Channel: "whatsapp", Text: fmt.Sprintf("%s says %d", from, i), Time: time.Unix(1700000000, 0).UTC()}
}

// TestInboxInOrderOncePerPhone: messages of several phones, each webhook
// delivered twice, a message that fails twice before it is answered: each
// phone's messages are answered once, in order; the stream keeps neither
// number nor text in clear; nothing is left in it.
func TestInboxInOrderOncePerPhone(t *testing.T) {
	s := natstest.Run(t)
	js, err := s.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	in, err := Open(ctx, js, Config{}, xorSealer{}, lane)
	if err != nil {
		t.Fatal(err)
	}
	phones := []string{"+573001111111", "+573002222222", "+573003333333"}
	const per = 20
	for i := range per {
		var batch []inbound.Message
		for _, p := range phones {
			batch = append(batch, msg(p, i))
		}
		batch = append(batch, inbound.Message{Provider: "twilio", ID: "SM1", From: "+1555", Channel: "sms", Text: "sms"})
		for range 2 { // the provider delivers twice
			if err := in.Receive(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := js.Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != uint64(per*len(phones)) {
		t.Fatalf("stream holds %+v (%v), want %d messages (no duplicates, no SMS)", info.State, err, per*len(phones))
	}
	raw, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Data, []byte("3001111111")) || bytes.Contains(raw.Data, []byte("says")) ||
		strings.Contains(raw.Subject, "3001111111") {
		t.Fatalf("the stream holds the number or the text in clear: %s %q", raw.Subject, raw.Data)
	}

	rec := &recorder{got: map[string][]string{}, fail: map[string]int{msg(phones[1], 3).Text: 2}}
	c, err := Consume(ctx, js, Config{Lanes: 2, Backoff: time.Millisecond}, xorSealer{}, rec.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	testwait.Until(t, 20*time.Second, "every message answered", func() error {
		got := rec.snapshot()
		for _, p := range phones {
			if len(got[p]) < per {
				return fmt.Errorf("%s: %d of %d", p, len(got[p]), per)
			}
		}
		return nil
	})
	for _, p := range phones {
		got := rec.snapshot()[p]
		for i, text := range got {
			if text != msg(p, i).Text {
				t.Fatalf("%s answered %q at %d, want %q (all: %v)", p, text, i, msg(p, i).Text, got)
			}
		}
	}
	testwait.Until(t, 10*time.Second, "the stream empty", func() error {
		info, err := st.Info(ctx)
		if err != nil || info.State.Msgs != 0 {
			return fmt.Errorf("%+v %v", info.State, err)
		}
		return nil
	})
}

// TestInboxUnansweredStays: a consumer stopped while its handler fails
// leaves the message in the stream, and the next consumer answers it (a
// node killed after the webhook's ack).
func TestInboxUnansweredStays(t *testing.T) {
	s := natstest.Run(t)
	js, err := s.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	in, err := Open(ctx, js, Config{}, nil, lane)
	if err != nil {
		t.Fatal(err)
	}
	m := msg("+573004444444", 1)
	if err := in.Receive(ctx, []inbound.Message{m}); err != nil {
		t.Fatal(err)
	}
	tried := make(chan struct{}, 100)
	down := func(context.Context, inbound.Message) error { tried <- struct{}{}; return errors.New("down") }
	c, err := Consume(ctx, js, Config{PinnedTTL: time.Second, AckWait: 2 * time.Second}, nil, down, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-tried
	c.Stop()

	rec := &recorder{got: map[string][]string{}}
	c2, err := Consume(ctx, js, Config{PinnedTTL: time.Second, AckWait: 2 * time.Second}, nil, rec.handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	testwait.Until(t, 30*time.Second, "the message answered by the next consumer", func() error {
		if got := rec.snapshot()[m.From]; len(got) != 1 || got[0] != m.Text {
			return fmt.Errorf("answered %v", got)
		}
		return nil
	})
	st, _ := js.Stream(ctx, Stream)
	cons, err := st.Consumer(ctx, Durable)
	if err != nil {
		t.Fatal(err)
	}
	if ci, err := cons.Info(ctx); err != nil || ci.Config.PriorityPolicy != jetstream.PriorityPolicyPinned {
		t.Fatalf("consumer %+v %v", ci, err)
	}
}
