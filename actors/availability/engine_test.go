package availability

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// The table tests live on Monday 2025-06-02 in Bogota unless they say
// otherwise.
var (
	bogota = func() *time.Location {
		loc, err := time.LoadLocation("America/Bogota")
		if err != nil {
			panic(err)
		}
		return loc
	}()
	monday = Date{2025, time.June, 2}
)

// bog returns hh:mm on monday in Bogota.
func bog(hhmm string) time.Time {
	c, err := ParseClock(hhmm)
	if err != nil {
		panic(err)
	}
	return instant(monday, c, bogota)
}

func dayQuery(svc Service) Query {
	return Query{
		Service: svc,
		From:    bog("00:00"),
		To:      bog("24:00"),
		Now:     bog("00:00").Add(-24 * time.Hour),
		Step:    30 * time.Minute,
	}
}

func hourService() Service { return Service{ID: "svc", Duration: time.Hour} }

func worker(tb testing.TB, id string, hours ...string) Staff {
	tb.Helper()
	return Staff{ID: id, Active: true, Location: bogota, Hours: everyDay(tb, hours...)}
}

// clocks renders slot starts as HH:MM in loc, the way the tables spell them.
func clocks(slots []Slot, loc *time.Location) []string {
	out := make([]string, 0, len(slots))
	for _, s := range slots {
		out = append(out, s.Start.In(loc).Format("15:04"))
	}
	return out
}

func TestSlotsRules(t *testing.T) {
	t.Parallel()
	type world struct {
		q   Query
		s   Staff
		res *Resource
	}
	appt := func(from, to string, before, after time.Duration) Busy {
		return Busy{Start: bog(from), End: bog(to), BufferBefore: before, BufferAfter: after}
	}
	sauna := func(capacity int, uses ...[2]string) *Resource {
		r := &Resource{ID: "sauna", Capacity: capacity}
		for _, u := range uses {
			r.Busy = append(r.Busy, Busy{Start: bog(u[0]), End: bog(u[1])})
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		hours []string
		edit  func(t *testing.T, w *world)
		want  []string
	}{
		{"working hours boundaries", []string{"09:00-11:00"}, nil,
			[]string{"09:00", "09:30", "10:00"}},
		{"several ranges a day", []string{"14:00-15:30", "09:00-10:00"}, nil,
			[]string{"09:00", "14:00", "14:30"}},
		{"touching ranges are one shift", []string{"12:00-15:00", "09:00-12:00"}, func(t *testing.T, w *world) {
			w.q.Step, w.q.From, w.q.To = 15*time.Minute, bog("11:00"), bog("12:00")
		}, []string{"11:00", "11:15", "11:30", "11:45"}},
		{"overlapping ranges are one shift", []string{"09:00-12:30", "12:00-13:00"}, func(t *testing.T, w *world) {
			w.q.From = bog("11:00")
		}, []string{"11:00", "11:30", "12:00"}},
		{"partial last slot dropped", []string{"09:00-10:45"}, nil,
			[]string{"09:00", "09:30"}},
		{"grid anchored at range start", []string{"09:10-11:00"}, func(t *testing.T, w *world) {
			w.q.Service.Duration = 30 * time.Minute
			w.q.Step = 25 * time.Minute
		}, []string{"09:10", "09:35", "10:00", "10:25"}},
		{"From mid-range keeps the grid", []string{"09:00-11:00"}, func(t *testing.T, w *world) {
			w.q.From = bog("09:20")
		}, []string{"09:30", "10:00"}},
		{"To excludes a start equal to it", []string{"09:00-11:00"}, func(t *testing.T, w *world) {
			w.q.To = bog("10:00")
		}, []string{"09:00", "09:30"}},
		{"default step is 15 minutes", []string{"09:00-10:30"}, func(t *testing.T, w *world) {
			w.q.Step = 0
		}, []string{"09:00", "09:15", "09:30"}},
		{"override closes the day", []string{"09:00-11:00"}, func(t *testing.T, w *world) {
			w.s.Overrides = []Override{ClosedOn(monday)}
		}, nil},
		{"override with extra hours replaces the week", []string{"09:00-11:00"}, func(t *testing.T, w *world) {
			o, err := OpenOn(monday, ranges(t, "09:00-10:00", "18:00-20:00")...)
			if err != nil {
				t.Fatal(err)
			}
			w.s.Overrides = []Override{ClosedOn(monday.AddDays(1)), o}
		}, []string{"09:00", "18:00", "18:30", "19:00"}},
		{"time off", []string{"09:00-12:00"}, func(t *testing.T, w *world) {
			w.s.TimeOff = []Interval{{bog("09:30"), bog("10:00")}}
		}, []string{"10:00", "10:30", "11:00"}},
		{"before-buffer may not reach into time off", []string{"09:00-12:00"}, func(t *testing.T, w *world) {
			w.s.TimeOff = []Interval{{bog("09:30"), bog("10:00")}}
			w.q.Service.BufferBefore = 15 * time.Minute
		}, []string{"10:30", "11:00"}},
		{"buffers may extend outside working hours", []string{"09:00-10:00"}, func(t *testing.T, w *world) {
			w.q.Service.BufferBefore, w.q.Service.BufferAfter = 30*time.Minute, 30*time.Minute
		}, []string{"09:00"}},
		{"but not into time off outside them", []string{"09:00-10:00"}, func(t *testing.T, w *world) {
			w.q.Service.BufferBefore = 30 * time.Minute
			w.s.TimeOff = []Interval{{bog("08:40"), bog("08:50")}}
		}, nil},
		{"confirmed appointment blocks", []string{"09:00-12:00"}, func(t *testing.T, w *world) {
			w.s.Busy = []Busy{appt("10:00", "10:30", 0, 0)}
		}, []string{"09:00", "10:30", "11:00"}},
		{"live hold blocks", []string{"09:00-11:00"}, func(t *testing.T, w *world) {
			b := appt("09:00", "10:00", 0, 0)
			b.HoldExpiresAt = w.q.Now.Add(time.Nanosecond)
			w.s.Busy = []Busy{b}
		}, []string{"10:00"}},
		{"hold expiring exactly at Now blocks nothing", []string{"09:00-11:00"}, func(t *testing.T, w *world) {
			b := appt("09:00", "10:00", 0, 0)
			b.HoldExpiresAt = w.q.Now
			w.s.Busy = []Busy{b}
		}, []string{"09:00", "09:30", "10:00"}},
		{"min notice boundary is inclusive", []string{"09:00-12:00"}, func(t *testing.T, w *world) {
			w.q.Now, w.q.MinNotice = bog("08:00"), 2*time.Hour
		}, []string{"10:00", "10:30", "11:00"}},
		{"min notice one minute past the grid", []string{"09:00-12:00"}, func(t *testing.T, w *world) {
			w.q.Now, w.q.MinNotice = bog("08:01"), 2*time.Hour
		}, []string{"10:30", "11:00"}},
		{"horizon boundary is exclusive", []string{"09:00-12:00"}, func(t *testing.T, w *world) {
			w.q.Now, w.q.Horizon = bog("08:00"), 2*time.Hour+30*time.Minute
		}, []string{"09:00", "09:30", "10:00"}},
		{"required skill filters an unskilled member", []string{"09:00-10:00"}, func(t *testing.T, w *world) {
			w.q.Service.RequiredSkills = []string{"hot-stone", "massage"}
			w.s.Skills = []string{"massage", "facial"}
		}, nil},
		{"skilled member is offered", []string{"09:00-10:00"}, func(t *testing.T, w *world) {
			w.q.Service.RequiredSkills = []string{"hot-stone", "massage"}
			w.s.Skills = []string{"massage", "hot-stone"}
		}, []string{"09:00"}},
		{"inactive staff", []string{"09:00-10:00"}, func(t *testing.T, w *world) {
			w.s.Active = false
		}, nil},
		{"sauna for 4 with 3 simultaneous uses is free", []string{"10:00-11:00"}, func(t *testing.T, w *world) {
			w.q.Service.ResourceID = "sauna"
			w.res = sauna(4, [2]string{"10:00", "11:00"}, [2]string{"09:30", "10:30"}, [2]string{"10:15", "12:00"})
		}, []string{"10:00"}},
		{"sauna for 4 with 4 simultaneous uses is full", []string{"10:00-11:00"}, func(t *testing.T, w *world) {
			w.q.Service.ResourceID = "sauna"
			w.res = sauna(4, [2]string{"10:00", "11:00"}, [2]string{"09:30", "10:30"}, [2]string{"10:15", "12:00"}, [2]string{"10:20", "10:25"})
		}, nil},
		{"overlapping but not simultaneous uses do not add up", []string{"10:00-11:00"}, func(t *testing.T, w *world) {
			w.q.Service.ResourceID = "sauna"
			w.res = sauna(2, [2]string{"09:30", "10:20"}, [2]string{"10:20", "10:40"}, [2]string{"10:40", "11:30"})
		}, []string{"10:00"}},
		{"expired resource hold is not a use", []string{"10:00-11:00"}, func(t *testing.T, w *world) {
			w.q.Service.ResourceID = "sauna"
			w.res = sauna(1, [2]string{"10:00", "11:00"})
			w.res.Busy[0].HoldExpiresAt = w.q.Now
		}, []string{"10:00"}},
		{"resource buffers count", []string{"10:00-12:00"}, func(t *testing.T, w *world) {
			w.q.Service.ResourceID = "sauna"
			w.res = sauna(1, [2]string{"09:00", "10:00"})
			w.res.Busy[0].BufferAfter = 20 * time.Minute
		}, []string{"10:30", "11:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := world{q: dayQuery(hourService()), s: worker(t, "ana", tc.hours...)}
			if tc.edit != nil {
				tc.edit(t, &w)
			}
			got, err := Slots(w.q, []Staff{w.s}, w.res)
			if err != nil {
				t.Fatal(err)
			}
			if g := clocks(got, bogota); !slices.Equal(g, tc.want) {
				t.Fatalf("starts = %v, want %v", g, tc.want)
			}
			for _, sl := range got {
				if !sl.End.Equal(sl.Start.Add(w.q.Service.Duration)) || sl.StaffID != "ana" {
					t.Errorf("bad slot %+v", sl)
				}
				if ok, err := Free(w.q, w.s, w.res, sl.Start); !ok || err != nil {
					t.Errorf("Free(%v) = %v, %v for a listed slot", sl.Start, ok, err)
				}
			}
		})
	}
}

// TestBuffersAddUp: an existing appointment's after-buffer and the new
// service's before-buffer both apply; a gap equal to their sum is bookable,
// one minute less is not. The same on the other side of the appointment.
func TestBuffersAddUp(t *testing.T) {
	t.Parallel()
	q := dayQuery(Service{ID: "facial", Duration: 30 * time.Minute, BufferBefore: 15 * time.Minute, BufferAfter: 10 * time.Minute})
	q.Step = time.Minute
	s := worker(t, "ana", "08:00-13:00")
	s.Busy = []Busy{{Start: bog("10:00"), End: bog("11:00"), BufferBefore: 20 * time.Minute, BufferAfter: 15 * time.Minute}}
	got, err := Slots(q, []Staff{s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	starts := clocks(got, bogota)
	for hhmm, want := range map[string]bool{
		"11:30": true,  // 11:00 + 15 after + 15 before
		"11:29": false, // one minute short
		"09:00": true,  // ends 09:30, +10 after = 09:40 = 10:00 - 20 before
		"09:01": false,
	} {
		if slices.Contains(starts, hhmm) != want {
			t.Errorf("start %s listed = %v, want %v", hhmm, !want, want)
		}
		if ok, _ := Free(q, s, nil, bog(hhmm)); ok != want {
			t.Errorf("Free(%s) = %v, want %v", hhmm, ok, want)
		}
	}
}

func TestDSTDays(t *testing.T) {
	t.Parallel()
	ny, madrid := mustLoad(t, "America/New_York"), mustLoad(t, "Europe/Madrid")
	for _, tc := range []struct {
		name  string
		loc   *time.Location
		d     Date
		hours []string
		want  []string // UTC HH:MM
	}{
		{"ny spring: range across the gap is shortened", ny, Date{2025, 3, 9}, []string{"01:00-04:00"},
			[]string{"06:00", "07:00"}}, // 01:00 EST, 03:00 EDT
		{"ny spring: 09-17 is still 8 hours", ny, Date{2025, 3, 9}, []string{"09:00-17:00"},
			[]string{"13:00", "14:00", "15:00", "16:00", "17:00", "18:00", "19:00", "20:00"}},
		{"ny fall: repeated hour makes the range an hour longer", ny, Date{2025, 11, 2}, []string{"00:00-03:00"},
			[]string{"04:00", "05:00", "06:00", "07:00"}}, // 00 EDT, 01 EDT, 01 EST, 02 EST
		{"ny fall: range starting in the repeated hour starts at its first occurrence", ny, Date{2025, 11, 2}, []string{"01:30-02:30"},
			[]string{"05:30", "06:30"}},
		{"madrid spring: range inside the gap vanishes", madrid, Date{2025, 3, 30}, []string{"02:00-02:59", "09:00-10:00"},
			[]string{"07:00"}},
		{"madrid fall", madrid, Date{2025, 10, 26}, []string{"02:00-04:00"},
			[]string{"00:00", "01:00", "02:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Staff{ID: "x", Active: true, Location: tc.loc, Hours: everyDay(t, tc.hours...)}
			q := Query{Service: hourService(), Step: time.Hour,
				From: instant(tc.d, 0, tc.loc), To: instant(tc.d, EndOfDay, tc.loc)}
			q.Now = q.From.Add(-time.Hour)
			got, err := Slots(q, []Staff{s}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if g := clocks(got, time.UTC); !slices.Equal(g, tc.want) {
				t.Fatalf("UTC starts = %v, want %v", g, tc.want)
			}
			checkSortedUnique(t, got)
		})
	}
}

func checkSortedUnique(tb testing.TB, slots []Slot) {
	tb.Helper()
	for i := 1; i < len(slots); i++ {
		if compareSlots(slots[i-1], slots[i]) >= 0 {
			tb.Fatalf("slots %d and %d out of order or duplicated: %+v %+v", i-1, i, slots[i-1], slots[i])
		}
	}
}

// TestStaffInOtherZone: a Bogota-day query sees a Madrid therapist's morning
// (the night before in Bogota) and a Tokyo one's next local day.
func TestStaffInOtherZone(t *testing.T) {
	t.Parallel()
	madrid := Staff{ID: "madrid", Active: true, Location: mustLoad(t, "Europe/Madrid"), Hours: everyDay(t, "09:00-11:00")}
	tokyo := Staff{ID: "tokyo", Active: true, Location: mustLoad(t, "Asia/Tokyo"), Hours: everyDay(t, "09:00-10:00")}
	q := dayQuery(hourService())
	q.Step = time.Hour
	got, err := Slots(q, []Staff{tokyo, madrid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var g []string
	for _, s := range got {
		g = append(g, s.StaffID+"@"+s.Start.Format(time.RFC3339))
	}
	want := []string{
		"madrid@2025-06-02T07:00:00Z", "madrid@2025-06-02T08:00:00Z", // 09:00, 10:00 CEST
		"tokyo@2025-06-03T00:00:00Z", // 09:00 JST on June 3rd, still June 2nd in Bogota
	}
	if !slices.Equal(g, want) {
		t.Fatalf("got %v, want %v", g, want)
	}
}

func TestAnyStaffFairness(t *testing.T) {
	t.Parallel()
	q := dayQuery(hourService())
	a, b, c := worker(t, "a", "09:00-12:00"), worker(t, "b", "09:00-12:00"), worker(t, "c", "09:00-12:00")
	a.Load, b.Load, c.Load = 5, 2, 2
	b.Busy = []Busy{{Start: bog("10:00"), End: bog("11:00")}}
	c.Busy = []Busy{{Start: bog("09:00"), End: bog("10:30")}, {Start: bog("11:00"), End: bog("12:00")}}
	c.Skills = []string{"x"}
	for _, order := range [][]Staff{{a, b, c}, {c, b, a}} {
		got, err := AnyStaff(q, order, nil)
		if err != nil {
			t.Fatal(err)
		}
		var g []string
		for _, s := range got {
			g = append(g, s.Start.In(bogota).Format("15:04")+"="+s.StaffID)
		}
		want := []string{
			"09:00=b", // b and c tie on load; c busy
			"09:30=a", // b's 10:00 appointment, c busy until 10:30
			"10:00=a", // b and c busy
			"10:30=a", // b busy until 11:00, c busy again at 11:00
			"11:00=b", // b free again, least loaded
		}
		if !slices.Equal(g, want) {
			t.Fatalf("AnyStaff = %v, want %v", g, want)
		}
	}
	// A tie on load goes to the smaller ID.
	b.Busy, c.Busy = nil, nil
	got, err := AnyStaff(q, []Staff{c, a, b}, nil)
	if err != nil || got[0].StaffID != "b" {
		t.Fatalf("tie: %+v, %v", got, err)
	}
}

func TestAlternatives(t *testing.T) {
	t.Parallel()
	q := dayQuery(hourService())
	a, b, c, d := worker(t, "a", "08:00-13:00"), worker(t, "b", "10:00-11:00"), worker(t, "c", "09:00-12:00"), worker(t, "d", "09:00-12:00")
	a.Busy = []Busy{{Start: bog("09:15"), End: bog("09:45")}} // a free at 08:00 and 10:00-12:00
	b.Load, c.Load, d.Load = 3, 1, 1
	d.Active = false
	wanted := Slot{Start: bog("10:00"), End: bog("11:00"), StaffID: "a"}
	got := Alternatives(q, []Staff{d, c, b, a}, nil, wanted, 10)
	var g []string
	for _, s := range got {
		g = append(g, s.StaffID+"@"+s.Start.In(bogota).Format("15:04"))
	}
	want := []string{
		"a@10:30", "a@11:00", "a@11:30", // the same member, nearest first
		"a@08:00", "a@12:00", // both two hours away: the earlier first
		"c@10:00", "b@10:00", // others at the same time, least loaded first; d is inactive
	}
	if !slices.Equal(g, want) {
		t.Fatalf("Alternatives = %v, want %v", g, want)
	}
	if got := Alternatives(q, []Staff{a, b, c, d}, nil, wanted, 3); len(got) != 3 || got[2].StaffID != "a" {
		t.Fatalf("limit 3: %+v", got)
	}
	for _, s := range got {
		if s == wanted {
			t.Fatal("wanted slot returned")
		}
	}
	if got := Alternatives(q, []Staff{a}, nil, wanted, 0); got != nil {
		t.Fatalf("limit 0: %+v", got)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	good := func() (Query, []Staff, *Resource) {
		q := dayQuery(hourService())
		q.Service.ResourceID = "room"
		return q, []Staff{worker(t, "a", "09:00-10:00")}, &Resource{ID: "room", Capacity: 1}
	}
	if _, err := Slots(good()); err != nil {
		t.Fatalf("good input rejected: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource)
		want string
	}{
		{"negative duration", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) {
			q.Service.Duration = -time.Minute
			return st, r
		}, "duration"},
		{"zero duration", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { q.Service.Duration = 0; return st, r }, "duration"},
		{"negative buffer", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) {
			q.Service.BufferAfter = -1
			return st, r
		}, "buffer"},
		{"From equals To", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { q.To = q.From; return st, r }, "From"},
		{"span too long", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) {
			q.To = q.From.Add(MaxSpan + time.Hour)
			return st, r
		}, "longer"},
		{"negative step", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { q.Step = -time.Minute; return st, r }, "step"},
		{"zero Now", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { q.Now = time.Time{}; return st, r }, "Now"},
		{"negative notice", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { q.MinNotice = -1; return st, r }, "notice"},
		{"nil location", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { st[0].Location = nil; return st, r }, "Location"},
		{"empty staff ID", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { st[0].ID = ""; return st, r }, "ID"},
		{"duplicate staff", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { return append(st, st[0]), r }, "twice"},
		{"unknown StaffID", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { q.StaffID = "zz"; return st, r }, "not among"},
		{"inverted busy", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) {
			st[0].Busy = []Busy{{Start: bog("10:00"), End: bog("09:00")}}
			return st, r
		}, "inverted"},
		{"inverted time off", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) {
			st[0].TimeOff = []Interval{{bog("10:00"), bog("09:00")}}
			return st, r
		}, "inverted"},
		{"two overrides one date", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) {
			st[0].Overrides = []Override{ClosedOn(monday), ClosedOn(monday)}
			return st, r
		}, "two overrides"},
		{"negative load", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { st[0].Load = -1; return st, r }, "Load"},
		{"capacity zero", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { r.Capacity = 0; return st, r }, "capacity"},
		{"missing resource", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { return st, nil }, "none given"},
		{"wrong resource", func(q *Query, st []Staff, r *Resource) ([]Staff, *Resource) { r.ID = "sauna"; return st, r }, "needs resource"},
	} {
		q, st, r := good()
		st, r = tc.edit(&q, st, r)
		_, err := Slots(q, st, r)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalid mentioning %q", tc.name, err, tc.want)
		}
	}
	q, st, r := good()
	q.Step = -1
	if _, err := Free(q, st[0], r, bog("09:00")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Free accepted a negative step: %v", err)
	}
	if _, err := AnyStaff(q, st, r); !errors.Is(err, ErrInvalid) {
		t.Errorf("AnyStaff accepted a negative step: %v", err)
	}
}

func TestEmptyWindow(t *testing.T) {
	t.Parallel()
	q := dayQuery(hourService())
	q.Now, q.MinNotice = bog("23:00"), 2*time.Hour // notice pushes past To
	got, err := Slots(q, []Staff{worker(t, "a", "09:00-12:00")}, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v", got, err)
	}
}
