package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The booking API: availability reads and the appointment lifecycle. Every
// decision about a calendar is taken by that staff member's schedule actor;
// the handlers only read the catalogue, check who may do what, and translate
// replies. A refused claim is a 409 slot_taken with alternatives, never a
// 429 or a 500.

// clientRE bounds client ids given by staff: token subjects are this shape.
var clientRE = regexp.MustCompile(`^[A-Za-z0-9+._:-]{1,64}$`)

const (
	maxAvailabilitySpan = 31 * 24 * time.Hour
	maxAlternatives     = 5
	sameStaffFirst      = 3 // alternatives: this many of the same staff member before others
)

// staffRoles may act on any appointment and override client cut-offs.
var staffRoles = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}

func isStaff(c *fiber.Ctx) bool {
	p, _ := Principal(c)
	return slices.Contains(staffRoles, p.Role)
}

// slotJSON is one slot as the API shows it (slotsJSON writes it).
type slotJSON struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	StaffID string    `json:"staff_id"`
}

// slotsJSON is a list of slots as the API shows them:
// [{"start","end","staff_id"}], instants in UTC. It encodes itself without
// reflection: availability answers and refusals' alternatives are the
// bulk of what the booking path writes.
type slotsJSON []availability.Slot

// MarshalJSON writes what encoding/json writes for the same []slotJSON.
func (in slotsJSON) MarshalJSON() ([]byte, error) {
	return in.appendTo(make([]byte, 0, 2+len(in)*96)), nil
}

// appendTo appends the list's JSON to b.
func (in slotsJSON) appendTo(b []byte) []byte {
	b = append(b, '[')
	for i, s := range in {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"start":"`...)
		b = s.Start.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","end":"`...)
		b = s.End.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","staff_id":`...)
		b = apierr.AppendJSONString(b, s.StaffID)
		b = append(b, '}')
	}
	return append(b, ']')
}

type appointmentJSON struct {
	ID            string     `json:"id"`
	StaffID       string     `json:"staff_id"`
	ServiceID     string     `json:"service_id"`
	ClientID      string     `json:"client_id"`
	Start         time.Time  `json:"start"`
	End           time.Time  `json:"end"`
	Status        string     `json:"status"`
	HoldExpiresAt *time.Time `json:"hold_expires_at,omitempty"`
	CheckedInAt   *time.Time `json:"checked_in_at,omitempty"`
	PriceMinor    int64      `json:"price_minor"`
	DepositMinor  int64      `json:"deposit_minor"`
	Version       int64      `json:"version"`
}

func appointmentView(a persistence.Appointment) appointmentJSON {
	v := appointmentJSON{ID: a.ID, StaffID: a.StaffID, ServiceID: a.ServiceID, ClientID: a.ClientID,
		Start: a.Start.UTC(), End: a.End.UTC(), Status: string(a.Status),
		PriceMinor: a.PriceMinor, DepositMinor: a.DepositMinor, Version: a.Version}
	if a.Status == persistence.StatusHeld {
		t := a.HoldExpiresAt.UTC()
		v.HoldExpiresAt = &t
	}
	if !a.CheckedInAt.IsZero() {
		t := a.CheckedInAt.UTC()
		v.CheckedInAt = &t
	}
	return v
}

func appointmentsView(list []persistence.Appointment) []appointmentJSON {
	out := make([]appointmentJSON, len(list))
	for i, a := range list {
		out[i] = appointmentView(a)
	}
	return out
}

// takenDetails are a slot_taken answer's details. It writes itself
// (apierr.JSONAppender): it is in the hottest answer there is.
type takenDetails struct {
	Alternatives slotsJSON `json:"alternatives"`
}

// AppendJSON appends what encoding/json writes for d.
func (d takenDetails) AppendJSON(b []byte) []byte {
	return append(d.Alternatives.appendTo(append(b, `{"alternatives":`...)), '}')
}

// scheduleError maps a schedule actor's refusal to the API's errors.
func scheduleError(err error, alternatives []availability.Slot) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, schedule.ErrSlotTaken):
		e := fault.New(fault.CodeSlotTaken, "") // a fresh Error: no copy needed
		e.Details = takenDetails{slotsJSON(alternatives)}
		return e
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
	case errors.Is(err, schedule.ErrRetry):
		return fault.Unavailable("the calendar is busy recovering; retry")
	}
	return err
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
// catalogue cache.
// serviceField and staffField name the inputs in errors (query parameters
// or body fields).
func (s *server) bookable(c *fiber.Ctx, serviceID, staffID, serviceField, staffField string) (persistence.Service, []persistence.StaffMember, error) {
	services, active, err := s.catalogue.Snapshot(c.UserContext())
	if err != nil {
		return persistence.Service{}, nil, err
	}
	sv, ok := services[serviceID]
	if !ok || !sv.Active {
		return sv, nil, fault.Invalid("", fault.FieldError{Field: serviceField, Message: "no such active service"})
	}
	staff := qualifiedStaff(active, sv, staffID)
	if sv.ResourceID != "" && s.deps.Resources == nil {
		// No resource actors (the lock baseline): refuse rather than risk
		// overbooking the room.
		return sv, nil, fault.Invalid("", fault.FieldError{Field: serviceField, Message: "services that need a shared resource cannot be booked on this node"})
	}
	if staffID != "" && len(staff) == 0 {
		return sv, nil, fault.Invalid("", fault.FieldError{Field: staffField, Message: "no active staff member with that id can perform this service"})
	}
	return sv, staff, nil
}

// staffSlots asks every given staff member's actor for slots in [from, to)
// concurrently.
func (s *server) staffSlots(ctx context.Context, staff []persistence.StaffMember, sv persistence.Service, from, to time.Time) ([]*schedule.SlotsReply, error) {
	replies := make([]*schedule.SlotsReply, len(staff))
	errs := make([]error, len(staff))
	var wg sync.WaitGroup
	for i, m := range staff {
		wg.Go(func() {
			r, err := calendarReply(s.deps.Calendars.Slots(ctx, m.ID, &schedule.SlotsQuery{Service: sv, From: from, To: to}))
			if err != nil {
				errs[i] = err
				return
			}
			replies[i] = r
			errs[i] = scheduleError(replies[i].Err, nil)
		})
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

// availabilityHandler answers GET /v1/availability?service=&from=&to=[&staff=].
func (s *server) availabilityHandler(c *fiber.Ctx) error {
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	if to.Sub(from) > maxAvailabilitySpan {
		return fault.Invalid("", fault.FieldError{Field: "to", Message: "at most 31 days per request"})
	}
	staffID := c.Query("staff")
	sv, staff, err := s.bookable(c, c.Query("service"), staffID, "service", "staff")
	if err != nil {
		return err
	}
	replies, err := s.fittingSlots(c.UserContext(), staff, sv, from, to)
	if err != nil {
		return err
	}
	var slots []availability.Slot
	if staffID != "" {
		for _, r := range replies {
			slots = append(slots, r.Slots...)
		}
	} else {
		slots = fairUnion(replies)
	}
	c.Response().SetBodyRaw(availabilityBody(sv.ID, slots))
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

// availabilityBody is the availability answer, written directly: the same
// bytes c.JSON writes for fiber.Map{"service_id", "slots"}, without its
// reflection and second pass over the output.
func availabilityBody(serviceID string, slots []availability.Slot) []byte {
	body := apierr.AppendJSONString(append(make([]byte, 0, 32+len(slots)*96), `{"service_id":`...), serviceID)
	body = slotsJSON(slots).appendTo(append(body, `,"slots":`...))
	return append(body, '}')
}

// holdInput is the body of POST /v1/appointments.
type holdInput struct {
	ServiceID string    `json:"service_id"`
	StaffID   string    `json:"staff_id"`   // empty: any qualified staff member
	Start     time.Time `json:"start"`      // RFC 3339
	ClientID  string    `json:"client_id"`  // staff booking for a client; clients book for themselves
	PackageID string    `json:"package_id"` // spend a session of this package
}

// decodeHold decodes the body of POST /v1/appointments, the body of every
// claim on the hot path. The usual one (application/json, an object of
// plain ASCII strings under the exact field names, each once) is read
// without encoding/json's reflection; anything else goes to decodeJSON,
// which decides it and words any error as it always has.
func decodeHold(c *fiber.Ctx) (holdInput, error) {
	var in holdInput
	h := &c.Request().Header
	// The raw body (c.Body copies it), unless it is encoded: then only
	// c.Body knows what it says.
	if string(h.ContentType()) == fiber.MIMEApplicationJSON && len(h.Peek(fiber.HeaderContentEncoding)) == 0 &&
		in.parse(c.Request().Body()) {
		return in, nil
	}
	var slow holdInput // its own variable: decodeJSON makes it escape
	err := decodeJSON(c, &slow)
	return slow, err
}

// parse fills in from body when body is in the usual form (see decodeHold),
// with the result decodeJSON would give; false leaves in partly filled and
// the body to decodeJSON.
func (in *holdInput) parse(body []byte) bool {
	i := skipJSONSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipJSONSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return skipJSONSpace(body, i+1) == len(body)
	}
	var seen uint8
	for {
		key, next, ok := plainJSONString(body, i)
		if !ok {
			return false
		}
		i = skipJSONSpace(body, next)
		if i >= len(body) || body[i] != ':' {
			return false
		}
		i = skipJSONSpace(body, i+1)
		val, next, ok := plainJSONString(body, i)
		if !ok {
			return false
		}
		var field uint8
		switch string(key) {
		case "service_id":
			field, in.ServiceID = 1, string(val)
		case "staff_id":
			field, in.StaffID = 2, string(val)
		case "client_id":
			field, in.ClientID = 4, string(val)
		case "package_id":
			field, in.PackageID = 8, string(val)
		case "start":
			// The quoted value, as encoding/json hands it to time.Time.
			if in.Start.UnmarshalJSON(body[i:next]) != nil {
				return false
			}
			field = 16
		default:
			return false
		}
		if seen&field != 0 {
			return false
		}
		seen |= field
		i = skipJSONSpace(body, next)
		if i >= len(body) {
			return false
		}
		switch body[i] {
		case ',':
			i = skipJSONSpace(body, i+1)
		case '}':
			return skipJSONSpace(body, i+1) == len(body)
		default:
			return false
		}
	}
}

// skipJSONSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainJSONString reads the string starting at b[i] when it is printable
// ASCII without escapes: its contents and the index after its closing
// quote. Anything else is false.
func plainJSONString(b []byte, i int) (val []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// isSlug is slugRE without the regexp engine: ^[a-z0-9][a-z0-9_-]{0,63}$.
func isSlug(s string) bool {
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

// createAppointment holds a slot: 201 with the held appointment, or 409
// slot_taken with alternatives.
func (s *server) createAppointment(c *fiber.Ctx) error {
	in, err := decodeHold(c)
	if err != nil {
		return err
	}
	p, _ := Principal(c)
	client := p.Subject
	var f fieldErrors
	switch {
	case in.ClientID == "" || in.ClientID == p.Subject:
	case !isStaff(c):
		return fault.Forbidden("clients book for themselves; leave client_id out")
	case !clientRE.MatchString(in.ClientID):
		f.add("client_id", "must be 1 to 64 of A-Z, a-z, 0-9, +, ., _, : and -")
	default:
		client = in.ClientID
	}
	if in.Start.IsZero() {
		f.add("start", "an RFC 3339 instant is required")
	}
	if !isSlug(in.ServiceID) {
		f.add("service_id", "is required")
	}
	if in.StaffID != "" && !isSlug(in.StaffID) {
		f.add("staff_id", "must be a staff id")
	}
	if _, err := ulid.ParseStrict(in.PackageID); in.PackageID != "" && err != nil {
		f.add("package_id", "must be a package id")
	}
	if err := f.err(); err != nil {
		return err
	}
	sv, staff, err := s.bookable(c, in.ServiceID, in.StaffID, "service_id", "staff_id")
	if err != nil {
		return err
	}
	id := idempotency.DerivedID(c, "apt_")
	if id == "" {
		id = ulid.Make().String()
	}
	ctx := c.UserContext()
	hold := &schedule.Hold{AppointmentID: id, ClientID: client, Service: sv, Start: in.Start, ActorID: p.Subject}
	if sv.ResourceID != "" {
		// The room first, for a short while; then the staff member. Neither
		// actor waits for the other.
		until, err := s.claimResource(ctx, sv.ResourceID, id, paddedAt(sv, in.Start), func() []availability.Slot {
			return s.nearby(ctx, sv, staff, in.Start)
		})
		if err != nil {
			return err
		}
		hold.ClaimUntil = until
	}
	ap, undecided, err := s.holdSlot(ctx, hold, in.StaffID, staff, sv)
	if sv.ResourceID != "" {
		switch {
		case err == nil:
			if s.trackResource(ctx, ap) {
				return s.undoOverbooked(ctx, ap, sv, staff)
			}
		case !undecided:
			s.releaseResource(ctx, sv.ResourceID, id)
		}
		// Undecided (a timeout, a calendar recovering): the claim lapses
		// by itself, and a hold written meanwhile reaches the resource
		// actor through its AppointmentChanged event.
	}
	if err != nil {
		return err
	}
	if in.PackageID != "" {
		if err := s.redeemPackage(ctx, in.PackageID, ap); err != nil {
			return err
		}
	}
	return c.Status(fiber.StatusCreated).JSON(appointmentView(ap))
}

// holdSlot asks the named staff member, or any qualified staff member free
// at the start (least loaded first, until one accepts), to hold the slot.
// undecided reports that no actor refused it for good: the request timed
// out or the calendar is recovering, so a hold may still be written.
func (s *server) holdSlot(ctx context.Context, hold *schedule.Hold, staffID string, staff []persistence.StaffMember, sv persistence.Service) (ap persistence.Appointment, undecided bool, err error) {
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
		reply, err := calendarReply(s.deps.Calendars.Hold(ctx, candidate, hold))
		if err != nil {
			return ap, true, err
		}
		if reply.Err == nil {
			return reply.Appointment, false, nil
		}
		if !errors.Is(reply.Err, schedule.ErrSlotTaken) {
			return ap, errors.Is(reply.Err, schedule.ErrRetry), scheduleError(reply.Err, nil)
		}
		if staffID != "" {
			own := s.keepFitting(ctx, sv, reply.Alternatives)
			return ap, false, scheduleError(reply.Err, s.alternatives(ctx, sv, staff, staffID, hold.Start, own))
		}
	}
	// Nobody could take it: offer other starts around it.
	return ap, false, scheduleError(schedule.ErrSlotTaken, s.nearby(ctx, sv, staff, hold.Start))
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
// asked (see askedOthers).
func (s *server) alternatives(ctx context.Context, sv persistence.Service, staff []persistence.StaffMember, staffID string, start time.Time, own []availability.Slot) []availability.Slot {
	out := append(make([]availability.Slot, 0, maxAlternatives), own[:min(len(own), sameStaffFirst)]...)
	if all, err := s.everyQualified(ctx, sv); err == nil {
		others := askedOthers(all, staffID, start)
		if len(others) > 0 {
			if replies, err := s.fittingSlots(ctx, others, sv, start, start.Add(time.Minute)); err == nil {
				out = append(out, fairOrder(replies)...)
			}
		}
	}
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
// team instead of always naming the same people.
func askedOthers(all []persistence.StaffMember, staffID string, start time.Time) []persistence.StaffMember {
	if len(all) == 0 || len(all) == 1 && all[0].ID == staffID {
		return nil // nobody else to ask
	}
	others := make([]persistence.StaffMember, 0, len(all))
	for _, m := range all {
		if m.ID != staffID {
			others = append(others, m)
		}
	}
	if len(others) <= othersAsked {
		return others
	}
	from := int(uint64(start.Unix()/60) % uint64(len(others)))
	picked := make([]persistence.StaffMember, othersAsked)
	for i := range picked {
		picked[i] = others[(from+i)%len(others)]
	}
	return picked
}

// everyQualified is every active staff member able to perform sv.
func (s *server) everyQualified(ctx context.Context, sv persistence.Service) ([]persistence.StaffMember, error) {
	_, active, err := s.catalogue.Snapshot(ctx)
	return qualifiedStaff(active, sv, ""), err
}

// nearby offers the any-staff starts nearest to start within a day.
func (s *server) nearby(ctx context.Context, sv persistence.Service, staff []persistence.StaffMember, start time.Time) []availability.Slot {
	replies, err := s.fittingSlots(ctx, staff, sv, start.Add(-24*time.Hour), start.Add(24*time.Hour))
	if err != nil {
		return nil
	}
	slots := fairUnion(replies)
	dist := func(t time.Time) time.Duration { return max(t.Sub(start), start.Sub(t)) }
	slices.SortStableFunc(slots, func(a, b availability.Slot) int { return cmp.Compare(dist(a.Start), dist(b.Start)) })
	return slots[:min(len(slots), maxAlternatives)]
}

// loadAppointment reads an appointment the caller may act on: their own,
// or any for staff. Someone else's is a 404, so ids cannot be probed.
func (s *server) loadAppointment(c *fiber.Ctx) (ap persistence.Appointment, sv persistence.Service, err error) {
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		ap, sv, err = s.appointmentIn(c, tx)
		return err
	})
	return ap, sv, err
}

// appointmentIn is loadAppointment inside the caller's transaction.
func (s *server) appointmentIn(c *fiber.Ctx, tx persistence.Tx) (persistence.Appointment, persistence.Service, error) {
	var ap persistence.Appointment
	var sv persistence.Service
	id := c.Params("id")
	if id == "" || len(id) > 64 {
		return ap, sv, fault.NotFound("appointment not found")
	}
	ctx := c.UserContext()
	ap, err := tx.AppointmentGet(ctx, id)
	if err == nil {
		sv, err = tx.ServiceGet(ctx, ap.ServiceID)
	}
	if err != nil {
		return ap, sv, notFound(err, "appointment")
	}
	if p, _ := Principal(c); !isStaff(c) && ap.ClientID != p.Subject {
		return ap, sv, fault.NotFound("appointment not found")
	}
	return ap, sv, nil
}

func (s *server) getAppointment(c *fiber.Ctx) error {
	ap, _, err := s.loadAppointment(c)
	if err != nil {
		return err
	}
	return c.JSON(appointmentView(ap))
}

// reasonInput is the optional body of lifecycle calls; a reschedule also
// carries the new start.
type reasonInput struct {
	Reason string    `json:"reason"`
	Start  time.Time `json:"start"`
}

// readReason decodes the body: {reason} for most transitions, {start,
// reason} when withStart (unknown fields are refused either way).
func readReason(c *fiber.Ctx, withStart bool) (reasonInput, error) {
	var in reasonInput
	if len(c.Body()) > 0 {
		var err error
		if withStart {
			err = decodeJSON(c, &in)
		} else {
			var only struct {
				Reason string `json:"reason"`
			}
			err = decodeJSON(c, &only)
			in.Reason = only.Reason
		}
		if err != nil {
			return in, err
		}
	}
	var f fieldErrors
	in.Reason = f.text("reason", in.Reason, 0, 200)
	return in, f.err()
}

// lifecycle builds the handler of one appointment transition.
func (s *server) lifecycle(withStart bool, build func(c *fiber.Ctx, ap persistence.Appointment, sv persistence.Service, in reasonInput, actorID string) (schedule.Change, error), after ...func(ctx context.Context, ap persistence.Appointment, sv persistence.Service)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ap, sv, err := s.loadAppointment(c)
		if err != nil {
			return err
		}
		in, err := readReason(c, withStart)
		if err != nil {
			return err
		}
		p, _ := Principal(c)
		msg, err := build(c, ap, sv, in, p.Subject)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		move, moving := msg.(*schedule.Reschedule)
		if moving && ap.ResourceID != "" {
			if move.ClaimUntil, err = s.claimMove(ctx, ap, sv, move.Start); err != nil {
				return err
			}
		}
		reply, err := calendarReply(s.deps.Calendars.Change(ctx, ap.StaffID, msg))
		if err != nil {
			return err // undecided: a move's claim lapses by itself
		}
		if reply.Err != nil {
			if moving && ap.ResourceID != "" && !errors.Is(reply.Err, schedule.ErrRetry) {
				s.releaseResource(ctx, ap.ResourceID, ap.ID)
			}
			return scheduleError(reply.Err, s.keepFitting(ctx, sv, reply.Alternatives))
		}
		if ap.ResourceID != "" {
			// The room follows at once: a cancellation frees it now, not
			// when the event arrives.
			s.trackResource(ctx, reply.Appointment)
		}
		for _, fn := range after {
			fn(c.UserContext(), reply.Appointment, sv)
		}
		return c.JSON(appointmentView(reply.Appointment))
	}
}

func (s *server) confirmAppointment(c *fiber.Ctx, ap persistence.Appointment, _ persistence.Service, in reasonInput, actor string) (schedule.Change, error) {
	// A deposit is taken by staff at the desk (online payment comes with
	// the payments capability); without one the client confirms directly.
	if ap.DepositMinor > 0 && !isStaff(c) {
		return nil, fault.Forbidden(fmt.Sprintf("a deposit of %d (minor units) is due before confirmation", ap.DepositMinor))
	}
	return &schedule.Confirm{AppointmentID: ap.ID, ActorID: actor, Reason: in.Reason}, nil
}

func (s *server) cancelAppointment(c *fiber.Ctx, ap persistence.Appointment, sv persistence.Service, in reasonInput, actor string) (schedule.Change, error) {
	return &schedule.Cancel{AppointmentID: ap.ID, ActorID: actor, Reason: in.Reason, Cutoff: sv.CancelCutoff, Override: isStaff(c)}, nil
}

func (s *server) rescheduleAppointment(c *fiber.Ctx, ap persistence.Appointment, sv persistence.Service, in reasonInput, actor string) (schedule.Change, error) {
	if in.Start.IsZero() {
		return nil, fault.Invalid("", fault.FieldError{Field: "start", Message: "the new start is required"})
	}
	return &schedule.Reschedule{AppointmentID: ap.ID, Start: in.Start, Service: sv, ActorID: actor, Override: isStaff(c)}, nil
}

func (s *server) checkInAppointment(c *fiber.Ctx, ap persistence.Appointment, _ persistence.Service, in reasonInput, actor string) (schedule.Change, error) {
	return &schedule.CheckIn{AppointmentID: ap.ID, ActorID: actor}, nil
}

func (s *server) completeAppointment(c *fiber.Ctx, ap persistence.Appointment, _ persistence.Service, in reasonInput, actor string) (schedule.Change, error) {
	return &schedule.Complete{AppointmentID: ap.ID, ActorID: actor, Reason: in.Reason}, nil
}

func (s *server) noShowAppointment(c *fiber.Ctx, ap persistence.Appointment, _ persistence.Service, in reasonInput, actor string) (schedule.Change, error) {
	return &schedule.NoShow{AppointmentID: ap.ID, ActorID: actor, Reason: in.Reason}, nil
}

// myAppointments lists the caller's appointments starting in [from, to).
func (s *server) myAppointments(c *fiber.Ctx) error {
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	p, _ := Principal(c)
	var list []persistence.Appointment
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.AppointmentListByClient(ctx, p.Subject, from, to, 500)
		return err
	}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"appointments": appointmentsView(list)})
}

// agenda lists one staff member's appointments on a local date.
func (s *server) agenda(c *fiber.Ctx) error {
	staffID := c.Query("staff")
	if !slugRE.MatchString(staffID) {
		return fault.Invalid("", fault.FieldError{Field: "staff", Message: "a staff id is required"})
	}
	date, err := dateParam(c, "date")
	if err != nil {
		return err
	}
	var list []persistence.Appointment
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		m, err := tx.StaffGet(ctx, staffID)
		if err != nil {
			return notFound(err, "staff member")
		}
		loc, err := time.LoadLocation(m.TimeZone)
		if err != nil {
			return err
		}
		day, _ := time.ParseInLocation(time.DateOnly, date, loc)
		list, err = tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: staffID, From: day, To: day.AddDate(0, 0, 1)})
		return err
	}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"staff_id": staffID, "date": date, "appointments": appointmentsView(list)})
}
