package resource

import (
	"errors"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/persistence"
)

// The requests a resource actor answers, each with exactly one reply:
// *ClaimReply for Claim, *TrackReply for Track, *FullReply for FullQuery
// and *Reply for Release. Errors travel as values in the replies.

// Claim reserves one unit of the resource for an appointment being booked
// (or moved), over its padded interval (buffers included). It is decided
// in memory with the capacity rule, unexpired claims counting as uses, and
// answered once durable; a full resource is refused at once with ErrFull.
// The appointment's own tracked use and earlier claim do not count against
// it (a reschedule may overlap where it was). A claim lapses by itself
// after TTL.
type Claim struct {
	AppointmentID string
	Interval      availability.Interval
	TTL           time.Duration // zero: Config.ClaimTTL
}

// ClaimReply answers Claim: ExpiresAt is when the claim lapses.
type ClaimReply struct {
	ExpiresAt time.Time
	Err       error
}

// Release drops the appointment's claim, if any: the staff member's actor
// refused the booking or the move. A tracked appointment stays tracked:
// only Track changes that.
type Release struct{ AppointmentID string }

// Track keeps the actor's memory in step with an appointment that uses the
// resource, after its staff member's actor changed it (held, confirmed,
// cancelled, expired, rescheduled...). It replaces the appointment's claim.
// An older version than the one known is ignored. Overbooked in the reply
// says the appointment did not fit when it arrived (its claim had lapsed
// and the capacity was taken meanwhile): the caller should undo it.
type Track struct{ Appointment persistence.Appointment }

// TrackReply answers Track.
type TrackReply struct {
	Overbooked bool
	Err        error
}

// FullQuery asks where the resource is saturated within [From, To).
type FullQuery struct{ From, To time.Time }

// FullReply answers FullQuery: a use whose padded interval overlaps one of
// Spans does not fit.
type FullReply struct {
	Spans    []availability.Interval
	Capacity int
	Err      error
}

// Reply answers Release.
type Reply struct{ Err error }

// Errors carried in replies.
var (
	// ErrFull: capacity is taken somewhere in the claimed interval.
	ErrFull = errors.New("resource: full")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("resource: invalid request")
	// ErrUnknownResource: the resource does not exist or is inactive.
	ErrUnknownResource = errors.New("resource: unknown or inactive resource")
	// ErrRetry: nothing was decided (the write failed, or a newer
	// activation took the calendar over); the request may be retried.
	ErrRetry = errors.New("resource: not decided; retry")
)

// refusal builds the reply type msg expects, carrying err.
func refusal(msg any, err error) any {
	switch msg.(type) {
	case *Claim:
		return &ClaimReply{Err: err}
	case *Track:
		return &TrackReply{Err: err}
	case *FullQuery:
		return &FullReply{Err: err}
	default:
		return &Reply{Err: err}
	}
}
