package quiethours

import (
	"testing"
	"time"
)

// The official lists of Colombian public holidays (Ministerio del
// Trabajo; the calendar published for 2026 and 2027).
var official = map[int][]string{
	2026: {"01-01", "01-12", "03-23", "04-02", "04-03", "05-01", "05-18", "06-08", "06-15", "06-29",
		"07-20", "08-07", "08-17", "10-12", "11-02", "11-16", "12-08", "12-25"},
	2027: {"01-01", "01-11", "03-22", "03-25", "03-26", "05-01", "05-10", "05-31", "06-07", "07-05",
		"07-20", "08-07", "08-16", "10-18", "11-01", "11-15", "12-08", "12-25"},
}

func TestColombianHolidaysMatchTheOfficialLists(t *testing.T) {
	for year, want := range official {
		got := ColombianHolidays(year)
		if len(got) != len(want) {
			t.Fatalf("%d: %d holidays, want %d: %v", year, len(got), len(want), got)
		}
		for i, d := range got {
			if s := d.Format("01-02"); s != want[i] {
				t.Errorf("%d: holiday %d is %s, want %s", year, i, s, want[i])
			}
		}
		// And every day of the year agrees: the listed ones are holidays,
		// no other day is.
		listed := map[string]bool{}
		for _, s := range want {
			listed[s] = true
		}
		for d := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == year; d = d.AddDate(0, 0, 1) {
			_, ok := ColombianHoliday(d.Date())
			if ok != listed[d.Format("01-02")] {
				t.Errorf("%s: holiday %v, official list says %v", d.Format(time.DateOnly), ok, !ok)
			}
		}
	}
}

func TestEmilianiMovesToMondayAndKeepsMondays(t *testing.T) {
	// San Pedro 29 June 2026 is a Monday: it stays; in 2027 it is a
	// Tuesday: it moves to 5 July, and 29 June is a working day.
	if name, ok := ColombianHoliday(2026, time.June, 29); !ok || name != "San Pedro y San Pablo" {
		t.Fatalf("29 June 2026 = %q, %v", name, ok)
	}
	if _, ok := ColombianHoliday(2027, time.June, 29); ok {
		t.Fatal("29 June 2027 (a Tuesday) is not the holiday; it moves to Monday")
	}
	for _, d := range ColombianHolidays(2027) {
		name, _ := ColombianHoliday(d.Date())
		moved := map[string]bool{"Reyes Magos": true, "San José": true, "Ascensión del Señor": true, "Corpus Christi": true,
			"Sagrado Corazón": true, "San Pedro y San Pablo": true, "Asunción de la Virgen": true, "Día de la Raza": true,
			"Todos los Santos": true, "Independencia de Cartagena": true}
		if moved[name] && d.Weekday() != time.Monday {
			t.Errorf("%s on %s, a %s", name, d.Format(time.DateOnly), d.Weekday())
		}
	}
}

var bogota = mustLoad("America/Bogota")

func mustLoad(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, bogota)
	if err != nil {
		panic(err)
	}
	return t
}

func TestColombiaAllowed(t *testing.T) {
	p := Colombia(bogota)
	for _, c := range []struct {
		at   string
		want bool
	}{
		{"2026-12-07 06:59", false}, // Monday before 7
		{"2026-12-07 07:00", true},
		{"2026-12-07 19:00", true}, // the end is included
		{"2026-12-07 19:01", false},
		{"2026-12-08 10:00", false}, // Tuesday, Inmaculada Concepción
		{"2026-12-12 08:00", true},  // Saturday
		{"2026-12-12 15:01", false},
		{"2026-12-13 10:00", false}, // Sunday
		{"2027-01-11 10:00", false}, // Reyes moved to Monday
		{"2027-01-06 10:00", true},  // ... so the 6th is a working day
	} {
		if got := p.Allowed(at(c.at)); got != c.want {
			t.Errorf("Allowed(%s) = %v, want %v", c.at, got, c.want)
		}
	}
}

func TestColombiaNextAndPrevious(t *testing.T) {
	p := Colombia(bogota)
	for _, c := range []struct{ at, next, prev string }{
		{"2026-12-07 10:00", "2026-12-07 10:00", "2026-12-07 10:00"}, // allowed: itself
		{"2026-12-13 22:00", "2026-12-14 07:00", "2026-12-12 15:00"}, // Sunday night
		{"2026-12-12 16:00", "2026-12-14 07:00", "2026-12-12 15:00"}, // Saturday afternoon
		{"2026-12-07 20:00", "2026-12-09 07:00", "2026-12-07 19:00"}, // Monday night, Tuesday a holiday
		{"2026-12-09 05:00", "2026-12-09 07:00", "2026-12-07 19:00"}, // the morning after the holiday
		{"2026-12-24 20:00", "2026-12-26 08:00", "2026-12-24 19:00"}, // Christmas Friday, then Saturday
		{"2026-04-02 09:00", "2026-04-04 08:00", "2026-04-01 19:00"}, // Holy Thursday and Good Friday
	} {
		if got := p.Next(at(c.at)); !got.Equal(at(c.next)) {
			t.Errorf("Next(%s) = %s, want %s", c.at, got.In(bogota), c.next)
		}
		if got := p.Previous(at(c.at)); !got.Equal(at(c.prev)) {
			t.Errorf("Previous(%s) = %s, want %s", c.at, got.In(bogota), c.prev)
		}
		if d := p.Delay(at(c.at)); d != at(c.next).Sub(at(c.at)) {
			t.Errorf("Delay(%s) = %s", c.at, d)
		}
	}
}

func TestInReadsTheClientsClock(t *testing.T) {
	// 13:00 UTC on a Monday is 8:00 in Bogotá (allowed) and 5:00 in Los
	// Angeles (not yet).
	mon := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	p := Colombia(bogota)
	if !p.Allowed(mon) {
		t.Fatal("8:00 in Bogotá is allowed")
	}
	la := p.In(mustLoad("America/Los_Angeles"))
	if la.Allowed(mon) {
		t.Fatal("5:00 in Los Angeles is not")
	}
	if got, want := la.Next(mon), time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("Next in Los Angeles = %s, want %s (7:00 there)", got, want)
	}
}

func TestParse(t *testing.T) {
	p, err := Parse("", bogota)
	if err != nil || p.String() != Colombia(bogota).String() {
		t.Fatalf("empty = %v, %v", p, err)
	}
	d, err := Parse(DefaultSpec, bogota)
	if err != nil || d.String() != Colombia(bogota).String() {
		t.Fatalf("DefaultSpec = %q, %v; want %q", d.String(), err, Colombia(bogota).String())
	}
	off, err := Parse("off", bogota)
	if err != nil || !off.IsOpen() || !off.Allowed(at("2026-12-13 03:00")) {
		t.Fatalf("off = %v, %v", off, err)
	}
	c, err := Parse("sat-sun 09:00-12:00,14:00-18:00; holidays open", bogota)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Allowed(at("2026-12-13 10:00")) || c.Allowed(at("2026-12-13 13:00")) || c.Allowed(at("2026-12-14 10:00")) {
		t.Fatalf("custom policy %s misreads", c)
	}
	if got := c.Next(at("2026-12-13 12:30")); !got.Equal(at("2026-12-13 14:00")) {
		t.Fatalf("Next between windows = %s", got)
	}
	for _, bad := range []string{"mon 07:00", "xyz 07:00-08:00", "mon 19:00-07:00", "mon 07:00-09:00,08:00-10:00",
		"mon 07:00-08:00; mon 09:00-10:00", "holidays maybe", "holidays closed"} {
		if _, err := Parse(bad, bogota); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestZeroPolicyAllowsNothing(t *testing.T) {
	var p Policy
	now := at("2026-12-07 10:00")
	if p.Allowed(now) || !p.Next(now).IsZero() || !p.Previous(now).IsZero() {
		t.Fatal("the zero policy allows nothing")
	}
}
