package quiethours

import (
	"slices"
	"time"

	"github.com/rickar/cal/v2"
)

// Colombia's public holidays (Ley 51 de 1983, "Ley Emiliani"), computed
// for any year rather than listed, so the calendar never runs out:
//
//   - six on their date whatever the weekday;
//   - seven moved to the following Monday when they do not fall on one
//     (the Emiliani rule);
//   - five from Easter: Holy Thursday and Good Friday on their day, and
//     Ascension, Corpus Christi and Sacred Heart on the Monday after
//     (Easter + 43, + 64 and + 71 days).
//
// rickar/cal computes Easter and applies the weekday moves.
var (
	// emiliani moves a holiday to the next Monday: Tuesday +6 ... Sunday +1.
	emiliani = []cal.AltDay{
		{Day: time.Tuesday, Offset: 6},
		{Day: time.Wednesday, Offset: 5},
		{Day: time.Thursday, Offset: 4},
		{Day: time.Friday, Offset: 3},
		{Day: time.Saturday, Offset: 2},
		{Day: time.Sunday, Offset: 1},
	}

	colombianHolidays = []*cal.Holiday{
		fixed("Año Nuevo", time.January, 1),
		moved("Reyes Magos", time.January, 6),
		moved("San José", time.March, 19),
		easter("Jueves Santo", -3),
		easter("Viernes Santo", -2),
		fixed("Día del Trabajo", time.May, 1),
		easter("Ascensión del Señor", 43),
		easter("Corpus Christi", 64),
		easter("Sagrado Corazón", 71),
		moved("San Pedro y San Pablo", time.June, 29),
		fixed("Día de la Independencia", time.July, 20),
		fixed("Batalla de Boyacá", time.August, 7),
		moved("Asunción de la Virgen", time.August, 15),
		moved("Día de la Raza", time.October, 12),
		moved("Todos los Santos", time.November, 1),
		moved("Independencia de Cartagena", time.November, 11),
		fixed("Inmaculada Concepción", time.December, 8),
		fixed("Navidad", time.December, 25),
	}
)

func fixed(name string, m time.Month, d int) *cal.Holiday {
	return &cal.Holiday{Name: name, Type: cal.ObservancePublic, Month: m, Day: d, Func: cal.CalcDayOfMonth}
}

func moved(name string, m time.Month, d int) *cal.Holiday {
	h := fixed(name, m, d)
	h.Observed = emiliani
	return h
}

func easter(name string, offset int) *cal.Holiday {
	return &cal.Holiday{Name: name, Type: cal.ObservancePublic, Offset: offset, Func: cal.CalcEasterOffset}
}

// ColombianHoliday reports whether the calendar date y-m-d is a Colombian
// public holiday (the day it is observed), and its name.
func ColombianHoliday(y int, m time.Month, d int) (string, bool) {
	for _, h := range colombianHolidays {
		_, observed := h.Calc(y)
		if observed.Month() == m && observed.Day() == d {
			return h.Name, true
		}
	}
	return "", false
}

// ColombianHolidays are the year's observed holiday dates, in calendar
// order, as midnight UTC.
func ColombianHolidays(year int) []time.Time {
	out := make([]time.Time, 0, len(colombianHolidays))
	for _, h := range colombianHolidays {
		_, o := h.Calc(year)
		out = append(out, time.Date(o.Year(), o.Month(), o.Day(), 0, 0, 0, 0, time.UTC))
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}
