// Package booking holds the booking use cases: availability, the
// appointment lifecycle (hold, confirm, cancel, reschedule, check-in,
// complete, no-show), a client's appointments and a staff member's agenda,
// the staff + room saga for services that need a shared resource, and the
// offers around a booking: the waitlist, packages and vouchers
// (docs/booking.md).
//
// They are not in the gateway because none of it is HTTP: who may book
// for whom, the cancellation cut-off and the staff override, which
// alternatives a refused claim offers, the order of the room claim and the
// staff hold and how either is undone, when a package session or a voucher
// debit comes back — the WhatsApp bot books through this same service, so
// it gets the same rules, and they are tested here without Fiber. Every
// decision about a calendar is still taken by that staff member's schedule
// actor (and a room's by its resource actor); the service reads the
// catalogue, checks who may do what, asks the actors in turn and
// translates their replies into fault errors. A refused claim is a
// *Taken (409 slot_taken) carrying its alternatives, never a 429 or a 500.
//
// This is the benchmarked hot path (a hot staff member's refused claims):
// Hold adds no transaction, goroutine or allocation to what the actors
// cost, and asks them exactly as often as the handler it replaces.
package booking

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/caps"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

const (
	maxAvailabilitySpan = 31 * 24 * time.Hour
	maxAlternatives     = 5
	sameStaffFirst      = 3 // alternatives: this many of the same staff member before others
)

// Catalogue is the node's cache of the active catalogue, which the booking
// path reads on every request so a claim costs no database read.
type Catalogue interface {
	// Snapshot returns the services (active or not) by id and the active
	// staff. Callers must not modify them.
	Snapshot(ctx context.Context) (map[string]persistence.Service, []persistence.StaffMember, error)
}

// Deps is what the service needs.
type Deps struct {
	// Store, Calendars and Catalogue are required.
	Store persistence.Store
	// Calendars reaches the schedule actors (one per staff member).
	Calendars *schedule.Client
	// Resources reaches the resource actors (one per room or sauna); nil
	// refuses to book services that need one (the lock baseline).
	Resources *resource.Client
	Catalogue Catalogue
	// Keys reads answers stored under idempotency keys (as the actors
	// store them).
	Keys   keyed.Config
	Logger *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now
	// Caps caps the live holds of a client and of an IP (zero: none).
	Caps HoldCaps
}

// HoldCaps are the hoarding caps of holds (actors/service/caps): live
// holds per client and per client IP, counted cluster-wide by quota
// actors for TTL (the hold TTL), released when a hold is confirmed or
// cancelled. A limit below 1 caps nothing; staff are not capped.
type HoldCaps struct {
	Guard     *caps.Guard
	PerClient int64
	PerIP     int64
	TTL       time.Duration
}

// Service runs the booking use cases.
type Service struct {
	store     persistence.Store
	calendars *schedule.Client
	resources *resource.Client
	catalogue Catalogue
	keys      keyed.Config
	log       *slog.Logger
	now       func() time.Time
	caps      HoldCaps
}

// New builds the service.
func New(d Deps) *Service {
	s := &Service{store: d.Store, calendars: d.Calendars, resources: d.Resources, catalogue: d.Catalogue, keys: d.Keys, log: d.Logger, now: d.Now, caps: d.Caps}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.caps.TTL <= 0 {
		s.caps.TTL = 10 * time.Minute // the default hold TTL
	}
	return s
}

// ---- Who may do what -----------------------------------------------------------

// StaffRoles may act on any appointment, book for a client and override
// client cut-offs.
var StaffRoles = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}

// IsStaff reports whether c acts for the studio (StaffRoles).
func IsStaff(c service.Caller) bool { return slices.Contains(StaffRoles, c.Role) }

// signedIn refuses an anonymous caller: every use case but availability
// acts for someone.
func signedIn(by service.Caller) error {
	if by.Anonymous() {
		return fault.Unauthenticated("")
	}
	return nil
}

// staffOnly refuses callers who do not act for the studio.
func staffOnly(by service.Caller) error {
	if err := signedIn(by); err != nil {
		return err
	}
	if !IsStaff(by) {
		return fault.Forbidden("")
	}
	return nil
}

// adminOnly refuses callers who are not admins.
func adminOnly(by service.Caller) error {
	if err := signedIn(by); err != nil {
		return err
	}
	if by.Role != auth.RoleAdmin {
		return fault.Forbidden("")
	}
	return nil
}

// ValidClientID reports whether id may name a client: token subjects are
// 1 to 64 of A-Z, a-z, 0-9, +, ., _, : and -.
func ValidClientID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '+' || c == '.' || c == '_' || c == ':' || c == '-':
		default:
			return false
		}
	}
	return true
}

// clientIDMessage is the refusal of a client id that is not ValidClientID.
const clientIDMessage = "must be 1 to 64 of A-Z, a-z, 0-9, +, ., _, : and -"

// IsSlug reports whether s is a catalogue id (a service or staff id):
// ^[a-z0-9][a-z0-9_-]{0,63}$, without the regexp engine.
func IsSlug(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ---- Refusals ------------------------------------------------------------------

// Taken is the refusal of a slot that is not free (409 slot_taken), with
// the alternatives found for it: starts of the same staff member nearest
// in time, other qualified staff at the same time, or any-staff starts
// around it. Fault is the error a client is answered (errors.As finds
// it); the alternatives are kept beside it, not in its details, so that
// each channel writes them its own way (the gateway by hand: this is the
// most frequent answer there is).
type Taken struct {
	Fault        fault.Error
	Alternatives []availability.Slot
}

func (t *Taken) Error() string { return t.Fault.Error() }

// Unwrap is the client's answer.
func (t *Taken) Unwrap() error { return &t.Fault }

// taken is a fresh slot_taken refusal: one allocation, as the fault error
// it replaces.
func taken(alternatives []availability.Slot) error {
	t := &Taken{Alternatives: alternatives}
	t.Fault = *fault.New(fault.CodeSlotTaken, "")
	return t
}

// scheduleError maps a schedule actor's refusal to the API's errors.
func scheduleError(err error, alternatives []availability.Slot) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, schedule.ErrSlotTaken):
		return taken(alternatives)
	case errors.Is(err, schedule.ErrHoldExpired):
		return fault.New(fault.CodeHoldExpired, "")
	case errors.Is(err, schedule.ErrTransition):
		return fault.New(fault.CodeInvalidTransition, "")
	case errors.Is(err, schedule.ErrCutoff):
		return fault.New(fault.CodeCutoffPassed, "")
	case errors.Is(err, schedule.ErrNotFound):
		return fault.NotFound("appointment not found")
	case errors.Is(err, schedule.ErrUnknownStaff):
		return fault.Invalid("", fault.FieldError{Field: "staff_id", Message: "no such active staff member"})
	case errors.Is(err, schedule.ErrInvalid), errors.Is(err, availability.ErrInvalid):
		return fault.Invalid("the booking request is not valid: " + err.Error())
	case errors.Is(err, keyed.ErrReused):
		return fault.New(fault.CodeIdempotencyKeyReused, "")
	case errors.Is(err, schedule.ErrRetry), errors.Is(err, keyed.ErrElsewhere), errors.Is(err, keyed.ErrUndecided):
		return fault.Unavailable("the calendar is busy recovering; retry")
	}
	return err
}

// keyedAnswer is a calendar's answer to a request sent under an
// idempotency key, completed (keyed.Resolve).
func (s *Service) keyedAnswer(ctx context.Context, k *keyed.Key, replayed bool, ap persistence.Appointment, err error) (persistence.Appointment, error) {
	if stored, found, err := keyed.Resolve[persistence.Appointment](ctx, s.store, s.keys, k, replayed, err, s.now()); found {
		return stored, err
	}
	return ap, err
}

// calendarReply maps the failure to reach a calendar (a schedule.Client
// call's error) to the API's; a reply passes through.
func calendarReply[R any](r R, err error) (R, error) {
	if err != nil {
		var zero R
		return zero, fault.Unavailable("the calendar did not answer in time; retry")
	}
	return r, nil
}

// ---- The catalogue -------------------------------------------------------------

// qualifiedStaff lists the active staff who hold every skill the service
// needs, optionally only one of them.
func qualifiedStaff(active []persistence.StaffMember, sv persistence.Service, only string) []persistence.StaffMember {
	if only != "" { // one of them: a view of the catalogue's list, no copy
		for i := range active {
			if active[i].ID == only && hasSkills(active[i].Skills, sv.RequiredSkills) {
				return active[i : i+1 : i+1] // capped: appending cannot write into the catalogue
			}
		}
		return nil
	}
	var out []persistence.StaffMember
	for i := range active {
		if hasSkills(active[i].Skills, sv.RequiredSkills) {
			out = append(out, active[i])
		}
	}
	return out
}

func hasSkills(have, need []string) bool {
	for _, n := range need {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}

// bookable finds an active service and its qualified staff in the
// catalogue cache. serviceField and staffField name the inputs in errors
// (query parameters or body fields).
func (s *Service) bookable(ctx context.Context, serviceID, staffID, serviceField, staffField string) (persistence.Service, []persistence.StaffMember, error) {
	services, active, err := s.catalogue.Snapshot(ctx)
	if err != nil {
		return persistence.Service{}, nil, err
	}
	sv, ok := services[serviceID]
	if !ok || !sv.Active {
		return sv, nil, fault.Invalid("", fault.FieldError{Field: serviceField, Message: "no such active service"})
	}
	staff := qualifiedStaff(active, sv, staffID)
	if sv.ResourceID != "" && s.resources == nil {
		// No resource actors (the lock baseline): refuse rather than risk
		// overbooking the room.
		return sv, nil, fault.Invalid("", fault.FieldError{Field: serviceField, Message: "services that need a shared resource cannot be booked on this node"})
	}
	if staffID != "" && len(staff) == 0 {
		return sv, nil, fault.Invalid("", fault.FieldError{Field: staffField, Message: "no active staff member with that id can perform this service"})
	}
	return sv, staff, nil
}

// ---- Availability --------------------------------------------------------------

// AvailabilityInput asks for the bookable starts of a service in
// [From, To), of one staff member or (StaffID empty) of any qualified one.
type AvailabilityInput struct {
	ServiceID, StaffID string
	From, To           time.Time
}

// Availability answers the bookable starts, sorted by start: one staff
// member's, or without StaffID one per start, each given to the least
// loaded qualified staff member (then the smallest id), so "any staff"
// spreads work evenly. Starts whose resource is full are left out. Errors
// name the API's query parameters (service, staff, to).
func (s *Service) Availability(ctx context.Context, _ service.Caller, in AvailabilityInput) (persistence.Service, []availability.Slot, error) {
	if in.To.Sub(in.From) > maxAvailabilitySpan {
		return persistence.Service{}, nil, fault.Invalid("", fault.FieldError{Field: "to", Message: "at most 31 days per request"})
	}
	sv, staff, err := s.bookable(ctx, in.ServiceID, in.StaffID, "service", "staff")
	if err != nil {
		return sv, nil, err
	}
	replies, err := s.fittingSlots(ctx, staff, sv, in.From, in.To)
	if err != nil {
		return sv, nil, err
	}
	if in.StaffID == "" {
		return sv, fairUnion(replies), nil
	}
	var slots []availability.Slot
	for _, r := range replies {
		slots = append(slots, r.Slots...)
	}
	return sv, slots, nil
}

// staffSlots asks every given staff member's actor for slots in [from, to).
// What this node's snapshots answer (door.Now) is answered in the calling
// goroutine, one after another: a goroutine per question, and its stack
// growing into the slot computation, cost more than the answer. The rest
// are asked concurrently, the last from the calling goroutine, which would
// only wait otherwise.
func (s *Service) staffSlots(ctx context.Context, staff []persistence.StaffMember, sv persistence.Service, from, to time.Time) ([]*schedule.SlotsReply, error) {
	q := &schedule.SlotsQuery{Service: sv, From: from, To: to} // read only: shared by every ask
	replies := make([]*schedule.SlotsReply, len(staff))
	errs := make([]error, len(staff))
	answered := func(i int, r *schedule.SlotsReply) { replies[i], errs[i] = r, scheduleError(r.Err, nil) }
	ask := func(i int) {
		r, err := calendarReply(s.calendars.Slots(ctx, staff[i].ID, q))
		if err != nil {
			errs[i] = err
			return
		}
		answered(i, r)
	}
	var wait []int
	for i := range staff {
		if ctx.Err() == nil {
			if r, ok := s.calendars.SlotsNow(staff[i].ID, q); ok {
				answered(i, r)
				continue
			}
		}
		wait = append(wait, i)
	}
	var wg sync.WaitGroup
	for k, i := range wait {
		if k == len(wait)-1 {
			ask(i)
			break
		}
		wg.Go(func() { ask(i) })
	}
	wg.Wait()
	return replies, errors.Join(errs...)
}

// fairUnion keeps one slot per start: the least-loaded staff member's (then
// the smallest id), so "any staff" spreads work evenly.
func fairUnion(replies []*schedule.SlotsReply) []availability.Slot {
	best := map[time.Time]availability.Slot{}
	load := map[string]int{}
	for _, r := range replies {
		for _, sl := range r.Slots {
			load[sl.StaffID] = r.Load
			cur, ok := best[sl.Start]
			if !ok || cmp.Or(cmp.Compare(r.Load, load[cur.StaffID]), cmp.Compare(sl.StaffID, cur.StaffID)) < 0 {
				best[sl.Start] = sl
			}
		}
	}
	out := make([]availability.Slot, 0, len(best))
	for _, sl := range best {
		out = append(out, sl)
	}
	slices.SortFunc(out, func(a, b availability.Slot) int { return a.Start.Compare(b.Start) })
	return out
}

// fairOrder lists the staff free at a start, least loaded first.
func fairOrder(replies []*schedule.SlotsReply) []availability.Slot {
	var free []availability.Slot
	loads := map[string]int{}
	for _, r := range replies {
		for _, sl := range r.Slots {
			loads[sl.StaffID] = r.Load
			free = append(free, sl)
		}
	}
	slices.SortFunc(free, func(a, b availability.Slot) int {
		return cmp.Or(cmp.Compare(loads[a.StaffID], loads[b.StaffID]), cmp.Compare(a.StaffID, b.StaffID))
	})
	return free
}

// alternatives for a refused claim on one staff member: a few of their own
// nearest starts, then other qualified staff free at the same start, then
// more of their own, up to five. At most othersAsked other calendars are
// asked (see askedOthers), and only as many as the answer still has room
// for (see inWaves). With nobody else free the answer is own itself
// (capped, read-only like the calendar's reply it comes from): a hot
// calendar then refuses with the same list every time, which the gateway
// writes out once.
func (s *Service) alternatives(ctx context.Context, sv persistence.Service, staffID string, start time.Time, own []availability.Slot) []availability.Slot {
	var others []availability.Slot
	if _, active, err := s.catalogue.Snapshot(ctx); err == nil {
		asked := askedOthers(active, sv, staffID, start, s.calendars.Local())
		room := maxAlternatives - min(len(own), sameStaffFirst)
		others = fairOrder(inWaves(asked, room, func(wave []persistence.StaffMember) ([]*schedule.SlotsReply, error) {
			return s.fittingSlots(ctx, wave, sv, start, start.Add(time.Minute))
		}))
	}
	if len(others) == 0 {
		if len(own) == 0 {
			return []availability.Slot{} // empty, not nil, as before
		}
		n := min(len(own), maxAlternatives)
		return own[:n:n]
	}
	out := append(make([]availability.Slot, 0, maxAlternatives), own[:min(len(own), sameStaffFirst)]...)
	out = append(out, others...)
	out = append(out, own[min(len(own), sameStaffFirst):]...)
	return out[:min(len(out), maxAlternatives)]
}

// othersAsked bounds the other calendars a refusal asks for
// alternatives: with a hundred qualified staff every refused claim would
// otherwise cost a hundred questions, for at most five suggestions.
const othersAsked = 8

// askedOthers picks which other qualified staff a refusal at start asks:
// all of them when there are few, else othersAsked of them from a place
// in the list that moves with the start, so suggestions spread over the
// team instead of always naming the same people. In a cluster (local
// non-nil) those whose actors live on this node come first: a suggestion
// is as good from any of them, and asking another node's actor costs a
// forwarded request (most of the cluster's forwarding under load was
// these questions).
func askedOthers(active []persistence.StaffMember, sv persistence.Service, staffID string, start time.Time, local func(staffID string) bool) []persistence.StaffMember {
	// Indexes into the catalogue's list, copying only the few asked: a
	// refusal is common at peak, and copying every qualified member (twice)
	// was a fifth of the bytes the node allocated under spread.
	others := make([]int, 0, len(active))
	for i := range active {
		if m := &active[i]; m.ID != staffID && hasSkills(m.Skills, sv.RequiredSkills) {
			others = append(others, i)
		}
	}
	if local == nil {
		return rotatingPick(active, others, othersAsked, start)
	}
	near, far := others[:0:0], others[:0:0]
	for _, i := range others {
		if local(active[i].ID) {
			near = append(near, i)
		} else {
			far = append(far, i)
		}
	}
	picked := rotatingPick(active, near, othersAsked, start)
	return append(picked, rotatingPick(active, far, othersAsked-len(picked), start)...)
}

// inWaves asks staff, in their order, whether they are free (ask answers
// for a wave of them at once), a wave no larger than the slots still
// wanted, until want are free or every one has been asked: with a
// colleague free at hand a refusal asks two or three calendars, not
// othersAsked (their questions were a tenth of the node's CPU under
// spread). A wave that fails ends the asking; the answers so far stand
// (suggestions are best effort).
func inWaves(staff []persistence.StaffMember, want int, ask func([]persistence.StaffMember) ([]*schedule.SlotsReply, error)) []*schedule.SlotsReply {
	var replies []*schedule.SlotsReply
	for free := 0; free < want && len(staff) > 0; {
		wave := staff[:min(len(staff), want-free)]
		staff = staff[len(wave):]
		rs, err := ask(wave)
		if err != nil {
			break
		}
		for _, r := range rs {
			free += len(r.Slots)
		}
		replies = append(replies, rs...)
	}
	return replies
}

// rotatingPick copies want of the members at indexes idx (all of them when
// there are no more), ranked from a place that moves with the start:
// idx[from], idx[from+1], ... (mod len(idx)).
func rotatingPick(active []persistence.StaffMember, idx []int, want int, start time.Time) []persistence.StaffMember {
	n := len(idx)
	if n == 0 || want <= 0 {
		return nil
	}
	from := 0
	if n > want {
		from = int(uint64(start.Unix()/60) % uint64(n))
	} else {
		want = n
	}
	picked := make([]persistence.StaffMember, 0, want)
	for k := range want {
		picked = append(picked, active[idx[(from+k)%n]])
	}
	return picked
}

// nearby offers the any-staff starts nearest to start within a day.
func (s *Service) nearby(ctx context.Context, sv persistence.Service, staff []persistence.StaffMember, start time.Time) []availability.Slot {
	replies, err := s.fittingSlots(ctx, staff, sv, start.Add(-24*time.Hour), start.Add(24*time.Hour))
	if err != nil {
		return nil
	}
	slots := fairUnion(replies)
	dist := func(t time.Time) time.Duration { return max(t.Sub(start), start.Sub(t)) }
	slices.SortStableFunc(slots, func(a, b availability.Slot) int { return cmp.Compare(dist(a.Start), dist(b.Start)) })
	return slots[:min(len(slots), maxAlternatives)]
}

// fieldErrors collects every problem of one input, so a form can mark all
// bad fields in one round trip.
type fieldErrors []fault.FieldError

func (f *fieldErrors) add(field, msg string) {
	*f = append(*f, fault.FieldError{Field: field, Message: msg})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return fault.Invalid("", f...)
}

// text trims v and checks it is min to max printable characters.
func (f *fieldErrors) text(field, v string, min, max int) string {
	v = strings.TrimSpace(v)
	if n := utf8.RuneCountInString(v); n < min || n > max || strings.ContainsFunc(v, isControl) {
		f.add(field, fmt.Sprintf("must be %d to %d printable characters", min, max))
	}
	return v
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
