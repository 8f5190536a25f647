package schedule

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/persistence"
)

// isNil reports a nil reply, typed or not.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return v == nil || rv.Kind() == reflect.Pointer && rv.IsNil()
}

// TestClientSendsEachRequestAndTypesItsReply: every method sends its
// message unchanged to the id it was given and returns the reply the actor
// gave; a reply of another type, or a door that fails, is an error and no
// reply.
func TestClientSendsEachRequestAndTypesItsReply(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		msg   any
		reply any
		call  func(c *Client, m any) (any, error)
	}{
		{"hold", &Hold{AppointmentID: "a"}, &HoldReply{}, func(c *Client, m any) (any, error) { return c.Hold(ctx, "ana", m.(*Hold)) }},
		{"slots", &SlotsQuery{}, &SlotsReply{}, func(c *Client, m any) (any, error) { return c.Slots(ctx, "ana", m.(*SlotsQuery)) }},
		{"confirm", &Confirm{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Confirm(ctx, "ana", m.(*Confirm)) }},
		{"cancel", &Cancel{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Cancel(ctx, "ana", m.(*Cancel)) }},
		{"check in", &CheckIn{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.CheckIn(ctx, "ana", m.(*CheckIn)) }},
		{"complete", &Complete{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Complete(ctx, "ana", m.(*Complete)) }},
		{"no show", &NoShow{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.NoShow(ctx, "ana", m.(*NoShow)) }},
		{"reschedule", &Reschedule{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Reschedule(ctx, "ana", m.(*Reschedule)) }},
		{"change", &Complete{AppointmentID: "b"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Change(ctx, "ana", m.(Change)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotID string
			var gotMsg, answer any
			var fail error
			c := NewClient(door.Func(func(_ context.Context, id string, msg any) (any, error) {
				gotID, gotMsg = id, msg
				return answer, fail
			}))
			answer = tc.reply
			if r, err := tc.call(c, tc.msg); err != nil || r != tc.reply || gotID != "ana" || gotMsg != tc.msg {
				t.Fatalf("= %v, %v after sending %#v to %q; want the actor's reply", r, err, gotMsg, gotID)
			}
			answer = &struct{ Err error }{} // no schedule reply
			if r, err := tc.call(c, tc.msg); err == nil || !isNil(r) || !strings.Contains(err.Error(), "answered") {
				t.Fatalf("wrong reply type: = %v, %v; want an error naming it and no reply", r, err)
			}
			answer, fail = nil, errors.New("no answer in time")
			if r, err := tc.call(c, tc.msg); !errors.Is(err, fail) || !isNil(r) {
				t.Fatalf("failing door: = %v, %v; want its error", r, err)
			}
		})
	}
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
