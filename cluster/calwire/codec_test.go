package calwire

import (
	"fmt"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/route/routetest"
	"github.com/spa-engine/spa/persistence"
)

// TestCodecsPlaceAndCarryCalendarRequests: each router's codec places a
// calendar by its calendar id and carries a request and its reply there
// and back.
func TestCodecsPlaceAndCarryCalendarRequests(t *testing.T) {
	for _, tc := range []struct {
		name      string
		codec     route.Codec
		id, key   string
		msg       any
		reply     any
		replyErrs error
	}{
		{"schedule", ScheduleCodec(), "ana", "staff/ana", &schedule.Hold{AppointmentID: "a1", Service: svc, Start: time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)},
			&schedule.HoldReply{Err: schedule.ErrSlotTaken}, schedule.ErrSlotTaken},
		{"schedule keyed hold", ScheduleCodec(), "ana", "staff/ana", &schedule.Hold{AppointmentID: "a1", Service: svc, Start: time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC), Key: idemKey},
			&schedule.HoldReply{Err: keyed.ErrReused}, keyed.ErrReused},
		{"schedule keyed confirm", ScheduleCodec(), "ana", "staff/ana", &schedule.Confirm{AppointmentID: "a1", Key: idemKey},
			&schedule.Reply{Err: fmt.Errorf("%w: %w", schedule.ErrRetry, keyed.ErrElsewhere)}, keyed.ErrElsewhere},
		{"resource", ResourceCodec(), "room", "resource/room", &resource.Claim{AppointmentID: "a1"},
			&resource.ClaimReply{Err: resource.ErrFull}, resource.ErrFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routetest.Carries(t, tc.codec, tc.id, tc.key, tc.msg, tc.reply, tc.replyErrs, func(back any) error {
				switch r := back.(type) {
				case *schedule.HoldReply:
					return r.Err
				case *schedule.Reply:
					return r.Err
				case *resource.ClaimReply:
					return r.Err
				}
				return nil
			})
		})
	}
}

// TestOnlyRepeatableRequestsCarryAnIdempotencyKey: a forwarded try that
// times out is resent only with a key (forward.Request); every calendar
// request is keyed by its appointment, so a retry is recognised.
func TestOnlyRepeatableRequestsCarryAnIdempotencyKey(t *testing.T) {
	sched, res := ScheduleCodec().IdempotencyKey, ResourceCodec().IdempotencyKey
	for _, tc := range []struct {
		name string
		key  func(any) string
		msg  any
		want string
	}{
		{"schedule hold", sched, &schedule.Hold{AppointmentID: "a"}, "hold/a"},
		{"schedule confirm", sched, &schedule.Confirm{AppointmentID: "a"}, "confirm/a"},
		{"schedule cancel", sched, &schedule.Cancel{AppointmentID: "a"}, "cancel/a"},
		{"schedule check-in", sched, &schedule.CheckIn{AppointmentID: "a"}, "checkin/a"},
		{"schedule complete", sched, &schedule.Complete{AppointmentID: "a"}, "complete/a"},
		{"schedule no-show", sched, &schedule.NoShow{AppointmentID: "a"}, "noshow/a"},
		{"schedule reschedule", sched, &schedule.Reschedule{AppointmentID: "a", Start: time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("", -5*3600))},
			"reschedule/a/2026-12-01T15:00:00Z"},
		{"schedule slots", sched, &schedule.SlotsQuery{}, "slots"},
		{"resource claim", res, &resource.Claim{AppointmentID: "a"}, "claim/a"},
		{"resource release", res, &resource.Release{AppointmentID: "a"}, "release/a"},
		{"resource track", res, &resource.Track{Appointment: persistence.Appointment{ID: "a", Version: 3}}, "track/a/3"},
		{"resource full", res, &resource.FullQuery{}, "full"},
		{"not a calendar message", sched, "hold", ""},
	} {
		if got := tc.key(tc.msg); got != tc.want {
			t.Errorf("%s: keyed %q, want %q", tc.name, got, tc.want)
		}
	}
}
