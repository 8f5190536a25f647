package resource

import (
	"context"
	"errors"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Follower keeps resource actors in step with AppointmentChanged events:
// the backstop for what the booking API tells them directly (a hold that
// expired on its staff member's timer, a reply lost to a timeout or a
// crash). It reads the appointment as stored, which is at least as new as
// the event, and tracks it if it uses a resource; Track ignores versions
// older than the one the actor knows, so order does not matter.
type Follower struct {
	Store     persistence.Store
	Resources *Client
}

// Handle processes one event. A nil error means it is done with; an error
// means retry it later.
func (f *Follower) Handle(ctx context.Context, ev *messages.AppointmentChanged) error {
	if ev.ResourceId != nil && *ev.ResourceId == "" {
		return nil // says it uses no resource; older events lack the field
	}
	var ap persistence.Appointment
	err := f.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		ap, err = tx.AppointmentGet(ctx, ev.AppointmentId)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil || ap.ResourceID == "" {
		return err
	}
	reply, err := f.Resources.Track(ctx, ap.ResourceID, &Track{Appointment: ap})
	if err != nil {
		return err
	}
	if reply.Err != nil && !errors.Is(reply.Err, ErrUnknownResource) {
		return reply.Err
	}
	return nil
}
