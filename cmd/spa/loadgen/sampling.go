package loadgen

import (
	"math"
	"math/rand/v2"
	"time"
)

// zipf draws ranks in [0, n) with probability proportional to
// 1/(rank+1)^s: rank 0 is the most popular staff member. One per worker:
// it is not safe for concurrent use.
type zipf struct {
	z *rand.Zipf
	n int
}

// newZipf returns a sampler over n ranks with exponent s (> 1; values at
// or below 1 are raised to 1.0001, as math/rand's Zipf needs s > 1).
func newZipf(r *rand.Rand, s float64, n int) zipf {
	if s <= 1 {
		s = 1.0001
	}
	if n < 1 {
		n = 1
	}
	return zipf{z: rand.NewZipf(r, s, 1, uint64(n-1)), n: n}
}

// next returns a rank in [0, n).
func (z zipf) next() int { return int(z.z.Uint64()) }

// arrival is the intended start of the i-th (0-based) operation of an
// open-loop run begun at t0 with rate operations per second. Latency is
// measured from it, not from when a worker got round to sending, so a slow
// server cannot hide its queueing (coordinated omission).
func arrival(t0 time.Time, rate float64, i int64) time.Time {
	return t0.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// arrivals is how many operations an open-loop run at rate schedules in d:
// those whose intended start is before d.
func arrivals(rate float64, d time.Duration) int64 {
	if rate <= 0 || d <= 0 {
		return 0
	}
	n := int64(math.Ceil(rate * d.Seconds()))
	// Guard the float rounding at the boundary: arrival(n-1) must be < d.
	for n > 0 && arrival(time.Time{}, rate, n-1).Sub(time.Time{}) >= d {
		n--
	}
	return n
}
