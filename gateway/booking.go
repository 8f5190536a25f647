package gateway

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The booking API: availability reads and the appointment lifecycle. The
// use cases (who may book for whom, cut-offs and the staff override, the
// staff + room saga, alternatives, packages) are actors/service/booking's,
// so the WhatsApp bot books by the same rules; the handlers read the
// request, call the service and write the answer. A refused claim is a 409
// slot_taken with alternatives, never a 429 or a 500.

// clientRE bounds client ids given by staff: token subjects are this shape
// (booking.ValidClientID is the same check without the regexp engine).
var clientRE = regexp.MustCompile(`^[A-Za-z0-9+._:-]{1,64}$`)

// staffRoles may act on any appointment and override client cut-offs.
var staffRoles = booking.StaffRoles

// newBooking builds the booking use cases over the node's actors and the
// catalogue cache.
func (s *server) newBooking() *booking.Service {
	return booking.New(booking.Deps{Store: s.deps.Store, Calendars: s.deps.Calendars, Resources: s.deps.Resources,
		Catalogue: s.catalogue, Keys: answers(s.deps), Logger: s.log, Now: s.deps.Now, Caps: s.deps.HoldCaps})
}

// holdCaller is who holds a slot: with the client address when holds are
// capped per IP (the cap counts it), without otherwise (hotCaller).
func (s *server) holdCaller(c *fiber.Ctx) service.Caller {
	if s.deps.HoldCaps.Guard != nil && s.deps.HoldCaps.PerIP > 0 {
		return s.caller(c)
	}
	return hotCaller(c)
}

// hotCaller is s.caller without the client address, for the two routes
// of the benchmarked hot path (claims and availability): the booking use
// cases read it only for the per-IP hold cap (holdCaller), and working it
// out costs an allocation per request.
func hotCaller(c *fiber.Ctx) service.Caller {
	p, _ := Principal(c)
	return service.Caller{Claims: p, RequestID: RequestID(c)}
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
	b = append(b, `{"alternatives":`...)
	if alts := d.Alternatives; len(alts) > 0 {
		w := &writtenLists[listSlot(alts)]
		if kept := w.kept.Load(); kept != nil && sameList(kept.list, alts) {
			b = append(b, kept.json...)
		} else {
			from := len(b)
			b = alts.appendTo(b)
			w.remember(alts, b[from:])
		}
	} else {
		b = alts.appendTo(b)
	}
	return append(b, '}')
}

// A hot calendar refuses every claim on a taken start with the same list
// of alternatives: the very slice its actor keeps for that calendar
// version and start (shared with every reply, read-only; see the booking
// service's alternatives). Writing it out (ten instants formatted) was a
// few percent of the server's CPU under the hot scenario, so lists are
// kept with their JSON in a small table indexed by the list's address,
// and a refusal carrying a kept slice (same first element, same length: a
// slice kept here cannot be freed and reused, and no one writes into a
// reply's list) reuses the JSON. A list is kept only once its address is
// seen twice in a row in its entry, so refusals that each build their own
// list (alternatives from several calendars) add no allocation.
var writtenLists [256]writtenList

type writtenList struct {
	kept atomic.Pointer[keptList]
	seen atomic.Uintptr // the address last written here, not kept
}

type keptList struct {
	list slotsJSON
	json []byte
}

func listSlot(list slotsJSON) int {
	at := uintptr(unsafe.Pointer(&list[0]))
	return int((at>>4 ^ at>>12) % uintptr(len(writtenLists)))
}

func sameList(a, b slotsJSON) bool { return len(a) == len(b) && &a[0] == &b[0] }

func (w *writtenList) remember(list slotsJSON, json []byte) {
	at := uintptr(unsafe.Pointer(&list[0]))
	if w.seen.Swap(at) == at {
		w.kept.Store(&keptList{list: list, json: bytes.Clone(json)})
	}
}

// bookingError renders a slot_taken refusal's alternatives as the API's
// details (takenDetails); every other error passes through. A refusal
// costs no allocation beyond the details themselves: the refusal is fresh,
// the fault it answers lives inside it, and the usual unwrapped one is
// matched without errors.As (whose target escapes to the heap).
func bookingError(err error) error {
	t, ok := err.(*booking.Taken)
	if !ok {
		var wrapped *booking.Taken
		if !errors.As(err, &wrapped) {
			return err
		}
		t = wrapped
	}
	t.Fault.Details = takenDetails{slotsJSON(t.Alternatives)}
	return &t.Fault
}

// availabilityHandler answers GET /v1/availability?service=&from=&to=[&staff=].
func (s *server) availabilityHandler(c *fiber.Ctx) error {
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	sv, slots, err := s.booking.Availability(c.UserContext(), hotCaller(c),
		booking.AvailabilityInput{ServiceID: c.Query("service"), StaffID: c.Query("staff"), From: from, To: to})
	if err != nil {
		return err
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

// createAppointment holds a slot: 201 with the held appointment, 200 with
// the client's own hold of that slot, or 409 slot_taken with alternatives.
func (s *server) createAppointment(c *fiber.Ctx) error {
	in, err := decodeHold(c)
	if err != nil {
		return err
	}
	id := idempotency.DerivedID(c, "apt_")
	if id == "" {
		id = ulid.Make().String()
	}
	ap, err := s.booking.Hold(c.UserContext(), s.holdCaller(c), booking.HoldInput{
		ID:        id,
		ServiceID: in.ServiceID, StaffID: in.StaffID, Start: in.Start, ClientID: in.ClientID, PackageID: in.PackageID,
		Key: idempotency.KeyOf(c)})
	if err != nil {
		return bookingError(err)
	}
	if ap.ID != id {
		// The client held this slot already (a second device, a retry
		// under a new key): 200 with that hold; the holder wins its own
		// slot, anyone else gets 409 slot_taken.
		return c.JSON(appointmentView(ap))
	}
	return c.Status(fiber.StatusCreated).JSON(appointmentView(ap))
}

func (s *server) getAppointment(c *fiber.Ctx) error {
	ap, err := s.booking.Get(c.UserContext(), s.caller(c), c.Params("id"))
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
func readReason(c *fiber.Ctx, withStart bool) (booking.ChangeInput, error) {
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
			return booking.ChangeInput{}, err
		}
	}
	return booking.ChangeInput{Reason: in.Reason, Start: in.Start, Key: idempotency.KeyOf(c)}, nil
}

// lifecycle builds the handler of one appointment transition: the
// appointment is read first (someone else's is a 404 whatever the body
// says), then the body, then the service decides.
func (s *server) lifecycle(withStart bool, change func(*booking.Service, context.Context, service.Caller, booking.Appointment, booking.ChangeInput) (persistence.Appointment, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, by := c.UserContext(), s.caller(c)
		a, err := s.booking.Load(ctx, by, c.Params("id"))
		if err != nil {
			return err
		}
		in, err := readReason(c, withStart)
		if err != nil {
			return err
		}
		ap, err := change(s.booking, ctx, by, a, in)
		if err != nil {
			return bookingError(err)
		}
		return c.JSON(appointmentView(ap))
	}
}

// myAppointments lists the caller's appointments starting in [from, to).
func (s *server) myAppointments(c *fiber.Ctx) error {
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	list, err := s.booking.Mine(c.UserContext(), s.caller(c), from, to)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"appointments": appointmentsView(list)})
}

// agenda lists one staff member's appointments on a local date.
func (s *server) agenda(c *fiber.Ctx) error {
	in := booking.AgendaInput{StaffID: c.Query("staff"), Date: c.Query("date")}
	list, err := s.booking.Agenda(c.UserContext(), s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"staff_id": in.StaffID, "date": in.Date, "appointments": appointmentsView(list)})
}
