package schedule

import (
	"context"
	"errors"
	"testing"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/door/doortest"
	"github.com/spa-engine/spa/persistence"
)

// TestClientSendsEachRequestAndTypesItsReply: every method sends its
// message unchanged to the id it was given and returns the reply the actor
// gave; a reply of another type, or a door that fails, is an error and no
// reply.
func TestClientSendsEachRequestAndTypesItsReply(t *testing.T) {
	ctx := context.Background()
	doortest.TypedReplies(t, "ana", []doortest.Call{
		{Name: "hold", Msg: &Hold{AppointmentID: "a"}, Reply: &HoldReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Hold(ctx, "ana", m.(*Hold)) }},
		{Name: "slots", Msg: &SlotsQuery{}, Reply: &SlotsReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Slots(ctx, "ana", m.(*SlotsQuery)) }},
		{Name: "confirm", Msg: &Confirm{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Confirm(ctx, "ana", m.(*Confirm)) }},
		{Name: "cancel", Msg: &Cancel{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Cancel(ctx, "ana", m.(*Cancel)) }},
		{Name: "check in", Msg: &CheckIn{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).CheckIn(ctx, "ana", m.(*CheckIn)) }},
		{Name: "complete", Msg: &Complete{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Complete(ctx, "ana", m.(*Complete)) }},
		{Name: "no show", Msg: &NoShow{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).NoShow(ctx, "ana", m.(*NoShow)) }},
		{Name: "reschedule", Msg: &Reschedule{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Reschedule(ctx, "ana", m.(*Reschedule)) }},
		{Name: "change", Msg: &Complete{AppointmentID: "b"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Change(ctx, "ana", m.(Change)) }},
	})
}

// TestClientOverTheDirectory: the typed calls reach a real schedule actor
// and bring back its answers.
func TestClientOverTheDirectory(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	c := NewClient(f.dir)
	ctx := context.Background()
	h, err := c.Hold(ctx, "ana", &Hold{AppointmentID: "a1", ClientID: "c1", Service: massage, Start: at(10, 0), ActorID: "c1"})
	if err != nil || h.Err != nil || h.Appointment.ID != "a1" || h.Appointment.Status != persistence.StatusHeld {
		t.Fatalf("hold = %+v, %v", h, err)
	}
	sl, err := c.Slots(ctx, "ana", &SlotsQuery{Service: massage, From: at(9, 0), To: at(17, 0)})
	if err != nil || sl.Err != nil || len(sl.Slots) == 0 {
		t.Fatalf("slots = %+v, %v", sl, err)
	}
	for _, s := range sl.Slots {
		if s.Start.Equal(at(10, 0)) {
			t.Fatal("the held start is offered")
		}
	}
	r, err := c.Confirm(ctx, "ana", &Confirm{AppointmentID: "a1", ActorID: "c1"})
	if err != nil || r.Err != nil || r.Appointment.Status != persistence.StatusConfirmed {
		t.Fatalf("confirm = %+v, %v", r, err)
	}
	r, err = c.Reschedule(ctx, "ana", &Reschedule{AppointmentID: "a1", Start: at(13, 0), Service: massage, ActorID: "c1"})
	if err != nil || r.Err != nil || !r.Appointment.Start.Equal(at(13, 0)) {
		t.Fatalf("reschedule = %+v, %v", r, err)
	}
	r, err = c.Cancel(ctx, "ana", &Cancel{AppointmentID: "a1", ActorID: "c1", Reason: "sick"})
	if err != nil || r.Err != nil || r.Appointment.Status != persistence.StatusCancelled {
		t.Fatalf("cancel = %+v, %v", r, err)
	}
	// A refusal comes back in the reply, not as an error.
	r, err = c.Complete(ctx, "ana", &Complete{AppointmentID: "a1", ActorID: "staff"})
	if err != nil || !errors.Is(r.Err, ErrTransition) {
		t.Fatalf("completing a cancelled appointment = %+v, %v; want ErrTransition in the reply", r, err)
	}
	r, err = c.NoShow(ctx, "ana", &NoShow{AppointmentID: "nope", ActorID: "staff"})
	if err != nil || !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("no-show of an unknown appointment = %+v, %v; want ErrNotFound in the reply", r, err)
	}
	r, err = c.CheckIn(ctx, "ana", &CheckIn{AppointmentID: "nope", ActorID: "kiosk"})
	if err != nil || !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("check-in of an unknown appointment = %+v, %v; want ErrNotFound in the reply", r, err)
	}
}
