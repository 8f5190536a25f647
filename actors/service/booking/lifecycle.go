package booking

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Appointment is an appointment read for a caller who may act on it
// (Load): their own, or any for staff, with its service. The lifecycle
// use cases act on what Load returned, so reading the appointment and
// acting on it are two steps: the gateway reads the request body between
// them, and a request that names someone else's appointment is a 404
// whatever its body says.
type Appointment struct {
	persistence.Appointment
	service persistence.Service
	readFor string // the subject Load read it for
}

// ofCaller refuses an Appointment that Load did not read for by.
func (a Appointment) ofCaller(by service.Caller) error {
	if a.readFor == "" || a.readFor != by.Subject {
		return fault.NotFound("appointment not found")
	}
	return nil
}

// Load reads an appointment the caller may act on: their own, or any for
// staff. Someone else's is a 404, so ids cannot be probed.
func (s *Service) Load(ctx context.Context, by service.Caller, id string) (a Appointment, err error) {
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		a, err = s.LoadIn(ctx, tx, by, id)
		return err
	})
	return a, err
}

// LoadIn is Load inside the caller's transaction.
func (s *Service) LoadIn(ctx context.Context, tx persistence.Tx, by service.Caller, id string) (Appointment, error) {
	if err := signedIn(by); err != nil {
		return Appointment{}, err
	}
	if id == "" || len(id) > 64 {
		return Appointment{}, fault.NotFound("appointment not found")
	}
	ap, err := tx.AppointmentGet(ctx, id)
	var sv persistence.Service
	if err == nil {
		sv, err = tx.ServiceGet(ctx, ap.ServiceID)
	}
	if err != nil {
		return Appointment{}, fault.IfNotFound(err, "appointment")
	}
	if !IsStaff(by) && ap.ClientID != by.Subject {
		return Appointment{}, fault.NotFound("appointment not found")
	}
	return Appointment{Appointment: ap, service: sv, readFor: by.Subject}, nil
}

// Get is one appointment the caller may see (Load).
func (s *Service) Get(ctx context.Context, by service.Caller, id string) (persistence.Appointment, error) {
	a, err := s.Load(ctx, by, id)
	return a.Appointment, err
}

// ChangeInput is what a lifecycle call carries besides the appointment:
// an optional reason (at most 200 printable characters), and for a
// reschedule the new start.
type ChangeInput struct {
	Reason string
	Start  time.Time
	// Key is the client's Idempotency-Key (nil: none), remembered by the
	// staff member's actor with the change. A reschedule that also moves
	// a room claim is refused with keyed.ErrAtEdge before anything.
	Key *keyed.Key
}

// maxReason bounds a lifecycle call's reason.
const maxReason = 200

// Confirm turns a live hold into a booking: staff, or the owner once
// nothing of the deposit is due (DepositDue: none asked, or a package
// session, vouchers or an approved online payment cover it; otherwise the
// client pays it online, docs/payments.md). After expiry: hold_expired.
func (s *Service) Confirm(ctx context.Context, by service.Caller, a Appointment, in ChangeInput) (persistence.Appointment, error) {
	if err := a.ofCaller(by); err != nil {
		return persistence.Appointment{}, err
	}
	var due int64
	if a.DepositMinor > 0 && !IsStaff(by) {
		if err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
			due, err = DepositDue(ctx, tx, a.Appointment)
			return err
		}); err != nil {
			return persistence.Appointment{}, err
		}
	}
	ap, err := s.change(ctx, by, a, in, func(ap persistence.Appointment, _ persistence.Service, reason string) (schedule.Change, error) {
		if due > 0 {
			return nil, fault.Forbidden(fmt.Sprintf("a deposit of %d (minor units) is due before confirmation; pay it online", due))
		}
		return &schedule.Confirm{AppointmentID: ap.ID, ActorID: by.Subject, Reason: reason}, nil
	})
	if err == nil {
		s.releaseHoldCaps(by, ap) // a booking, no longer a hold
	}
	return ap, err
}

// Cancel frees the slot (and the room) at once: the owner outside the
// service's cancellation cut-off (inside it: cutoff_passed), staff at any
// time. Cancelling a hold, or a booking outside the cut-off, gives back
// the package session and voucher debits spent on it, in the same
// transaction as the cancellation (the staff member's actor decides and
// writes both), so a store failure fails the cancel, retryably, instead
// of losing the give-back.
func (s *Service) Cancel(ctx context.Context, by service.Caller, a Appointment, in ChangeInput) (persistence.Appointment, error) {
	ap, err := s.change(ctx, by, a, in, func(ap persistence.Appointment, sv persistence.Service, reason string) (schedule.Change, error) {
		return &schedule.Cancel{AppointmentID: ap.ID, ActorID: by.Subject, Reason: reason, Cutoff: sv.CancelCutoff, Override: IsStaff(by)}, nil
	})
	if err == nil {
		s.releaseHoldCaps(by, ap)
	}
	return ap, err
}

// Reschedule moves the appointment to in.Start with the same staff member
// atomically (the new slot is taken in the write that frees the old): the
// owner outside the cut-off, staff at any time. A slot that is not free
// is a *Taken with the staff member's nearest starts. With a resource, the
// new interval is claimed first under the same appointment id.
func (s *Service) Reschedule(ctx context.Context, by service.Caller, a Appointment, in ChangeInput) (persistence.Appointment, error) {
	return s.change(ctx, by, a, in, func(ap persistence.Appointment, sv persistence.Service, _ string) (schedule.Change, error) {
		if in.Start.IsZero() {
			return nil, fault.Invalid("", fault.FieldError{Field: "start", Message: "the new start is required"})
		}
		return &schedule.Reschedule{AppointmentID: ap.ID, Start: in.Start, Service: sv, ActorID: by.Subject, Override: IsStaff(by)}, nil
	})
}

// CheckIn records the client's arrival (staff only): a confirmed
// appointment, from an hour before its start until its end.
func (s *Service) CheckIn(ctx context.Context, by service.Caller, a Appointment, in ChangeInput) (persistence.Appointment, error) {
	if err := staffOnly(by); err != nil {
		return persistence.Appointment{}, err
	}
	return s.change(ctx, by, a, in, func(ap persistence.Appointment, _ persistence.Service, _ string) (schedule.Change, error) {
		return &schedule.CheckIn{AppointmentID: ap.ID, ActorID: by.Subject}, nil
	})
}

// Complete closes an appointment that has started (staff only).
func (s *Service) Complete(ctx context.Context, by service.Caller, a Appointment, in ChangeInput) (persistence.Appointment, error) {
	if err := staffOnly(by); err != nil {
		return persistence.Appointment{}, err
	}
	return s.change(ctx, by, a, in, func(ap persistence.Appointment, _ persistence.Service, reason string) (schedule.Change, error) {
		return &schedule.Complete{AppointmentID: ap.ID, ActorID: by.Subject, Reason: reason}, nil
	})
}

// NoShow records that the client did not come (staff only).
func (s *Service) NoShow(ctx context.Context, by service.Caller, a Appointment, in ChangeInput) (persistence.Appointment, error) {
	if err := staffOnly(by); err != nil {
		return persistence.Appointment{}, err
	}
	return s.change(ctx, by, a, in, func(ap persistence.Appointment, _ persistence.Service, reason string) (schedule.Change, error) {
		return &schedule.NoShow{AppointmentID: ap.ID, ActorID: by.Subject, Reason: reason}, nil
	})
}

// change runs one transition: the reason checked, the message build
// makes asked of the staff member's actor, and the resource actor told of
// the outcome at once (a cancellation frees the room now, not when the
// event arrives).
func (s *Service) change(ctx context.Context, by service.Caller, a Appointment, in ChangeInput,
	build func(ap persistence.Appointment, sv persistence.Service, reason string) (schedule.Change, error)) (persistence.Appointment, error) {
	if err := a.ofCaller(by); err != nil {
		return persistence.Appointment{}, err
	}
	var f fieldErrors
	reason := f.text("reason", in.Reason, 0, maxReason)
	if err := f.err(); err != nil {
		return persistence.Appointment{}, err
	}
	ap, sv := a.Appointment, a.service
	msg, err := build(ap, sv, reason)
	if err != nil {
		return persistence.Appointment{}, err
	}
	move, moving := msg.(*schedule.Reschedule)
	if in.Key != nil && moving && ap.ResourceID != "" {
		return persistence.Appointment{}, keyed.ErrAtEdge
	}
	msg.SetKey(in.Key)
	if moving && ap.ResourceID != "" {
		if move.ClaimUntil, err = s.claimMove(ctx, ap, sv, move.Start); err != nil {
			return persistence.Appointment{}, err
		}
	}
	reply, err := calendarReply(s.calendars.Change(ctx, ap.StaffID, msg))
	if err != nil {
		return persistence.Appointment{}, err // undecided: a move's claim lapses by itself
	}
	// A replayed answer goes on like a fresh one: telling the room is
	// idempotent, and a crash may have cut it.
	done, err := s.keyedAnswer(ctx, in.Key, reply.Replayed, reply.Appointment, reply.Err)
	if err != nil {
		if moving && ap.ResourceID != "" && !errors.Is(err, schedule.ErrRetry) {
			s.releaseResource(ctx, ap.ResourceID, ap.ID)
		}
		return persistence.Appointment{}, scheduleError(err, s.keepFitting(ctx, sv, reply.Alternatives))
	}
	if ap.ResourceID != "" {
		s.trackResource(ctx, done)
	}
	return done, nil
}

// Refused is a calendar's refusal of KioskCheckIn: Err is the answer the
// client gets (outside the check-in window: invalid_transition).
type Refused struct{ Err error }

func (r *Refused) Error() string { return "check-in refused: " + r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

// KioskCheckIn checks in an appointment a kiosk found for a client whose
// code proved their phone (actors/service/identity decided that), as
// actorID, through the staff member's calendar as CheckIn does. A
// calendar's refusal is a *Refused; any other error means the calendar
// could not be asked.
func (s *Service) KioskCheckIn(ctx context.Context, ap persistence.Appointment, actorID string) (persistence.Appointment, error) {
	rep, err := calendarReply(s.calendars.CheckIn(ctx, ap.StaffID, &schedule.CheckIn{AppointmentID: ap.ID, ActorID: actorID}))
	if err != nil {
		return ap, err
	}
	if rep.Err != nil {
		return ap, &Refused{Err: scheduleError(rep.Err, nil)}
	}
	if ap.ResourceID != "" {
		s.trackResource(ctx, rep.Appointment)
	}
	return rep.Appointment, nil
}

// maxMine bounds one answer of Mine.
const maxMine = 500

// Mine lists the caller's appointments starting in [from, to).
func (s *Service) Mine(ctx context.Context, by service.Caller, from, to time.Time) (list []persistence.Appointment, err error) {
	if err := signedIn(by); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.AppointmentListByClient(ctx, by.Subject, from, to, maxMine)
		return err
	})
	return list, err
}

// AgendaInput names a staff member and a date (YYYY-MM-DD, the staff
// member's local day).
type AgendaInput struct {
	StaffID, Date string
}

// Agenda lists one staff member's appointments on a local date (staff
// only). Errors name the API's query parameters (staff, date).
func (s *Service) Agenda(ctx context.Context, by service.Caller, in AgendaInput) (list []persistence.Appointment, err error) {
	if err := staffOnly(by); err != nil {
		return nil, err
	}
	if !IsSlug(in.StaffID) {
		return nil, fault.Invalid("", fault.FieldError{Field: "staff", Message: "a staff id is required"})
	}
	if _, err := time.Parse(time.DateOnly, in.Date); err != nil {
		return nil, fault.Invalid("", fault.FieldError{Field: "date", Message: "must be a date YYYY-MM-DD"})
	}
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		m, err := tx.StaffGet(ctx, in.StaffID)
		if err != nil {
			return fault.IfNotFound(err, "staff member")
		}
		loc, err := time.LoadLocation(m.TimeZone)
		if err != nil {
			return err
		}
		day, _ := time.ParseInLocation(time.DateOnly, in.Date, loc)
		list, err = tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: in.StaffID, From: day, To: day.AddDate(0, 0, 1)})
		return err
	})
	return list, err
}
