package booking

import (
	"context"
	"errors"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/caps"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// HoldInput asks to hold a slot.
type HoldInput struct {
	// ID is the appointment's id: derived from the caller's idempotency
	// key, so a retry that reaches the actor after a crash gets the
	// appointment it created; empty: a fresh one.
	ID        string
	ServiceID string
	StaffID   string // empty: any qualified staff member
	Start     time.Time
	// ClientID is whom staff book for; clients book for themselves (empty,
	// or their own id).
	ClientID string
	// PackageID, when set, spends a session of this package of the
	// client's on the hold.
	PackageID string
	// Key is the client's Idempotency-Key (nil: none). The staff
	// member's actor remembers the hold under it; a hold that also takes
	// a room or a package session is more than one decision, and Hold
	// refuses it with keyed.ErrAtEdge before doing anything.
	Key *keyed.Key
}

// Hold holds a slot for the caller, or for the client staff name, and
// returns the held appointment. A client holding that very slot already
// (same staff member, service and start) gets that hold back: its id is
// then not in.ID, which tells the caller nothing new was held. A slot that is not free is a *Taken with
// alternatives: the same staff member's nearest starts and other qualified
// staff at the same start, or, for any staff, the starts around it.
//
// For a service that needs a shared resource it runs the saga of
// docs/booking.md: claim the resource for the padded interval, hold the
// staff member's slot (the hold carries when the claim lapses), then have
// the resource actor track the appointment instead of the claim, or
// release the claim when the staff member was taken. Neither actor waits
// for the other. A package that refuses the hold (exhausted, expired, not
// covering the service) cancels it again.
func (s *Service) Hold(ctx context.Context, by service.Caller, in HoldInput) (persistence.Appointment, error) {
	if err := signedIn(by); err != nil {
		return persistence.Appointment{}, err
	}
	client := by.Subject
	var f fieldErrors
	switch {
	case in.ClientID == "" || in.ClientID == by.Subject:
	case !IsStaff(by):
		return persistence.Appointment{}, fault.Forbidden("clients book for themselves; leave client_id out")
	case !ValidClientID(in.ClientID):
		f.add("client_id", clientIDMessage)
	default:
		client = in.ClientID
	}
	if in.Start.IsZero() {
		f.add("start", "an RFC 3339 instant is required")
	}
	if !IsSlug(in.ServiceID) {
		f.add("service_id", "is required")
	}
	if in.StaffID != "" && !IsSlug(in.StaffID) {
		f.add("staff_id", "must be a staff id")
	}
	if _, err := ulid.ParseStrict(in.PackageID); in.PackageID != "" && err != nil {
		f.add("package_id", "must be a package id")
	}
	if err := f.err(); err != nil {
		return persistence.Appointment{}, err
	}
	sv, staff, err := s.bookable(ctx, in.ServiceID, in.StaffID, "service_id", "staff_id")
	if err != nil {
		return persistence.Appointment{}, err
	}
	if in.Key != nil && (sv.ResourceID != "" || in.PackageID != "") {
		return persistence.Appointment{}, keyed.ErrAtEdge
	}
	if in.Key != nil && in.StaffID == "" {
		// Any staff: a resend cannot tell which calendar answered the
		// first attempt (that one's slot is now taken, so it would go to
		// another), so the stored answer is looked for first. Otherwise
		// the other calendar's write would meet the key and fail with
		// everything batched beside it.
		ap, err := keyed.Lookup[persistence.Appointment](ctx, s.store, s.keys, in.Key, s.now())
		if !errors.Is(err, keyed.ErrUndecided) {
			if err == nil {
				in.Key.MarkReplayed()
			}
			return ap, scheduleError(err, nil)
		}
	}
	id := in.ID
	if id == "" {
		id = ulid.Make().String()
	}
	asked, err := s.depositAsked(ctx, sv, client)
	if err != nil {
		return persistence.Appointment{}, err
	}
	hold := &schedule.Hold{AppointmentID: id, ClientID: client, Service: asked, Start: in.Start, ActorID: by.Subject, Key: in.Key}
	// The caps (see takeHoldCaps): a keyed hold is refused first when this
	// node knows them full; every hold takes them once it was held, so a
	// refused claim costs them nothing.
	if in.Key != nil {
		if err := s.knownFullHoldCaps(by, client); err != nil {
			return persistence.Appointment{}, err
		}
	}
	ap, err := s.holdWithResource(ctx, hold, in, sv, staff)
	if err != nil {
		return persistence.Appointment{}, err
	}
	if ap.ID != id {
		// The holder wins its own slot: the client held it already and got
		// that hold back, counted against the caps (and paid by its
		// package, if any) when it was made.
		return ap, nil
	}
	undo, err := s.takeHoldCaps(ctx, by, client, id)
	if err != nil {
		s.undoOverCap(ctx, ap, sv)
		return persistence.Appointment{}, err
	}
	if in.PackageID != "" {
		if err := s.redeemPackage(ctx, in.PackageID, ap); err != nil {
			if undo != nil {
				undo() // the package refused: the hold was cancelled again
			}
			return persistence.Appointment{}, err
		}
	}
	return ap, nil
}

// undoOverCap cancels a hold that turned out to be over a cap.
func (s *Service) undoOverCap(ctx context.Context, ap persistence.Appointment, sv persistence.Service) {
	reply, err := calendarReply(s.calendars.Cancel(ctx, ap.StaffID, &schedule.Cancel{AppointmentID: ap.ID, ActorID: "system",
		Reason: "over the hold cap", Override: true}))
	switch {
	case err != nil:
		s.log.Warn("a hold over the cap was not cancelled; it lapses with its TTL", "appointment", ap.ID, "err", err)
	case reply.Err != nil:
		s.log.Warn("a hold over the cap was not cancelled; it lapses with its TTL", "appointment", ap.ID, "err", reply.Err)
	case sv.ResourceID != "":
		s.trackResource(ctx, reply.Appointment)
	}
}

// holdWithResource claims the service's room, if any, then holds the
// staff member's slot (the saga of Hold).
func (s *Service) holdWithResource(ctx context.Context, hold *schedule.Hold, in HoldInput, sv persistence.Service, staff []persistence.StaffMember) (persistence.Appointment, error) {
	id := hold.AppointmentID
	if sv.ResourceID != "" {
		// The room first, for a short while; then the staff member. Neither
		// actor waits for the other.
		until, err := s.claimResource(ctx, sv.ResourceID, id, paddedAt(sv, in.Start), func() []availability.Slot {
			return s.nearby(ctx, sv, staff, in.Start)
		})
		if err != nil {
			return persistence.Appointment{}, err // nothing was held yet
		}
		hold.ClaimUntil = until
	}
	ap, undecided, err := s.holdSlot(ctx, hold, in.StaffID, staff, sv)
	if sv.ResourceID != "" {
		switch {
		case err == nil && ap.ID != id:
			// The client's own hold came back (it has its room): the
			// claim made for a new one is given back.
			s.releaseResource(ctx, sv.ResourceID, id)
		case err == nil:
			if s.trackResource(ctx, ap) {
				return persistence.Appointment{}, s.undoOverbooked(ctx, ap, sv, staff)
			}
		case !undecided:
			s.releaseResource(ctx, sv.ResourceID, id)
		}
		// Undecided (a timeout, a calendar recovering): the claim lapses
		// by itself, and a hold written meanwhile reaches the resource
		// actor through its AppointmentChanged event.
	}
	return ap, err
}

// takeHoldCaps counts the hold id against the caps of the client it is
// for and of the caller's IP; staff booking at the desk are not capped.
// Over a cap: 429 hold_limit_reached with Retry-After (when the oldest
// hold lapses).
//
// Order. Counted after the actor decides, a claim the actor refuses
// (slot_taken, most claims under contention) costs the caps nothing, and
// claims racing from one address are not refused for the places of other
// claims still in flight; a hold over a cap is cancelled again before the
// 429 (it blocked its slot for that long). A keyed hold is first checked
// against what this node knows of its caps (caps.Guard.KnownFull, no
// quota actor asked), because the actor stores a keyed hold as the key's
// answer: a client this node already refused at its cap gets the 429
// before anything is held, and its key stays free for a later retry. A
// client's first keyed hold over its cap on a node meets the cap after the
// grant like any other: its hold is cancelled, and a retry under that key
// replays the cancelled hold (whose confirm answers 409). Asking the quota
// actors before every keyed claim cost the hot path ~70% of its rate in
// make bench (every claim of one address waited for one actor).
func (s *Service) takeHoldCaps(ctx context.Context, by service.Caller, client, id string) (caps.Undo, error) {
	if !s.capped(by) {
		return nil, nil
	}
	return s.caps.Guard.Take(ctx, fault.CodeHoldLimit, id, 1, s.caps.TTL, s.holdChecks(by, client)...)
}

// knownFullHoldCaps is the 429 this node already knows a hold for client
// would get (see takeHoldCaps).
func (s *Service) knownFullHoldCaps(by service.Caller, client string) error {
	if !s.capped(by) {
		return nil
	}
	return s.caps.Guard.KnownFull(fault.CodeHoldLimit, s.holdChecks(by, client)...)
}

func (s *Service) capped(by service.Caller) bool {
	c := s.caps
	return c.Guard != nil && !IsStaff(by) && (c.PerClient > 0 || c.PerIP > 0)
}

func (s *Service) holdChecks(by service.Caller, client string) []caps.Check {
	return []caps.Check{
		{Name: "holds_per_client", Key: holdClientKey(client), Limit: s.caps.PerClient},
		{Name: "holds_per_ip", Key: holdIPKey(by.IP), Limit: s.caps.PerIP}}
}

// releaseHoldCaps gives a hold's place back once it is no longer a live
// hold (confirmed or cancelled): under its client, and under the
// caller's IP (the one that held it, most often; otherwise that lease
// lapses with the hold's TTL).
func (s *Service) releaseHoldCaps(by service.Caller, ap persistence.Appointment) {
	if s.caps.Guard == nil {
		return
	}
	s.caps.Guard.Release(ap.ID, holdClientKey(ap.ClientID), holdIPKey(by.IP))
}

func holdClientKey(client string) string { return "hold/client/" + client }

func holdIPKey(ip string) string {
	if k := caps.IPKey(ip); k != "" {
		return "hold/ip/" + k
	}
	return ""
}

// holdSlot asks the named staff member, or any qualified staff member free
// at the start (least loaded first, until one accepts), to hold the slot.
// undecided reports that no actor refused it for good: the request timed
// out or the calendar is recovering, so a hold may still be written.
func (s *Service) holdSlot(ctx context.Context, hold *schedule.Hold, staffID string, staff []persistence.StaffMember, sv persistence.Service) (ap persistence.Appointment, undecided bool, err error) {
	candidates := []string{staffID}
	if staffID == "" {
		replies, err := s.staffSlots(ctx, staff, sv, hold.Start, hold.Start.Add(time.Minute))
		if err != nil {
			return ap, true, err
		}
		candidates = candidates[:0]
		for _, sl := range fairOrder(replies) {
			candidates = append(candidates, sl.StaffID)
		}
	}
	for _, candidate := range candidates {
		reply, err := calendarReply(s.calendars.Hold(ctx, candidate, hold))
		if err != nil {
			return ap, true, err
		}
		if reply.Err == nil || hold.Key != nil && errors.Is(reply.Err, keyed.ErrElsewhere) {
			ap, err := s.keyedAnswer(ctx, hold.Key, reply.Replayed, reply.Appointment, reply.Err)
			return ap, false, scheduleError(err, nil)
		}
		if !errors.Is(reply.Err, schedule.ErrSlotTaken) {
			return ap, errors.Is(reply.Err, schedule.ErrRetry), scheduleError(reply.Err, nil)
		}
		if staffID != "" {
			own := s.keepFitting(ctx, sv, reply.Alternatives)
			return ap, false, scheduleError(reply.Err, s.alternatives(ctx, sv, staffID, hold.Start, own))
		}
	}
	// Nobody could take it: offer other starts around it.
	return ap, false, scheduleError(schedule.ErrSlotTaken, s.nearby(ctx, sv, staff, hold.Start))
}
