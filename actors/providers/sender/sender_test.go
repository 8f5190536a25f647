package sender

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+573001234567": "+********4567",
		"573001234567":  "********4567",
		"+1234":         "+****",
		"":              "",
		"+":             "+",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogSinkMasksPhoneAndKeepsBody(t *testing.T) {
	var buf bytes.Buffer
	s := LogSink{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	err := s.Send(context.Background(), Message{To: "+573001234567", Body: "Tu código es 482910", Channel: ChannelSMS, Purpose: "otp"})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "3001234567") || !strings.Contains(out, "+********4567") {
		t.Fatalf("log %s does not mask the phone", out)
	}
	if !strings.Contains(out, "482910") || !strings.Contains(out, `"purpose":"otp"`) {
		t.Fatalf("log %s lacks the body or purpose (dev sink must print the code)", out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, Message{To: "+573001234567"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled Send = %v, want ErrUnavailable", err)
	}
}

// recording is a Sender that remembers what it was given.
type recording struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recording) Send(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func TestRouter(t *testing.T) {
	sms, wa := &recording{}, &recording{}
	r := NewRouter(ChannelSMS, map[Channel]Sender{ChannelSMS: sms})
	ctx := context.Background()
	if err := r.Send(ctx, Message{To: "+573001234567", Body: "a"}); err != nil {
		t.Fatal(err)
	}
	if len(sms.msgs) != 1 || sms.msgs[0].Channel != ChannelSMS {
		t.Fatalf("default route: sms got %+v, want one message with channel sms", sms.msgs)
	}
	err := r.Send(ctx, Message{To: "+573001234567", Body: "b", Channel: ChannelWhatsApp})
	if !errors.Is(err, ErrRejected) || !errors.Is(err, ErrNoRoute) {
		t.Fatalf("unrouted channel: %v, want ErrRejected and ErrNoRoute", err)
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Handle(ChannelWhatsApp, wa) }()
	go func() { defer wg.Done(); _ = r.Send(ctx, Message{To: "+573001234567", Body: "c"}) }()
	wg.Wait()
	if err := r.Send(ctx, Message{To: "+573001234567", Body: "d", Channel: ChannelWhatsApp}); err != nil {
		t.Fatal(err)
	}
	if len(wa.msgs) != 1 || wa.msgs[0].Body != "d" {
		t.Fatalf("whatsapp got %+v, want the one message d", wa.msgs)
	}
}
