package schedule

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/persistence"
)

// Availability reads are most of the traffic, and through the mailbox
// each one waits behind the claims queued before it on a busy CPU. So
// every schedule actor publishes its calendar view after each message
// that changed it, and the Directory answers a SlotsQuery from that
// snapshot in the caller's goroutine while it is exact, exactly as the
// actor would (slotsIn); otherwise the query goes through the mailbox,
// whose answer publishes a fresh snapshot.

// snapshot is a schedule actor's calendar view as it stood after one of
// its messages: what slotsIn computes from. It is never written after it
// is built; a change builds a new one (withBusy appends in place, but only
// past the length of every snapshot already built).
//
// Its Busy is ordered by start up to sorted, with the longest reach of
// any busy time past its start (span) and the longest buffer before one
// (before), so a question about a window hands the engine only the busy
// times that can touch it (within): a calendar booked a month ahead
// answers a question about one start in the time of a day's worth. Holds
// added since (withBusy) form an unordered tail, each checked, until the
// tail is long enough to be worth ordering.
type snapshot struct {
	version    uint64    // the actor's calendar version it shows
	gen        uint64    // the slot generation its activation loaded under
	builtAt    time.Time // when cal was built
	validUntil time.Time // first hold expiry after builtAt (zero: none)
	cal        availability.Staff
	sorted     int           // cal.Busy[:sorted] is ordered by start
	span       time.Duration // max End + BufferAfter - Start over cal.Busy
	before     time.Duration // max BufferBefore over cal.Busy
}

// tailLimit is how many holds withBusy appends before it orders them in.
const tailLimit = 32

// newSnapshot orders cal's busy times by start and indexes them.
func newSnapshot(version, gen uint64, builtAt time.Time, cal availability.Staff) *snapshot {
	slices.SortFunc(cal.Busy, byStart)
	v := &snapshot{version: version, gen: gen, builtAt: builtAt, cal: cal, sorted: len(cal.Busy)}
	for _, b := range cal.Busy {
		v.index(b)
		if !b.HoldExpiresAt.IsZero() && (v.validUntil.IsZero() || b.HoldExpiresAt.Before(v.validUntil)) {
			v.validUntil = b.HoldExpiresAt
		}
	}
	return v
}

func byStart(x, y availability.Busy) int { return x.Start.Compare(y.Start) }

// index widens span and before to cover b.
func (s *snapshot) index(b availability.Busy) {
	s.span = max(s.span, b.End.Add(b.BufferAfter).Sub(b.Start))
	s.before = max(s.before, b.BufferBefore)
}

// lapsedAt is s at now, a later instant than it was built at, without
// the holds that lapsed meanwhile: what calendar(now) builds at s's
// version (only lapses change a calendar's view while its version
// stands). Filtering keeps the order, so nothing is sorted again, and
// only the live busy times are walked, not every appointment the
// activation loaded: after a peak, holds lapse on a calendar every few
// milliseconds, and rebuilding the view on each took a third of the
// node's CPU.
func (s *snapshot) lapsedAt(now time.Time) *snapshot {
	v := *s
	v.builtAt, v.validUntil, v.sorted = now, time.Time{}, 0
	v.cal.Busy = make([]availability.Busy, 0, len(s.cal.Busy))
	for i, b := range s.cal.Busy {
		if !b.Live(now) {
			v.cal.Load-- // counted while live (calendar)
			continue
		}
		v.cal.Busy = append(v.cal.Busy, b)
		if i < s.sorted {
			v.sorted++
		}
		if !b.HoldExpiresAt.IsZero() && (v.validUntil.IsZero() || b.HoldExpiresAt.Before(v.validUntil)) {
			v.validUntil = b.HoldExpiresAt
		}
	}
	return &v
}

// withBusy is a copy of s at version with b added. It is appended past
// the length of every snapshot already built (which none of them reads),
// so adding costs no copy until the tail is ordered in.
func (s *snapshot) withBusy(version uint64, b availability.Busy) *snapshot {
	v := *s
	v.version = version
	v.cal.Busy = append(s.cal.Busy, b)
	v.index(b)
	if len(v.cal.Busy)-v.sorted > tailLimit {
		v.cal.Busy = slices.Clone(v.cal.Busy)
		slices.SortFunc(v.cal.Busy, byStart)
		v.sorted = len(v.cal.Busy)
	}
	return &v
}

// within is the calendar holding only the busy times whose padded
// interval can reach [from, to) (a superset: the engine checks each).
// When some of them are in the view's unsorted tail they are copied with
// the sorted ones into *buf (kept for the next call: a refusal's
// alternatives copied a few hours of a busy calendar each time), so the
// calendar returned is only good until buf's next use.
func (s *snapshot) within(from, to time.Time, buf *[]availability.Busy) availability.Staff {
	at := func(x availability.Busy, t time.Time) int { return x.Start.Compare(t) }
	ordered := s.cal.Busy[:s.sorted]
	lo, _ := slices.BinarySearchFunc(ordered, from.Add(-s.span), at)
	hi, _ := slices.BinarySearchFunc(ordered, to.Add(s.before), at)
	hi = max(lo, hi)
	cal := s.cal
	cal.Busy = ordered[lo:hi:hi]
	copied := false
	for _, b := range s.cal.Busy[s.sorted:] {
		if b.Start.Before(to.Add(b.BufferBefore)) && b.End.Add(b.BufferAfter).After(from) {
			if !copied {
				cal.Busy, copied = append((*buf)[:0], cal.Busy...), true
			}
			cal.Busy = append(cal.Busy, b)
		}
	}
	if copied {
		*buf = cal.Busy
	}
	return cal
}

// busyScratch holds the buffers within copies into.
var busyScratch = sync.Pool{New: func() any { return new([]availability.Busy) }}

// withinDo runs fn on within(from, to) with a buffer of busyScratch.
func withinDo[T any](s *snapshot, from, to time.Time, fn func(availability.Staff) (T, error)) (T, error) {
	buf := busyScratch.Get().(*[]availability.Busy)
	defer busyScratch.Put(buf)
	return fn(s.within(from, to, buf))
}

// reach is the interval a padded start of sv in [from, to) can touch.
func reach(sv availability.Service, from, to time.Time) (time.Time, time.Time) {
	return from.Add(-sv.BufferBefore), to.Add(sv.Duration + sv.BufferAfter)
}

// exactAt reports whether the view is still the calendar at now: no hold
// in it has lapsed, and it was not built after now (a hold live at now
// may have lapsed by builtAt).
func (s *snapshot) exactAt(now time.Time) bool {
	return !now.Before(s.builtAt) && (s.validUntil.IsZero() || now.Before(s.validUntil))
}

// slotsPlan is how the staff member's starts of sv in [from, to) at now
// are computed from a calendar view exact at now. The engine is asked at
// the last instant the notice does not cut the window (every busy time
// in the view is live then, since each is live now), so the answer
// depends on now only through the notice, which cut applies; when the
// horizon would cut the window it is asked at now instead, and the
// answer slides with the clock at both ends (not memoizable).
type slotsPlan struct {
	q          availability.Query
	earliest   time.Time // memoizable: the first start the notice allows
	memoizable bool
}

func planSlots(cfg Config, now time.Time, sv persistence.Service, from, to time.Time) slotsPlan {
	asOf := now
	if last := from.Add(-cfg.MinNotice); last.Before(asOf) {
		asOf = last
	}
	q := queryOf(cfg, sv, asOf)
	q.From, q.To = from, to
	if to.After(asOf.Add(cfg.Horizon)) {
		q.Now = now
		return slotsPlan{q: q}
	}
	return slotsPlan{q: q, earliest: now.Add(cfg.MinNotice), memoizable: true}
}

// compute runs the engine on one staff member's calendar view.
func (p slotsPlan) compute(s *snapshot, m *Metrics) ([]availability.Slot, error) {
	began := time.Now()
	defer func() { m.availability.Observe(time.Since(began).Seconds()) }()
	from, to := reach(p.q.Service, p.q.From, p.q.To)
	return withinDo(s, from, to, func(cal availability.Staff) ([]availability.Slot, error) {
		return availability.Slots(p.q, []availability.Staff{cal}, nil)
	})
}

// cut is a memoizable answer's starts from the notice on.
func (p slotsPlan) cut(all []availability.Slot) []availability.Slot {
	i, _ := slices.BinarySearchFunc(all, p.earliest, func(sl availability.Slot, t time.Time) int { return sl.Start.Compare(t) })
	return all[i:]
}

// answer is slotsIn computed from the snapshot, through the readers'
// memo of its slot (the actor's memo is its own).
func (sl *slot) answer(s *snapshot, cfg Config, m *Metrics, now time.Time, q *SlotsQuery) *SlotsReply {
	p := planSlots(cfg, now, q.Service, q.From, q.To)
	compute := func() ([]availability.Slot, error) { return p.compute(s, m) }
	if !p.memoizable || q.To.Sub(q.From) < memoMinWindow {
		out, err := compute()
		return &SlotsReply{Slots: out, Load: s.cal.Load, Err: err}
	}
	all, err := sl.remembered(s, keyOf(memoSlots, q.Service, q.From, q.To, 0), q.Service.RequiredSkills, compute)
	if err != nil {
		return &SlotsReply{Load: s.cal.Load, Err: err}
	}
	return &SlotsReply{Slots: p.cut(all), Load: s.cal.Load}
}

// memoMinWindow is the shortest window the readers' memo keeps: a
// refusal's question to other staff about one start (a minute) is
// computed in less than the memo's copy of its entries costs, and under
// load it is seldom asked twice of one snapshot (under keyed spread the
// memo's copies were a sixth of the bytes the node allocated).
const memoMinWindow = time.Hour

// answers are the slot lists readers computed from one snapshot, for the
// readers after them (a day is read far more often than it changes). The
// list is never written once stored: a reader that computes something new
// stores a longer copy, and losing that race only loses the memo.
type answers struct {
	view    *snapshot
	entries []memoEntry // the newest memoFew
}

// remembered returns compute's result for k on view s, computing it at
// most about once per snapshot. Errors are not remembered.
func (sl *slot) remembered(s *snapshot, k memoKey, skills []string, compute func() ([]availability.Slot, error)) ([]availability.Slot, error) {
	cur := sl.answers.Load()
	if cur != nil && cur.view == s {
		for _, e := range cur.entries {
			if e.key == k && slices.Equal(e.skills, skills) {
				return e.slots, nil
			}
		}
	}
	out, err := compute()
	if err != nil {
		return nil, err
	}
	next := &answers{view: s}
	if cur != nil && cur.view == s {
		keep := cur.entries[max(0, len(cur.entries)-memoFew+1):]
		next.entries = append(make([]memoEntry, 0, len(keep)+1), keep...)
	}
	next.entries = append(next.entries, memoEntry{k, memoResult{skills: slices.Clone(skills), slots: out}})
	sl.answers.CompareAndSwap(cur, next)
	return out, nil
}

// shelf is where a node's schedule actors publish their snapshots: one
// slot per calendar with a live activation, reached by staff id.
type shelf struct {
	slots  sync.Map // staff id → *slot
	closed atomic.Bool
}

// slot holds the snapshot of one calendar's activation.
type slot struct {
	snap    atomic.Pointer[snapshot]
	answers atomic.Pointer[answers] // readers' memo of snap
	// gen counts Invalidate calls: a snapshot of an activation that loaded
	// before the last one may predate the change that called it.
	gen atomic.Uint64
}

// show publishes view (the actor's, after each message).
func (sl *slot) show(view *snapshot) {
	if sl.snap.Load() != view {
		sl.snap.Store(view)
		sl.answers.Store(nil) // answers of an older view: memory, never served
	}
}

// withdraw stops serving the snapshot: reads go to the actor.
func (sl *slot) withdraw() {
	sl.snap.Store(nil)
	sl.answers.Store(nil)
}

// invalidate makes the snapshots published so far stale.
func (sl *slot) invalidate() {
	sl.gen.Add(1)
	sl.withdraw()
}

// enlist gives an activation its calendar's slot and the generation it
// loads under. Call it before loading.
func (sh *shelf) enlist(id string) (*slot, uint64) {
	v, ok := sh.slots.Load(id)
	if !ok {
		v, _ = sh.slots.LoadOrStore(id, new(slot))
	}
	sl := v.(*slot)
	return sl, sl.gen.Load()
}

// release withdraws a stopped activation's snapshot and its slot.
func (sh *shelf) release(id string, sl *slot) {
	sl.withdraw()
	sh.slots.CompareAndDelete(id, sl)
}

// invalidate makes every snapshot of id published so far stale: its
// activation is about to be retired (Directory.Invalidate) and the next
// one loads afresh.
func (sh *shelf) invalidate(id string) {
	if v, ok := sh.slots.Load(id); ok {
		v.(*slot).invalidate()
	}
}

// invalidateWhere is invalidate for every calendar whose id matches.
func (sh *shelf) invalidateWhere(match func(id string) bool) {
	sh.slots.Range(func(k, v any) bool {
		if match(k.(string)) {
			v.(*slot).invalidate()
		}
		return true
	})
}

// lookup returns id's slot and snapshot when one is published and still
// current. The caller checks that it is exact at its own now.
func (sh *shelf) lookup(id string) (*slot, *snapshot) {
	if sh.closed.Load() {
		return nil, nil
	}
	v, ok := sh.slots.Load(id)
	if !ok {
		return nil, nil
	}
	sl := v.(*slot)
	s := sl.snap.Load()
	if s == nil || s.gen != sl.gen.Load() {
		return nil, nil
	}
	return sl, s
}

// answer answers q for calendar id from its snapshot, reporting false
// when there is none exact at now.
func (sh *shelf) answer(id string, q *SlotsQuery, cfg Config, m *Metrics, clock func() time.Time) (*SlotsReply, bool) {
	sl, s := sh.lookup(id)
	if s == nil {
		return nil, false
	}
	now := clock() // read after the snapshot, so it was built at or before now
	if !s.exactAt(now) {
		return nil, false
	}
	return sl.answer(s, cfg, m, now, q), true
}
