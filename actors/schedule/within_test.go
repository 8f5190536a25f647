package schedule

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/availability"
)

// TestWithinAnswersLikeTheWholeCalendar: the engine given only the busy
// times a snapshot's index picks for a window answers exactly as given
// the whole calendar, for calendars booked weeks ahead with every mix of
// durations and buffers, including snapshots grown by withBusy.
func TestWithinAnswersLikeTheWholeCalendar(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	day, err := availability.NewClockRange(availability.ClockAt(8, 0), availability.ClockAt(20, 0))
	if err != nil {
		t.Fatal(err)
	}
	week := map[time.Weekday][]availability.ClockRange{}
	for d := time.Sunday; d <= time.Saturday; d++ {
		week[d] = []availability.ClockRange{day}
	}
	hours, err := availability.NewWeeklyHours(week)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	minutes := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	var buf []availability.Busy // one for every call, as the actor's pool lends
	for round := range 200 {
		cal := availability.Staff{ID: "ana", Active: true, Location: time.UTC, Hours: hours}
		busy := func() availability.Busy {
			start := base.Add(minutes(15 * rng.IntN(30*24*4)))
			return availability.Busy{Start: start, End: start.Add(minutes(15 * (1 + rng.IntN(16)))),
				BufferBefore: minutes(5 * rng.IntN(7)), BufferAfter: minutes(5 * rng.IntN(7))}
		}
		for range rng.IntN(300) {
			cal.Busy = append(cal.Busy, busy())
		}
		view := newSnapshot(1, 1, base, cal)
		for i := range rng.IntN(80) { // past tailLimit, some rounds
			view = view.withBusy(uint64(2+i), busy())
		}
		whole := view.cal
		whole.Busy = slices.Clone(whole.Busy)
		rng.Shuffle(len(whole.Busy), func(i, j int) { whole.Busy[i], whole.Busy[j] = whole.Busy[j], whole.Busy[i] })
		sv := availability.Service{ID: "massage", Duration: minutes(15 * (1 + rng.IntN(8))),
			BufferBefore: minutes(5 * rng.IntN(4)), BufferAfter: minutes(5 * rng.IntN(4))}
		q := availability.Query{Service: sv, Now: base, Horizon: 60 * 24 * time.Hour, Step: 15 * time.Minute}
		q.From = base.Add(minutes(15 * rng.IntN(30*24*4)))
		q.To = q.From.Add(minutes(15 * (1 + rng.IntN(4*48))))
		from, to := reach(sv, q.From, q.To)
		got, err := availability.Slots(q, []availability.Staff{view.within(from, to, &buf)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := availability.Slots(q, []availability.Staff{whole}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: slots in [%v, %v)\n got %v\nwant %v", round, q.From, q.To, got, want)
		}
		for range 20 {
			start := q.From.Add(minutes(15 * rng.IntN(4*48)))
			startFrom, startTo := reach(sv, start, start)
			got, err := availability.Free(q, view.within(startFrom, startTo, &buf), nil, start)
			if err != nil {
				t.Fatal(err)
			}
			want, err := availability.Free(q, whole, nil, start)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("round %d: free at %v = %v, want %v", round, start, got, want)
			}
		}
	}
}
