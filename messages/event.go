package messages

import (
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SubjectPrefix is the NATS subject space of domain events.
const SubjectPrefix = "spa.events."

// NewEvent wraps payload in an Event envelope with a fresh ULID.
func NewEvent(aggregate, requestID, actor string, payload proto.Message, now time.Time) (*Event, error) {
	anyPayload, err := anypb.New(payload)
	if err != nil {
		return nil, fmt.Errorf("messages: wrap %T: %w", payload, err)
	}
	return &Event{
		Id:         ulid.Make().String(),
		OccurredAt: timestamppb.New(now),
		Aggregate:  aggregate,
		RequestId:  requestID,
		Actor:      actor,
		Payload:    anyPayload,
	}, nil
}

// Subject is the NATS subject an event of payload's type is published on:
// the prefix followed by the message name in snake case, e.g.
// spa.events.studio_updated for spa.v1.StudioUpdated.
func Subject(payload proto.Message) string {
	return SubjectPrefix + snake(string(payload.ProtoReflect().Descriptor().Name()))
}

func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
