package schedule

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/persistence"
)

// calendarStore answers activations from memory: every staff member works
// 09:00-17:00 daily and has no appointments. Only the methods an
// activation calls are implemented (the embedded nil Tx panics on others),
// so the benchmark measures actors, not a database.
type calendarStore struct{ persistence.Store }

type calendarTx struct{ persistence.Tx }

func (calendarStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	return fn(calendarTx{})
}

func (calendarTx) CalendarActivate(context.Context, string) (int64, error) { return 1, nil }

func (calendarTx) StaffGet(_ context.Context, id string) (persistence.StaffMember, error) {
	m := persistence.StaffMember{ID: id, Name: id, TimeZone: "America/Bogota", Active: true}
	for d := range m.Weekly {
		m.Weekly[d] = []persistence.ClockRange{{StartMinute: 9 * 60, EndMinute: 17 * 60}}
	}
	return m, nil
}

func (calendarTx) DateOverrideList(context.Context, string, string, string) ([]persistence.DateOverride, error) {
	return nil, nil
}

func (calendarTx) TimeOffList(context.Context, string, time.Time, time.Time) ([]persistence.TimeOff, error) {
	return nil, nil
}

func (calendarTx) IdempotencyOwned(context.Context, string, time.Time) ([]persistence.IdempotencyRecord, error) {
	return nil, nil
}

func (calendarTx) AppointmentList(context.Context, persistence.AppointmentRange) ([]persistence.Appointment, error) {
	return nil, nil
}

// BenchmarkIdleActorMemory activates 100 000 schedule actors (each with a
// loaded, empty calendar, then idle) and reports the heap they hold each.
// Run it alone: go test -run '^$' -bench IdleActorMemory -benchtime 1x ./actors/schedule
func BenchmarkIdleActorMemory(b *testing.B) {
	const actors = 100_000
	for b.Loop() {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
		m, _ := NewMetrics(prometheus.NewRegistry())
		dir, err := NewDirectory(system.Root, Deps{Store: calendarStore{}, Now: func() time.Time { return t0 }, Log: quiet, Metrics: m,
			Config: Config{IdleAfter: time.Hour}}, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < actors; i += 8 {
					r, err := dir.Ask(context.Background(), fmt.Sprint("s", i), &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)})
					if err != nil || r.(*SlotsReply).Err != nil {
						b.Errorf("activate %d: %v %v", i, err, r)
						return
					}
				}
			})
		}
		wg.Wait()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/actors, "heap-bytes/actor")
		dir.Stop(time.Minute)
		system.Shutdown()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
