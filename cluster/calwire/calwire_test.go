package calwire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var (
	t0  = time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
	svc = persistence.Service{ID: "svc", Name: "Massage", Category: "body", Duration: time.Hour, PriceMinor: 12_000_000,
		BufferBefore: 5 * time.Minute, BufferAfter: 10 * time.Minute, RequiredSkills: []string{"a", "b"}, ResourceID: "room",
		DepositPolicy: persistence.DepositPolicy("percent"), DepositValue: 20, CancelCutoff: 24 * time.Hour,
		RescheduleCutoff: 12 * time.Hour, Active: true, Version: 3, UpdatedAt: t0}
	appt = persistence.Appointment{ID: "01J", StaffID: "ana", ResourceID: "room", ServiceID: "svc", ClientID: "c1",
		Start: t0, End: t0.Add(time.Hour), BufferBefore: 5 * time.Minute, BufferAfter: 10 * time.Minute,
		Status: persistence.StatusHeld, HoldExpiresAt: t0.Add(-time.Hour), PriceMinor: 5, DepositMinor: 1,
		Version: 2, CreatedAt: t0.Add(-2 * time.Hour), UpdatedAt: t0.Add(-time.Minute)}
	alts = []availability.Slot{{Start: t0, End: t0.Add(time.Hour), StaffID: "ana"}}
	// idemKey is a client's Idempotency-Key as the gateway builds it.
	idemKey = &keyed.Key{Scope: "sub:c", Name: "k-01", Hash: []byte{0xde, 0xad, 0xbe, 0xef}}
)

func TestScheduleRequestsRoundTrip(t *testing.T) {
	for _, msg := range []any{
		&schedule.Hold{AppointmentID: "a", ClientID: "c", Service: svc, Start: t0, ActorID: "u", ClaimUntil: t0.Add(time.Minute)},
		&schedule.Hold{AppointmentID: "a", ClientID: "c", Service: svc, Start: t0},
		&schedule.Confirm{AppointmentID: "a", ActorID: "u", Reason: "paid"},
		&schedule.Cancel{AppointmentID: "a", ActorID: "u", Reason: "r", Cutoff: time.Hour, Override: true},
		&schedule.CheckIn{AppointmentID: "a", ActorID: "u"},
		&schedule.Complete{AppointmentID: "a", ActorID: "u", Reason: "r"},
		&schedule.NoShow{AppointmentID: "a", ActorID: "u", Reason: "r"},
		&schedule.Reschedule{AppointmentID: "a", Start: t0, Service: svc, ActorID: "u", Override: true, ClaimUntil: t0},
		&schedule.SlotsQuery{Service: svc, From: t0, To: t0.Add(24 * time.Hour)},
		// Under a client's Idempotency-Key: the key travels to the actor.
		&schedule.Hold{AppointmentID: "a", ClientID: "c", Service: svc, Start: t0, ActorID: "u", Key: idemKey},
		&schedule.Confirm{AppointmentID: "a", ActorID: "u", Reason: "paid", Key: idemKey},
		&schedule.Cancel{AppointmentID: "a", ActorID: "u", Cutoff: time.Hour, Key: idemKey},
		&schedule.CheckIn{AppointmentID: "a", ActorID: "u", Key: idemKey},
		&schedule.Complete{AppointmentID: "a", ActorID: "u", Key: idemKey},
		&schedule.NoShow{AppointmentID: "a", ActorID: "u", Key: idemKey},
		&schedule.Reschedule{AppointmentID: "a", Start: t0, Service: svc, ActorID: "u", Key: idemKey},
	} {
		t.Run(fmt.Sprintf("%T", msg), func(t *testing.T) {
			req, err := EncodeSchedule("ana", msg)
			if err != nil {
				t.Fatal(err)
			}
			id, got, err := DecodeSchedule(req)
			if err != nil || id != "ana" {
				t.Fatalf("decode: %q %v", id, err)
			}
			if !reflect.DeepEqual(got, msg) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, msg)
			}
		})
	}
}

func TestScheduleRepliesRoundTripWithErrors(t *testing.T) {
	// How a batch that met a key answered elsewhere fails (batch.Lifecycle):
	// its callers must still learn keyed.ErrElsewhere across nodes.
	elsewhere := fmt.Errorf("%w: %w", fmt.Errorf("%w: write_failed", schedule.ErrRetry), keyed.ErrElsewhere)
	for _, tc := range []struct {
		reply any
		is    error // the sentinel the decoded error must match
	}{
		{&schedule.HoldReply{Appointment: appt, Alternatives: alts, Err: fmt.Errorf("%w: at 14:30", schedule.ErrSlotTaken)}, schedule.ErrSlotTaken},
		{&schedule.HoldReply{Appointment: appt}, nil},
		{&schedule.Reply{Appointment: appt, Err: schedule.ErrCutoff}, schedule.ErrCutoff},
		{&schedule.SlotsReply{Slots: alts, Load: 4}, nil},
		{&schedule.SlotsReply{Err: fmt.Errorf("bad range: %w", availability.ErrInvalid)}, availability.ErrInvalid},
		// Keyed answers: a replay, another request under the key, and a
		// key another calendar answered.
		{&schedule.HoldReply{Appointment: appt, Replayed: true}, nil},
		{&schedule.Reply{Appointment: appt, Replayed: true}, nil},
		{&schedule.HoldReply{Err: keyed.ErrReused}, keyed.ErrReused},
		{&schedule.Reply{Err: keyed.ErrReused}, keyed.ErrReused},
		{&schedule.HoldReply{Err: elsewhere}, keyed.ErrElsewhere},
		{&schedule.Reply{Err: elsewhere}, keyed.ErrElsewhere},
	} {
		reply := tc.reply
		t.Run(fmt.Sprintf("%T %v", reply, tc.is), func(t *testing.T) {
			enc, err := EncodeScheduleReply(reply)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeScheduleReply(enc)
			if err != nil {
				t.Fatal(err)
			}
			wantErr, gotErr := replyErr(reply), replyErr(got)
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("error %v decoded as %v", wantErr, gotErr)
			}
			if wantErr != nil {
				if gotErr.Error() != wantErr.Error() || !errors.Is(gotErr, tc.is) {
					t.Fatalf("error %v decoded as %v", wantErr, gotErr)
				}
				setErr(reply, nil)
				setErr(got, nil)
			}
			if !reflect.DeepEqual(got, reply) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, reply)
			}
		})
	}
}

func TestErrorsKeepTheirSentinel(t *testing.T) {
	for _, s := range sentinels {
		err := fmt.Errorf("context: %w", s.Err)
		got := decodeErr(encodeErr(err))
		if !errors.Is(got, s.Err) || got.Error() != err.Error() {
			t.Errorf("%v decoded as %v", err, got)
		}
	}
	plain := errors.New("disk on fire")
	if got := decodeErr(encodeErr(plain)); got.Error() != plain.Error() || errors.Is(got, schedule.ErrRetry) {
		t.Errorf("plain error decoded as %v", got)
	}
}

func TestResourceRoundTrip(t *testing.T) {
	for _, msg := range []any{
		&resource.Claim{AppointmentID: "a", Interval: availability.Interval{Start: t0, End: t0.Add(time.Hour)}, TTL: time.Minute},
		&resource.Release{AppointmentID: "a"},
		&resource.Track{Appointment: appt},
		&resource.FullQuery{From: t0, To: t0.Add(time.Hour)},
	} {
		req, err := EncodeResource("room", msg)
		if err != nil {
			t.Fatal(err)
		}
		id, got, err := DecodeResource(req)
		if err != nil || id != "room" || !reflect.DeepEqual(got, msg) {
			t.Fatalf("%T: got %q %#v %v", msg, id, got, err)
		}
	}
	for _, reply := range []any{
		&resource.ClaimReply{ExpiresAt: t0},
		&resource.Reply{},
		&resource.TrackReply{Overbooked: true},
		&resource.FullReply{Spans: []availability.Interval{{Start: t0, End: t0.Add(time.Hour)}}, Capacity: 2},
	} {
		enc, err := EncodeResourceReply(reply)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeResourceReply(enc)
		if err != nil || !reflect.DeepEqual(got, reply) {
			t.Fatalf("%T: got %#v %v", reply, got, err)
		}
	}
	enc, _ := EncodeResourceReply(&resource.ClaimReply{Err: resource.ErrFull})
	if got, _ := DecodeResourceReply(enc); !errors.Is(got.(*resource.ClaimReply).Err, resource.ErrFull) {
		t.Fatalf("full decoded as %v", got.(*resource.ClaimReply).Err)
	}
}

func TestUnknownMessagesAreRefused(t *testing.T) {
	if _, err := EncodeSchedule("ana", &resource.Release{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("schedule encode of a resource message: %v", err)
	}
	if _, _, err := DecodeSchedule(&messages.ScheduleRequest{StaffId: "ana"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("empty schedule request: %v", err)
	}
	if _, _, err := DecodeSchedule(&messages.ScheduleRequest{Request: &messages.ScheduleRequest_Confirm{Confirm: &messages.ScheduleConfirm{}}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("schedule request without staff id: %v", err)
	}
	if _, err := DecodeScheduleReply(&messages.ScheduleReply{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("reply without kind: %v", err)
	}
	if _, err := EncodeResourceReply(&schedule.Reply{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("resource encode of a schedule reply: %v", err)
	}
}

func replyErr(r any) error {
	switch r := r.(type) {
	case *schedule.HoldReply:
		return r.Err
	case *schedule.Reply:
		return r.Err
	case *schedule.SlotsReply:
		return r.Err
	}
	return nil
}

func setErr(r any, err error) {
	switch r := r.(type) {
	case *schedule.HoldReply:
		r.Err = err
	case *schedule.Reply:
		r.Err = err
	case *schedule.SlotsReply:
		r.Err = err
	}
}
