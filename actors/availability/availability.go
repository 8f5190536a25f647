// Package availability computes which appointment slots a spa can offer:
// staff working hours (weekly ranges, date overrides, time off) minus existing
// appointments and live holds with their cleanup buffers, filtered by skills
// and by the capacity of a shared resource such as a room or a sauna.
//
// It is pure domain logic that sits beside the actors rather than inside
// them: no I/O, no goroutines, no clock (the caller passes Now), and a
// deterministic result whatever the order of its inputs. A schedule actor,
// the single writer for one staff member's calendar, calls Free to decide a
// claim in memory and Alternatives to answer a refusal; read paths call
// Slots and AnyStaff. Tests need no actor system.
//
// Instants are compared as absolute times and returned in UTC. Working hours
// are wall-clock times in each staff member's own *time.Location, turned into
// instants date by date, so a studio in America/Bogota (no DST) and a
// therapist in Europe/Madrid both work out. On DST days:
//   - a clock time repeated by a fall-back means its first occurrence, so a
//     range covering the repeated hour is an hour longer in absolute time;
//   - a clock time skipped by a spring-forward means the transition instant,
//     so a range spanning the gap is shortened and one inside it vanishes;
//   - 09:00-17:00 is eight hours on a 23- or 25-hour day alike;
//   - the slot grid runs in absolute time from each range's start instant.
//
// The mapping never runs backwards, so ranges that do not overlap on the
// clock never overlap in time and no slot is produced twice.
package availability

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid is wrapped by every validation error, so callers can map bad
// input to a 400 with errors.Is without parsing messages.
var ErrInvalid = errors.New("availability: invalid input")

// DefaultStep is the slot grid used when Query.Step is zero.
const DefaultStep = 15 * time.Minute

// MaxSpan bounds To-From: a query runs inside an actor's message handler, so
// a request for a decade of slots must be refused, not computed.
const MaxSpan = 366 * 24 * time.Hour

// Service is what the client books.
type Service struct {
	ID string
	// Duration is the service time the client sees; it must be positive.
	Duration time.Duration
	// BufferBefore and BufferAfter are preparation and cleanup time the
	// staff member (and the resource) needs around the service. They may
	// fall outside working hours but never on busy time or time off.
	BufferBefore, BufferAfter time.Duration
	// RequiredSkills must all be held by the staff member.
	RequiredSkills []string
	// ResourceID, if set, names a Resource of which the service needs one
	// unit for its padded interval.
	ResourceID string
}

// Busy is an existing appointment or a live hold on a staff member or a
// resource.
type Busy struct {
	Start, End                time.Time
	BufferBefore, BufferAfter time.Duration
	// HoldExpiresAt is zero for a confirmed appointment. A hold whose
	// expiry is at or before Query.Now blocks nothing, so an expired hold
	// frees its slot even before any cleanup job has deleted it.
	HoldExpiresAt time.Time
}

// Live reports whether b still blocks time at now.
func (b Busy) Live(now time.Time) bool {
	return b.HoldExpiresAt.IsZero() || b.HoldExpiresAt.After(now)
}

// Padded returns the time b blocks, buffers included.
func (b Busy) Padded() Interval {
	return Interval{b.Start.Add(-b.BufferBefore), b.End.Add(b.BufferAfter)}
}

// Staff is one bookable staff member with everything that shapes their
// calendar.
type Staff struct {
	ID     string
	Active bool
	Skills []string
	// Location is the zone the working hours are written in; required.
	Location *time.Location
	Hours    WeeklyHours
	// Overrides replace Hours on their dates; at most one per date.
	Overrides []Override
	// TimeOff holds absolute blocked intervals (a doctor's appointment, a
	// training); buffers may not reach into them.
	TimeOff []Interval
	Busy    []Busy
	// Load is the number of appointments booked in the period used for fair
	// assignment (AnyStaff gives a slot to the least loaded). Callers count
	// booked appointments only: no-shows and cancellations are excluded so
	// a therapist is not penalised for clients who did not come.
	Load int
}

// Resource is a shared facility with a capacity: a treatment room for 1, a
// sauna for 4. Each Busy uses one unit.
type Resource struct {
	ID       string
	Capacity int
	Busy     []Busy
}

// Query asks for slots of one service.
type Query struct {
	Service Service
	// From and To bound the slot start times: From <= start < To.
	From, To time.Time
	// Now decides which holds are live and anchors MinNotice and Horizon.
	Now time.Time
	// MinNotice: a slot must start at or after Now+MinNotice.
	MinNotice time.Duration
	// Horizon: a slot must start before Now+Horizon; zero means no limit.
	Horizon time.Duration
	// Step is the grid of start times within a working range (range start
	// + k*Step); zero means DefaultStep.
	Step time.Duration
	// StaffID, if set, restricts Slots to that staff member.
	StaffID string
}

// Slot is one bookable start: the service time, buffers excluded, and who
// performs it.
type Slot struct {
	Start, End time.Time
	StaffID    string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// step returns the effective grid step.
func (q *Query) step() time.Duration {
	if q.Step == 0 {
		return DefaultStep
	}
	return q.Step
}

// validate checks q; withRange also checks From/To, which Free ignores.
func (q *Query) validate(withRange bool) error {
	sv := q.Service
	switch {
	case sv.Duration <= 0:
		return invalid("service %q: duration %v must be positive", sv.ID, sv.Duration)
	case sv.BufferBefore < 0 || sv.BufferAfter < 0:
		return invalid("service %q: negative buffer", sv.ID)
	case q.Now.IsZero():
		return invalid("query: Now is required")
	case q.Step < 0:
		return invalid("query: step %v must be positive", q.Step)
	case q.MinNotice < 0 || q.Horizon < 0:
		return invalid("query: negative notice or horizon")
	}
	if withRange {
		if !q.From.Before(q.To) {
			return invalid("query: From %v must be before To %v", q.From, q.To)
		}
		if q.To.Sub(q.From) > MaxSpan {
			return invalid("query: range longer than %v", MaxSpan)
		}
	}
	return nil
}

// validateBusy checks bs. whoFormat and id name their owner in an error;
// they are formatted only then, since this runs on every claim.
func validateBusy(whoFormat, id string, bs []Busy) error {
	for i, b := range bs {
		if !b.Start.Before(b.End) {
			return invalid("%s: busy[%d] interval empty or inverted", fmt.Sprintf(whoFormat, id), i)
		}
		if b.BufferBefore < 0 || b.BufferAfter < 0 {
			return invalid("%s: busy[%d] negative buffer", fmt.Sprintf(whoFormat, id), i)
		}
	}
	return nil
}

func (s *Staff) validate() error {
	switch {
	case s.ID == "":
		return invalid("staff: empty ID")
	case s.Location == nil:
		return invalid("staff %q: nil Location", s.ID)
	case s.Load < 0:
		return invalid("staff %q: negative Load", s.ID)
	}
	for i, iv := range s.TimeOff {
		if iv.Empty() {
			return invalid("staff %q: time off [%d] empty or inverted", s.ID, i)
		}
	}
	for i, o := range s.Overrides {
		if !o.Date.Valid() {
			return invalid("staff %q: override date %s", s.ID, o.Date)
		}
		for _, p := range s.Overrides[:i] {
			if p.Date == o.Date {
				return invalid("staff %q: two overrides for %s", s.ID, o.Date)
			}
		}
	}
	return validateBusy("staff %q", s.ID, s.Busy)
}

// validateResource checks res when the service needs it; otherwise res is
// ignored.
func validateResource(sv Service, res *Resource) error {
	if sv.ResourceID == "" {
		return nil
	}
	switch {
	case res == nil:
		return invalid("service %q needs resource %q: none given", sv.ID, sv.ResourceID)
	case res.ID != sv.ResourceID:
		return invalid("service %q needs resource %q, got %q", sv.ID, sv.ResourceID, res.ID)
	case res.Capacity < 1:
		return invalid("resource %q: capacity %d must be at least 1", res.ID, res.Capacity)
	}
	return validateBusy("resource %q", res.ID, res.Busy)
}

// qualified reports whether s may perform sv at all.
func qualified(s *Staff, sv Service) bool {
	if !s.Active {
		return false
	}
	for _, need := range sv.RequiredSkills {
		found := false
		for _, have := range s.Skills {
			if have == need {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
