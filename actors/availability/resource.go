package availability

import "time"

// ResourceFree reports whether one more use of res over the padded
// interval iv keeps simultaneous use below capacity at every instant, with
// the uses live at now: what a resource actor decides a claim with. It is
// the resource half of Free.
func ResourceFree(res Resource, now time.Time, iv Interval) bool {
	var uses []Interval
	for _, b := range res.Busy {
		if u := b.Padded(); b.Live(now) && u.Overlaps(iv) {
			uses = append(uses, Interval{latest(u.Start, iv.Start), earliest(u.End, iv.End)})
		}
	}
	return maxOverlap(uses) < res.Capacity
}

// FullSpans returns, sorted and merged, where res is saturated at now
// (capacity live uses at once) within the window: a new use whose padded
// interval overlaps one of them does not fit. It is what Slots subtracts
// for a service that needs the resource, for callers that hold the
// resource's calendar apart from the staff's.
func FullSpans(res Resource, now time.Time, window Interval) []Interval {
	var uses []Interval
	for _, b := range res.Busy {
		if u := b.Padded(); b.Live(now) && u.Overlaps(window) {
			uses = append(uses, u)
		}
	}
	return saturated(uses, res.Capacity)
}
