package availability

import (
	"testing"
	"time"
)

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func clock(tb testing.TB, s string) Clock {
	tb.Helper()
	c, err := ParseClock(s)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func cr(tb testing.TB, s string) ClockRange {
	tb.Helper()
	r, err := ParseClockRange(s)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// ranges parses "09:00-13:00 14:00-19:00".
func ranges(tb testing.TB, specs ...string) []ClockRange {
	tb.Helper()
	out := make([]ClockRange, 0, len(specs))
	for _, s := range specs {
		out = append(out, cr(tb, s))
	}
	return out
}

// everyDay returns weekly hours with the same ranges on all seven days.
func everyDay(tb testing.TB, specs ...string) WeeklyHours {
	tb.Helper()
	days := map[time.Weekday][]ClockRange{}
	for d := time.Sunday; d <= time.Saturday; d++ {
		days[d] = ranges(tb, specs...)
	}
	w, err := NewWeeklyHours(days)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// naive reads t's wall clock in its location as if it were UTC, so wall
// times can be compared across offsets.
func naive(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// bruteInstant is the test oracle for instant: the first instant, scanning
// minute by minute, whose wall clock in loc has reached (d, c).
func bruteInstant(d Date, c Clock, loc *time.Location) time.Time {
	want := time.Date(d.Year, d.Month, d.Day, 0, int(c), 0, 0, time.UTC)
	hint := time.Date(d.Year, d.Month, d.Day, 0, int(c), 0, 0, loc)
	from := hint.Add(-3 * time.Hour)
	if !naive(from.In(loc)).Before(want) {
		panic("bruteInstant: scan starts too late")
	}
	for t := from; t.Before(hint.Add(3 * time.Hour)); t = t.Add(time.Minute) {
		if !naive(t.In(loc)).Before(want) {
			return t
		}
	}
	panic("bruteInstant: not found")
}
