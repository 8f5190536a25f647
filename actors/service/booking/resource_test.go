package booking

import (
	"context"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// TestRoomSaga: the room is claimed before the therapist is asked, so a
// taken room refuses without holding the therapist; a taken therapist
// releases the room at once; a cancellation frees the room at once.
func TestRoomSaga(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.hold(maria, HoldInput{ServiceID: "room-treatment", StaffID: "s0", Start: at(10, 0)})
	if first.ResourceID != "room" {
		t.Fatalf("held %+v", first)
	}

	// Room taken (10:30 overlaps 10:00-10:45 and its cleanup): refused,
	// and s1, who is free, is not held.
	_, err := f.svc.Hold(ctx, juan, HoldInput{ServiceID: "room-treatment", StaffID: "s1", Start: at(10, 30)})
	for _, a := range wantTaken(t, err) {
		if a.Start.After(at(9, 0)) && a.Start.Before(at(11, 0)) {
			t.Fatalf("an alternative overlaps the taken room: %v", a)
		}
	}
	if list := f.appointments(persistence.AppointmentRange{StaffID: "s1"}); len(list) != 0 {
		t.Fatalf("s1 held although the room was taken: %+v", list)
	}

	// Availability leaves out the starts whose room is full: s1 is free
	// all morning, the room is not.
	_, slots, err := f.svc.Availability(ctx, maria, AvailabilityInput{ServiceID: "room-treatment", StaffID: "s1", From: at(9, 0), To: at(12, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var starts []string
	for _, sl := range slots {
		starts = append(starts, sl.Start.In(bogota).Format("15:04"))
	}
	if got := strings.Join(starts, " "); got != "09:00 11:00 11:30" {
		t.Fatalf("s1's room starts %s", got)
	}

	// Therapist taken: s0 is busy at 14:00 with a treatment that needs no
	// room; booking the room with s0 then is refused, and the room's claim
	// is released at once, so s1 gets the room at 14:00 right away (an
	// unreleased claim would block it for its whole TTL).
	f.hold(juan, HoldInput{ServiceID: "wet-wrap", StaffID: "s0", Start: at(14, 0)})
	_, err = f.svc.Hold(ctx, maria, HoldInput{ServiceID: "room-treatment", StaffID: "s0", Start: at(14, 0)})
	wantTaken(t, err)
	if c := f.claims(); len(c) != 0 {
		t.Fatalf("claims left after the therapist refused: %+v", c)
	}
	second := f.hold(caller("ines", "client"), HoldInput{ServiceID: "room-treatment", StaffID: "s1", Start: at(14, 0)})

	// Any staff into a full room: refused, nobody held.
	_, err = f.svc.Hold(ctx, caller("late", "client"), HoldInput{ServiceID: "room-treatment", Start: at(14, 0)})
	wantTaken(t, err)
	if list := f.appointments(persistence.AppointmentRange{ResourceID: "room"}); len(list) != 2 {
		t.Fatalf("room bookings %+v", list)
	}
	// Cancelling frees the room at once, for the other therapist too.
	if _, err := f.svc.Cancel(ctx, maria, f.load(maria, first.ID), ChangeInput{}); err != nil {
		t.Fatal(err)
	}
	f.hold(juan, HoldInput{ServiceID: "room-treatment", StaffID: "s1", Start: at(10, 0)})

	// A move claims the new interval first: into the taken hour it is
	// refused and the old booking stays; out of it, it succeeds.
	_, err = f.svc.Reschedule(ctx, desk, f.load(desk, second.ID), ChangeInput{Start: at(10, 30)})
	wantCode(t, err, fault.CodeSlotTaken)
	if moved, err := f.svc.Reschedule(ctx, desk, f.load(desk, second.ID), ChangeInput{Start: at(16, 0)}); err != nil || !moved.Start.Equal(at(16, 0)) {
		t.Fatalf("move: %+v, %v", moved, err)
	}
	if c := f.claims(); len(c) != 0 {
		t.Fatalf("claims left: %+v", c)
	}
}
