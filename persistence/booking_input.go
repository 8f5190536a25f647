package persistence

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	_ "time/tzdata" // time zones validate the same everywhere, as at the edge

	"github.com/spa-engine/spa/persistence/money"
)

// Input checks and column encodings of the booking context, kept apart
// from the SQL (persistence/sqlstore) so that it holds only SQL and row
// mapping. The Normalize
// functions return the value as the store keeps it (times canonical, skills
// sorted and unique, empty lists nil), or an error wrapping ErrInvalid.
//
// Durations are stored as INT8 whole seconds; money as INT8 minor units.

// MaxAppointmentListLimit is the largest limit AppointmentListByClient
// accepts.
const MaxAppointmentListLimit = 1000

// MinutesPerDay bounds ClockRange minutes: 0 <= StartMinute < EndMinute <=
// MinutesPerDay.
const MinutesPerDay = 24 * 60

// DateLayout is the layout of DateOverride dates (YYYY-MM-DD).
const DateLayout = time.DateOnly

func invalidf(format string, args ...any) error {
	return fmt.Errorf("persistence: %s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

func checkID(what, id string) error {
	if id == "" {
		return invalidf("empty %s ID", what)
	}
	return nil
}

// checkSeconds refuses negative durations and ones with a fraction of a
// second, which the store would lose.
func checkSeconds(what string, d time.Duration) error {
	if d < 0 || d%time.Second != 0 {
		return invalidf("%s %v is not a non-negative whole number of seconds", what, d)
	}
	return nil
}

func checkVersion(what string, v int64) error {
	if v < 0 {
		return invalidf("%s version %d is negative", what, v)
	}
	return nil
}

// Valid reports whether s is one of the defined statuses.
func (s AppointmentStatus) Valid() bool {
	switch s {
	case StatusHeld, StatusConfirmed, StatusCompleted, StatusNoShow, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// sortedSet returns list sorted and unique, nil when empty, refusing an
// empty element with the message empty (skill names, service IDs).
func sortedSet(list []string, empty string) ([]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if slices.Contains(list, "") {
		return nil, invalidf("%s", empty)
	}
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeRanges returns rs sorted by start and merged (nil when empty),
// refusing ranges outside the day and empty or reversed ranges. Touching or
// overlapping ranges become one (see MergeRanges).
func normalizeRanges(what string, rs []ClockRange) ([]ClockRange, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	for _, r := range rs {
		if r.StartMinute < 0 || r.EndMinute > MinutesPerDay || r.StartMinute >= r.EndMinute {
			return nil, invalidf("%s range [%d, %d) is not within a day", what, r.StartMinute, r.EndMinute)
		}
	}
	return MergeRanges(rs), nil
}

// MergeRanges returns well-formed ranges sorted by start with touching and
// overlapping ones merged: 09:00-12:00 and 12:00-15:00 is one shift in which
// a 60-minute service may start at 11:30. The input is not modified.
func MergeRanges(rs []ClockRange) []ClockRange {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b ClockRange) int { return cmp.Compare(a.StartMinute, b.StartMinute) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.StartMinute <= merged[n-1].EndMinute {
			merged[n-1].EndMinute = max(merged[n-1].EndMinute, r.EndMinute)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// CheckTimeZone refuses names time.LoadLocation does not know, and the two
// it maps to the host's settings ("" and "Local").
func CheckTimeZone(tz string) error {
	if tz == "" || tz == "Local" {
		return invalidf("time zone %q is not an IANA name", tz)
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return invalidf("time zone %q: %v", tz, err)
	}
	return nil
}

// CheckDate refuses anything but a valid YYYY-MM-DD date.
func CheckDate(date string) error {
	d, err := time.Parse(DateLayout, date)
	if err != nil || d.Format(DateLayout) != date {
		return invalidf("date %q is not YYYY-MM-DD", date)
	}
	return nil
}

// CheckDateRange checks the bounds of a date query: both valid, and
// fromDate not after toDate.
func CheckDateRange(fromDate, toDate string) error {
	if err := CheckDate(fromDate); err != nil {
		return err
	}
	if err := CheckDate(toDate); err != nil {
		return err
	}
	if toDate < fromDate {
		return invalidf("date range ends (%s) before it starts (%s)", toDate, fromDate)
	}
	return nil
}

// CheckTimeRange returns the canonical bounds of a time query [from, to),
// refusing to before from. to == from is valid: an overlap query (Start <
// to and End > from) then selects the intervals with Start < from < End.
func CheckTimeRange(from, to time.Time) (time.Time, time.Time, error) {
	from, to = CanonicalTime(from), CanonicalTime(to)
	if to.Before(from) {
		return from, to, invalidf("time range ends (%v) before it starts (%v)", to, from)
	}
	return from, to, nil
}

// NormalizeService checks s for ServicePut: a non-empty ID, a positive
// whole number of minutes for Duration, non-negative whole seconds for the
// buffers and cutoffs, a non-negative price, and a known deposit policy
// (none: value 0; percent: 1..100; fixed: a positive amount), asked of
// everyone or of clients with 1..MaxDepositNoShows no-shows.
func NormalizeService(s Service) (Service, error) {
	if err := checkID("service", s.ID); err != nil {
		return s, err
	}
	if err := checkVersion("service", s.Version); err != nil {
		return s, err
	}
	if s.Duration <= 0 || s.Duration%time.Minute != 0 {
		return s, invalidf("service duration %v is not a positive whole number of minutes", s.Duration)
	}
	for _, c := range []struct {
		what string
		d    time.Duration
	}{{"buffer before", s.BufferBefore}, {"buffer after", s.BufferAfter},
		{"cancel cutoff", s.CancelCutoff}, {"reschedule cutoff", s.RescheduleCutoff}} {
		if err := checkSeconds("service "+c.what, c.d); err != nil {
			return s, err
		}
	}
	if !money.Valid(s.PriceMinor) {
		return s, invalidf("service price %d is not an amount (0 to 10^12)", s.PriceMinor)
	}
	switch s.DepositPolicy {
	case DepositNone:
		if s.DepositValue != 0 {
			return s, invalidf("deposit value %d with policy none", s.DepositValue)
		}
	case DepositPercent:
		if s.DepositValue < 1 || s.DepositValue > 100 {
			return s, invalidf("deposit percentage %d is not 1..100", s.DepositValue)
		}
	case DepositFixed:
		if s.DepositValue < 1 {
			return s, invalidf("fixed deposit %d is not positive", s.DepositValue)
		}
	default:
		return s, invalidf("unknown deposit policy %q", s.DepositPolicy)
	}
	switch {
	case s.DepositNoShows < 0 || s.DepositNoShows > MaxDepositNoShows:
		return s, invalidf("deposit no-shows %d is not 0..%d", s.DepositNoShows, MaxDepositNoShows)
	case s.DepositNoShows > 0 && s.DepositPolicy == DepositNone:
		return s, invalidf("deposit no-shows %d with policy none", s.DepositNoShows)
	}
	skills, err := sortedSet(s.RequiredSkills, "empty skill name")
	if err != nil {
		return s, err
	}
	s.RequiredSkills, s.UpdatedAt = skills, CanonicalTime(s.UpdatedAt)
	return s, nil
}

// NormalizeStaff checks s for StaffPut: a non-empty ID, an IANA time zone,
// non-empty skill names, and weekly ranges within the day that do not
// overlap. Each day's ranges come back sorted by start.
func NormalizeStaff(s StaffMember) (StaffMember, error) {
	if err := checkID("staff", s.ID); err != nil {
		return s, err
	}
	if err := checkVersion("staff", s.Version); err != nil {
		return s, err
	}
	if err := CheckTimeZone(s.TimeZone); err != nil {
		return s, err
	}
	skills, err := sortedSet(s.Skills, "empty skill name")
	if err != nil {
		return s, err
	}
	var weekly [7][]ClockRange
	for d, rs := range s.Weekly {
		if weekly[d], err = normalizeRanges(time.Weekday(d).String(), rs); err != nil {
			return s, err
		}
	}
	s.Skills, s.Weekly, s.UpdatedAt = skills, weekly, CanonicalTime(s.UpdatedAt)
	return s, nil
}

// NormalizeDateOverride checks o for DateOverridePut: a staff ID, a valid
// date, and either Closed without ranges or valid ranges (sorted on return)
// without Closed.
func NormalizeDateOverride(o DateOverride) (DateOverride, error) {
	if err := checkID("staff", o.StaffID); err != nil {
		return o, err
	}
	if err := CheckDate(o.Date); err != nil {
		return o, err
	}
	rs, err := normalizeRanges(o.Date, o.Ranges)
	if err != nil {
		return o, err
	}
	if o.Closed == (len(rs) > 0) {
		return o, invalidf("override of %s must be either closed or have ranges", o.Date)
	}
	o.Ranges = rs
	return o, nil
}

// NormalizeTimeOff checks t for TimeOffAdd: IDs, and End after Start.
func NormalizeTimeOff(t TimeOff) (TimeOff, error) {
	if err := checkID("time off", t.ID); err != nil {
		return t, err
	}
	if err := checkID("staff", t.StaffID); err != nil {
		return t, err
	}
	t.Start, t.End = CanonicalTime(t.Start), CanonicalTime(t.End)
	if t.Start.IsZero() || !t.End.After(t.Start) {
		return t, invalidf("time off %s: end %v is not after start %v", t.ID, t.End, t.Start)
	}
	return t, nil
}

// NormalizeResource checks r for ResourcePut: an ID and a capacity of at
// least 1.
func NormalizeResource(r Resource) (Resource, error) {
	if err := checkID("resource", r.ID); err != nil {
		return r, err
	}
	if err := checkVersion("resource", r.Version); err != nil {
		return r, err
	}
	if r.Capacity < 1 {
		return r, invalidf("resource capacity %d is less than 1", r.Capacity)
	}
	r.UpdatedAt = CanonicalTime(r.UpdatedAt)
	return r, nil
}

// CheckCalendarID refuses an empty calendar ID.
func CheckCalendarID(id string) error { return checkID("calendar", id) }

// CheckEpoch is CalendarCheckEpoch's verdict given what the store holds:
// stored is the calendar's epoch, found whether its row exists. It returns
// an error wrapping ErrFenced unless the row exists at epoch.
func CheckEpoch(calendarID string, epoch, stored int64, found bool) error {
	if !found {
		return fmt.Errorf("persistence: calendar %q was never activated, epoch %d is not current: %w",
			calendarID, epoch, ErrFenced)
	}
	if stored != epoch {
		return fmt.Errorf("persistence: calendar %q is at epoch %d, not %d: %w", calendarID, stored, epoch, ErrFenced)
	}
	return nil
}

// NormalizeAppointment checks a for AppointmentInsert and returns it as
// stored, at Version 1: ID, StaffID, ServiceID and ClientID non-empty
// (ResourceID may be empty), End after Start, buffers non-negative whole
// seconds, a known status, a HoldExpiresAt when held, and non-negative
// amounts. The Version given is ignored.
func NormalizeAppointment(a Appointment) (Appointment, error) {
	for _, c := range [][2]string{{"appointment", a.ID}, {"staff", a.StaffID},
		{"service", a.ServiceID}, {"client", a.ClientID}} {
		if err := checkID(c[0], c[1]); err != nil {
			return a, err
		}
	}
	a.Start, a.End = CanonicalTime(a.Start), CanonicalTime(a.End)
	a.HoldExpiresAt, a.CheckedInAt = CanonicalTime(a.HoldExpiresAt), CanonicalTime(a.CheckedInAt)
	a.CreatedAt, a.UpdatedAt = CanonicalTime(a.CreatedAt), CanonicalTime(a.UpdatedAt)
	if a.Start.IsZero() || !a.End.After(a.Start) {
		return a, invalidf("appointment %s: end %v is not after start %v", a.ID, a.End, a.Start)
	}
	if err := checkSeconds("buffer before", a.BufferBefore); err != nil {
		return a, err
	}
	if err := checkSeconds("buffer after", a.BufferAfter); err != nil {
		return a, err
	}
	if !a.Status.Valid() {
		return a, invalidf("unknown appointment status %q", a.Status)
	}
	if a.Status == StatusHeld && a.HoldExpiresAt.IsZero() {
		return a, invalidf("held appointment %s has no hold expiry", a.ID)
	}
	if !money.Valid(a.PriceMinor) || !money.Valid(a.DepositMinor) {
		return a, invalidf("appointment %s: negative price %d or deposit %d", a.ID, a.PriceMinor, a.DepositMinor)
	}
	a.Version = 1
	return a, nil
}

// NormalizeAppointmentUpdate checks a for AppointmentUpdate as
// NormalizeAppointment does, keeping a.Version, which must be at least 1.
func NormalizeAppointmentUpdate(a Appointment) (Appointment, error) {
	version := a.Version
	a, err := NormalizeAppointment(a)
	if err == nil && version < 1 {
		err = invalidf("appointment %s: update from version %d", a.ID, version)
	}
	a.Version = version
	return a, err
}

// AppointmentMissing is the error AppointmentUpdate returns when a's ID is
// not stored.
func AppointmentMissing(id string) error {
	return fmt.Errorf("persistence: appointment %q: %w", id, ErrNotFound)
}

// NormalizeAppointmentRange checks r for AppointmentList: exactly one of
// StaffID and ResourceID, and To not before From. Times come back
// canonical.
func NormalizeAppointmentRange(r AppointmentRange) (AppointmentRange, error) {
	if (r.StaffID == "") == (r.ResourceID == "") {
		return r, invalidf("appointment range needs exactly one of staff %q and resource %q", r.StaffID, r.ResourceID)
	}
	var err error
	if r.From, r.To, err = CheckTimeRange(r.From, r.To); err != nil {
		return r, err
	}
	r.LiveAt = CanonicalTime(r.LiveAt)
	return r, nil
}

// CheckClientQuery checks AppointmentListByClient's arguments and returns
// the canonical bounds.
func CheckClientQuery(clientID string, from, to time.Time, limit int) (time.Time, time.Time, error) {
	if err := checkID("client", clientID); err != nil {
		return from, to, err
	}
	if err := CheckLimit("appointment list", limit, MaxAppointmentListLimit); err != nil {
		return from, to, err
	}
	return CheckTimeRange(from, to)
}

// NormalizeTransition checks t for TransitionAppend: IDs, a known To, and
// a From that is empty (creation) or known.
func NormalizeTransition(t Transition) (Transition, error) {
	if err := checkID("transition", t.ID); err != nil {
		return t, err
	}
	if err := checkID("appointment", t.AppointmentID); err != nil {
		return t, err
	}
	if !t.To.Valid() || (t.From != "" && !t.From.Valid()) {
		return t, invalidf("transition %s: unknown status in %q → %q", t.ID, t.From, t.To)
	}
	t.At = CanonicalTime(t.At)
	return t, nil
}

// ---- Column encodings ----

// Seconds is d as stored: whole seconds.
func Seconds(d time.Duration) int64 { return int64(d / time.Second) }

// FromSeconds is the duration of n stored seconds.
func FromSeconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// EncodeStrings is a string list as stored: a JSON array.
func EncodeStrings(ss []string) string {
	if ss == nil {
		ss = []string{}
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

// DecodeStrings reads EncodeStrings's output; an empty list is nil.
func DecodeStrings(s string) ([]string, error) {
	var ss []string
	if err := json.Unmarshal([]byte(s), &ss); err != nil {
		return nil, fmt.Errorf("persistence: decoding string list: %w", err)
	}
	if len(ss) == 0 {
		return nil, nil
	}
	return ss, nil
}

// EncodeRanges is a list of clock ranges as stored: a JSON array of
// [start, end] pairs.
func EncodeRanges(rs []ClockRange) string {
	b, _ := json.Marshal(rangePairs(rs))
	return string(b)
}

// DecodeRanges reads EncodeRanges's output; an empty list is nil.
func DecodeRanges(s string) ([]ClockRange, error) {
	var ps [][2]int
	if err := json.Unmarshal([]byte(s), &ps); err != nil {
		return nil, fmt.Errorf("persistence: decoding clock ranges: %w", err)
	}
	return pairRanges(ps), nil
}

// EncodeWeekly is a week of hours as stored: a JSON array of seven
// EncodeRanges arrays, Sunday first.
func EncodeWeekly(w [7][]ClockRange) string {
	var days [7][][2]int
	for d, rs := range w {
		days[d] = rangePairs(rs)
	}
	b, _ := json.Marshal(days)
	return string(b)
}

// DecodeWeekly reads EncodeWeekly's output; empty days are nil.
func DecodeWeekly(s string) ([7][]ClockRange, error) {
	var w [7][]ClockRange
	var days [][][2]int
	if err := json.Unmarshal([]byte(s), &days); err != nil {
		return w, fmt.Errorf("persistence: decoding weekly hours: %w", err)
	}
	if len(days) != 7 {
		return w, fmt.Errorf("persistence: decoding weekly hours: %d days, want 7", len(days))
	}
	for d, ps := range days {
		w[d] = pairRanges(ps)
	}
	return w, nil
}

func rangePairs(rs []ClockRange) [][2]int {
	ps := make([][2]int, len(rs))
	for i, r := range rs {
		ps[i] = [2]int{r.StartMinute, r.EndMinute}
	}
	return ps
}

func pairRanges(ps [][2]int) []ClockRange {
	if len(ps) == 0 {
		return nil
	}
	rs := make([]ClockRange, len(ps))
	for i, p := range ps {
		rs[i] = ClockRange{StartMinute: p[0], EndMinute: p[1]}
	}
	return rs
}
