package persistence

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/messages"
)

func TestNewOutboxEvent(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &messages.StudioUpdated{StudioId: "default", Version: 7}
	ev, err := NewOutboxEvent("studio/default", "req-9", "user-1", p, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "spa.v1.StudioUpdated" || ev.Subject != "spa.events.studio_updated" || !ev.CreatedAt.Equal(now) || len(ev.ID) != 26 {
		t.Fatalf("unexpected event %+v", ev)
	}
	var env messages.Event
	if err := proto.Unmarshal(ev.Payload, &env); err != nil {
		t.Fatal(err)
	}
	var got messages.StudioUpdated
	if err := env.GetPayload().UnmarshalTo(&got); err != nil {
		t.Fatal(err)
	}
	if env.GetId() != ev.ID || env.GetRequestId() != "req-9" || env.GetActor() != "user-1" ||
		env.GetAggregate() != "studio/default" || !env.GetOccurredAt().AsTime().Equal(now) || !proto.Equal(&got, p) {
		t.Fatalf("envelope mismatch: %v", &env)
	}
}
