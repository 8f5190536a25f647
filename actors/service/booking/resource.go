package booking

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Bookings of services that need a shared resource (a room, a sauna). The
// resource's actor decides the capacity, the staff member's actor the
// staff member's time; the service asks them in turn and never makes one
// wait for the other:
//
//  1. claim the resource for the padded interval, for a short while
//     (answered once durable, or refused at once when full);
//  2. hold the staff member's slot, telling the staff actor when the claim
//     lapses (it refuses a hold it could not write well before that);
//  3. tell the resource actor to track the appointment instead of the
//     claim, or release the claim when the staff member was taken.
//
// Every later change of such an appointment is passed on to the resource
// actor as soon as its staff member's actor answers; AppointmentChanged
// events (cmd/spa) do the same as a backstop for expiries and lost replies.

// sideTimeout bounds the best-effort messages sent after the decision
// (release, track), which must not fail the request they follow.
const sideTimeout = 5 * time.Second

// paddedAt is the interval a booking of sv starting at start occupies its
// resource: buffers included.
func paddedAt(sv persistence.Service, start time.Time) availability.Interval {
	return availability.Interval{Start: start.Add(-sv.BufferBefore), End: start.Add(sv.Duration + sv.BufferAfter)}
}

// resourceReply maps the failure to reach a resource actor (a
// resource.Client call's error) to the API's; a reply passes through.
func resourceReply[R any](r R, err error) (R, error) {
	if err != nil {
		var zero R
		return zero, fault.Unavailable("the resource calendar did not answer in time; retry")
	}
	return r, nil
}

// resourceError maps a resource actor's refusal (other than full) to the
// API's errors.
func resourceError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, resource.ErrUnknownResource):
		return fault.Invalid("", fault.FieldError{Field: "service_id", Message: "the room or facility this service needs is not available"})
	case errors.Is(err, resource.ErrInvalid):
		return fault.Invalid("the booking request is not valid: " + err.Error())
	case errors.Is(err, resource.ErrRetry):
		return fault.Unavailable("the resource calendar is busy recovering; retry")
	}
	return err
}

// claimResource claims one unit of the resource for the appointment over
// iv and returns when the claim lapses. A full resource is a *Taken with
// the alternatives alts computes.
func (s *Service) claimResource(ctx context.Context, resourceID, appointmentID string, iv availability.Interval, alts func() []availability.Slot) (time.Time, error) {
	reply, err := resourceReply(s.resources.Claim(ctx, resourceID, &resource.Claim{AppointmentID: appointmentID, Interval: iv}))
	if err != nil {
		return time.Time{}, err
	}
	if errors.Is(reply.Err, resource.ErrFull) {
		return time.Time{}, scheduleError(schedule.ErrSlotTaken, alts())
	}
	return reply.ExpiresAt, resourceError(reply.Err)
}

// claimMove claims the resource for an appointment's new start, with the
// buffers it was booked with. Its own current use does not count against
// it.
func (s *Service) claimMove(ctx context.Context, ap persistence.Appointment, sv persistence.Service, start time.Time) (time.Time, error) {
	iv := availability.Interval{Start: start.Add(-ap.BufferBefore), End: start.Add(sv.Duration + ap.BufferAfter)}
	return s.claimResource(ctx, ap.ResourceID, ap.ID, iv, func() []availability.Slot {
		return s.nearby(ctx, sv, []persistence.StaffMember{{ID: ap.StaffID}}, start)
	})
}

// releaseResource drops an appointment's claim after its staff member's
// actor refused it. Best effort: an unreleased claim lapses by itself.
func (s *Service) releaseResource(ctx context.Context, resourceID, appointmentID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sideTimeout)
	defer cancel()
	if _, err := s.resources.Release(ctx, resourceID, &resource.Release{AppointmentID: appointmentID}); err != nil {
		s.log.Warn("resource claim not released; it lapses by itself", slog.String("resource", resourceID),
			slog.String("appointment", appointmentID), slog.String("error", err.Error()))
	}
}

// trackResource tells the resource actor the appointment's latest state.
// It reports whether the appointment turned out not to fit (its claim
// lapsed before it was tracked and the resource filled meanwhile). A lost
// message is made up for by the appointment's AppointmentChanged event.
func (s *Service) trackResource(ctx context.Context, ap persistence.Appointment) (overbooked bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sideTimeout)
	defer cancel()
	r, err := s.resources.Track(ctx, ap.ResourceID, &resource.Track{Appointment: ap})
	if err == nil {
		err = r.Err
	}
	if err != nil {
		s.log.Warn("resource not told of an appointment change; its event will", slog.String("resource", ap.ResourceID),
			slog.String("appointment", ap.ID), slog.String("error", err.Error()))
		return false
	}
	return r.Overbooked
}

// undoOverbooked cancels a hold that did not fit its resource after all
// and answers slot_taken with alternatives.
func (s *Service) undoOverbooked(ctx context.Context, ap persistence.Appointment, sv persistence.Service, staff []persistence.StaffMember) error {
	reply, err := calendarReply(s.calendars.Cancel(ctx, ap.StaffID, &schedule.Cancel{AppointmentID: ap.ID, ActorID: "system", Reason: "resource claim lapsed", Override: true}))
	if err != nil {
		return err
	}
	if reply.Err == nil {
		s.trackResource(ctx, reply.Appointment)
	} else {
		return scheduleError(reply.Err, nil)
	}
	return scheduleError(schedule.ErrSlotTaken, s.nearby(ctx, sv, staff, ap.Start))
}

// resourceFit returns whether a slot of sv fits its resource, for slots
// starting in [from, to): one question to the resource actor for the
// saturated spans, then a check per slot in memory.
func (s *Service) resourceFit(ctx context.Context, sv persistence.Service, from, to time.Time) (func(availability.Slot) bool, error) {
	if sv.ResourceID == "" {
		return func(availability.Slot) bool { return true }, nil
	}
	reply, err := resourceReply(s.resources.Full(ctx, sv.ResourceID, &resource.FullQuery{From: from.Add(-sv.BufferBefore), To: to.Add(sv.Duration + sv.BufferAfter)}))
	if err != nil {
		return nil, err
	}
	if reply.Err != nil {
		return nil, resourceError(reply.Err)
	}
	return func(sl availability.Slot) bool {
		iv := paddedAt(sv, sl.Start)
		for _, sp := range reply.Spans { // sorted by start
			if !sp.Start.Before(iv.End) {
				break
			}
			if sp.Overlaps(iv) {
				return false
			}
		}
		return true
	}, nil
}

// fittingSlots is staffSlots without the starts whose resource is full.
func (s *Service) fittingSlots(ctx context.Context, staff []persistence.StaffMember, sv persistence.Service, from, to time.Time) ([]*schedule.SlotsReply, error) {
	replies, err := s.staffSlots(ctx, staff, sv, from, to)
	if err != nil || sv.ResourceID == "" {
		return replies, err
	}
	fits, err := s.resourceFit(ctx, sv, from, to)
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		kept := r.Slots[:0:0]
		for _, sl := range r.Slots {
			if fits(sl) {
				kept = append(kept, sl)
			}
		}
		r.Slots = kept
	}
	return replies, nil
}

// keepFitting drops the slots whose resource is full (best effort: on an
// error the slots are returned as they are).
func (s *Service) keepFitting(ctx context.Context, sv persistence.Service, slots []availability.Slot) []availability.Slot {
	if sv.ResourceID == "" || len(slots) == 0 {
		return slots
	}
	from, to := slots[0].Start, slots[0].Start
	for _, sl := range slots {
		if sl.Start.Before(from) {
			from = sl.Start
		}
		if sl.Start.After(to) {
			to = sl.Start
		}
	}
	fits, err := s.resourceFit(ctx, sv, from, to.Add(time.Minute))
	if err != nil {
		return slots
	}
	var out []availability.Slot
	for _, sl := range slots {
		if fits(sl) {
			out = append(out, sl)
		}
	}
	return out
}
