package availability

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// engine holds what one query shares across staff members, plus scratch
// buffers reused from one staff member to the next.
type engine struct {
	q       Query
	step    time.Duration
	window  Interval   // allowed starts: From, To, notice and horizon
	full    []Interval // resource saturated; nil when no resource is needed
	blocked []Interval // scratch
	ranges  []Interval // scratch
	gaps    []Interval // scratch
}

// scratch keeps engines between queries, so their scratch buffers are
// grown once, not for every refused claim's alternatives (a twelfth of
// the bytes the node allocated under spread).
var scratch = sync.Pool{New: func() any { return new(engine) }}

// release gives e back to scratch; nothing of it may be used after.
func (e *engine) release() {
	*e = engine{blocked: e.blocked[:0], ranges: e.ranges[:0], gaps: e.gaps[:0]}
	scratch.Put(e)
}

// newEngine validates everything Slots depends on; release the engine
// when done.
func newEngine(q Query, staff []Staff, res *Resource) (*engine, error) {
	if err := validateSlots(q, staff, res); err != nil {
		return nil, err
	}
	e := scratch.Get().(*engine)
	*e = engine{q: q, step: q.step(), window: Interval{q.From, q.To},
		blocked: e.blocked[:0], ranges: e.ranges[:0], gaps: e.gaps[:0]}
	if notBefore := q.Now.Add(q.MinNotice); notBefore.After(e.window.Start) {
		e.window.Start = notBefore
	}
	if q.Horizon > 0 {
		if notAfter := q.Now.Add(q.Horizon); notAfter.Before(e.window.End) {
			e.window.End = notAfter
		}
	}
	if q.Service.ResourceID != "" {
		var uses []Interval
		for _, b := range res.Busy {
			if b.Live(q.Now) {
				uses = append(uses, b.Padded())
			}
		}
		e.full = saturated(uses, res.Capacity)
	}
	return e, nil
}

// Slots returns every bookable (staff member, start) pair for q, sorted by
// start then staff ID. The result does not depend on the order of any input
// slice. With q.StaffID set only that staff member's slots are returned.
func Slots(q Query, staff []Staff, res *Resource) ([]Slot, error) {
	if oneStart(q) {
		return slotsAt(q, staff, res)
	}
	return slotsByGaps(q, staff, res)
}

// oneStart reports whether q's window holds a single possible start, its
// From: a window of at most a minute from a whole minute, on a grid of
// whole minutes. Working ranges begin on whole minutes (Clock), so every
// grid start is a whole minute, and From is the only one in the window.
// It is the question a refused claim asks of other staff (one start), which
// Free answers without building the window's gaps.
func oneStart(q Query) bool {
	return q.To.Sub(q.From) <= time.Minute && q.From.Truncate(time.Minute).Equal(q.From) && q.step()%time.Minute == 0
}

// slotsAt is Slots for a window whose only possible start is q.From
// (oneStart): each staff member is asked Free.
func slotsAt(q Query, staff []Staff, res *Resource) ([]Slot, error) {
	if err := validateSlots(q, staff, res); err != nil {
		return nil, err
	}
	if !q.From.Before(q.To) {
		return nil, nil
	}
	var out []Slot
	for i := range staff {
		if q.StaffID != "" && staff[i].ID != q.StaffID {
			continue
		}
		free, err := Free(q, staff[i], res, q.From)
		if err != nil {
			return nil, err
		}
		if free {
			out = append(out, Slot{q.From.UTC(), q.From.Add(q.Service.Duration).UTC(), staff[i].ID})
		}
	}
	slices.SortFunc(out, compareSlots)
	return out, nil
}

// validateSlots checks everything Slots depends on.
func validateSlots(q Query, staff []Staff, res *Resource) error {
	if err := q.validate(true); err != nil {
		return err
	}
	if err := validateResource(q.Service, res); err != nil {
		return err
	}
	found := q.StaffID == ""
	for i := range staff {
		if err := staff[i].validate(); err != nil {
			return err
		}
		for j := range i {
			if staff[j].ID == staff[i].ID {
				return invalid("staff %q listed twice", staff[i].ID)
			}
		}
		found = found || staff[i].ID == q.StaffID
	}
	if !found {
		return invalid("query: staff %q not among the staff given", q.StaffID)
	}
	return nil
}

// slotsByGaps is Slots built from each working range's free gaps.
func slotsByGaps(q Query, staff []Staff, res *Resource) ([]Slot, error) {
	e, err := newEngine(q, staff, res)
	if err != nil {
		return nil, err
	}
	defer e.release()
	var out []Slot
	for i := range staff {
		if q.StaffID == "" || staff[i].ID == q.StaffID {
			out = e.appendSlots(out, &staff[i])
		}
	}
	slices.SortFunc(out, compareSlots)
	return out, nil
}

func compareSlots(a, b Slot) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	return cmp.Compare(a.StaffID, b.StaffID)
}

// appendSlots appends s's slots in time order. For each working range it
// takes the free gaps around the range (the range widened by the service's
// buffers, minus everything blocked) and walks the grid through each gap: a
// start is bookable exactly when its padded interval fits in one gap.
func (e *engine) appendSlots(out []Slot, s *Staff) []Slot {
	sv := e.q.Service
	if e.window.Empty() || !qualified(s, sv) {
		return out
	}
	// Only what a padded slot starting in the window can touch matters, so
	// a calendar holding months of appointments costs a day's worth.
	reach := Interval{e.window.Start.Add(-sv.BufferBefore), e.window.End.Add(sv.Duration + sv.BufferAfter)}
	e.blocked = slices.Grow(e.blocked[:0], len(s.Busy)+len(s.TimeOff)+len(e.full))
	for _, b := range s.Busy {
		if p := b.Padded(); b.Live(e.q.Now) && p.Overlaps(reach) {
			e.blocked = append(e.blocked, p)
		}
	}
	for _, iv := range s.TimeOff {
		if iv.Overlaps(reach) {
			e.blocked = append(e.blocked, iv)
		}
	}
	e.blocked = append(e.blocked, e.full...)
	e.blocked = mergeInPlace(e.blocked)

	// A range of the day before the window's first local date can reach
	// into it only through DST oddities at midnight; one extra day is cheap.
	first := DateOf(e.window.Start.In(s.Location)).AddDays(-1)
	last := DateOf(e.window.End.In(s.Location))
	e.ranges = e.ranges[:0]
	for d := first; !dateAfter(d, last); d = d.AddDays(1) {
		e.ranges = appendDayRanges(e.ranges, s, d)
	}
	for _, r := range e.ranges {
		if !r.End.After(e.window.Start) || !r.Start.Before(e.window.End) {
			continue
		}
		padded := Interval{r.Start.Add(-sv.BufferBefore), r.End.Add(sv.BufferAfter)}
		e.gaps = appendGaps(e.gaps[:0], padded, e.blocked)
		for _, g := range e.gaps {
			out = e.appendGrid(out, s.ID, r, g)
		}
	}
	return out
}

// appendGrid appends the grid starts of working range r whose padded
// interval lies in gap g and whose start lies in the query window.
func (e *engine) appendGrid(out []Slot, staffID string, r, g Interval) []Slot {
	sv := e.q.Service
	lo := latest(r.Start, g.Start.Add(sv.BufferBefore), e.window.Start)
	k := (lo.Sub(r.Start) + e.step - 1) / e.step // lo >= r.Start, so k >= 0
	for start := r.Start.Add(k * e.step); start.Before(e.window.End); start = start.Add(e.step) {
		end := start.Add(sv.Duration)
		if end.After(r.End) || end.Add(sv.BufferAfter).After(g.End) {
			break
		}
		out = append(out, Slot{start.UTC(), end.UTC(), staffID})
	}
	return out
}

func latest(t time.Time, more ...time.Time) time.Time {
	for _, u := range more {
		if u.After(t) {
			t = u
		}
	}
	return t
}

func dateAfter(a, b Date) bool {
	return cmp.Or(cmp.Compare(a.Year, b.Year), cmp.Compare(a.Month, b.Month), cmp.Compare(a.Day, b.Day)) > 0
}

// AnyStaff answers "any therapist": one slot per start time offered by at
// least one qualified staff member, given to the free one with the smallest
// Load so work is spread fairly; ties go to the smallest staff ID so the
// answer is deterministic.
func AnyStaff(q Query, staff []Staff, res *Resource) ([]Slot, error) {
	all, err := Slots(q, staff, res)
	if err != nil {
		return nil, err
	}
	load := make(map[string]int, len(staff))
	for _, s := range staff {
		load[s.ID] = s.Load
	}
	out := all[:0] // all is sorted by start, then ID: keep the best of each run
	for _, sl := range all {
		n := len(out)
		if n > 0 && out[n-1].Start.Equal(sl.Start) {
			if load[sl.StaffID] < load[out[n-1].StaffID] {
				out[n-1] = sl
			}
			continue
		}
		out = append(out, sl)
	}
	return out, nil
}

// Free reports whether s can take q.Service starting exactly at start, with
// the same rules as Slots. It is what a schedule actor calls to decide a
// claim: q.From, q.To and q.StaffID are ignored because the question is about
// one instant and one staff member. It checks the inputs directly rather
// than building Slots' data structures, which keeps a claim cheap and gives
// the tests an independent second implementation.
func Free(q Query, s Staff, res *Resource, start time.Time) (bool, error) {
	if err := q.validate(false); err != nil {
		return false, err
	}
	if err := validateResource(q.Service, res); err != nil {
		return false, err
	}
	if err := s.validate(); err != nil {
		return false, err
	}
	sv := q.Service
	if start.Before(q.Now.Add(q.MinNotice)) || (q.Horizon > 0 && !start.Before(q.Now.Add(q.Horizon))) {
		return false, nil
	}
	if !qualified(&s, sv) || !onGrid(&s, start, sv.Duration, q.step()) {
		return false, nil
	}
	padded := Interval{start.Add(-sv.BufferBefore), start.Add(sv.Duration + sv.BufferAfter)}
	for _, b := range s.Busy {
		if b.Live(q.Now) && b.Padded().Overlaps(padded) {
			return false, nil
		}
	}
	for _, off := range s.TimeOff {
		if off.Overlaps(padded) {
			return false, nil
		}
	}
	if sv.ResourceID != "" {
		var uses []Interval
		for _, b := range res.Busy {
			if u := b.Padded(); b.Live(q.Now) && u.Overlaps(padded) {
				uses = append(uses, Interval{latest(u.Start, padded.Start), earliest(u.End, padded.End)})
			}
		}
		if maxOverlap(uses) >= res.Capacity {
			return false, nil
		}
	}
	return true, nil
}

// onGrid reports whether [start, start+d) lies in one of s's working ranges
// and start is on that range's grid.
func onGrid(s *Staff, start time.Time, d, step time.Duration) bool {
	day := DateOf(start.In(s.Location))
	var buf [8]Interval
	for dd := -1; dd <= 1; dd++ {
		for _, r := range appendDayRanges(buf[:0], s, day.AddDays(dd)) {
			if !start.Before(r.Start) && !start.Add(d).After(r.End) && start.Sub(r.Start)%step == 0 {
				return true
			}
		}
	}
	return false
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Alternatives proposes up to limit slots to a client whose claim on wanted
// was refused: first the same staff member's other slots, nearest in time to
// wanted.Start on either side (the earlier one first on a tie), then other
// qualified staff at the same start time, least loaded first (then by ID).
// It never returns wanted itself. q.From and q.To bound the search (a day is
// typical); q.StaffID is ignored. Invalid input yields nil: by the time a
// claim is refused the actor has already validated it through Free.
func Alternatives(q Query, staff []Staff, res *Resource, wanted Slot, limit int) []Slot {
	if limit <= 0 {
		return nil
	}
	q.StaffID = ""
	all, err := Slots(q, staff, res)
	if err != nil {
		return nil
	}
	load := make(map[string]int, len(staff))
	for _, s := range staff {
		load[s.ID] = s.Load
	}
	var same, others []Slot
	for _, sl := range all {
		switch {
		case sl.StaffID == wanted.StaffID && !sl.Start.Equal(wanted.Start):
			same = append(same, sl)
		case sl.StaffID != wanted.StaffID && sl.Start.Equal(wanted.Start):
			others = append(others, sl)
		}
	}
	distance := func(t time.Time) time.Duration {
		d := t.Sub(wanted.Start)
		return max(d, -d)
	}
	slices.SortStableFunc(same, func(a, b Slot) int { // stable: all is sorted by start
		return cmp.Compare(distance(a.Start), distance(b.Start))
	})
	slices.SortFunc(others, func(a, b Slot) int {
		return cmp.Or(cmp.Compare(load[a.StaffID], load[b.StaffID]), cmp.Compare(a.StaffID, b.StaffID))
	})
	out := append(same, others...)
	return out[:min(len(out), limit)]
}
