package persistence

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/messages"
)

// NewOutboxEvent wraps payload in the messages.Event envelope (fresh ULID,
// occurred at now) and returns it as a pending outbox event on the subject
// of the payload's type, ready for Tx.OutboxAppend.
func NewOutboxEvent(aggregate, requestID, actor string, payload proto.Message, now time.Time) (OutboxEvent, error) {
	ev, err := messages.NewEvent(aggregate, requestID, actor, payload, now)
	if err != nil {
		return OutboxEvent{}, err
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return OutboxEvent{}, fmt.Errorf("persistence: marshal event: %w", err)
	}
	return OutboxEvent{
		ID:        ev.Id,
		Subject:   messages.Subject(payload),
		Type:      string(proto.MessageName(payload)),
		Payload:   data,
		CreatedAt: now,
	}, nil
}

// AppointmentChangedEvent describes the change of an appointment from
// before (nil: it was created) to after; both booking engines emit it.
func AppointmentChangedEvent(before *Appointment, after Appointment, reason string) *messages.AppointmentChanged {
	ev := &messages.AppointmentChanged{
		AppointmentId: after.ID, StaffId: after.StaffID, ServiceId: after.ServiceID, ClientId: after.ClientID,
		Start: timestamppb.New(after.Start), End: timestamppb.New(after.End),
		ToStatus: string(after.Status), Reason: reason, Version: after.Version,
		ResourceId: proto.String(after.ResourceID), DepositMinor: proto.Int64(after.DepositMinor),
	}
	if before != nil {
		ev.FromStatus = string(before.Status)
		if !before.Start.Equal(after.Start) {
			ev.PreviousStart = timestamppb.New(before.Start)
		}
	}
	return ev
}

// appointmentReasonPlace is the context of AppointmentChanged.reason_sealed.
func appointmentReasonPlace(appointmentID string) string {
	return "events.appointment_changed.reason/" + appointmentID
}

// SealAppointmentReason moves ev's reason (free text, often about the
// client: "she went to Cartagena") into reason_sealed, sealed under the
// client's data key, so the event that outlives the database row in the
// JetStream stream stops opening once the client is anonymised. A store
// without a PersonalSealer leaves it in the clear.
func SealAppointmentReason(ctx context.Context, tx ClientKeyStore, ev *messages.AppointmentChanged) error {
	if ev.Reason == "" {
		return nil
	}
	ct, sealed, err := tx.PersonalSeal(ctx, ev.ClientId, appointmentReasonPlace(ev.AppointmentId), []byte(ev.Reason))
	if err != nil || !sealed {
		return err
	}
	ev.Reason, ev.ReasonSealed = "", ct
	return nil
}

// AppointmentReason is ev's reason in the clear, for the consumers that
// read it: ErrShredded once the client was anonymised.
func AppointmentReason(ctx context.Context, tx ClientKeyStore, ev *messages.AppointmentChanged) (string, error) {
	if len(ev.GetReasonSealed()) == 0 {
		return ev.GetReason(), nil
	}
	pt, err := tx.PersonalOpen(ctx, ev.GetClientId(), appointmentReasonPlace(ev.GetAppointmentId()), ev.GetReasonSealed())
	return string(pt), err
}
