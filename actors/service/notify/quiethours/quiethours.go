// Package quiethours is when a client may be contacted with a message
// they did not ask for (marketing): by default the Colombian contact
// windows of Ley 2300 de 2023 — Monday to Friday 7:00 to 19:00, Saturday
// 8:00 to 15:00, never on Sundays or Colombian public holidays — in the
// client's time zone. A Policy answers three questions about an instant:
// may a message go now (Allowed), when is the next moment it may
// (Next: the notification service delays marketing to it), and the last
// moment before it that it may (Previous: reminders move earlier to it).
package quiethours

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window is a span of one day's local clock, both ends included, in
// minutes after midnight: {7 * 60, 19 * 60} is 7:00 to 19:00.
type Window struct{ From, To int }

// Policy is the contact windows of each weekday, closed on Colombian
// public holidays, read in one time zone. The zero Policy allows nothing;
// use Colombia, Parse or Open. A Policy is a value: safe to share.
type Policy struct {
	open     bool
	days     [7][]Window // by time.Weekday, sorted, not overlapping
	holidays bool        // closed on Colombian public holidays
	loc      *time.Location
}

// Open is the policy with no quiet hours: every moment is allowed.
func Open() Policy { return Policy{open: true, loc: time.UTC} }

// Colombia is the default policy in loc (UTC when nil): Monday to Friday
// 7:00–19:00, Saturday 8:00–15:00, closed on Sundays and holidays.
func Colombia(loc *time.Location) Policy {
	p := Policy{holidays: true, loc: orUTC(loc)}
	for d := time.Monday; d <= time.Friday; d++ {
		p.days[d] = []Window{{7 * 60, 19 * 60}}
	}
	p.days[time.Saturday] = []Window{{8 * 60, 15 * 60}}
	return p
}

// DefaultSpec is Colombia written as Parse reads it.
const DefaultSpec = "mon-fri 07:00-19:00; sat 08:00-15:00; holidays closed"

// Parse reads a policy: "off" (no quiet hours), "" (Colombia), or
// windows separated by ";", each a day or a range of days and one or
// more clock ranges, plus "holidays closed" or "holidays open":
//
//	mon-fri 07:00-19:00; sat 08:00-15:00; holidays closed
//	mon-sat 09:00-12:00,14:00-18:00; holidays open
//
// Days not named are closed; holidays are closed unless "holidays open".
func Parse(spec string, loc *time.Location) (Policy, error) {
	spec = strings.TrimSpace(strings.ToLower(spec))
	switch spec {
	case "":
		return Colombia(loc), nil
	case "off", "none":
		return Open(), nil
	}
	p := Policy{holidays: true, loc: orUTC(loc)}
	for part := range strings.SplitSeq(spec, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return Policy{}, fmt.Errorf("quiet hours %q: want DAYS HH:MM-HH:MM[,HH:MM-HH:MM]", part)
		}
		if fields[0] == "holidays" {
			switch fields[1] {
			case "closed":
				p.holidays = true
			case "open":
				p.holidays = false
			default:
				return Policy{}, fmt.Errorf("quiet hours %q: holidays are open or closed", part)
			}
			continue
		}
		days, err := parseDays(fields[0])
		if err != nil {
			return Policy{}, err
		}
		var ws []Window
		for r := range strings.SplitSeq(fields[1], ",") {
			w, err := parseWindow(r)
			if err != nil {
				return Policy{}, err
			}
			ws = append(ws, w)
		}
		for _, d := range days {
			if len(p.days[d]) > 0 {
				return Policy{}, fmt.Errorf("quiet hours: %s is given twice", d)
			}
			p.days[d] = ws
		}
	}
	empty := true
	for d := range p.days {
		slices.SortFunc(p.days[d], func(a, b Window) int { return a.From - b.From })
		for i := 1; i < len(p.days[d]); i++ {
			if p.days[d][i].From <= p.days[d][i-1].To {
				return Policy{}, fmt.Errorf("quiet hours: the windows of %s overlap", time.Weekday(d))
			}
		}
		empty = empty && len(p.days[d]) == 0
	}
	if empty {
		return Policy{}, errors.New(`quiet hours: no window at all (use "off" for none)`)
	}
	return p, nil
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// parseDays reads "mon", or "mon-fri" (a range going forward, so "sat-mon"
// is Saturday, Sunday and Monday).
func parseDays(s string) ([]time.Weekday, error) {
	from, to, isRange := strings.Cut(s, "-")
	a, ok1 := dayNames[from]
	b, ok2 := dayNames[to]
	if !isRange {
		b, ok2 = a, ok1
	}
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("quiet hours: %q is not a day or days (mon, mon-fri)", s)
	}
	out := []time.Weekday{a}
	for d := a; d != b; {
		d = (d + 1) % 7
		out = append(out, d)
	}
	return out, nil
}

func parseWindow(s string) (Window, error) {
	from, to, ok := strings.Cut(s, "-")
	f, err1 := parseClock(from)
	t, err2 := parseClock(to)
	if !ok || err1 != nil || err2 != nil || t <= f {
		return Window{}, fmt.Errorf("quiet hours: %q is not a time range (07:00-19:00)", s)
	}
	return Window{f, t}, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * 60, nil
		}
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// In is the same policy read in loc (the client's time zone); p's own
// when loc is nil.
func (p Policy) In(loc *time.Location) Policy {
	if loc != nil {
		p.loc = loc
	}
	return p
}

// Location is the time zone p reads clocks in.
func (p Policy) Location() *time.Location { return orUTC(p.loc) }

// IsOpen reports whether p has no quiet hours at all.
func (p Policy) IsOpen() bool { return p.open }

// windows are the spans of the local day y-m-d as instants, in order; none on
// a closed day (Sunday by default, a holiday).
func (p Policy) windows(y int, m time.Month, d int) [][2]time.Time {
	loc := p.Location()
	day := time.Date(y, m, d, 12, 0, 0, 0, loc) // d may be past the month's end
	y, m, d = day.Date()
	if p.holidays {
		if _, ok := ColombianHoliday(y, m, d); ok {
			return nil
		}
	}
	ws := p.days[day.Weekday()]
	out := make([][2]time.Time, len(ws))
	for i, w := range ws {
		out[i] = [2]time.Time{
			time.Date(y, m, d, w.From/60, w.From%60, 0, 0, loc),
			time.Date(y, m, d, w.To/60, w.To%60, 0, 0, loc),
		}
	}
	return out
}

// horizon bounds the search for a window: a policy with at least one
// window has one within any 8 days but for holidays, which never close
// more than a few days in a row.
const horizon = 31

// Allowed reports whether a message may go at t.
func (p Policy) Allowed(t time.Time) bool {
	if p.open {
		return true
	}
	lt := t.In(p.Location())
	for _, w := range p.windows(lt.Date()) {
		if !t.Before(w[0]) && !t.After(w[1]) {
			return true
		}
	}
	return false
}

// Next is the first moment at or after t a message may go: t itself
// when Allowed(t). The zero time when p allows nothing (the zero Policy).
func (p Policy) Next(t time.Time) time.Time {
	if p.open {
		return t
	}
	lt := t.In(p.Location())
	y, m, d := lt.Date()
	for i := range horizon {
		for _, w := range p.windows(y, m, d+i) {
			if !t.After(w[1]) {
				if t.Before(w[0]) {
					return w[0]
				}
				return t
			}
		}
	}
	return time.Time{}
}

// Previous is the last moment at or before t a message may go: t itself
// when Allowed(t), else the end of the last window before it (a reminder
// due on Sunday morning goes on Saturday at 15:00). The zero time when p
// allows nothing.
func (p Policy) Previous(t time.Time) time.Time {
	if p.open {
		return t
	}
	lt := t.In(p.Location())
	y, m, d := lt.Date()
	for i := range horizon {
		ws := p.windows(y, m, d-i)
		for j := len(ws) - 1; j >= 0; j-- {
			w := ws[j]
			if !t.Before(w[0]) {
				if t.After(w[1]) {
					return w[1]
				}
				return t
			}
		}
	}
	return time.Time{}
}

// Delay is how long a message due at t waits: Next(t) - t; 0 when it may
// go at once.
func (p Policy) Delay(t time.Time) time.Duration {
	n := p.Next(t)
	if n.IsZero() {
		return 0
	}
	return n.Sub(t)
}

// String is p as Parse reads it.
func (p Policy) String() string {
	if p.open {
		return "off"
	}
	var parts []string
	for i := range 7 {
		d := time.Weekday((i + 1) % 7) // Monday first
		if len(p.days[d]) == 0 {
			continue
		}
		var rs []string
		for _, w := range p.days[d] {
			rs = append(rs, fmt.Sprintf("%02d:%02d-%02d:%02d", w.From/60, w.From%60, w.To/60, w.To%60))
		}
		parts = append(parts, strings.ToLower(d.String()[:3])+" "+strings.Join(rs, ","))
	}
	if p.holidays {
		parts = append(parts, "holidays closed")
	} else {
		parts = append(parts, "holidays open")
	}
	return strings.Join(parts, "; ")
}
