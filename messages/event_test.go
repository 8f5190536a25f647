package messages

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func TestNewEventRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)
	ev, err := NewEvent("studio/default", "req-1", "admin-1", &StudioUpdated{StudioId: "default", Version: 3}, now)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got Event
	if err := proto.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	var payload StudioUpdated
	if err := got.Payload.UnmarshalTo(&payload); err != nil {
		t.Fatal(err)
	}
	if got.Id == "" || len(got.Id) != 26 || got.Aggregate != "studio/default" || !got.OccurredAt.AsTime().Equal(now) || payload.Version != 3 {
		t.Fatalf("round trip lost data: %v / %v", &got, &payload)
	}
}

func TestSubject(t *testing.T) {
	if got, want := Subject(&StudioUpdated{}), "spa.events.studio_updated"; got != want {
		t.Fatalf("Subject = %q, want %q", got, want)
	}
}
