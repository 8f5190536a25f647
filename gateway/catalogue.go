package gateway

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// The catalogue API: services, staff with their hours, date overrides and
// time off, and shared resources. Reads of active entries are public (a
// booking page needs them); every change is admin-only, idempotent,
// audited, and announced by a CatalogueChanged event so the actors holding
// a calendar reload it.

var (
	slugRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	skillRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`)
)

const (
	maxSkills    = 20
	maxDayRanges = 6
	dateLayout   = time.DateOnly
)

// weekdays names the keys of weekly_hours, indexed by time.Weekday.
var weekdays = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// slugParam reads an id from the path: lower-case letters, digits, - and _.
func slugParam(c *fiber.Ctx, name string) (string, error) {
	v := c.Params(name)
	if !slugRE.MatchString(v) {
		return "", fault.Invalid("", fault.FieldError{Field: name, Message: "must be 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit"})
	}
	return v, nil
}

// fieldErrors collects every problem of one body, so a form can mark all
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

func (f *fieldErrors) text(field, v string, min, max int) string {
	v = strings.TrimSpace(v)
	if n := utf8.RuneCountInString(v); n < min || n > max || strings.ContainsFunc(v, isControl) {
		f.add(field, fmt.Sprintf("must be %d to %d printable characters", min, max))
	}
	return v
}

func (f *fieldErrors) minutes(field string, v, min, max int) time.Duration {
	if v < min || v > max {
		f.add(field, fmt.Sprintf("must be %d to %d minutes", min, max))
	}
	return time.Duration(v) * time.Minute
}

// skills validates, sorts and de-duplicates a skill list.
func (f *fieldErrors) skills(field string, in []string) []string {
	if len(in) > maxSkills {
		f.add(field, fmt.Sprintf("at most %d skills", maxSkills))
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !skillRE.MatchString(s) {
			f.add(field, fmt.Sprintf("skill %q must be 1 to 40 of a-z, 0-9, - and _", bounded(s)))
			continue
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// clockRangeJSON is a span of local clock time, "09:00" to "13:00".
type clockRangeJSON struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

func clockMinutes(s string) int {
	var h, m int
	fmt.Sscanf(s, "%d:%d", &h, &m)
	return h*60 + m
}

func clockText(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// ranges validates one day's ranges: well-formed, start before end, sorted
// and not overlapping.
func (f *fieldErrors) ranges(field string, in []clockRangeJSON) []persistence.ClockRange {
	if len(in) > maxDayRanges {
		f.add(field, fmt.Sprintf("at most %d ranges a day", maxDayRanges))
		return nil
	}
	out := make([]persistence.ClockRange, 0, len(in))
	for i, r := range in {
		if !clockRE.MatchString(r.Start) || !clockRE.MatchString(r.End) {
			f.add(fmt.Sprintf("%s[%d]", field, i), `times must be "HH:MM" between 00:00 and 24:00`)
			return nil
		}
		cr := persistence.ClockRange{StartMinute: clockMinutes(r.Start), EndMinute: clockMinutes(r.End)}
		if cr.StartMinute >= cr.EndMinute {
			f.add(fmt.Sprintf("%s[%d]", field, i), "start must be before end")
			return nil
		}
		out = append(out, cr)
	}
	slices.SortFunc(out, func(a, b persistence.ClockRange) int { return a.StartMinute - b.StartMinute })
	for i := 1; i < len(out); i++ {
		if out[i].StartMinute < out[i-1].EndMinute {
			f.add(field, "ranges must not overlap")
			return nil
		}
	}
	return out
}

func rangesJSON(in []persistence.ClockRange) []clockRangeJSON {
	out := make([]clockRangeJSON, len(in))
	for i, r := range in {
		out[i] = clockRangeJSON{clockText(r.StartMinute), clockText(r.EndMinute)}
	}
	return out
}

// recordChange appends the audit entry and the CatalogueChanged event of a
// catalogue change, in the change's transaction.
func (s *server) recordChange(c *fiber.Ctx, tx persistence.Tx, action, kind, id string, version int64, detail any) error {
	s.catalogue.invalidate()
	if err := s.audit(c, tx, action, kind+"/"+id, detail); err != nil {
		return err
	}
	p, _ := Principal(c)
	ev, err := persistence.NewOutboxEvent(kind+"/"+id, RequestID(c), p.Subject,
		&messages.CatalogueChanged{Kind: kind, Id: id, Version: version}, s.deps.Now().UTC())
	if err != nil {
		return err
	}
	return tx.OutboxAppend(c.UserContext(), ev)
}

// audit appends an audit entry for the request's principal; detail must
// already have PII masked.
func (s *server) audit(c *fiber.Ctx, tx persistence.Tx, action, subject string, detail any) error {
	return service.Audit(c.UserContext(), tx, s.deps.Now(), s.caller(c), action, subject, "", detail)
}

// read runs fn in a transaction of its own, for the GET handlers.
func (s *server) read(c *fiber.Ctx, fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := c.UserContext()
	return s.deps.Store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

// notFound turns ErrNotFound into a 404 naming what was missing.
func notFound(err error, what string) error {
	if errors.Is(err, persistence.ErrNotFound) {
		return fault.NotFound(what + " not found")
	}
	return err
}

// versionConflict turns ErrConflict from a Put into a 409 version_conflict.
func versionConflict(err error, version int64) error {
	if errors.Is(err, persistence.ErrConflict) {
		return fault.VersionConflict("").WithDetails(map[string]any{"version": version})
	}
	return err
}

// ---- Services --------------------------------------------------------------

type serviceJSON struct {
	ID                      string    `json:"id"`
	Name                    string    `json:"name"`
	Category                string    `json:"category"`
	DurationMinutes         int       `json:"duration_minutes"`
	PriceMinor              int64     `json:"price_minor"`
	BufferBeforeMinutes     int       `json:"buffer_before_minutes"`
	BufferAfterMinutes      int       `json:"buffer_after_minutes"`
	RequiredSkills          []string  `json:"required_skills"`
	ResourceID              string    `json:"resource_id"`
	DepositPolicy           string    `json:"deposit_policy"`
	DepositValue            int64     `json:"deposit_value"`
	CancelCutoffMinutes     int       `json:"cancel_cutoff_minutes"`
	RescheduleCutoffMinutes int       `json:"reschedule_cutoff_minutes"`
	Active                  bool      `json:"active"`
	Version                 int64     `json:"version"`
	UpdatedAt               time.Time `json:"updated_at"`
}

func serviceView(s persistence.Service) serviceJSON {
	return serviceJSON{
		ID: s.ID, Name: s.Name, Category: s.Category,
		DurationMinutes: int(s.Duration / time.Minute), PriceMinor: s.PriceMinor,
		BufferBeforeMinutes: int(s.BufferBefore / time.Minute), BufferAfterMinutes: int(s.BufferAfter / time.Minute),
		RequiredSkills: append([]string{}, s.RequiredSkills...), ResourceID: s.ResourceID,
		DepositPolicy: string(s.DepositPolicy), DepositValue: s.DepositValue,
		CancelCutoffMinutes:     int(s.CancelCutoff / time.Minute),
		RescheduleCutoffMinutes: int(s.RescheduleCutoff / time.Minute),
		Active:                  s.Active, Version: s.Version, UpdatedAt: s.UpdatedAt.UTC(),
	}
}

// serviceInput is the body of PUT /v1/admin/services/:id.
type serviceInput struct {
	Name                    string   `json:"name"`
	Category                string   `json:"category"`
	DurationMinutes         int      `json:"duration_minutes"`
	PriceMinor              int64    `json:"price_minor"`
	BufferBeforeMinutes     int      `json:"buffer_before_minutes"`
	BufferAfterMinutes      int      `json:"buffer_after_minutes"`
	RequiredSkills          []string `json:"required_skills"`
	ResourceID              string   `json:"resource_id"`
	DepositPolicy           string   `json:"deposit_policy"`
	DepositValue            int64    `json:"deposit_value"`
	CancelCutoffMinutes     int      `json:"cancel_cutoff_minutes"`
	RescheduleCutoffMinutes int      `json:"reschedule_cutoff_minutes"`
	Active                  bool     `json:"active"`
	Version                 int64    `json:"version"`
}

func (in serviceInput) service(id string, now time.Time) (persistence.Service, error) {
	var f fieldErrors
	s := persistence.Service{
		ID:               id,
		Name:             f.text("name", in.Name, 1, 120),
		Category:         f.text("category", in.Category, 1, 60),
		Duration:         f.minutes("duration_minutes", in.DurationMinutes, 5, 12*60),
		PriceMinor:       in.PriceMinor,
		BufferBefore:     f.minutes("buffer_before_minutes", in.BufferBeforeMinutes, 0, 240),
		BufferAfter:      f.minutes("buffer_after_minutes", in.BufferAfterMinutes, 0, 240),
		RequiredSkills:   f.skills("required_skills", in.RequiredSkills),
		ResourceID:       in.ResourceID,
		DepositPolicy:    persistence.DepositPolicy(in.DepositPolicy),
		DepositValue:     in.DepositValue,
		CancelCutoff:     f.minutes("cancel_cutoff_minutes", in.CancelCutoffMinutes, 0, 30*24*60),
		RescheduleCutoff: f.minutes("reschedule_cutoff_minutes", in.RescheduleCutoffMinutes, 0, 30*24*60),
		Active:           in.Active,
		Version:          in.Version,
		UpdatedAt:        now,
	}
	if in.PriceMinor < 0 {
		f.add("price_minor", "must be 0 or more (COP minor units)")
	}
	if s.ResourceID != "" && !slugRE.MatchString(s.ResourceID) {
		f.add("resource_id", "must be a resource id")
	}
	switch s.DepositPolicy {
	case "":
		s.DepositPolicy = persistence.DepositNone
		fallthrough
	case persistence.DepositNone:
		if in.DepositValue != 0 {
			f.add("deposit_value", "must be 0 when deposit_policy is none")
		}
	case persistence.DepositPercent:
		if in.DepositValue < 1 || in.DepositValue > 100 {
			f.add("deposit_value", "must be a percentage from 1 to 100")
		}
	case persistence.DepositFixed:
		if in.DepositValue < 1 || in.DepositValue > in.PriceMinor {
			f.add("deposit_value", "must be from 1 to the price (minor units)")
		}
	default:
		f.add("deposit_policy", "must be none, percent or fixed")
	}
	if in.Version < 0 {
		f.add("version", "must be 0 or more")
	}
	return s, f.err()
}

func (s *server) listServices(activeOnly bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var list []persistence.Service
		err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
			list, err = tx.ServiceList(ctx, activeOnly)
			return err
		})
		if err != nil {
			return err
		}
		out := make([]serviceJSON, len(list))
		for i, sv := range list {
			out[i] = serviceView(sv)
		}
		return c.JSON(fiber.Map{"services": out})
	}
}

func (s *server) getService(activeOnly bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := slugParam(c, "id")
		if err != nil {
			return err
		}
		var sv persistence.Service
		err = s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
			sv, err = tx.ServiceGet(ctx, id)
			return err
		})
		if err == nil && activeOnly && !sv.Active {
			err = persistence.ErrNotFound
		}
		if err != nil {
			return notFound(err, "service")
		}
		return c.JSON(serviceView(sv))
	}
}

func (s *server) putService(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in serviceInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	sv, err := in.service(id, s.deps.Now().UTC())
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if sv.ResourceID != "" {
		if _, err := tx.ResourceGet(ctx, sv.ResourceID); errors.Is(err, persistence.ErrNotFound) {
			return fault.Invalid("", fault.FieldError{Field: "resource_id", Message: "no such resource"})
		} else if err != nil {
			return err
		}
	}
	stored, err := tx.ServicePut(ctx, sv)
	if err != nil {
		return versionConflict(err, in.Version)
	}
	view := serviceView(stored)
	if err := s.recordChange(c, tx, "service.put", "service", id, stored.Version, view); err != nil {
		return err
	}
	return c.JSON(view)
}

// ---- Staff -----------------------------------------------------------------

type staffJSON struct {
	ID          string                      `json:"id"`
	Name        string                      `json:"name"`
	Skills      []string                    `json:"skills"`
	TimeZone    string                      `json:"time_zone"`
	WeeklyHours map[string][]clockRangeJSON `json:"weekly_hours,omitempty"`
	Active      bool                        `json:"active"`
	Version     int64                       `json:"version,omitempty"`
	UpdatedAt   *time.Time                  `json:"updated_at,omitempty"`
}

// staffView is the admin view; publicStaff drops hours and bookkeeping.
func staffView(m persistence.StaffMember) staffJSON {
	hours := make(map[string][]clockRangeJSON, 7)
	for d, rs := range m.Weekly {
		hours[weekdays[d]] = rangesJSON(rs)
	}
	at := m.UpdatedAt.UTC()
	return staffJSON{ID: m.ID, Name: m.Name, Skills: append([]string{}, m.Skills...), TimeZone: m.TimeZone,
		WeeklyHours: hours, Active: m.Active, Version: m.Version, UpdatedAt: &at}
}

func publicStaff(m persistence.StaffMember) staffJSON {
	return staffJSON{ID: m.ID, Name: m.Name, Skills: append([]string{}, m.Skills...), TimeZone: m.TimeZone, Active: m.Active}
}

// staffInput is the body of PUT /v1/admin/staff/:id.
type staffInput struct {
	Name        string                      `json:"name"`
	Skills      []string                    `json:"skills"`
	TimeZone    string                      `json:"time_zone"`
	WeeklyHours map[string][]clockRangeJSON `json:"weekly_hours"`
	Active      bool                        `json:"active"`
	Version     int64                       `json:"version"`
}

func (in staffInput) member(id string, now time.Time) (persistence.StaffMember, error) {
	var f fieldErrors
	m := persistence.StaffMember{
		ID: id, Name: f.text("name", in.Name, 1, 120), Skills: f.skills("skills", in.Skills),
		TimeZone: strings.TrimSpace(in.TimeZone), Active: in.Active, Version: in.Version, UpdatedAt: now,
	}
	if !validTimeZone(m.TimeZone) {
		f.add("time_zone", "must be an IANA time zone such as America/Bogota")
	}
	for day, rs := range in.WeeklyHours {
		d := slices.Index(weekdays[:], day)
		if d < 0 {
			f.add("weekly_hours", fmt.Sprintf("%q is not a day: use sunday … saturday", bounded(day)))
			continue
		}
		m.Weekly[d] = f.ranges("weekly_hours."+day, rs)
	}
	if in.Version < 0 {
		f.add("version", "must be 0 or more")
	}
	return m, f.err()
}

func (s *server) listStaff(admin bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var list []persistence.StaffMember
		err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
			list, err = tx.StaffList(ctx, !admin)
			return err
		})
		if err != nil {
			return err
		}
		out := make([]staffJSON, len(list))
		for i, m := range list {
			if admin {
				out[i] = staffView(m)
			} else {
				out[i] = publicStaff(m)
			}
		}
		return c.JSON(fiber.Map{"staff": out})
	}
}

func (s *server) getStaff(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var m persistence.StaffMember
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		m, err = tx.StaffGet(ctx, id)
		return err
	}); err != nil {
		return notFound(err, "staff member")
	}
	return c.JSON(staffView(m))
}

func (s *server) putStaff(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in staffInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	m, err := in.member(id, s.deps.Now().UTC())
	if err != nil {
		return err
	}
	stored, err := tx.StaffPut(c.UserContext(), m)
	if err != nil {
		return versionConflict(err, in.Version)
	}
	view := staffView(stored)
	if err := s.recordChange(c, tx, "staff.put", "staff", id, stored.Version, view); err != nil {
		return err
	}
	return c.JSON(view)
}

// ---- Date overrides ----------------------------------------------------------

type overrideJSON struct {
	Date   string           `json:"date"`
	Closed bool             `json:"closed"`
	Ranges []clockRangeJSON `json:"ranges"`
}

// overrideInput is the body of PUT /v1/admin/staff/:id/overrides/:date:
// closed for a day off, or the hours that replace the weekly ones that day.
type overrideInput struct {
	Closed bool             `json:"closed"`
	Ranges []clockRangeJSON `json:"ranges"`
}

func dateParam(c *fiber.Ctx, name string) (string, error) {
	v := c.Params(name)
	if v == "" {
		v = c.Query(name)
	}
	if _, err := time.Parse(dateLayout, v); err != nil {
		return "", fault.Invalid("", fault.FieldError{Field: name, Message: "must be a date YYYY-MM-DD"})
	}
	return v, nil
}

// staffExists answers 404 for an unknown staff member in a sub-resource.
func staffExists(ctx context.Context, tx persistence.Tx, id string) error {
	_, err := tx.StaffGet(ctx, id)
	return notFound(err, "staff member")
}

func (s *server) putOverride(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	date, err := dateParam(c, "date")
	if err != nil {
		return err
	}
	var in overrideInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	o := persistence.DateOverride{StaffID: id, Date: date, Closed: in.Closed, Ranges: f.ranges("ranges", in.Ranges)}
	if in.Closed && len(in.Ranges) > 0 {
		f.add("ranges", "must be empty when closed")
	}
	if !in.Closed && len(in.Ranges) == 0 {
		f.add("ranges", "give the day's hours, or closed: true for a day off")
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := staffExists(ctx, tx, id); err != nil {
		return err
	}
	if err := tx.DateOverridePut(ctx, o); err != nil {
		return err
	}
	view := overrideJSON{Date: date, Closed: o.Closed, Ranges: rangesJSON(o.Ranges)}
	if err := s.recordChange(c, tx, "staff.override.put", "staff", id, 0, view); err != nil {
		return err
	}
	return c.JSON(view)
}

func (s *server) deleteOverride(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	date, err := dateParam(c, "date")
	if err != nil {
		return err
	}
	if err := tx.DateOverrideDelete(c.UserContext(), id, date); err != nil {
		return notFound(err, "date override")
	}
	if err := s.recordChange(c, tx, "staff.override.delete", "staff", id, 0, fiber.Map{"date": date}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listOverrides(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	from, err := dateParam(c, "from")
	if err != nil {
		return err
	}
	to, err := dateParam(c, "to")
	if err != nil {
		return err
	}
	if f, _ := time.Parse(dateLayout, from); f.AddDate(0, 0, 400).Format(dateLayout) < to || to < from {
		return fault.Invalid("", fault.FieldError{Field: "to", Message: "must be on or after from, at most 400 days later"})
	}
	var list []persistence.DateOverride
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		if err := staffExists(ctx, tx, id); err != nil {
			return err
		}
		list, err = tx.DateOverrideList(ctx, id, from, to)
		return err
	}); err != nil {
		return err
	}
	out := make([]overrideJSON, len(list))
	for i, o := range list {
		out[i] = overrideJSON{Date: o.Date, Closed: o.Closed, Ranges: rangesJSON(o.Ranges)}
	}
	return c.JSON(fiber.Map{"overrides": out})
}

// ---- Time off ----------------------------------------------------------------

type timeOffJSON struct {
	ID     string    `json:"id"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

type timeOffInput struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

// maxTimeOff bounds one block so a typo cannot close a calendar for years.
const maxTimeOff = 366 * 24 * time.Hour

func (s *server) addTimeOff(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in timeOffInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	reason := strings.TrimSpace(in.Reason)
	if utf8.RuneCountInString(reason) > 200 {
		f.add("reason", "at most 200 characters")
	}
	if in.Start.IsZero() || in.End.IsZero() || !in.End.After(in.Start) {
		f.add("end", "start and end are RFC 3339 instants, end after start")
	} else if in.End.Sub(in.Start) > maxTimeOff {
		f.add("end", "one block of time off may last at most a year")
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := staffExists(ctx, tx, id); err != nil {
		return err
	}
	t := persistence.TimeOff{ID: ulid.Make().String(), StaffID: id, Start: in.Start.UTC(), End: in.End.UTC(), Reason: reason}
	if err := tx.TimeOffAdd(ctx, t); err != nil {
		return err
	}
	view := timeOffJSON{ID: t.ID, Start: t.Start, End: t.End, Reason: t.Reason}
	if err := s.recordChange(c, tx, "staff.time_off.add", "staff", id, 0, view); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(view)
}

func (s *server) deleteTimeOff(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	toID := c.Params("timeOffID")
	if _, err := ulid.ParseStrict(toID); err != nil {
		return fault.NotFound("time off not found")
	}
	ctx := c.UserContext()
	// Deleting through another staff member's path must not work.
	list, err := tx.TimeOffList(ctx, id, time.Unix(0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(list, func(t persistence.TimeOff) bool { return t.ID == toID }) {
		return fault.NotFound("time off not found")
	}
	if err := tx.TimeOffDelete(ctx, toID); err != nil {
		return notFound(err, "time off")
	}
	if err := s.recordChange(c, tx, "staff.time_off.delete", "staff", id, 0, fiber.Map{"id": toID}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) listTimeOff(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	var list []persistence.TimeOff
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		if err := staffExists(ctx, tx, id); err != nil {
			return err
		}
		list, err = tx.TimeOffList(ctx, id, from, to)
		return err
	}); err != nil {
		return err
	}
	out := make([]timeOffJSON, len(list))
	for i, t := range list {
		out[i] = timeOffJSON{ID: t.ID, Start: t.Start.UTC(), End: t.End.UTC(), Reason: t.Reason}
	}
	return c.JSON(fiber.Map{"time_off": out})
}

// instantRange reads ?from=&to= as RFC 3339 instants, to after from, at
// most 400 days apart.
func instantRange(c *fiber.Ctx) (from, to time.Time, err error) {
	var f fieldErrors
	from, err1 := time.Parse(time.RFC3339, c.Query("from"))
	to, err2 := time.Parse(time.RFC3339, c.Query("to"))
	switch {
	case err1 != nil:
		f.add("from", "must be an RFC 3339 instant")
	case err2 != nil:
		f.add("to", "must be an RFC 3339 instant")
	case !to.After(from) || to.Sub(from) > 400*24*time.Hour:
		f.add("to", "must be after from, at most 400 days later")
	}
	return from, to, f.err()
}

// ---- Resources ---------------------------------------------------------------

type resourceJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Capacity  int       `json:"capacity"`
	Active    bool      `json:"active"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

type resourceInput struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity"`
	Active   bool   `json:"active"`
	Version  int64  `json:"version"`
}

func resourceView(r persistence.Resource) resourceJSON {
	return resourceJSON{ID: r.ID, Name: r.Name, Capacity: r.Capacity, Active: r.Active, Version: r.Version, UpdatedAt: r.UpdatedAt.UTC()}
}

func (s *server) putResource(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in resourceInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	r := persistence.Resource{ID: id, Name: f.text("name", in.Name, 1, 120), Capacity: in.Capacity,
		Active: in.Active, Version: in.Version, UpdatedAt: s.deps.Now().UTC()}
	if in.Capacity < 1 || in.Capacity > 1000 {
		f.add("capacity", "must be 1 to 1000")
	}
	if in.Version < 0 {
		f.add("version", "must be 0 or more")
	}
	if err := f.err(); err != nil {
		return err
	}
	stored, err := tx.ResourcePut(c.UserContext(), r)
	if err != nil {
		return versionConflict(err, in.Version)
	}
	view := resourceView(stored)
	if err := s.recordChange(c, tx, "resource.put", "resource", id, stored.Version, view); err != nil {
		return err
	}
	return c.JSON(view)
}

func (s *server) listResources(c *fiber.Ctx) error {
	var list []persistence.Resource
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.ResourceList(ctx, false)
		return err
	}); err != nil {
		return err
	}
	out := make([]resourceJSON, len(list))
	for i, r := range list {
		out[i] = resourceView(r)
	}
	return c.JSON(fiber.Map{"resources": out})
}
