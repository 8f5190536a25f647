package availability

import (
	"slices"
	"time"
)

// Interval is the half-open span of instants [Start, End). Half-open so that
// back-to-back appointments (one ends at 10:00, the next starts at 10:00)
// do not overlap, and so that a day's last range can end at 24:00.
type Interval struct {
	Start, End time.Time
}

// Empty reports whether the interval holds no instant; inverted intervals
// count as empty so that arithmetic never has to special-case them.
func (a Interval) Empty() bool { return !a.Start.Before(a.End) }

// Overlaps reports whether a and b share at least one instant.
func (a Interval) Overlaps(b Interval) bool {
	return a.Start.Before(b.End) && b.Start.Before(a.End) && !a.Empty() && !b.Empty()
}

// Contains reports whether t lies in a.
func (a Interval) Contains(t time.Time) bool {
	return !t.Before(a.Start) && t.Before(a.End)
}

// Merge returns the union of ivs as sorted, disjoint, non-touching, non-empty
// intervals. The input is not modified, so callers may pass their own slices.
func Merge(ivs []Interval) []Interval {
	return mergeInPlace(slices.Clone(ivs))
}

// Subtract returns the parts of a not covered by any of cuts, sorted. The
// engine uses it to find the free windows around a working range.
func Subtract(a Interval, cuts []Interval) []Interval {
	return appendGaps(nil, a, Merge(cuts))
}

// mergeInPlace is Merge reusing ivs' backing array; the engine calls it on
// scratch buffers to keep a query's allocations flat.
func mergeInPlace(ivs []Interval) []Interval {
	ivs = slices.DeleteFunc(ivs, Interval.Empty)
	slices.SortFunc(ivs, func(a, b Interval) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return a.End.Compare(b.End)
	})
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].End) {
			if iv.End.After(out[n-1].End) {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// appendGaps appends to dst the maximal parts of a that miss merged, which
// must already be the output of Merge. A binary search skips the cuts that
// end before a, so one working range costs O(log n + gaps).
func appendGaps(dst []Interval, a Interval, merged []Interval) []Interval {
	if a.Empty() {
		return dst
	}
	i, _ := slices.BinarySearchFunc(merged, a.Start, func(iv Interval, t time.Time) int {
		if iv.End.After(t) {
			return 1
		}
		return -1
	})
	cursor := a.Start
	for ; i < len(merged) && merged[i].Start.Before(a.End); i++ {
		if merged[i].Start.After(cursor) {
			dst = append(dst, Interval{cursor, merged[i].Start})
		}
		if merged[i].End.After(cursor) {
			cursor = merged[i].End
		}
	}
	if cursor.Before(a.End) {
		dst = append(dst, Interval{cursor, a.End})
	}
	return dst
}

// edge is one end of an interval in a sweep: +1 where it starts, -1 where
// it ends.
type edge struct {
	at    time.Time
	delta int
}

// sweepEdges returns the edges of the non-empty ivs in time order, ends
// before starts at the same instant because intervals are half-open.
func sweepEdges(ivs []Interval) []edge {
	edges := make([]edge, 0, 2*len(ivs))
	for _, iv := range ivs {
		if !iv.Empty() {
			edges = append(edges, edge{iv.Start, +1}, edge{iv.End, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	return edges
}

// maxOverlap returns the largest number of ivs sharing one instant. Counting
// the intervals that touch a window is not enough: three uses that follow
// each other never fill a sauna for two.
func maxOverlap(ivs []Interval) int {
	n, best := 0, 0
	for _, e := range sweepEdges(ivs) {
		n += e.delta
		best = max(best, n)
	}
	return best
}

// saturated returns, merged, the spans where at least capacity of ivs
// overlap: a new use of the resource must avoid them entirely.
func saturated(ivs []Interval, capacity int) []Interval {
	var out []Interval
	var from time.Time
	n := 0
	for _, e := range sweepEdges(ivs) {
		before := n
		n += e.delta
		switch {
		case before < capacity && n >= capacity:
			from = e.at
		case before >= capacity && n < capacity && e.at.After(from):
			out = append(out, Interval{from, e.at})
		}
	}
	return mergeInPlace(out)
}
