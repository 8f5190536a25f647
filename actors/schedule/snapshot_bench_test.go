package schedule

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkSlotsQuery reads one staff member's day through the Directory,
// from parallel goroutines: on a quiet calendar, and while a writer keeps
// holding fresh slots on the same calendar (each hold changes it and
// waits for its SQLite group commit), the mixed scenario's case.
func BenchmarkSlotsQuery(b *testing.B) {
	for _, claims := range []bool{false, true} {
		b.Run(map[bool]string{false: "quiet", true: "with-claims"}[claims], func(b *testing.B) {
			dir, sv := benchDirectory(b)
			ctx := context.Background()
			day := time.Date(2026, 12, 2, 0, 0, 0, 0, bogota)
			read := func() error {
				r, err := dir.Ask(ctx, "ana", &SlotsQuery{Service: sv, From: day, To: day.AddDate(0, 0, 1)})
				if err != nil {
					return err
				}
				if r := r.(*SlotsReply); r.Err != nil || len(r.Slots) == 0 {
					return fmt.Errorf("slots %d, %v", len(r.Slots), r.Err)
				}
				return nil
			}
			if err := read(); err != nil { // activates the calendar
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if claims {
				wg.Go(func() {
					first := day.AddDate(0, 0, 7) // never in the day read
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						start := first.Add(time.Duration(i) * 15 * time.Minute)
						r, err := dir.Ask(ctx, "ana", &Hold{AppointmentID: fmt.Sprint("w", i), ClientID: "c", Service: sv, Start: start})
						if err != nil || r.(*HoldReply).Err != nil {
							b.Errorf("claim %d: %v %v", i, err, r)
							return
						}
					}
				})
			}
			var mu sync.Mutex
			var took []time.Duration
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					began := time.Now()
					if err := read(); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(began))
				}
				mu.Lock()
				took = append(took, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
			if len(took) > 0 {
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
