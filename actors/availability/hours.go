package availability

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Clock is a wall-clock time of day in whole minutes after midnight, from
// 00:00 to 24:00 inclusive. Working hours are written in wall-clock terms
// ("we open at 09:00") and only become instants once a date and a zone are
// known, which is what keeps them right across DST changes.
type Clock int

// EndOfDay is 24:00, the end of a range that runs until midnight.
const EndOfDay Clock = 24 * 60

// ClockAt returns the clock time h:m; it is not validated (see NewClockRange).
func ClockAt(h, m int) Clock { return Clock(h*60 + m) }

// ParseClock parses a strict "HH:MM" (00:00 to 24:00), the form staff hours
// arrive in from the admin API.
func ParseClock(s string) (Clock, error) {
	if len(s) != 5 || s[2] != ':' || !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[3]) || !isDigit(s[4]) {
		return 0, fmt.Errorf("%w: clock %q: want HH:MM", ErrInvalid, s)
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%w: clock %q: out of 00:00-24:00", ErrInvalid, s)
	}
	return ClockAt(h, m), nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// String formats c as HH:MM, the inverse of ParseClock.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// ClockRange is the wall-clock span [Start, End) of one working period of a
// day, such as 09:00-13:00.
type ClockRange struct {
	Start, End Clock
}

// NewClockRange returns the range [start, end), rejecting empty, inverted and
// out-of-day ranges so that a typo in the admin UI cannot open a shift that
// runs backwards.
func NewClockRange(start, end Clock) (ClockRange, error) {
	r := ClockRange{start, end}
	return r, r.validate()
}

// ParseClockRange parses "HH:MM-HH:MM".
func ParseClockRange(s string) (ClockRange, error) {
	if len(s) != 11 || s[5] != '-' {
		return ClockRange{}, fmt.Errorf("%w: clock range %q: want HH:MM-HH:MM", ErrInvalid, s)
	}
	start, err := ParseClock(s[:5])
	if err != nil {
		return ClockRange{}, err
	}
	end, err := ParseClock(s[6:])
	if err != nil {
		return ClockRange{}, err
	}
	return NewClockRange(start, end)
}

// String formats r as HH:MM-HH:MM, the inverse of ParseClockRange.
func (r ClockRange) String() string { return r.Start.String() + "-" + r.End.String() }

func (r ClockRange) validate() error {
	if r.Start < 0 || r.End > EndOfDay || r.Start >= r.End {
		return fmt.Errorf("%w: clock range %d-%d min: want 00:00 <= start < end <= 24:00", ErrInvalid, int(r.Start), int(r.End))
	}
	return nil
}

// sortedRanges validates ranges and returns them sorted and merged: ranges
// that touch or overlap (09:00-12:00 and 12:00-15:00) are one shift, as in
// every calendar product, so a service may run across the seam. Merging also
// fixes the slot grid to the merged range's start, so one shift entered in
// two pieces offers the same starts as when entered whole.
func sortedRanges(ranges []ClockRange) ([]ClockRange, error) {
	out := slices.Clone(ranges)
	for _, r := range out {
		if err := r.validate(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b ClockRange) int { return int(a.Start - b.Start) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	return merged, nil
}

// WeeklyHours is a staff member's regular week. The zero value is closed
// every day; build it with NewWeeklyHours so that it is always valid.
type WeeklyHours struct {
	days [7][]ClockRange
}

// NewWeeklyHours validates and stores the ranges of each weekday (several a
// day for a split shift); the input map and slices are copied.
func NewWeeklyHours(days map[time.Weekday][]ClockRange) (WeeklyHours, error) {
	var w WeeklyHours
	for d, ranges := range days {
		if d < time.Sunday || d > time.Saturday {
			return WeeklyHours{}, fmt.Errorf("%w: weekday %d", ErrInvalid, int(d))
		}
		sorted, err := sortedRanges(ranges)
		if err != nil {
			return WeeklyHours{}, fmt.Errorf("%v: %w", d, err)
		}
		w.days[d] = sorted
	}
	return w, nil
}

// On returns the sorted ranges of weekday d; callers must not modify it.
func (w WeeklyHours) On(d time.Weekday) []ClockRange { return w.days[d] }

// Date is a civil date, the key of a schedule override. It has no zone: the
// 24th of December is the 24th wherever the studio is.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the civil date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// AddDays returns the date n days after d (before, if n < 0).
func (d Date) AddDays(n int) Date { return DateOf(d.noonUTC().AddDate(0, 0, n)) }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday { return d.noonUTC().Weekday() }

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Valid reports whether d names a real day (not February 30th).
func (d Date) Valid() bool { return DateOf(d.noonUTC()) == d }

func (d Date) noonUTC() time.Time { return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC) }

// Override replaces a staff member's weekly hours on one date: either closed
// (a day off, a holiday) or open with its own ranges (extra hours, a shorter
// day). The zero value with a Date is a closed day.
type Override struct {
	Date   Date
	ranges []ClockRange
}

// ClosedOn returns an override that closes date d.
func ClosedOn(d Date) Override { return Override{Date: d} }

// OpenOn returns an override that replaces date d's weekly ranges with
// ranges; at least one is required, ClosedOn says "closed" explicitly.
func OpenOn(d Date, ranges ...ClockRange) (Override, error) {
	if !d.Valid() {
		return Override{}, fmt.Errorf("%w: override date %s", ErrInvalid, d)
	}
	if len(ranges) == 0 {
		return Override{}, fmt.Errorf("%w: override %s: no ranges (use ClosedOn)", ErrInvalid, d)
	}
	sorted, err := sortedRanges(ranges)
	if err != nil {
		return Override{}, fmt.Errorf("override %s: %w", d, err)
	}
	return Override{Date: d, ranges: sorted}, nil
}

// Closed reports whether the override closes its date.
func (o Override) Closed() bool { return len(o.ranges) == 0 }

// Ranges returns the sorted replacement ranges; callers must not modify it.
func (o Override) Ranges() []ClockRange { return o.ranges }

// rangesOn returns the clock ranges that apply to date d: the override's if
// the date has one, else the weekly ones.
func rangesOn(s *Staff, d Date) []ClockRange {
	for i := range s.Overrides {
		if s.Overrides[i].Date == d {
			return s.Overrides[i].ranges
		}
	}
	return s.Hours.On(d.Weekday())
}

// appendDayRanges appends the absolute working intervals of date d in loc.
func appendDayRanges(dst []Interval, s *Staff, d Date) []Interval {
	for _, r := range rangesOn(s, d) {
		iv := Interval{instant(d, r.Start, s.Location), instant(d, r.End, s.Location)}
		if !iv.Empty() { // a range lying wholly in a spring-forward gap
			dst = append(dst, iv)
		}
	}
	return dst
}

// errNoOffset guards instant against zones with two transitions within a
// day, which no real zone has; it is never returned to callers.
var errNoOffset = errors.New("no offset")

// instant maps wall clock c on date d in loc to an absolute instant (UTC).
//
// DST rules, chosen so that the map is monotone in c (ranges that do not
// overlap on the clock never overlap in time, so no duplicate slots):
//   - a clock time that exists once maps to that instant;
//   - a time repeated by a fall-back maps to its first occurrence, so a range
//     covering the repeated hour is one hour longer in absolute time;
//   - a time skipped by a spring-forward maps to the transition instant, so a
//     range spanning the gap is shortened and one inside it is empty;
//   - 24:00 is the next date's 00:00.
func instant(d Date, c Clock, loc *time.Location) time.Time {
	wall := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Add(time.Duration(c) * time.Minute)
	t, err := resolveWall(wall, loc)
	if err != nil {
		return time.Date(d.Year, d.Month, d.Day, 0, int(c), 0, 0, loc).UTC()
	}
	return t
}

// resolveWall implements instant's rules. Offsets lie within ±14h, so the
// offsets in effect 14h either side of wall (read as UTC) are the only
// candidates.
func resolveWall(wall time.Time, loc *time.Location) (time.Time, error) {
	offsetAt := func(t time.Time) time.Duration {
		_, off := t.In(loc).Zone()
		return time.Duration(off) * time.Second
	}
	before, after := offsetAt(wall.Add(-14*time.Hour)), offsetAt(wall.Add(14*time.Hour))
	// A larger offset gives an earlier instant: try it first so that on a
	// fall-back night, where both are valid, the first occurrence wins.
	for _, off := range []time.Duration{max(before, after), min(before, after)} {
		if t := wall.Add(-off); offsetAt(t) == off {
			return t, nil
		}
	}
	// In a gap: wall read with the earlier offset lands after the
	// transition; the zone it lands in starts at the transition.
	if after <= before {
		return time.Time{}, errNoOffset
	}
	start, _ := wall.Add(-before).In(loc).ZoneBounds()
	if start.IsZero() {
		return time.Time{}, errNoOffset
	}
	return start.UTC(), nil
}
