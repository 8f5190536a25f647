package schedule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/persistence"
)

// TestMemoMatchesFreshComputation: the memo must never change an answer.
// Availability reads and refusals' alternatives are compared with the
// engine run afresh on the actor's calendar read back from the store,
// while the clock walks through the notice (which cuts the morning),
// holds lapse and the calendar changes between identical questions.
func TestMemoMatchesFreshComputation(t *testing.T) {
	const notice = 30 * time.Minute
	f := newFixture(t, Config{MinNotice: notice, HoldTTL: 20 * time.Minute}, nil)
	f.clock.set(at(8, 50))
	day, next := at(0, 0), at(0, 0).AddDate(0, 0, 1)
	ctx := context.Background()

	fresh := func(from, to time.Time) []availability.Slot {
		t.Helper()
		now := f.clock.now()
		var m persistence.StaffMember
		var appts []persistence.Appointment
		if err := f.store.InTx(ctx, func(tx persistence.Tx) (err error) {
			if m, err = tx.StaffGet(ctx, "ana"); err != nil {
				return err
			}
			appts, err = tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: "ana", From: day.AddDate(0, 0, -2), To: next.AddDate(0, 0, 2)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		s, err := StaffCalendar(m, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ap := range appts {
			if ap.Live(now) {
				hold := time.Time{}
				if ap.Status == persistence.StatusHeld {
					hold = ap.HoldExpiresAt
				}
				s.Busy = append(s.Busy, availability.Busy{Start: ap.Start, End: ap.End, BufferBefore: ap.BufferBefore, BufferAfter: ap.BufferAfter, HoldExpiresAt: hold})
			}
		}
		q := availability.Query{Service: availability.Service{ID: massage.ID, Duration: massage.Duration, BufferBefore: massage.BufferBefore,
			BufferAfter: massage.BufferAfter, RequiredSkills: massage.RequiredSkills}, From: from, To: to, Now: now,
			MinNotice: notice, Horizon: 90 * 24 * time.Hour, Step: 15 * time.Minute}
		out, err := availability.Slots(q, []availability.Staff{s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	read := func(from, to time.Time) []availability.Slot {
		t.Helper()
		r, err := f.dir.Ask(ctx, "ana", &SlotsQuery{Service: massage, From: from, To: to})
		if err != nil || r.(*SlotsReply).Err != nil {
			t.Fatal(err, r)
		}
		return r.(*SlotsReply).Slots
	}
	check := func(step string) {
		t.Helper()
		for range 2 { // the second answer comes from the memo
			if got, want := read(day, next), fresh(day, next); !slices.Equal(got, want) {
				t.Fatalf("%s: slots\n got %v\nwant %v", step, got, want)
			}
		}
		// Alternatives of a refused claim: the nearest other free starts.
		taken := at(13, 0)
		for i := range 2 {
			r := f.hold(t, fmt.Sprintf("probe-%s-%d", step, i), taken)
			if !errors.Is(r.Err, ErrSlotTaken) {
				t.Fatalf("%s: probe on the taken slot: %v", step, r.Err)
			}
			want := fresh(taken.Add(-24*time.Hour), taken.Add(24*time.Hour))
			want = slices.DeleteFunc(want, func(s availability.Slot) bool { return s.Start.Equal(taken) })
			dist := func(x time.Time) time.Duration { return max(x.Sub(taken), taken.Sub(x)) }
			slices.SortStableFunc(want, func(a, b availability.Slot) int { return int(dist(a.Start) - dist(b.Start)) })
			if !slices.Equal(r.Alternatives, want[:min(5, len(want))]) {
				t.Fatalf("%s: alternatives\n got %v\nwant %v", step, r.Alternatives, want[:min(5, len(want))])
			}
		}
	}
	if r := f.hold(t, "noon", at(13, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	check("start")
	if r := f.ask(t, &Confirm{AppointmentID: "noon", ActorID: "c-noon"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	check("confirmed")
	f.clock.set(at(9, 40)) // the notice now cuts 09:00-10:00
	check("notice")
	if r := f.hold(t, "short", at(11, 30)); r.Err != nil { // lapses at 10:00
		t.Fatal(r.Err)
	}
	check("held")
	for i := range 2 { // the second refusal comes from the memo
		if r := f.hold(t, fmt.Sprintf("over-short-%d", i), at(11, 30)); !errors.Is(r.Err, ErrSlotTaken) {
			t.Fatalf("a claim on the short hold's slot: %v, want slot_taken", r.Err)
		}
	}
	f.clock.set(at(10, 0)) // lapsed; the expiry timer may not have run yet
	check("lapsed")
	if r := f.hold(t, "after-short", at(11, 30)); r.Err != nil {
		t.Fatalf("the lapsed hold's slot, refused before from the memo: %v", r.Err)
	}
	check("retaken")
	if r := f.hold(t, "late", at(15, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	check("changed")
	if r := f.ask(t, &Cancel{AppointmentID: "late", ActorID: "c-late", Override: true}); r.Err != nil {
		t.Fatal(r.Err)
	}
	check("cancelled")
	// The afternoon full: no start within three hours of the probe, so
	// its alternatives come from the day's far end and the next morning.
	for _, h := range []struct {
		id    string
		start time.Time
	}{{"fill-1", at(14, 15)}, {"fill-2", at(15, 30)}} {
		if r := f.hold(t, h.id, h.start); r.Err != nil {
			t.Fatal(h.id, r.Err)
		}
	}
	check("full")
	// The lookups were counted: computed once (misses), then remembered.
	if h, m := testutil.ToFloat64(f.metrics.memoHits), testutil.ToFloat64(f.metrics.memoMisses); h == 0 || m == 0 {
		t.Errorf("memo lookups: %v hits, %v misses; want both counted", h, m)
	}
}

// TestMemoAlternativesNearHorizon: when the horizon cuts a refusal's
// window, the window slides with the clock (a start drops at the front as
// one enters at the back), so the count of nearby starts no longer names
// them and the alternatives must not come from the memo.
func TestMemoAlternativesNearHorizon(t *testing.T) {
	f := newFixture(t, Config{Horizon: 24 * time.Hour, HoldTTL: 20 * time.Minute}, nil)
	f.clock.set(at(8, 50))
	if r := f.hold(t, "taken", at(10, 15)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.ask(t, &Confirm{AppointmentID: "taken", ActorID: "c-taken"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	probe := func(id string) []availability.Slot {
		t.Helper()
		r := f.hold(t, id, at(10, 15))
		if !errors.Is(r.Err, ErrSlotTaken) {
			t.Fatalf("%s: %v", id, r.Err)
		}
		return r.Alternatives
	}
	if got := probe("p1"); len(got) == 0 || !got[0].Start.Equal(at(9, 0)) {
		t.Fatalf("at 08:50 the nearest alternative is 09:00, got %v", got)
	}
	f.clock.set(at(9, 5)) // 09:00 has passed; tomorrow's 09:00 entered the horizon
	for _, sl := range probe("p2") {
		if sl.Start.Before(at(9, 5)) {
			t.Fatalf("alternative %v starts before now (09:05)", sl.Start)
		}
	}
}

// TestViewAcrossLapsesIsTheRebuiltView: while holds lapse, confirmations,
// completions and cancellations land and new holds arrive, the calendar
// view the memo keeps (carried across lapses by lapsedAt, grown by
// touchHeld) is at every instant the view rebuilt from every appointment:
// the same busy times, load and first expiry, ordered up to sorted.
func TestViewAcrossLapsesIsTheRebuiltView(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 4))
	base := at(8, 0)
	minutes := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	a := &scheduleActor{staffID: "ana", staff: availability.Staff{ID: "ana", Active: true, Location: time.UTC},
		appts: map[string]persistence.Appointment{}, byStart: map[int64][]string{}}
	now, carried := base, 0
	appt := func(i int) persistence.Appointment {
		start := base.Add(minutes(15 * rng.IntN(4*24*14)))
		ap := persistence.Appointment{ID: fmt.Sprint("a", i), StaffID: "ana", Start: start, End: start.Add(minutes(15 * (1 + rng.IntN(8)))),
			BufferBefore: minutes(5 * rng.IntN(4)), BufferAfter: minutes(5 * rng.IntN(4)), Status: persistence.StatusHeld,
			HoldExpiresAt: now.Add(minutes(1 + rng.IntN(40)))}
		return ap
	}
	for i := range 200 {
		a.put(appt(i))
	}
	a.touch()
	ids := func() []string { return slices.Sorted(maps.Keys(a.appts)) }
	busyKey := func(b availability.Busy) string {
		return fmt.Sprint(b.Start.UnixNano(), b.End.UnixNano(), b.BufferBefore, b.BufferAfter, b.HoldExpiresAt.UnixNano())
	}
	for step := range 3000 {
		switch r := rng.IntN(10); {
		case r < 3:
			now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
		case r < 5:
			ap := appt(200 + step)
			a.cachedCalendar(now) // as hold does before touchHeld
			a.put(ap)
			a.touchHeld(ap)
		default:
			// A change to a random appointment, as changeAnd makes it.
			before := a.appts[ids()[rng.IntN(len(a.appts))]]
			after := before
			switch {
			case before.Status == persistence.StatusHeld && !before.Live(now):
				after.Status = persistence.StatusExpired // the timer recording a lapse
			case before.Status == persistence.StatusHeld && r < 7:
				after.Status, after.HoldExpiresAt = persistence.StatusConfirmed, time.Time{}
			case before.Status == persistence.StatusConfirmed && r < 8:
				after.Status = persistence.StatusCompleted
			case before.Live(now):
				after.Status = persistence.StatusCancelled
			default:
				continue
			}
			a.put(after)
			if inView(before, now) || inView(after, now) {
				a.touch()
			} else {
				carried++
			}
		}
		got := a.cachedCalendar(now)
		want := newSnapshot(a.version, a.gen, now, a.calendar(now, ""))
		if got.cal.Load != want.cal.Load || !got.validUntil.Equal(want.validUntil) {
			t.Fatalf("step %d: load %d, valid until %v; rebuilt: load %d, valid until %v",
				step, got.cal.Load, got.validUntil, want.cal.Load, want.validUntil)
		}
		if !slices.IsSortedFunc(got.cal.Busy[:got.sorted], byStart) {
			t.Fatalf("step %d: busy times not ordered up to %d", step, got.sorted)
		}
		g, w := slices.Sorted(slices.Values(mapSlice(got.cal.Busy, busyKey))), slices.Sorted(slices.Values(mapSlice(want.cal.Busy, busyKey)))
		if !slices.Equal(g, w) {
			t.Fatalf("step %d at %v: busy times differ: %d kept, %d rebuilt", step, now, len(g), len(w))
		}
	}
	if carried == 0 {
		t.Fatal("no lapse was recorded while the view stood")
	}
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}
