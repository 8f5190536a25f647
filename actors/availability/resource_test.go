package availability

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestResourceFreeAndFullSpans(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	use := func(from, to int) Busy { return Busy{Start: at(from), End: at(to)} }
	sauna := Resource{ID: "sauna", Capacity: 2, Busy: []Busy{use(0, 60), use(30, 90), use(100, 120),
		{Start: at(0), End: at(200), HoldExpiresAt: at(-1)}}} // a lapsed hold blocks nothing
	for _, tc := range []struct {
		from, to int
		free     bool
	}{
		{0, 30, true},    // one use only
		{30, 60, false},  // two at once: full
		{60, 100, true},  // one, then none
		{85, 110, true},  // 85-90 one, 100-110 one: never two
		{-30, 0, true},   // ends where the first starts
		{59, 61, false},  // 59-60 has two
		{90, 100, true},  // empty room
		{100, 130, true}, // one
	} {
		if got := ResourceFree(sauna, t0, Interval{at(tc.from), at(tc.to)}); got != tc.free {
			t.Errorf("ResourceFree %d-%d = %v, want %v", tc.from, tc.to, got, tc.free)
		}
	}
	full := FullSpans(sauna, t0, Interval{at(-60), at(300)})
	if len(full) != 1 || !full[0].Start.Equal(at(30)) || !full[0].End.Equal(at(60)) {
		t.Fatalf("FullSpans = %v, want [30,60)", full)
	}
	room := Resource{ID: "room", Capacity: 1, Busy: []Busy{{Start: at(0), End: at(30), BufferAfter: 15 * time.Minute}}}
	if ResourceFree(room, t0, Interval{at(40), at(50)}) {
		t.Fatal("the after-buffer is part of the use")
	}
	if f := FullSpans(room, t0, Interval{at(0), at(10)}); len(f) != 1 || !f[0].End.Equal(at(45)) {
		t.Fatalf("room FullSpans = %v", f)
	}
}

// ResourceFree agrees with FullSpans on random calendars: a use fits
// exactly when it avoids every saturated span.
func TestResourceFreeAgreesWithFullSpans(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	r := rand.New(rand.NewPCG(7, 11))
	for range 500 {
		res := Resource{Capacity: 1 + r.IntN(4)}
		for range r.IntN(12) {
			s := r.IntN(240)
			res.Busy = append(res.Busy, Busy{Start: at(s), End: at(s + 5 + r.IntN(90))})
		}
		s := r.IntN(300) - 30
		iv := Interval{at(s), at(s + 5 + r.IntN(60))}
		overlaps := false
		for _, f := range FullSpans(res, t0, Interval{at(-1000), at(1000)}) {
			overlaps = overlaps || f.Overlaps(iv)
		}
		if ResourceFree(res, t0, iv) == overlaps {
			t.Fatalf("disagree on %v with %+v", iv, res)
		}
	}
}
