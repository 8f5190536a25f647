package schedule

import (
	"errors"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// The requests a schedule actor answers. Each is answered with exactly one
// reply: *HoldReply for Hold, *Reply for the others, *SlotsReply for
// SlotsQuery. Replies carry errors as values so they survive a future hop
// between nodes.

// Hold claims a slot for a client. It succeeds only if the slot is free in
// the actor's memory (pending claims count as taken), and is answered only
// once the held appointment is durable.
type Hold struct {
	AppointmentID string // ULID chosen by the caller, so a retry is recognisable
	ClientID      string
	Service       persistence.Service
	Start         time.Time
	ActorID       string
	// Key, when the client sent an Idempotency-Key, is remembered with the
	// held appointment (actors/keyed): a retry under it is answered with
	// that appointment, without deciding again.
	Key *keyed.Key
	// ClaimUntil, for a service that needs a shared resource, is when the
	// resource claim backing this hold lapses. The actor refuses with
	// ErrRetry unless the hold can be durable well before then (see
	// Config.ClaimMargin), so a lapsed claim never lets a second booking
	// into a room this one occupies.
	ClaimUntil time.Time
}

// HoldReply answers Hold. On ErrSlotTaken, Alternatives holds up to five
// other starts of the same staff member, nearest first.
type HoldReply struct {
	Appointment  persistence.Appointment
	Alternatives []availability.Slot
	Err          error
	Replayed     bool // the answer stored under the request's Key
}

// The holder wins its own slot: a Hold of a slot its client holds already
// for the same service is answered with that hold, whose id is not the
// Hold's AppointmentID (how callers tell it, also across nodes); nothing
// new is held and the Hold's Key stores nothing.

// Confirm turns a live hold into a booking.
type Confirm struct {
	AppointmentID string
	ActorID       string
	Reason        string
	Key           *keyed.Key // as in Hold; likewise for every change below
}

// Cancel frees a held or confirmed appointment's slot at once. Unless
// Override is set (staff acting at the desk), cancelling a confirmed
// appointment closer than Cutoff (the service's cancellation cut-off) to
// its start is refused. A hold, or a booking cancelled no closer than
// Cutoff to its start, gives back its package session and voucher debits
// in the cancellation's own transaction; an overridden late cancellation
// keeps them.
type Cancel struct {
	AppointmentID string
	ActorID       string
	Reason        string
	Cutoff        time.Duration
	Override      bool
	Key           *keyed.Key
}

// CheckIn records that the client arrived (at the desk or a kiosk): a
// confirmed appointment, from an hour before its start until its end.
// Checking in twice answers the first check-in.
type CheckIn struct {
	AppointmentID, ActorID string
	Key                    *keyed.Key
}

// checkInOpens is how long before its start an appointment accepts check-in.
const checkInOpens = time.Hour

// Complete and NoShow close a confirmed appointment that has started.
type Complete struct {
	AppointmentID, ActorID, Reason string
	Key                            *keyed.Key
}

// NoShow marks that the client did not come.
type NoShow struct {
	AppointmentID, ActorID, Reason string
	Key                            *keyed.Key
}

// Reschedule moves an appointment to another start with the same staff
// member atomically: the new slot is claimed in the same write that releases
// the old one, so there is no moment at which the client holds neither.
type Reschedule struct {
	AppointmentID string
	Start         time.Time
	Service       persistence.Service
	ActorID       string
	Override      bool
	// ClaimUntil: as for Hold, when the new interval's resource claim
	// lapses.
	ClaimUntil time.Time
	Key        *keyed.Key
}

// Reply answers Confirm, Cancel, CheckIn, Complete, NoShow and Reschedule.
type Reply struct {
	Appointment  persistence.Appointment
	Alternatives []availability.Slot // on ErrSlotTaken from Reschedule
	Err          error
	Replayed     bool // the answer stored under the request's Key
}

// SlotsQuery asks for the staff member's bookable starts of a service in
// [From, To), computed from the live calendar in memory.
type SlotsQuery struct {
	Service  persistence.Service
	From, To time.Time
}

// SlotsReply answers SlotsQuery. Load is the number of live appointments,
// for fair assignment across staff.
type SlotsReply struct {
	Slots []availability.Slot
	Load  int
	Err   error
}

// Errors carried in replies.
var (
	// ErrInvalid: the request is malformed (missing ids, bad service).
	ErrInvalid = errors.New("schedule: invalid request")
	// ErrSlotTaken: the slot is not free; alternatives accompany it.
	ErrSlotTaken = errors.New("schedule: slot taken")
	// ErrNotFound: no such appointment on this calendar.
	ErrNotFound = errors.New("schedule: appointment not found")
	// ErrHoldExpired: the hold lapsed before it was confirmed.
	ErrHoldExpired = errors.New("schedule: hold expired")
	// ErrTransition: the appointment's status does not allow the change.
	ErrTransition = errors.New("schedule: transition not allowed")
	// ErrCutoff: too close to the start for a client to change it.
	ErrCutoff = errors.New("schedule: inside the cancellation or reschedule cut-off")
	// ErrUnknownStaff: the calendar's staff member does not exist or is
	// inactive.
	ErrUnknownStaff = errors.New("schedule: unknown or inactive staff member")
	// ErrRetry: nothing was decided (the write failed, or a newer
	// activation took the calendar over); the request may be retried.
	ErrRetry = errors.New("schedule: not decided; retry")
)
