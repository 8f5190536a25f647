package availability

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseClock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Clock
		ok   bool
	}{
		{"00:00", 0, true},
		{"09:30", 9*60 + 30, true},
		{"23:59", 23*60 + 59, true},
		{"24:00", EndOfDay, true},
		{"24:01", 0, false},
		{"25:00", 0, false},
		{"09:60", 0, false},
		{"9:00", 0, false},
		{"09-00", 0, false},
		{"0a:00", 0, false},
		{"", 0, false},
		{"-1:00", 0, false},
	} {
		got, err := ParseClock(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseClock(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseClock(%q) error %v does not wrap ErrInvalid", tc.in, err)
		}
	}
}

func TestClockRangeValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"09:00-13:00", true},
		{"00:00-24:00", true},
		{"13:00-09:00", false}, // inverted
		{"09:00-09:00", false}, // empty
		{"09:00 13:00", false},
		{"09:00-24:30", false},
	} {
		if _, err := ParseClockRange(tc.in); (err == nil) != tc.ok {
			t.Errorf("ParseClockRange(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
	if _, err := NewClockRange(-5, 60); err == nil {
		t.Error("negative start accepted")
	}
}

func TestNewWeeklyHours(t *testing.T) {
	t.Parallel()
	ok := map[time.Weekday][]ClockRange{
		time.Monday:  ranges(t, "14:00-19:00", "09:00-13:00", "20:00-21:00"), // unsorted
		time.Tuesday: ranges(t, "12:00-15:00", "09:00-12:00"),                // touching: one shift
		time.Friday:  ranges(t, "09:00-17:00", "10:00-11:00", "16:00-18:00"), // nested, overlapping
	}
	w, err := NewWeeklyHours(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.On(time.Monday); len(got) != 3 || got[0].Start != clock(t, "09:00") || got[2].Start != clock(t, "20:00") {
		t.Errorf("Monday not sorted: %v", got)
	}
	if got, want := w.On(time.Tuesday), ranges(t, "09:00-15:00"); !slices.Equal(got, want) {
		t.Errorf("touching Tuesday = %v, want %v", got, want)
	}
	if got, want := w.On(time.Friday), ranges(t, "09:00-18:00"); !slices.Equal(got, want) {
		t.Errorf("overlapping Friday = %v, want %v", got, want)
	}
	if len(w.On(time.Sunday)) != 0 {
		t.Error("Sunday should be closed")
	}
	bad := []map[time.Weekday][]ClockRange{
		{time.Monday: {{Start: 600, End: 500}}},                                           // inverted literal
		{time.Monday: {{Start: 0, End: EndOfDay + 1}}},                                    // past midnight
		{time.Weekday(7): ranges(t, "09:00-10:00")},                                       // no such day
		{time.Friday: append(ranges(t, "09:00-17:00"), ClockRange{Start: 700, End: 700})}, // empty beside a good one
	}
	for i, days := range bad {
		if _, err := NewWeeklyHours(days); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: err = %v, want ErrInvalid", i, err)
		}
	}
}

func TestOverrideConstructors(t *testing.T) {
	t.Parallel()
	d := Date{2025, time.December, 24}
	if o := ClosedOn(d); !o.Closed() {
		t.Error("ClosedOn not closed")
	}
	o, err := OpenOn(d, ranges(t, "16:00-20:00", "08:00-12:00")...)
	if err != nil || o.Closed() || o.Ranges()[0].Start != clock(t, "08:00") {
		t.Errorf("OpenOn = %v, %v", o, err)
	}
	if _, err := OpenOn(d); err == nil {
		t.Error("OpenOn without ranges accepted")
	}
	if _, err := OpenOn(Date{2025, time.February, 30}, ranges(t, "08:00-12:00")...); err == nil {
		t.Error("February 30th accepted")
	}
	if o, err := OpenOn(d, ranges(t, "08:00-12:00", "11:00-13:00")...); err != nil || !slices.Equal(o.Ranges(), ranges(t, "08:00-13:00")) {
		t.Errorf("overlapping override ranges = %v, %v; want one 08:00-13:00", o.Ranges(), err)
	}
}

func TestDate(t *testing.T) {
	t.Parallel()
	d := Date{2024, time.February, 28}
	if got := d.AddDays(1); got != (Date{2024, time.February, 29}) {
		t.Errorf("leap day: %v", got)
	}
	if got := d.AddDays(2); got != (Date{2024, time.March, 1}) {
		t.Errorf("after leap day: %v", got)
	}
	if got := (Date{2025, time.January, 1}).AddDays(-1); got != (Date{2024, time.December, 31}) {
		t.Errorf("back a year: %v", got)
	}
	if d.Weekday() != time.Wednesday || d.String() != "2024-02-28" {
		t.Errorf("weekday/string: %v %v", d.Weekday(), d)
	}
}

// TestInstantDST pins the DST rules documented on instant and checks them
// against a brute-force oracle for every minute of the transition days.
func TestInstantDST(t *testing.T) {
	t.Parallel()
	ny, madrid, bogota := mustLoad(t, "America/New_York"), mustLoad(t, "Europe/Madrid"), mustLoad(t, "America/Bogota")
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	for _, tc := range []struct {
		name string
		loc  *time.Location
		d    Date
		c    string
		want time.Time
	}{
		{"ny normal", ny, Date{2025, 3, 8}, "09:00", utc("2025-03-08T14:00:00Z")},
		{"ny spring before gap", ny, Date{2025, 3, 9}, "01:59", utc("2025-03-09T06:59:00Z")},
		{"ny spring in gap maps to transition", ny, Date{2025, 3, 9}, "02:30", utc("2025-03-09T07:00:00Z")},
		{"ny spring gap start", ny, Date{2025, 3, 9}, "02:00", utc("2025-03-09T07:00:00Z")},
		{"ny spring after gap", ny, Date{2025, 3, 9}, "03:00", utc("2025-03-09T07:00:00Z")},
		{"ny fall ambiguous first occurrence", ny, Date{2025, 11, 2}, "01:30", utc("2025-11-02T05:30:00Z")},
		{"ny fall after", ny, Date{2025, 11, 2}, "02:00", utc("2025-11-02T07:00:00Z")},
		{"ny 24:00 is next midnight", ny, Date{2025, 3, 8}, "24:00", utc("2025-03-09T05:00:00Z")},
		{"madrid spring gap", madrid, Date{2025, 3, 30}, "02:30", utc("2025-03-30T01:00:00Z")},
		{"madrid fall ambiguous", madrid, Date{2025, 10, 26}, "02:30", utc("2025-10-26T00:30:00Z")},
		{"bogota", bogota, Date{2025, 6, 1}, "09:00", utc("2025-06-01T14:00:00Z")},
	} {
		if got := instant(tc.d, clock(t, tc.c), tc.loc); !got.Equal(tc.want) {
			t.Errorf("%s: instant = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, day := range []struct {
		loc *time.Location
		d   Date
	}{
		{ny, Date{2025, 3, 9}}, {ny, Date{2025, 11, 2}}, {madrid, Date{2025, 3, 30}}, {madrid, Date{2025, 10, 26}},
		{mustLoad(t, "Australia/Lord_Howe"), Date{2025, 4, 6}}, // 30-minute shift
	} {
		prev := time.Time{}
		for c := Clock(0); c <= EndOfDay; c++ {
			got, want := instant(day.d, c, day.loc), bruteInstant(day.d, c, day.loc)
			if !got.Equal(want) {
				t.Fatalf("%s %v %v: instant = %v, oracle %v", day.loc, day.d, c, got, want)
			}
			if got.Before(prev) {
				t.Fatalf("%s %v %v: not monotone", day.loc, day.d, c)
			}
			prev = got
		}
	}
}

func TestDayRangesDST(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	s := Staff{ID: "a", Location: ny, Hours: everyDay(t, "00:00-00:30", "01:00-03:00", "09:00-17:00")}
	length := func(d Date) []time.Duration {
		var out []time.Duration
		for _, r := range appendDayRanges(nil, &s, d) {
			out = append(out, r.End.Sub(r.Start))
		}
		return out
	}
	h := time.Hour
	for _, tc := range []struct {
		d    Date
		want []time.Duration
	}{
		{Date{2025, 3, 8}, []time.Duration{h / 2, 2 * h, 8 * h}},
		{Date{2025, 3, 9}, []time.Duration{h / 2, h, 8 * h}},      // 23-hour day: gap shortens 01-03
		{Date{2025, 11, 2}, []time.Duration{h / 2, 3 * h, 8 * h}}, // 25-hour day: 01-03 is 3h
	} {
		got := length(tc.d)
		if len(got) != len(tc.want) {
			t.Fatalf("%v: %v, want %v", tc.d, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v range %d: %v, want %v", tc.d, i, got[i], tc.want[i])
			}
		}
	}
	// A range wholly inside the gap vanishes that day.
	s.Hours = everyDay(t, "02:00-02:45")
	if got := appendDayRanges(nil, &s, Date{2025, 3, 9}); len(got) != 0 {
		t.Errorf("gap range kept: %v", got)
	}
}

func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"00:00", "24:00", "9:00", "23:59", "99:99", "12:3x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClock(s)
		if err != nil {
			return
		}
		if c < 0 || c > EndOfDay {
			t.Fatalf("ParseClock(%q) = %d out of day", s, c)
		}
		if c.String() != s {
			t.Fatalf("ParseClock(%q) round-trips to %q", s, c.String())
		}
	})
}

func FuzzParseClockRange(f *testing.F) {
	for _, s := range []string{"09:00-13:00", "00:00-24:00", "13:00-09:00", "09:00-09:00", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseClockRange(s)
		if err != nil {
			return
		}
		if !(0 <= r.Start && r.Start < r.End && r.End <= EndOfDay) {
			t.Fatalf("ParseClockRange(%q) = %v accepted an invalid range", s, r)
		}
		if r.String() != s {
			t.Fatalf("ParseClockRange(%q) round-trips to %q", s, r.String())
		}
		if w, err := NewWeeklyHours(map[time.Weekday][]ClockRange{time.Monday: {r, r}}); err != nil || !slices.Equal(w.On(time.Monday), []ClockRange{r}) {
			t.Fatalf("a range twice = %v, %v; want it once", w.On(time.Monday), err)
		}
	})
}
