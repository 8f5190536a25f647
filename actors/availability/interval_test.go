package availability

import (
	"testing"
	"time"
)

var epoch = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

func at(min int) time.Time { return epoch.Add(time.Duration(min) * time.Minute) }
func iv(a, b int) Interval { return Interval{at(a), at(b)} }

func TestIntervalBasics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b Interval
		want bool
	}{
		{iv(0, 10), iv(10, 20), false}, // touching is not overlapping
		{iv(0, 10), iv(9, 20), true},
		{iv(0, 10), iv(2, 3), true},
		{iv(0, 10), iv(5, 5), false}, // empty overlaps nothing
		{iv(10, 0), iv(0, 10), false},
	} {
		if got := tc.a.Overlaps(tc.b); got != tc.want {
			t.Errorf("%v overlaps %v = %v", tc.a, tc.b, got)
		}
		if got := tc.b.Overlaps(tc.a); got != tc.want {
			t.Errorf("overlap not symmetric for %v %v", tc.a, tc.b)
		}
	}
	got := Merge([]Interval{iv(20, 30), iv(0, 10), iv(10, 15), iv(25, 40), iv(50, 50)})
	want := []Interval{iv(0, 15), iv(20, 40)}
	if !equalIntervals(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
	got = Subtract(iv(0, 100), []Interval{iv(90, 120), iv(10, 20), iv(15, 30), iv(-5, 5)})
	want = []Interval{iv(5, 10), iv(30, 90)}
	if !equalIntervals(got, want) {
		t.Errorf("Subtract = %v, want %v", got, want)
	}
}

func TestMaxOverlapAndSaturated(t *testing.T) {
	t.Parallel()
	// Three uses that overlap pairwise in a chain never hold three units.
	chain := []Interval{iv(0, 20), iv(10, 30), iv(20, 40)}
	if got := maxOverlap(chain); got != 2 {
		t.Errorf("maxOverlap(chain) = %d, want 2", got)
	}
	if got := saturated(chain, 2); !equalIntervals(got, []Interval{iv(10, 30)}) {
		t.Errorf("saturated(chain, 2) = %v", got)
	}
	if got := saturated(chain, 3); len(got) != 0 {
		t.Errorf("saturated(chain, 3) = %v", got)
	}
	if got := saturated([]Interval{iv(0, 10), iv(0, 10)}, 1); !equalIntervals(got, []Interval{iv(0, 10)}) {
		t.Errorf("saturated cap 1 = %v", got)
	}
}

func equalIntervals(a, b []Interval) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Start.Equal(b[i].Start) || !a[i].End.Equal(b[i].End) {
			return false
		}
	}
	return true
}

// decodeIntervals turns fuzz bytes into small intervals on a minute grid,
// inverted and empty ones included.
func decodeIntervals(data []byte) []Interval {
	var out []Interval
	for i := 0; i+1 < len(data) && len(out) < 40; i += 2 {
		out = append(out, iv(int(int8(data[i])), int(int8(data[i]))+int(int8(data[i+1]))/4))
	}
	return out
}

func inAny(ivs []Interval, p time.Time) bool {
	for _, v := range ivs {
		if v.Contains(p) {
			return true
		}
	}
	return false
}

func FuzzIntervalArithmetic(f *testing.F) {
	f.Add([]byte{0, 40, 10, 40, 200, 100}, int8(-10), int8(60))
	f.Add([]byte{5, 0, 5, 255, 127, 127}, int8(0), int8(0))
	f.Fuzz(func(t *testing.T, data []byte, a0, alen int8) {
		ivs := decodeIntervals(data)
		a := iv(int(a0), int(a0)+int(alen))
		merged := Merge(ivs)
		sub := Subtract(a, ivs)
		capacity := 1 + len(data)%4
		full := saturated(ivs, capacity)
		for _, set := range [][]Interval{merged, sub, full} {
			for i, v := range set {
				if v.Empty() {
					t.Fatalf("empty interval %v in %v", v, set)
				}
				if i > 0 && !set[i-1].End.Before(v.Start) {
					t.Fatalf("not sorted, disjoint and non-touching: %v", set)
				}
			}
		}
		best := 0
		for m := -300; m <= 300; m++ { // every grid point the inputs can reach
			p := at(m)
			if inAny(merged, p) != inAny(ivs, p) {
				t.Fatalf("Merge changes membership of %d: %v -> %v", m, ivs, merged)
			}
			if want := a.Contains(p) && !inAny(ivs, p); inAny(sub, p) != want {
				t.Fatalf("Subtract membership of %d = %v, want %v", m, !want, want)
			}
			n := 0
			for _, v := range ivs {
				if v.Contains(p) {
					n++
				}
			}
			best = max(best, n)
			if inAny(full, p) != (n >= capacity) {
				t.Fatalf("saturated(%d) membership of %d wrong: n=%d", capacity, m, n)
			}
		}
		if got := maxOverlap(ivs); got != best {
			t.Fatalf("maxOverlap = %d, brute force %d", got, best)
		}
	})
}
