package schedule

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// TestHoldQueueFindsTheLapses: through holds made, confirmed, cancelled
// and moved, the queue's next hold is always the earliest one held, and a
// pass takes exactly the holds lapsed by then (at most n+1 of them, the
// earliest first), as a walk over every appointment would find them.
func TestHoldQueueFindsTheLapses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 14))
	a := &scheduleActor{appts: map[string]persistence.Appointment{}, byStart: map[int64][]string{}}
	now := at(8, 0)
	minute := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	var ids []string
	walk := func() (first persistence.Appointment, lapsed int) {
		for _, ap := range a.appts {
			if ap.Status != persistence.StatusHeld {
				continue
			}
			if first.ID == "" || ap.HoldExpiresAt.Before(first.HoldExpiresAt) {
				first = ap
			}
			if !ap.HoldExpiresAt.After(now) {
				lapsed++
			}
		}
		return first, lapsed
	}
	for step := range 5000 {
		switch r := rng.IntN(10); {
		case r < 4:
			id := fmt.Sprint("h", step)
			start := at(9, 0).Add(minute(15 * rng.IntN(200)))
			a.put(persistence.Appointment{ID: id, Start: start, End: start.Add(time.Hour), Status: persistence.StatusHeld,
				HoldExpiresAt: now.Add(minute(1 + rng.IntN(30)))})
			ids = append(ids, id)
		case r < 7 && len(ids) > 0:
			ap := a.appts[ids[rng.IntN(len(ids))]]
			switch rng.IntN(3) {
			case 0:
				ap.Status, ap.HoldExpiresAt = persistence.StatusConfirmed, time.Time{}
			case 1:
				ap.Status = persistence.StatusCancelled
			default: // moved, held again for a while
				ap.Start = ap.Start.Add(minute(15))
				if ap.Status == persistence.StatusHeld {
					ap.HoldExpiresAt = now.Add(minute(1 + rng.IntN(30)))
				}
			}
			a.put(ap)
		case r < 9:
			now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
		default:
			n := 1 + rng.IntN(5)
			_, want := walk()
			got := a.lapsedHolds(now, n)
			if len(got) != min(want, n+1) {
				t.Fatalf("step %d: a pass took %d lapsed holds of %d (n %d)", step, len(got), want, n)
			}
			for i, ap := range got {
				if ap.Status != persistence.StatusHeld || ap.HoldExpiresAt.After(now) || i > 0 && ap.HoldExpiresAt.Before(got[i-1].HoldExpiresAt) {
					t.Fatalf("step %d: took %+v", step, ap)
				}
			}
			if rng.IntN(2) == 0 {
				a.requeue(got) // not recorded: the lapse rate refused the pass
			} else {
				for _, ap := range got {
					ap.Status = persistence.StatusExpired
					a.put(ap)
				}
			}
		}
		first, _ := walk()
		next, ok := a.nextHold()
		if ok != (first.ID != "") || ok && !next.HoldExpiresAt.Equal(first.HoldExpiresAt) {
			t.Fatalf("step %d: next hold %v (%v), want one expiring %v", step, next.HoldExpiresAt, ok, first.HoldExpiresAt)
		}
	}
	if len(a.holds) > 4*len(a.appts) {
		t.Fatalf("%d queued for %d appointments: stale entries are not dropped", len(a.holds), len(a.appts))
	}
}
