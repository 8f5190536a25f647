package schedule

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/availability"
)

// TestNearestPicksAsSortingDid: the walk outwards from the refused start
// answers what sorting the window's other slots by distance (stable, so
// the earlier on a tie) and taking the first n did, on random windows
// with gaps, other staff members' slots and the refused start in or out.
func TestNearestPicksAsSortingDid(t *testing.T) {
	reference := func(near []availability.Slot, staffID string, start time.Time, n int) []availability.Slot {
		var same []availability.Slot
		for _, sl := range near {
			if sl.StaffID == staffID && !sl.Start.Equal(start) {
				same = append(same, sl)
			}
		}
		distance := func(t time.Time) time.Duration { return max(t.Sub(start), start.Sub(t)) }
		slices.SortStableFunc(same, func(x, y availability.Slot) int { return cmp.Compare(distance(x.Start), distance(y.Start)) })
		return same[:min(len(same), n)]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for range 2000 {
		var near []availability.Slot
		for i := range rng.IntN(60) {
			if rng.IntN(3) == 0 {
				continue // a gap in the grid
			}
			at := base.Add(time.Duration(i) * 15 * time.Minute)
			near = append(near, availability.Slot{Start: at, StaffID: "ana"})
			if rng.IntN(4) == 0 {
				near = append(near, availability.Slot{Start: at, StaffID: "bea"})
			}
		}
		start := base.Add(time.Duration(rng.IntN(70)-5) * 15 * time.Minute)
		n := rng.IntN(7)
		if got, want := nearest(near, "ana", start, n), reference(near, "ana", start, n); !slices.Equal(got, want) {
			t.Fatalf("start %v, n %d over %v:\ngot  %v\nwant %v", start, n, near, got, want)
		}
	}
}
