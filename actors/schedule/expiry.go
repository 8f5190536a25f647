package schedule

import (
	"container/heap"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// holdQueue orders a calendar's holds by expiry, so the timer finds the
// next lapse, and a pass the lapsed holds, without walking every
// appointment the activation loaded: after a peak a calendar keeps
// thousands, and while the node's lapse rate holds a pass back, every
// calendar tries again ten times a second (walking them all was a sixth
// of the node's CPU). A hold confirmed, cancelled or moved leaves its
// entry behind; the queue drops such entries as it meets them.
type holdQueue []queuedHold

type queuedHold struct {
	at time.Time // the hold's expiry when queued
	id string
}

func (q holdQueue) Len() int           { return len(q) }
func (q holdQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q holdQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *holdQueue) Push(x any)        { *q = append(*q, x.(queuedHold)) }
func (q *holdQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// queueHold queues ap's expiry when ap is a hold the queue does not hold
// yet (new, or its expiry moved); prev is what the calendar had under its
// id (known: anything).
func (a *scheduleActor) queueHold(prev persistence.Appointment, known bool, ap persistence.Appointment) {
	if ap.Status != persistence.StatusHeld {
		return
	}
	if known && prev.Status == persistence.StatusHeld && prev.HoldExpiresAt.Equal(ap.HoldExpiresAt) {
		return
	}
	heap.Push(&a.holds, queuedHold{at: ap.HoldExpiresAt, id: ap.ID})
}

// nextHold is the hold that expires first, dropping the entries of holds
// that no longer stand as queued.
func (a *scheduleActor) nextHold() (persistence.Appointment, bool) {
	for len(a.holds) > 0 {
		h := a.holds[0]
		if ap := a.appts[h.id]; ap.Status == persistence.StatusHeld && ap.HoldExpiresAt.Equal(h.at) {
			return ap, true
		}
		heap.Pop(&a.holds)
	}
	return persistence.Appointment{}, false
}

// lapsedHolds takes up to n+1 holds lapsed by now off the queue, the
// earliest first; giveBack returns those not recorded.
func (a *scheduleActor) lapsedHolds(now time.Time, n int) []persistence.Appointment {
	var out []persistence.Appointment
	for len(out) <= n {
		ap, ok := a.nextHold()
		if !ok || ap.HoldExpiresAt.After(now) {
			break
		}
		heap.Pop(&a.holds)
		out = append(out, ap)
	}
	return out
}

// requeue puts holds taken off the queue and not recorded back on it.
func (a *scheduleActor) requeue(holds []persistence.Appointment) {
	for _, ap := range holds {
		heap.Push(&a.holds, queuedHold{at: ap.HoldExpiresAt, id: ap.ID})
	}
}
