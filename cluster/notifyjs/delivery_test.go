package notifyjs

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/messages"
)

// TestDeliveryChecks: a scheduled check fires once at its time with its
// cause; scheduling again replaces it; Fire publishes a waiting check at
// once and removes its schedule, and does nothing for one not waiting.
func TestDeliveryChecks(t *testing.T) {
	srv := natstest.Run(t)
	js, err := srv.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := NewDeliveryChecks(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, DeliveryStream, jetstream.ConsumerConfig{
		FilterSubject: CheckDueSubject + ">", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	next := func(wait time.Duration) *messages.DeliveryCheck {
		t.Helper()
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := <-batch.Messages() // closed empty when none came in wait
		if !ok {
			return nil
		}
		_ = m.Ack()
		var c messages.DeliveryCheck
		if err := proto.Unmarshal(m.Data(), &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	cause := notify.Cause{Subject: "spa.events.appointment_changed", Data: []byte("event bytes")}
	const a, b = "appointment:a1:confirmed:v2:whatsapp", "appointment:b1:confirmed:v2:whatsapp"

	// a: set for an hour, then moved to now: fires once, now.
	if err := d.Schedule(ctx, a, cause, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.Schedule(ctx, a, cause, time.Now().Add(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c := next(10 * time.Second)
	if c == nil || c.NotificationId != a || c.Subject != cause.Subject || string(c.Data) != "event bytes" {
		t.Fatalf("fired %v, want a's check with its cause", c)
	}
	// b: set for an hour, fired now; a second Fire finds nothing.
	if err := d.Schedule(ctx, b, cause, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.CheckScheduled(ctx, b); err != nil || !ok {
		t.Fatalf("b not scheduled: %v", err)
	}
	for range 2 {
		if err := d.Fire(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if c := next(5 * time.Second); c == nil || c.NotificationId != b {
		t.Fatalf("fired %v, want b's check", c)
	}
	if _, ok, err := d.CheckScheduled(ctx, b); err != nil || ok {
		t.Fatalf("b still scheduled after firing (%v)", err)
	}
	if c := next(time.Second); c != nil {
		t.Fatalf("a check fired again: %v", c)
	}
}
