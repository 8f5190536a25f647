// Package catalogue holds the use cases of what the studio offers and how
// it is set up: services, staff with their weekly hours, date overrides
// and time off, shared resources (rooms, saunas) and the studio's own
// settings. Reads of active entries are public (a booking page needs
// them); every change is an admin's, audited, and announced by a
// CatalogueChanged (or StudioUpdated) event in the change's transaction,
// so the actors holding a calendar reload it.
//
// The package also keeps the catalogue's read model for the booking path
// (Cache), which the Service's own writes invalidate.
//
// These rules are not in the gateway so that every caller (the HTTP API,
// the WhatsApp bot, tools) validates, audits and announces a change the
// same way. Inputs and views carry the API's JSON names: the field names
// of validation errors and the audit details (which are the views) are
// part of the contract, so they are defined once, here.
package catalogue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Deps is what the Service needs.
type Deps struct {
	Store persistence.Store
	// Now is the clock of changes (nil: time.Now).
	Now func() time.Time
	// CacheTTL bounds how stale another node's change may look to this
	// node's booking path (0: 2s).
	CacheTTL time.Duration
}

// DefaultCacheTTL is the Cache's ttl when Deps.CacheTTL is zero.
const DefaultCacheTTL = 2 * time.Second

// Service runs the catalogue's use cases.
type Service struct {
	store persistence.Store
	now   func() time.Time
	cache *Cache
}

// New builds the Service and its Cache.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.CacheTTL <= 0 {
		d.CacheTTL = DefaultCacheTTL
	}
	return &Service{store: d.Store, now: d.Now, cache: NewCache(d.Store, d.CacheTTL)}
}

// Cache is the read model of active services and staff the booking path
// reads; the Service's changes invalidate it.
func (s *Service) Cache() *Cache { return s.cache }

// read runs fn in a transaction of its own.
func (s *Service) read(ctx context.Context, fn func(tx persistence.Tx) error) error {
	return s.store.InTx(ctx, fn)
}

// recordChange appends the audit entry and the CatalogueChanged event of a
// catalogue change, in the change's transaction, and drops the cache.
func (s *Service) recordChange(ctx context.Context, tx persistence.Tx, by service.Caller, action, kind, id string, version int64, detail any) error {
	s.cache.Invalidate()
	now := s.now().UTC()
	if err := service.Audit(ctx, tx, now, by, action, kind+"/"+id, "", detail); err != nil {
		return err
	}
	ev, err := persistence.NewOutboxEvent(kind+"/"+id, by.RequestID, by.Subject,
		&messages.CatalogueChanged{Kind: kind, Id: id, Version: version}, now)
	if err != nil {
		return err
	}
	return tx.OutboxAppend(ctx, ev)
}

// parseDate reads a date of DateLayout (the gateway checks path and query
// dates first with the same message).
func parseDate(field, v string) (time.Time, error) {
	d, err := time.Parse(DateLayout, v)
	if err != nil {
		return d, fault.Invalid("", fault.FieldError{Field: field, Message: "must be a date YYYY-MM-DD"})
	}
	return d, nil
}

// slugID refuses an id that is not a slug (the gateway checks path ids
// first with the same message).
func slugID(field, id string) error {
	if !check.Slug.MatchString(id) {
		return fault.Invalid("", fault.FieldError{Field: field, Message: "must be 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit"})
	}
	return nil
}

// ---- Field checks ------------------------------------------------------------

const (
	maxSkills    = 20
	maxDayRanges = 6
	// DateLayout is how dates of overrides are written: "2026-12-24".
	DateLayout = time.DateOnly
)

// weekdays names the keys of weekly_hours, indexed by time.Weekday.
var weekdays = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// fields adds the catalogue's own checks to check.Fields.
type fields struct{ check.Fields }

func (f *fields) minutes(field string, v, min, max int) time.Duration {
	if v < min || v > max {
		f.Add(field, fmt.Sprintf("must be %d to %d minutes", min, max))
	}
	return time.Duration(v) * time.Minute
}

// skills validates, sorts and de-duplicates a skill list.
func (f *fields) skills(field string, in []string) []string {
	if len(in) > maxSkills {
		f.Add(field, fmt.Sprintf("at most %d skills", maxSkills))
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !skillRE.MatchString(s) {
			f.Add(field, fmt.Sprintf("skill %q must be 1 to 40 of a-z, 0-9, - and _", check.Bounded(s)))
			continue
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ranges validates one day's ranges (well-formed, start before end) and
// returns them sorted, touching and overlapping ones merged into one shift.
func (f *fields) ranges(field string, in []ClockRange) []persistence.ClockRange {
	if len(in) > maxDayRanges {
		f.Add(field, fmt.Sprintf("at most %d ranges a day", maxDayRanges))
		return nil
	}
	out := make([]persistence.ClockRange, 0, len(in))
	for i, r := range in {
		if !clockRE.MatchString(r.Start) || !clockRE.MatchString(r.End) {
			f.Add(fmt.Sprintf("%s[%d]", field, i), `times must be "HH:MM" between 00:00 and 24:00`)
			return nil
		}
		cr := persistence.ClockRange{StartMinute: clockMinutes(r.Start), EndMinute: clockMinutes(r.End)}
		if cr.StartMinute >= cr.EndMinute {
			f.Add(fmt.Sprintf("%s[%d]", field, i), "start must be before end")
			return nil
		}
		out = append(out, cr)
	}
	return persistence.MergeRanges(out)
}

func (f *fields) version(v int64) {
	if v < 0 {
		f.Add("version", "must be 0 or more")
	}
}

// ---- Services ----------------------------------------------------------------

// ServiceInput is a service as an admin puts it (PUT
// /v1/admin/services/{id}); Version 0 creates, a stale one conflicts.
type ServiceInput struct {
	ID                      string   `json:"-"`
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
	DepositNoShows          int      `json:"deposit_no_shows"`
	CancelCutoffMinutes     int      `json:"cancel_cutoff_minutes"`
	RescheduleCutoffMinutes int      `json:"reschedule_cutoff_minutes"`
	Active                  bool     `json:"active"`
	Version                 int64    `json:"version"`
}

func (in ServiceInput) service(now time.Time) (persistence.Service, error) {
	var f fields
	s := persistence.Service{
		ID:               in.ID,
		Name:             f.Text("name", in.Name, 1, 120),
		Category:         f.Text("category", in.Category, 1, 60),
		Duration:         f.minutes("duration_minutes", in.DurationMinutes, 5, 12*60),
		PriceMinor:       in.PriceMinor,
		BufferBefore:     f.minutes("buffer_before_minutes", in.BufferBeforeMinutes, 0, 240),
		BufferAfter:      f.minutes("buffer_after_minutes", in.BufferAfterMinutes, 0, 240),
		RequiredSkills:   f.skills("required_skills", in.RequiredSkills),
		ResourceID:       in.ResourceID,
		DepositPolicy:    persistence.DepositPolicy(in.DepositPolicy),
		DepositValue:     in.DepositValue,
		DepositNoShows:   in.DepositNoShows,
		CancelCutoff:     f.minutes("cancel_cutoff_minutes", in.CancelCutoffMinutes, 0, 30*24*60),
		RescheduleCutoff: f.minutes("reschedule_cutoff_minutes", in.RescheduleCutoffMinutes, 0, 30*24*60),
		Active:           in.Active,
		Version:          in.Version,
		UpdatedAt:        now,
	}
	f.Amount("price_minor", in.PriceMinor, 0)
	if s.ResourceID != "" && !check.Slug.MatchString(s.ResourceID) {
		f.Add("resource_id", "must be a resource id")
	}
	switch s.DepositPolicy {
	case "":
		s.DepositPolicy = persistence.DepositNone
		fallthrough
	case persistence.DepositNone:
		if in.DepositValue != 0 {
			f.Add("deposit_value", "must be 0 when deposit_policy is none")
		}
	case persistence.DepositPercent:
		if in.DepositValue < 1 || in.DepositValue > 100 {
			f.Add("deposit_value", "must be a percentage from 1 to 100")
		}
	case persistence.DepositFixed:
		if in.DepositValue < 1 || in.DepositValue > in.PriceMinor {
			f.Add("deposit_value", "must be from 1 to the price (minor units)")
		}
	default:
		f.Add("deposit_policy", "must be none, percent or fixed")
	}
	switch {
	case in.DepositNoShows < 0 || in.DepositNoShows > persistence.MaxDepositNoShows:
		f.Add("deposit_no_shows", fmt.Sprintf("must be from 0 (everyone pays the deposit) to %d", persistence.MaxDepositNoShows))
	case in.DepositNoShows > 0 && s.DepositPolicy == persistence.DepositNone:
		f.Add("deposit_no_shows", "must be 0 when deposit_policy is none")
	}
	f.version(in.Version)
	return s, f.Err()
}

// Services lists the services, only the active ones when activeOnly.
func (s *Service) Services(ctx context.Context, activeOnly bool) (list []persistence.Service, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.ServiceList(ctx, activeOnly)
		return err
	})
	return list, err
}

// Service returns one service; an inactive one does not exist for
// activeOnly (the public view).
func (s *Service) Service(ctx context.Context, id string, activeOnly bool) (sv persistence.Service, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		sv, err = tx.ServiceGet(ctx, id)
		return err
	})
	if err == nil && activeOnly && !sv.Active {
		err = persistence.ErrNotFound
	}
	return sv, fault.IfNotFound(err, "service")
}

// PutService creates or updates a service in tx. Its resource, if it
// names one, must exist.
func (s *Service) PutService(ctx context.Context, tx persistence.Tx, by service.Caller, in ServiceInput) (persistence.Service, error) {
	if err := slugID("id", in.ID); err != nil {
		return persistence.Service{}, err
	}
	sv, err := in.service(s.now().UTC())
	if err != nil {
		return persistence.Service{}, err
	}
	if sv.ResourceID != "" {
		if _, err := tx.ResourceGet(ctx, sv.ResourceID); errors.Is(err, persistence.ErrNotFound) {
			return persistence.Service{}, fault.Invalid("", fault.FieldError{Field: "resource_id", Message: "no such resource"})
		} else if err != nil {
			return persistence.Service{}, err
		}
	}
	stored, err := tx.ServicePut(ctx, sv)
	if err != nil {
		return persistence.Service{}, fault.IfVersionConflict(err, in.Version)
	}
	if err := s.recordChange(ctx, tx, by, "service.put", "service", in.ID, stored.Version, ServiceView(stored)); err != nil {
		return persistence.Service{}, err
	}
	return stored, nil
}

// ---- Staff -------------------------------------------------------------------

// StaffInput is a staff member as an admin puts it (PUT
// /v1/admin/staff/{id}).
type StaffInput struct {
	ID          string                  `json:"-"`
	Name        string                  `json:"name"`
	Skills      []string                `json:"skills"`
	TimeZone    string                  `json:"time_zone"`
	WeeklyHours map[string][]ClockRange `json:"weekly_hours"`
	Active      bool                    `json:"active"`
	Version     int64                   `json:"version"`
}

func (in StaffInput) member(now time.Time) (persistence.StaffMember, error) {
	var f fields
	m := persistence.StaffMember{
		ID: in.ID, Name: f.Text("name", in.Name, 1, 120), Skills: f.skills("skills", in.Skills),
		TimeZone: strings.TrimSpace(in.TimeZone), Active: in.Active, Version: in.Version, UpdatedAt: now,
	}
	if !check.TimeZone(m.TimeZone) {
		f.Add("time_zone", "must be an IANA time zone such as America/Bogota")
	}
	for day, rs := range in.WeeklyHours {
		d := slices.Index(weekdays[:], day)
		if d < 0 {
			f.Add("weekly_hours", fmt.Sprintf("%q is not a day: use sunday … saturday", check.Bounded(day)))
			continue
		}
		m.Weekly[d] = f.ranges("weekly_hours."+day, rs)
	}
	f.version(in.Version)
	return m, f.Err()
}

// Staff lists the staff, only the active ones when activeOnly.
func (s *Service) Staff(ctx context.Context, activeOnly bool) (list []persistence.StaffMember, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.StaffList(ctx, activeOnly)
		return err
	})
	return list, err
}

// StaffMember returns one staff member.
func (s *Service) StaffMember(ctx context.Context, id string) (m persistence.StaffMember, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		m, err = tx.StaffGet(ctx, id)
		return err
	})
	return m, fault.IfNotFound(err, "staff member")
}

// PutStaff creates or updates a staff member and their weekly hours in tx.
func (s *Service) PutStaff(ctx context.Context, tx persistence.Tx, by service.Caller, in StaffInput) (persistence.StaffMember, error) {
	if err := slugID("id", in.ID); err != nil {
		return persistence.StaffMember{}, err
	}
	m, err := in.member(s.now().UTC())
	if err != nil {
		return persistence.StaffMember{}, err
	}
	stored, err := tx.StaffPut(ctx, m)
	if err != nil {
		return persistence.StaffMember{}, fault.IfVersionConflict(err, in.Version)
	}
	if err := s.recordChange(ctx, tx, by, "staff.put", "staff", in.ID, stored.Version, StaffView(stored)); err != nil {
		return persistence.StaffMember{}, err
	}
	return stored, nil
}

// staffExists answers 404 for an unknown staff member in a sub-resource.
func staffExists(ctx context.Context, tx persistence.Tx, id string) error {
	_, err := tx.StaffGet(ctx, id)
	return fault.IfNotFound(err, "staff member")
}

// ---- Date overrides ------------------------------------------------------------

// OverrideInput is a date override of a staff member's hours (PUT
// /v1/admin/staff/{id}/overrides/{date}): closed for a day off, or the
// hours that replace the weekly ones that day.
type OverrideInput struct {
	StaffID string       `json:"-"`
	Date    string       `json:"-"` // DateLayout
	Closed  bool         `json:"closed"`
	Ranges  []ClockRange `json:"ranges"`
}

// maxOverrideSpan bounds a listing of overrides, in days.
const maxOverrideSpan = 400

// Overrides lists a staff member's overrides from one date to another
// (DateLayout, to at most 400 days after from).
func (s *Service) Overrides(ctx context.Context, staffID, from, to string) (list []persistence.DateOverride, err error) {
	f, err := parseDate("from", from)
	if err != nil {
		return nil, err
	}
	if _, err := parseDate("to", to); err != nil {
		return nil, err
	}
	if f.AddDate(0, 0, maxOverrideSpan).Format(DateLayout) < to || to < from {
		return nil, fault.Invalid("", fault.FieldError{Field: "to", Message: "must be on or after from, at most 400 days later"})
	}
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		if err := staffExists(ctx, tx, staffID); err != nil {
			return err
		}
		list, err = tx.DateOverrideList(ctx, staffID, from, to)
		return err
	})
	return list, err
}

// PutOverride sets a staff member's hours for one date in tx.
func (s *Service) PutOverride(ctx context.Context, tx persistence.Tx, by service.Caller, in OverrideInput) (persistence.DateOverride, error) {
	if _, err := parseDate("date", in.Date); err != nil {
		return persistence.DateOverride{}, err
	}
	var f fields
	o := persistence.DateOverride{StaffID: in.StaffID, Date: in.Date, Closed: in.Closed, Ranges: f.ranges("ranges", in.Ranges)}
	if in.Closed && len(in.Ranges) > 0 {
		f.Add("ranges", "must be empty when closed")
	}
	if !in.Closed && len(in.Ranges) == 0 {
		f.Add("ranges", "give the day's hours, or closed: true for a day off")
	}
	if err := f.Err(); err != nil {
		return persistence.DateOverride{}, err
	}
	if err := staffExists(ctx, tx, in.StaffID); err != nil {
		return persistence.DateOverride{}, err
	}
	if err := tx.DateOverridePut(ctx, o); err != nil {
		return persistence.DateOverride{}, err
	}
	if err := s.recordChange(ctx, tx, by, "staff.override.put", "staff", in.StaffID, 0, OverrideView(o)); err != nil {
		return persistence.DateOverride{}, err
	}
	return o, nil
}

// DeleteOverride gives a staff member back their weekly hours on date.
func (s *Service) DeleteOverride(ctx context.Context, tx persistence.Tx, by service.Caller, staffID, date string) error {
	if err := tx.DateOverrideDelete(ctx, staffID, date); err != nil {
		return fault.IfNotFound(err, "date override")
	}
	return s.recordChange(ctx, tx, by, "staff.override.delete", "staff", staffID, 0, map[string]any{"date": date})
}

// ---- Time off ------------------------------------------------------------------

// TimeOffInput is a block of time off (POST /v1/admin/staff/{id}/time-off).
type TimeOffInput struct {
	StaffID string    `json:"-"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Reason  string    `json:"reason"`
}

// maxTimeOff bounds one block so a typo cannot close a calendar for years.
const maxTimeOff = 366 * 24 * time.Hour

// TimeOff lists a staff member's time off overlapping [from, to).
func (s *Service) TimeOff(ctx context.Context, staffID string, from, to time.Time) (list []persistence.TimeOff, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		if err := staffExists(ctx, tx, staffID); err != nil {
			return err
		}
		list, err = tx.TimeOffList(ctx, staffID, from, to)
		return err
	})
	return list, err
}

// AddTimeOff blocks a staff member's calendar from Start to End in tx.
func (s *Service) AddTimeOff(ctx context.Context, tx persistence.Tx, by service.Caller, in TimeOffInput) (persistence.TimeOff, error) {
	var f fields
	reason := strings.TrimSpace(in.Reason)
	if utf8.RuneCountInString(reason) > 200 {
		f.Add("reason", "at most 200 characters")
	}
	if in.Start.IsZero() || in.End.IsZero() || !in.End.After(in.Start) {
		f.Add("end", "start and end are RFC 3339 instants, end after start")
	} else if in.End.Sub(in.Start) > maxTimeOff {
		f.Add("end", "one block of time off may last at most a year")
	}
	if err := f.Err(); err != nil {
		return persistence.TimeOff{}, err
	}
	if err := staffExists(ctx, tx, in.StaffID); err != nil {
		return persistence.TimeOff{}, err
	}
	t := persistence.TimeOff{ID: ulid.Make().String(), StaffID: in.StaffID, Start: in.Start.UTC(), End: in.End.UTC(), Reason: reason}
	if err := tx.TimeOffAdd(ctx, t); err != nil {
		return persistence.TimeOff{}, err
	}
	if err := s.recordChange(ctx, tx, by, "staff.time_off.add", "staff", in.StaffID, 0, TimeOffView(t)); err != nil {
		return persistence.TimeOff{}, err
	}
	return t, nil
}

// DeleteTimeOff removes one block of a staff member's time off in tx.
func (s *Service) DeleteTimeOff(ctx context.Context, tx persistence.Tx, by service.Caller, staffID, timeOffID string) error {
	if _, err := ulid.ParseStrict(timeOffID); err != nil {
		return fault.NotFound("time off not found")
	}
	// Deleting through another staff member's path must not work.
	list, err := tx.TimeOffList(ctx, staffID, time.Unix(0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(list, func(t persistence.TimeOff) bool { return t.ID == timeOffID }) {
		return fault.NotFound("time off not found")
	}
	if err := tx.TimeOffDelete(ctx, timeOffID); err != nil {
		return fault.IfNotFound(err, "time off")
	}
	return s.recordChange(ctx, tx, by, "staff.time_off.delete", "staff", staffID, 0, map[string]any{"id": timeOffID})
}

// ---- Resources -----------------------------------------------------------------

// ResourceInput is a shared resource as an admin puts it (PUT
// /v1/admin/resources/{id}).
type ResourceInput struct {
	ID       string `json:"-"`
	Name     string `json:"name"`
	Capacity int    `json:"capacity"`
	Active   bool   `json:"active"`
	Version  int64  `json:"version"`
}

// Resources lists every resource, active or not.
func (s *Service) Resources(ctx context.Context) (list []persistence.Resource, err error) {
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.ResourceList(ctx, false)
		return err
	})
	return list, err
}

// PutResource creates or updates a resource in tx.
func (s *Service) PutResource(ctx context.Context, tx persistence.Tx, by service.Caller, in ResourceInput) (persistence.Resource, error) {
	if err := slugID("id", in.ID); err != nil {
		return persistence.Resource{}, err
	}
	var f fields
	r := persistence.Resource{ID: in.ID, Name: f.Text("name", in.Name, 1, 120), Capacity: in.Capacity,
		Active: in.Active, Version: in.Version, UpdatedAt: s.now().UTC()}
	if in.Capacity < 1 || in.Capacity > 1000 {
		f.Add("capacity", "must be 1 to 1000")
	}
	f.version(in.Version)
	if err := f.Err(); err != nil {
		return persistence.Resource{}, err
	}
	stored, err := tx.ResourcePut(ctx, r)
	if err != nil {
		return persistence.Resource{}, fault.IfVersionConflict(err, in.Version)
	}
	if err := s.recordChange(ctx, tx, by, "resource.put", "resource", in.ID, stored.Version, ResourceView(stored)); err != nil {
		return persistence.Resource{}, err
	}
	return stored, nil
}
