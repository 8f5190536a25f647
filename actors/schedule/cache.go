package schedule

import (
	"slices"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/persistence"
)

// memo keeps what the actor computed from its calendar as it stands, so a
// burst of claims on a full day (the peak-hour case) or of availability
// reads costs one computation instead of one per message. It is exact, not
// merely recent: everything in it is dropped when the calendar changes
// (version) or a live hold lapses (the first expiry after it was built),
// and the clock's other effect, the notice, is applied to each answer
// (see slotsIn). Its calendar view is the snapshot the actor publishes.
type memo struct {
	view    *snapshot // the calendar at view.version (nil: none built yet)
	results memoResults
}

// memoResults holds the computed answers: a short list while there are
// few (an idle calendar keeps one, so it stays small in memory), a map
// once there are many (a hot day's refused starts).
type memoResults struct {
	few  []memoEntry
	many map[memoKey]memoResult
}

type memoEntry struct {
	key memoKey
	memoResult
}

// memoFew is how many answers the list holds before the map takes over.
const memoFew = 8

func (r *memoResults) get(k memoKey) (memoResult, bool) {
	if r.many != nil {
		v, ok := r.many[k]
		return v, ok
	}
	for _, e := range r.few {
		if e.key == k {
			return e.memoResult, true
		}
	}
	return memoResult{}, false
}

func (r *memoResults) put(k memoKey, v memoResult) {
	switch {
	case r.many == nil && len(r.few) < memoFew:
		r.few = append(r.few, memoEntry{k, v})
		return
	case r.many == nil:
		r.many = make(map[memoKey]memoResult, 2*memoFew)
		for _, e := range r.few {
			r.many[e.key] = e.memoResult
		}
		r.few = nil
	case len(r.many) >= memoLimit:
		clear(r.many)
	}
	r.many[k] = v
}

func (r *memoResults) reset() {
	clear(r.few)
	r.few = r.few[:0]
	clear(r.many)
}

// memoLimit bounds the results kept per calendar version: a day's grid
// of refused starts in the hot case, a few weeks of reads otherwise.
const memoLimit = 512

type memoKind uint8

const (
	memoSlots memoKind = iota + 1
	memoAlternatives
	memoFree
)

// memoKey names one computation. The service is named by every field
// the engine reads except its skills, which the result stores and checks.
type memoKey struct {
	kind                 memoKind
	service, resource    string
	duration, bufB, bufA time.Duration
	from, to             int64 // unix nanoseconds
	cut                  int   // alternatives: how many starts the notice left
}

type memoResult struct {
	skills []string
	slots  []availability.Slot // shared by every reply: read-only
	free   bool                // memoFree's answer
}

// touch records that the calendar changed: every memo is void.
func (a *scheduleActor) touch() { a.version++ }

// touchHeld records a new hold: the memo's calendar view takes it in a
// new snapshot, since rebuilding the view walks every appointment in the
// horizon (a hot spot when every claim lands on a different calendar);
// the computed answers are void.
func (a *scheduleActor) touchHeld(ap persistence.Appointment) {
	m := &a.memo
	if m.view == nil || m.view.version != a.version {
		a.touch()
		return
	}
	a.version++
	v := m.view.withBusy(a.version, availability.Busy{Start: ap.Start, End: ap.End,
		BufferBefore: ap.BufferBefore, BufferAfter: ap.BufferAfter, HoldExpiresAt: ap.HoldExpiresAt})
	v.cal.Load++
	if v.validUntil.IsZero() || ap.HoldExpiresAt.Before(v.validUntil) {
		v.validUntil = ap.HoldExpiresAt
	}
	m.view = v
	m.results.reset()
}

// cachedCalendar is the view of calendar(now, "") through the memo.
func (a *scheduleActor) cachedCalendar(now time.Time) *snapshot {
	v := a.memo.view
	switch {
	case v != nil && v.version == a.version && v.exactAt(now):
		return v
	case v != nil && v.version == a.version && !now.Before(v.builtAt):
		a.memo.view = v.lapsedAt(now) // only holds lapsed since
	default:
		a.memo.view = newSnapshot(a.version, a.gen, now, a.calendar(now, ""))
	}
	a.memo.results.reset()
	return a.memo.view
}

// inView reports whether ap is in the calendar view at now: busy, or
// counted in its load (calendar).
func inView(ap persistence.Appointment, now time.Time) bool {
	return ap.Live(now) || ap.Status == persistence.StatusCompleted
}

func keyOf(kind memoKind, sv persistence.Service, from, to time.Time, cut int) memoKey {
	return memoKey{kind: kind, service: sv.ID, resource: sv.ResourceID, duration: sv.Duration,
		bufB: sv.BufferBefore, bufA: sv.BufferAfter, from: from.UnixNano(), to: to.UnixNano(), cut: cut}
}

// remembered returns compute's result for k, computing it at most once per
// memo. Call cachedCalendar first, with the same now. Errors are not
// remembered.
func (a *scheduleActor) remembered(k memoKey, skills []string, compute func() ([]availability.Slot, error)) ([]availability.Slot, error) {
	if r, ok := a.memo.results.get(k); ok && slices.Equal(r.skills, skills) {
		a.deps.Metrics.memoLookup(true)
		return r.slots, nil
	}
	a.deps.Metrics.memoLookup(false)
	out, err := compute()
	if err != nil {
		return nil, err
	}
	a.memo.results.put(k, memoResult{skills: slices.Clone(skills), slots: out})
	return out, nil
}

// slotsIn is the staff member's bookable starts of sv in [from, to) at
// now, through the memo. The memo keeps the starts computed as if the
// notice did not cut the window (the engine asked at the last instant it
// does not: the calendar's busy times are all live then, since every one
// is live now), and the answer is that list from now+notice on: the
// window's start only filters starts. When the horizon would cut the
// window the answer is computed afresh (planSlots). A Directory answers
// from the published view the same way (snapshot.answer).
func (a *scheduleActor) slotsIn(now time.Time, sv persistence.Service, from, to time.Time) ([]availability.Slot, int, error) {
	out, load, _, err := a.slotsThrough(now, sv, from, to)
	return out, load, err
}

// slotsThrough is slotsIn, also reporting whether the answer came through
// the memo (false: the horizon cut the window, so it was computed afresh
// and slides with the clock at both ends).
func (a *scheduleActor) slotsThrough(now time.Time, sv persistence.Service, from, to time.Time) ([]availability.Slot, int, bool, error) {
	s := a.cachedCalendar(now)
	p := planSlots(a.deps.Config, now, sv, from, to)
	compute := func() ([]availability.Slot, error) { return p.compute(s, a.deps.Metrics) }
	if !p.memoizable {
		out, err := compute()
		return out, s.cal.Load, false, err
	}
	all, err := a.remembered(keyOf(memoSlots, sv, from, to, 0), sv.RequiredSkills, compute)
	if err != nil {
		return nil, s.cal.Load, false, err
	}
	return p.cut(all), s.cal.Load, true, nil
}

// freeAt is availability.Free(q, s, nil, start) through the memo: a hot
// staff member's refused claims ask it of the same few starts over and
// over, and each answer walked the calendar (validation, working hours,
// every busy interval). Call cachedCalendar first, with q.Now, and pass
// its view as s. What the clock decides (the notice and the horizon)
// is asked afresh every time; the memo keeps only answers at starts past
// both, which depend on the calendar alone while the memo stands (its
// holds do not lapse meanwhile). Errors are not remembered.
func (a *scheduleActor) freeAt(q availability.Query, view *snapshot, sv persistence.Service, start time.Time) (bool, error) {
	from, to := reach(q.Service, start, start)
	asked := func() (bool, error) {
		return withinDo(view, from, to, func(s availability.Staff) (bool, error) { return availability.Free(q, s, nil, start) })
	}
	if start.Before(q.Now.Add(q.MinNotice)) || q.Horizon > 0 && !start.Before(q.Now.Add(q.Horizon)) {
		return asked()
	}
	k := keyOf(memoFree, sv, start, start, 0)
	if r, ok := a.memo.results.get(k); ok && slices.Equal(r.skills, sv.RequiredSkills) {
		a.deps.Metrics.memoLookup(true)
		return r.free, nil
	}
	a.deps.Metrics.memoLookup(false)
	free, err := asked()
	if err != nil {
		return false, err
	}
	a.memo.results.put(k, memoResult{skills: slices.Clone(sv.RequiredSkills), free: free})
	return free, nil
}

// alternativesAt proposes up to five other starts of this staff member
// within a day of start, nearest first (earlier first on a tie). An hour
// and a half around start is computed first, then three hours: when a
// window holds five, those are the day's five nearest (a start outside
// is at least the window's half away, and on a tie the earlier, inside,
// wins), and a refusal costs an hour or two of slots instead of two days
// (on a 15-minute grid half full, the first window has five or six free).
func (a *scheduleActor) alternativesAt(now time.Time, sv persistence.Service, start time.Time) []availability.Slot {
	const n = 5
	var out []availability.Slot
	for _, span := range []time.Duration{90 * time.Minute, 3 * time.Hour, 24 * time.Hour} {
		near, _, memoized, err := a.slotsThrough(now, sv, start.Add(-span), start.Add(span))
		if err != nil {
			return nil
		}
		pick := func() ([]availability.Slot, error) { return nearest(near, a.staffID, start, n), nil }
		if !memoized { // the horizon cut near too: its length names nothing
			out, _ = pick()
		} else {
			// The notice cuts near from the front: its length names the cut.
			out, _ = a.remembered(keyOf(memoAlternatives, sv, start.Add(-span), start.Add(span), len(near)), sv.RequiredSkills, pick)
		}
		if len(out) == n {
			break
		}
	}
	return out
}

// nearest is up to n of staffID's slots in near (sorted by start, as the
// engine answers) other than start, nearest to start first, the earlier
// on a tie: a walk outwards from start's place, not a sort of the window
// (two days of slots for five answers, on every refused claim).
func nearest(near []availability.Slot, staffID string, start time.Time, n int) []availability.Slot {
	distance := func(t time.Time) time.Duration { return max(t.Sub(start), start.Sub(t)) }
	at, _ := slices.BinarySearchFunc(near, start, func(sl availability.Slot, t time.Time) int { return sl.Start.Compare(t) })
	before, after := at-1, at
	var out []availability.Slot
	for len(out) < n {
		for before >= 0 && near[before].StaffID != staffID {
			before--
		}
		for after < len(near) && (near[after].StaffID != staffID || near[after].Start.Equal(start)) {
			after++
		}
		switch {
		case before < 0 && after >= len(near):
			return out
		case after >= len(near) || before >= 0 && distance(near[before].Start) <= distance(near[after].Start):
			out = append(out, near[before])
			before--
		default:
			out = append(out, near[after])
			after++
		}
	}
	return out
}
