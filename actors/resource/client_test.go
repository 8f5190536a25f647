package resource

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
	doortest.TypedReplies(t, "room", []doortest.Call{
		{Name: "claim", Msg: &Claim{AppointmentID: "a"}, Reply: &ClaimReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Claim(ctx, "room", m.(*Claim)) }},
		{Name: "release", Msg: &Release{AppointmentID: "a"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Release(ctx, "room", m.(*Release)) }},
		{Name: "track", Msg: &Track{}, Reply: &TrackReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Track(ctx, "room", m.(*Track)) }},
		{Name: "full", Msg: &FullQuery{}, Reply: &FullReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Full(ctx, "room", m.(*FullQuery)) }},
	})
}

// TestClientOverTheDirectory: the typed calls reach a real resource actor
// and bring back its answers.
func TestClientOverTheDirectory(t *testing.T) {
	f := newFixture(t)
	c := NewClient(f.dir)
	ctx := context.Background()
	cl, err := c.Claim(ctx, "room", &Claim{AppointmentID: "a1", Interval: span(15, 0, 16, 0)})
	if err != nil || cl.Err != nil || cl.ExpiresAt.IsZero() {
		t.Fatalf("claim = %+v, %v", cl, err)
	}
	if cl, err := c.Claim(ctx, "room", &Claim{AppointmentID: "a2", Interval: span(15, 30, 16, 30)}); err != nil || !errors.Is(cl.Err, ErrFull) {
		t.Fatalf("overlapping claim on a room for one = %+v, %v; want ErrFull in the reply", cl, err)
	}
	full, err := c.Full(ctx, "room", &FullQuery{From: at(14, 0), To: at(18, 0)})
	if err != nil || full.Err != nil || full.Capacity != 1 || len(full.Spans) != 1 || !full.Spans[0].Start.Equal(at(15, 0)) {
		t.Fatalf("full = %+v, %v", full, err)
	}
	if r, err := c.Release(ctx, "room", &Release{AppointmentID: "a1"}); err != nil || r.Err != nil {
		t.Fatalf("release = %+v, %v", r, err)
	}
	tr, err := c.Track(ctx, "room", &Track{Appointment: appointment("a3", "room", at(15, 0), persistence.StatusHeld, 1)})
	if err != nil || tr.Err != nil || tr.Overbooked {
		t.Fatalf("track after the release = %+v, %v", tr, err)
	}
}
