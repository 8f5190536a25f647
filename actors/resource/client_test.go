package resource

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
		{"claim", &Claim{AppointmentID: "a"}, &ClaimReply{}, func(c *Client, m any) (any, error) { return c.Claim(ctx, "room", m.(*Claim)) }},
		{"release", &Release{AppointmentID: "a"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Release(ctx, "room", m.(*Release)) }},
		{"track", &Track{}, &TrackReply{}, func(c *Client, m any) (any, error) { return c.Track(ctx, "room", m.(*Track)) }},
		{"full", &FullQuery{}, &FullReply{}, func(c *Client, m any) (any, error) { return c.Full(ctx, "room", m.(*FullQuery)) }},
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
			if r, err := tc.call(c, tc.msg); err != nil || r != tc.reply || gotID != "room" || gotMsg != tc.msg {
				t.Fatalf("= %v, %v after sending %#v to %q; want the actor's reply", r, err, gotMsg, gotID)
			}
			answer = &struct{ Err error }{} // no resource reply
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
