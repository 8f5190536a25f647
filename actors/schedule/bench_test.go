package schedule

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// benchDirectory is one staff member working around the clock, a
// 15-minute service, and a directory over a SQLite store.
func benchDirectory(b *testing.B) (*Directory, persistence.Service) {
	b.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(b, persistence.Options{})
	staff := persistence.StaffMember{ID: "ana", Name: "Ana", TimeZone: "America/Bogota", Active: true}
	for d := range staff.Weekly {
		staff.Weekly[d] = []persistence.ClockRange{{StartMinute: 0, EndMinute: 24 * 60}}
	}
	sv := persistence.Service{ID: "quick", Name: "Quick", Category: "x", Duration: 15 * time.Minute, Active: true, DepositPolicy: persistence.DepositNone}
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		if _, err := tx.StaffPut(ctx, staff); err != nil {
			return err
		}
		_, err := tx.ServicePut(ctx, sv)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	m, _ := NewMetrics(prometheus.NewRegistry())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	dir, err := NewDirectory(system.Root, Deps{Store: st, Now: func() time.Time { return t0 }, Log: quiet, Metrics: m,
		Config: Config{Horizon: 365 * 24 * time.Hour}}, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dir.Stop(10 * time.Second); system.Shutdown() })
	return dir, sv
}

// BenchmarkHotActorRefusals: every claim is for the one slot already held,
// so each is decided from memory with alternatives and never touches the
// database: the peak-hour case on a popular therapist.
func BenchmarkHotActorRefusals(b *testing.B) {
	dir, sv := benchDirectory(b)
	ctx := context.Background()
	taken := at(10, 0)
	if r, _ := dir.Ask(ctx, "ana", &Hold{AppointmentID: "first", ClientID: "c", Service: sv, Start: taken}); r.(*HoldReply).Err != nil {
		b.Fatal(r.(*HoldReply).Err)
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint("r", n.Add(1))
			r, err := dir.Ask(ctx, "ana", &Hold{AppointmentID: id, ClientID: id, Service: sv, Start: taken})
			if err != nil || r.(*HoldReply).Err == nil {
				b.Fatalf("refusal expected: %v %v", err, r)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkHotActorWins: concurrent claims on distinct free slots of one
// staff member, each answered after its group commit (SQLite, fsync on
// commit): how many accepted bookings one calendar absorbs per second.
func BenchmarkHotActorWins(b *testing.B) {
	dir, sv := benchDirectory(b)
	ctx := context.Background()
	first := time.Date(2026, 12, 2, 0, 0, 0, 0, bogota)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			start := first.Add(time.Duration(i) * 15 * time.Minute) // up to a year of distinct slots
			r, err := dir.Ask(ctx, "ana", &Hold{AppointmentID: fmt.Sprint("w", i), ClientID: "c", Service: sv, Start: start})
			if err != nil || r.(*HoldReply).Err != nil {
				b.Fatalf("claim %d: %v %v", i, err, r)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bookings/s")
}
