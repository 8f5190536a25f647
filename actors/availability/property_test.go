package availability

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Property tests: seeded random studios checked against independent
// oracles. Run more or other cases with
// go test -run Property -availability.seed=N -availability.cases=M.
var (
	seedFlag  = flag.Uint64("availability.seed", 20250602, "base seed of the property tests")
	casesFlag = flag.Int("availability.cases", 300, "cases per property")
)

var propertyZones = []string{"America/Bogota", "America/New_York", "Europe/Madrid", "UTC", "Asia/Kolkata"}

// Dates around which windows are drawn: ordinary days and DST changes.
var propertyDates = []Date{
	{2025, 6, 2}, {2025, 1, 15}, {2025, 3, 9}, {2025, 11, 2}, {2025, 3, 30}, {2025, 10, 26},
}

type scenario struct {
	q     Query
	staff []Staff
	res   *Resource
}

func genScenario(tb testing.TB, r *rand.Rand) scenario {
	tb.Helper()
	locs := make([]*time.Location, len(propertyZones))
	for i, z := range propertyZones {
		locs[i] = mustLoad(tb, z)
	}
	pick := func(xs ...int) int { return xs[r.IntN(len(xs))] }
	mins := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	base := propertyDates[r.IntN(len(propertyDates))]
	from := time.Date(base.Year, base.Month, base.Day, 0, 0, 0, 0, time.UTC).Add(mins(r.IntN(24*60) - 12*60))
	q := Query{
		Service: Service{
			ID:           "svc",
			Duration:     mins(pick(15, 25, 30, 45, 60, 90, 120)),
			BufferBefore: mins(pick(0, 0, 5, 10, 15, 30)),
			BufferAfter:  mins(pick(0, 0, 5, 10, 15, 30)),
		},
		From: from,
		To:   from.Add(mins(60 + r.IntN(72*60))),
		Now:  from.Add(mins(r.IntN(12*60) - 6*60)),
		Step: mins(pick(0, 5, 7, 10, 15, 20, 30, 60)),
	}
	if r.IntN(2) == 0 {
		q.MinNotice = mins(r.IntN(180))
	}
	if r.IntN(2) == 0 {
		q.Horizon = mins(60 + r.IntN(72*60))
	}
	skills := []string{"massage", "facial", "hot-stone"}
	for _, sk := range skills {
		if r.IntN(4) == 0 {
			q.Service.RequiredSkills = append(q.Service.RequiredSkills, sk)
		}
	}
	// Busy intervals near the window, on a 5-minute grid or not.
	busy := func(n int) []Busy {
		var out []Busy
		for range n {
			start := q.From.Add(mins(r.IntN(80*60) - 8*60))
			if r.IntN(3) > 0 {
				start = start.Truncate(5 * time.Minute)
			}
			b := Busy{
				Start:        start,
				End:          start.Add(mins(pick(15, 30, 45, 60, 90, 120, 17))),
				BufferBefore: mins(pick(0, 0, 5, 10, 15)),
				BufferAfter:  mins(pick(0, 0, 5, 10, 15)),
			}
			switch r.IntN(6) {
			case 0:
				b.HoldExpiresAt = q.Now // expired exactly now
			case 1:
				b.HoldExpiresAt = q.Now.Add(mins(r.IntN(120) - 60))
			}
			out = append(out, b)
		}
		return out
	}
	clockRanges := func() []ClockRange {
		k := r.IntN(4)
		var points []int
		for len(points) < 2*k {
			p := pick(r.IntN(97)*15, r.IntN(289)*5, 120+r.IntN(60), int(EndOfDay), 0)
			if !slices.Contains(points, p) {
				points = append(points, p)
			}
		}
		slices.Sort(points)
		var out []ClockRange
		for i := 0; i < len(points); i += 2 {
			out = append(out, ClockRange{Clock(points[i]), Clock(points[i+1])})
		}
		return out
	}
	var sc scenario
	sc.q = q
	for i := range 1 + r.IntN(4) {
		week := map[time.Weekday][]ClockRange{}
		for d := time.Sunday; d <= time.Saturday; d++ {
			week[d] = clockRanges()
		}
		hours, err := NewWeeklyHours(week)
		if err != nil {
			tb.Fatal(err)
		}
		s := Staff{
			ID:       fmt.Sprintf("s%d", i),
			Active:   r.IntN(10) > 0,
			Location: locs[r.IntN(len(locs))],
			Hours:    hours,
			Busy:     busy(r.IntN(14)),
			Load:     r.IntN(4),
		}
		for _, sk := range skills {
			if r.IntN(4) > 0 {
				s.Skills = append(s.Skills, sk)
			}
		}
		for d := range base.AddDays(-1).daysTo(base.AddDays(4)) {
			switch r.IntN(8) {
			case 0:
				s.Overrides = append(s.Overrides, ClosedOn(d))
			case 1:
				if rs := clockRanges(); len(rs) > 0 {
					o, err := OpenOn(d, rs...)
					if err != nil {
						tb.Fatal(err)
					}
					s.Overrides = append(s.Overrides, o)
				}
			}
		}
		for range r.IntN(3) {
			start := q.From.Add(mins(r.IntN(72*60) - 6*60))
			s.TimeOff = append(s.TimeOff, Interval{start, start.Add(mins(10 + r.IntN(240)))})
		}
		sc.staff = append(sc.staff, s)
	}
	if r.IntN(5) < 2 {
		sc.q.Service.ResourceID = "room"
		sc.res = &Resource{ID: "room", Capacity: 1 + r.IntN(4), Busy: busy(r.IntN(16))}
	}
	return sc
}

// daysTo yields the dates from d up to and including last.
func (d Date) daysTo(last Date) func(func(Date) bool) {
	return func(yield func(Date) bool) {
		for ; !dateAfter(d, last); d = d.AddDays(1) {
			if !yield(d) {
				return
			}
		}
	}
}

// shuffled returns a deep copy of sc with every input slice shuffled.
func shuffled(tb testing.TB, sc scenario, r *rand.Rand) scenario {
	tb.Helper()
	shuffle := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	out := sc
	out.q.Service.RequiredSkills = slices.Clone(sc.q.Service.RequiredSkills)
	shuffle(len(out.q.Service.RequiredSkills), func(i, j int) {
		out.q.Service.RequiredSkills[i], out.q.Service.RequiredSkills[j] = out.q.Service.RequiredSkills[j], out.q.Service.RequiredSkills[i]
	})
	out.staff = slices.Clone(sc.staff)
	shuffle(len(out.staff), func(i, j int) { out.staff[i], out.staff[j] = out.staff[j], out.staff[i] })
	for i := range out.staff {
		s := &out.staff[i]
		s.Busy, s.TimeOff, s.Overrides, s.Skills = slices.Clone(s.Busy), slices.Clone(s.TimeOff), slices.Clone(s.Overrides), slices.Clone(s.Skills)
		shuffle(len(s.Busy), func(i, j int) { s.Busy[i], s.Busy[j] = s.Busy[j], s.Busy[i] })
		shuffle(len(s.TimeOff), func(i, j int) { s.TimeOff[i], s.TimeOff[j] = s.TimeOff[j], s.TimeOff[i] })
		shuffle(len(s.Overrides), func(i, j int) { s.Overrides[i], s.Overrides[j] = s.Overrides[j], s.Overrides[i] })
		shuffle(len(s.Skills), func(i, j int) { s.Skills[i], s.Skills[j] = s.Skills[j], s.Skills[i] })
		week := map[time.Weekday][]ClockRange{}
		for d := time.Sunday; d <= time.Saturday; d++ {
			rs := slices.Clone(s.Hours.On(d))
			shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			week[d] = rs
		}
		var err error
		if s.Hours, err = NewWeeklyHours(week); err != nil {
			tb.Fatal(err)
		}
		for k, o := range s.Overrides {
			if !o.Closed() {
				rs := slices.Clone(o.Ranges())
				shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
				if s.Overrides[k], err = OpenOn(o.Date, rs...); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	if sc.res != nil {
		res := *sc.res
		res.Busy = slices.Clone(res.Busy)
		shuffle(len(res.Busy), func(i, j int) { res.Busy[i], res.Busy[j] = res.Busy[j], res.Busy[i] })
		out.res = &res
	}
	return out
}

// oracleRanges rebuilds s's working intervals on d from the raw inputs with
// the brute-force clock resolution.
func oracleRanges(s *Staff, d Date) []Interval {
	rs := s.Hours.On(d.Weekday())
	for _, o := range s.Overrides {
		if o.Date == d {
			rs = o.Ranges()
		}
	}
	var out []Interval
	for _, r := range rs {
		out = append(out, Interval{bruteInstant(d, r.Start, s.Location), bruteInstant(d, r.End, s.Location)})
	}
	return out
}

// oracleStarts lists every grid start of s's working ranges inside the
// query window, whether free or not.
func oracleStarts(q Query, s *Staff) []time.Time {
	var out []time.Time
	first, last := DateOf(q.From.In(s.Location)).AddDays(-1), DateOf(q.To.In(s.Location))
	for d := range first.daysTo(last) {
		for _, r := range oracleRanges(s, d) {
			for t := r.Start; !t.Add(q.Service.Duration).After(r.End); t = t.Add(q.step()) {
				if !t.Before(q.From) && t.Before(q.To) {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// forScenarios runs check over the seeded cases, naming the seed of a
// failing case so that it can be replayed.
func forScenarios(t *testing.T, check func(t *testing.T, sc scenario, r *rand.Rand)) {
	t.Parallel()
	for i := range *casesFlag {
		seed := *seedFlag + uint64(i)
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		sc := genScenario(t, r)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			check(t, sc, r)
		})
		if !ok {
			t.Fatalf("failing seed %d: replay with -availability.seed=%d -availability.cases=1", seed, seed)
		}
	}
}

func mustSlots(t *testing.T, sc scenario) []Slot {
	t.Helper()
	got, err := Slots(sc.q, sc.staff, sc.res)
	if err != nil {
		t.Fatalf("Slots: %v", err)
	}
	return got
}

func staffByID(sc scenario, id string) *Staff {
	for i := range sc.staff {
		if sc.staff[i].ID == id {
			return &sc.staff[i]
		}
	}
	return nil
}

func TestPropertyNoConflicts(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, _ *rand.Rand) {
		sv := sc.q.Service
		for _, sl := range mustSlots(t, sc) {
			s := staffByID(sc, sl.StaffID)
			padded := Interval{sl.Start.Add(-sv.BufferBefore), sl.End.Add(sv.BufferAfter)}
			for _, b := range s.Busy {
				if b.Live(sc.q.Now) && b.Padded().Overlaps(padded) {
					t.Fatalf("slot %+v overlaps live busy %+v", sl, b)
				}
			}
			for _, off := range s.TimeOff {
				if off.Overlaps(padded) {
					t.Fatalf("slot %+v overlaps time off %+v", sl, off)
				}
			}
			if !s.Active || !hasAll(s.Skills, sv.RequiredSkills) {
				t.Fatalf("slot %+v for unqualified staff", sl)
			}
			if sc.res != nil {
				// Brute force: the overlap peaks at some use's start (or the
				// slot's start); count the uses live at each such point.
				points := []time.Time{padded.Start}
				for _, b := range sc.res.Busy {
					points = append(points, b.Padded().Start)
				}
				for _, p := range points {
					if !padded.Contains(p) {
						continue
					}
					n := 0
					for _, b := range sc.res.Busy {
						if b.Live(sc.q.Now) && b.Padded().Contains(p) {
							n++
						}
					}
					if n >= sc.res.Capacity {
						t.Fatalf("slot %+v: %d uses at %v, capacity %d", sl, n, p, sc.res.Capacity)
					}
				}
			}
			if sl.Start.Before(sc.q.From) || !sl.Start.Before(sc.q.To) || sl.Start.Before(sc.q.Now.Add(sc.q.MinNotice)) ||
				(sc.q.Horizon > 0 && !sl.Start.Before(sc.q.Now.Add(sc.q.Horizon))) {
				t.Fatalf("slot %+v outside the query window", sl)
			}
		}
	})
}

func hasAll(have, need []string) bool {
	for _, n := range need {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}

func TestPropertySortedUniqueInsideHours(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, _ *rand.Rand) {
		got := mustSlots(t, sc)
		checkSortedUnique(t, got)
		grid := map[string][]time.Time{}
		for i := range sc.staff {
			grid[sc.staff[i].ID] = oracleStarts(sc.q, &sc.staff[i])
		}
		for _, sl := range got {
			if sl.Start.Location() != time.UTC || !sl.End.Equal(sl.Start.Add(sc.q.Service.Duration)) {
				t.Fatalf("slot %+v: not UTC or wrong length", sl)
			}
			if !slices.ContainsFunc(grid[sl.StaffID], sl.Start.Equal) {
				t.Fatalf("slot %+v is not a grid start inside a working range", sl)
			}
		}
	})
}

func TestPropertyOrderIndependent(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, r *rand.Rand) {
		want := mustSlots(t, sc)
		wantAny, err := AnyStaff(sc.q, sc.staff, sc.res)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			sh := shuffled(t, sc, r)
			if got := mustSlots(t, sh); !slices.Equal(got, want) {
				t.Fatalf("Slots depends on input order:\n got %v\nwant %v", got, want)
			}
			if got, _ := AnyStaff(sh.q, sh.staff, sh.res); !slices.Equal(got, wantAny) {
				t.Fatalf("AnyStaff depends on input order")
			}
		}
	})
}

func TestPropertyFreeAgreesWithSlots(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, r *rand.Rand) {
		listed := map[string]bool{}
		for _, sl := range mustSlots(t, sc) {
			listed[sl.StaffID+sl.Start.String()] = true
		}
		for i := range sc.staff {
			s := &sc.staff[i]
			candidates := oracleStarts(sc.q, s)
			for range 20 { // and arbitrary minutes, mostly off the grid
				candidates = append(candidates, sc.q.From.Add(time.Duration(r.Int64N(int64(sc.q.To.Sub(sc.q.From)))).Truncate(time.Minute)))
			}
			hits, seen := 0, map[time.Time]bool{}
			for _, start := range candidates {
				start = start.UTC()
				if start.Before(sc.q.From) || !start.Before(sc.q.To) || seen[start] {
					continue
				}
				seen[start] = true
				free, err := Free(sc.q, *s, sc.res, start)
				if err != nil {
					t.Fatal(err)
				}
				if want := listed[s.ID+start.String()]; free != want {
					t.Fatalf("staff %s start %v: Free = %v, listed by Slots = %v", s.ID, start, free, want)
				}
				if free {
					hits++
				}
			}
			if q := sc.q; q.StaffID == "" {
				q.StaffID = s.ID
				only, err := Slots(q, sc.staff, sc.res)
				if err != nil {
					t.Fatal(err)
				}
				if len(only) != hits {
					t.Fatalf("staff %s: Slots with StaffID lists %d, Free accepts %d", s.ID, len(only), hits)
				}
			}
		}
	})
}

// TestPropertyOneStartAgreesWithGaps: a window holding one possible start
// (a minute from a whole minute) is answered by asking Free, and that
// answer is the one the gaps give, for whole and odd minutes, on and off
// the grid, inside and outside the notice and horizon.
func TestPropertyOneStartAgreesWithGaps(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, r *rand.Rand) {
		asked := 0
		for _, sl := range mustSlots(t, sc) { // starts that are free, and random minutes
			for _, from := range []time.Time{sl.Start, sc.q.From.Add(time.Duration(r.Int64N(int64(sc.q.To.Sub(sc.q.From)))).Truncate(time.Minute))} {
				q := sc.q
				q.From, q.To = from, from.Add(time.Minute)
				fast, err := Slots(q, sc.staff, sc.res)
				if err != nil {
					t.Fatal(err)
				}
				slow, err := slotsByGaps(q, sc.staff, sc.res)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(fast, slow) {
					t.Fatalf("window [%v, %v) step %v: one-start answer %v, gaps %v", q.From, q.To, q.step(), fast, slow)
				}
				if oneStart(q) {
					asked++
				}
			}
		}
		if sc.q.step()%time.Minute == 0 && len(mustSlots(t, sc)) > 0 && asked == 0 {
			t.Fatal("no window went the one-start way")
		}
	})
}

func TestPropertyAnyStaffIsUnion(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, _ *rand.Rand) {
		all := mustSlots(t, sc)
		anyStaff, err := AnyStaff(sc.q, sc.staff, sc.res)
		if err != nil {
			t.Fatal(err)
		}
		var starts []time.Time
		for _, sl := range all {
			if len(starts) == 0 || !starts[len(starts)-1].Equal(sl.Start) {
				starts = append(starts, sl.Start)
			}
		}
		if len(starts) != len(anyStaff) {
			t.Fatalf("AnyStaff has %d starts, union of Slots %d", len(anyStaff), len(starts))
		}
		for i, sl := range anyStaff {
			if !sl.Start.Equal(starts[i]) || !slices.Contains(all, sl) {
				t.Fatalf("AnyStaff slot %+v not in Slots at start %v", sl, starts[i])
			}
			chosen := staffByID(sc, sl.StaffID)
			for _, other := range all {
				if !other.Start.Equal(sl.Start) {
					continue
				}
				o := staffByID(sc, other.StaffID)
				if o.Load < chosen.Load || (o.Load == chosen.Load && o.ID < chosen.ID) {
					t.Fatalf("start %v went to %s (load %d), %s (load %d) was free", sl.Start, chosen.ID, chosen.Load, o.ID, o.Load)
				}
			}
		}
	})
}

func TestPropertyAlternatives(t *testing.T) {
	forScenarios(t, func(t *testing.T, sc scenario, r *rand.Rand) {
		all := mustSlots(t, sc)
		if len(all) == 0 {
			return
		}
		wanted := all[r.IntN(len(all))]
		alts := Alternatives(sc.q, sc.staff, sc.res, wanted, 8)
		seenOther := false
		var lastDist time.Duration
		for i, a := range alts {
			if a == wanted || !slices.Contains(all, a) {
				t.Fatalf("alternative %+v is the wanted slot or not bookable", a)
			}
			if a.StaffID == wanted.StaffID {
				d := a.Start.Sub(wanted.Start).Abs()
				if seenOther || (i > 0 && d < lastDist) {
					t.Fatalf("same-staff alternatives not first and nearest-first: %+v", alts)
				}
				lastDist = d
			} else {
				seenOther = true
				if !a.Start.Equal(wanted.Start) {
					t.Fatalf("other staff alternative at a different time: %+v", a)
				}
			}
		}
	})
}

// TestPropertyGeneratorCoverage keeps the properties honest: if the
// generator drifted into producing empty studios they would pass vacuously.
func TestPropertyGeneratorCoverage(t *testing.T) {
	t.Parallel()
	var withSlots, withRefusals, withResource, dst int
	for i := range *casesFlag {
		seed := *seedFlag + uint64(i)
		sc := genScenario(t, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
		got, err := Slots(sc.q, sc.staff, sc.res)
		if err != nil {
			t.Fatal(err)
		}
		grid := 0
		for j := range sc.staff {
			if qualified(&sc.staff[j], sc.q.Service) {
				grid += len(oracleStarts(sc.q, &sc.staff[j]))
			}
		}
		if len(got) > 0 {
			withSlots++
		}
		if len(got) > 0 && len(got) < grid {
			withRefusals++
		}
		if sc.res != nil && len(got) > 0 {
			withResource++
		}
		if d := DateOf(sc.q.From); d.Month == time.March || d.Month == time.October || d.Month == time.November {
			dst++
		}
	}
	n := *casesFlag
	t.Logf("of %d cases: %d with slots, %d with some refused grid starts, %d using a resource, %d near DST", n, withSlots, withRefusals, withResource, dst)
	if withSlots < n/2 || withRefusals < n/4 || withResource < n/10 || dst < n/4 {
		t.Fatal("generator coverage too low")
	}
}
