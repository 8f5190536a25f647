package waitlist

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var bogota, _ = time.LoadLocation("America/Bogota")

func at(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, bogota) }

var now = at(8, 0)

var massage = persistence.Service{ID: "massage", Name: "Massage", Category: "body", Duration: time.Hour,
	DepositPolicy: persistence.DepositNone, Active: true}

type fixture struct {
	store persistence.Store
	dir   *schedule.Directory
	p     *Processor
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t, persistence.Options{})
	ana := persistence.StaffMember{ID: "ana", Name: "Ana", TimeZone: "America/Bogota", Active: true}
	for d := range ana.Weekly {
		ana.Weekly[d] = []persistence.ClockRange{{StartMinute: 9 * 60, EndMinute: 17 * 60}}
	}
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		if _, err := tx.StaffPut(ctx, ana); err != nil {
			return err
		}
		_, err := tx.ServicePut(ctx, massage)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	m, _ := schedule.NewMetrics(prometheus.NewRegistry())
	clock := func() time.Time { return now }
	dir, err := schedule.NewDirectory(system.Root, schedule.Deps{Store: st, Now: clock, Log: quiet, Metrics: m}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Stop(5 * time.Second); system.Shutdown() })
	return &fixture{store: st, dir: dir, p: &Processor{Store: st, Calendars: schedule.NewClient(dir), Now: clock}}
}

func (f *fixture) hold(t *testing.T, id, client string, start time.Time) {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), "ana", &schedule.Hold{AppointmentID: id, ClientID: client, Service: massage, Start: start})
	if err != nil || r.(*schedule.HoldReply).Err != nil {
		t.Fatalf("hold %s: %v %v", id, err, r)
	}
}

func (f *fixture) wait(t *testing.T, id, client string, from, to time.Time) {
	t.Helper()
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
		return tx.WaitlistAdd(context.Background(), persistence.WaitlistEntry{ID: id, ClientID: client, ServiceID: "massage",
			From: from, To: to, Status: persistence.WaitlistWaiting, CreatedAt: now, UpdatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) entry(t *testing.T, id string) persistence.WaitlistEntry {
	t.Helper()
	var e persistence.WaitlistEntry
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		e, err = tx.WaitlistGet(context.Background(), id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

func cancelled(id string, start time.Time) *messages.AppointmentChanged {
	return &messages.AppointmentChanged{AppointmentId: id, StaffId: "ana", ServiceId: "massage", ClientId: "x",
		Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)), FromStatus: "confirmed", ToStatus: "cancelled"}
}

func TestFreedSlotGoesToTheFirstWaitingClient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.hold(t, "a1", "x", at(10, 0))
	f.wait(t, "w1", "first", at(9, 0), at(12, 0))
	f.wait(t, "w2", "second", at(9, 0), at(12, 0))

	// While a1 holds 10:00, an event claiming it freed offers nothing.
	if err := f.p.Handle(ctx, cancelled("a1", at(10, 0))); err != nil {
		t.Fatal(err)
	}
	if e := f.entry(t, "w1"); e.Status != persistence.WaitlistWaiting {
		t.Fatalf("offered a slot that was not free: %+v", e)
	}
	// Cancel a1 for real; the event offers 10:00 to the first in line.
	r, _ := f.dir.Ask(ctx, "ana", &schedule.Cancel{AppointmentID: "a1", Override: true})
	if r.(*schedule.Reply).Err != nil {
		t.Fatal(r.(*schedule.Reply).Err)
	}
	if err := f.p.Handle(ctx, cancelled("a1", at(10, 0))); err != nil {
		t.Fatal(err)
	}
	w1 := f.entry(t, "w1")
	if w1.Status != persistence.WaitlistOffered || w1.OfferedAppointmentID != OfferID("w1") {
		t.Fatalf("first entry %+v", w1)
	}
	if w2 := f.entry(t, "w2"); w2.Status != persistence.WaitlistWaiting {
		t.Fatalf("second entry %+v", w2)
	}
	// The hold is real: 10:00 is taken for everyone else.
	r, _ = f.dir.Ask(ctx, "ana", &schedule.Hold{AppointmentID: "a2", ClientID: "y", Service: massage, Start: at(10, 0)})
	if r.(*schedule.HoldReply).Err == nil {
		t.Fatal("the offered slot is still free")
	}
	// A redelivered event offers nothing twice.
	if err := f.p.Handle(ctx, cancelled("a1", at(10, 0))); err != nil {
		t.Fatal(err)
	}
	if w2 := f.entry(t, "w2"); w2.Status != persistence.WaitlistWaiting {
		t.Fatalf("redelivery offered again: %+v", w2)
	}
	var offers int
	f.store.InTx(ctx, func(tx persistence.Tx) error {
		events, err := tx.OutboxPending(ctx, 100)
		for _, ev := range events {
			var env messages.Event
			var wo messages.WaitlistOffered
			if proto.Unmarshal(ev.Payload, &env) == nil && env.Payload.UnmarshalTo(&wo) == nil {
				offers++
				if wo.ClientId != "first" || !wo.Start.AsTime().Equal(at(10, 0)) {
					t.Errorf("offer event %v", &wo)
				}
			}
		}
		return err
	})
	if offers != 1 {
		t.Fatalf("%d WaitlistOffered events, want 1", offers)
	}
}

func TestWindowMustFit(t *testing.T) {
	f := newFixture(t)
	f.wait(t, "w1", "early", at(9, 0), at(10, 30)) // 10:00-11:00 does not fit
	if err := f.p.Handle(context.Background(), cancelled("gone", at(10, 0))); err != nil {
		t.Fatal(err)
	}
	if e := f.entry(t, "w1"); e.Status != persistence.WaitlistWaiting {
		t.Fatalf("offered outside the window: %+v", e)
	}
}

func TestOfferSettles(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.wait(t, "w1", "first", at(9, 0), at(12, 0))
	f.wait(t, "w2", "second", at(9, 0), at(12, 0))
	if err := f.p.Handle(ctx, cancelled("gone", at(10, 0))); err != nil {
		t.Fatal(err)
	}
	// The first client lets the offer lapse: closed, and the slot goes on
	// to the second.
	lapsed := cancelled(OfferID("w1"), at(10, 0))
	lapsed.FromStatus, lapsed.ToStatus = "held", "expired"
	r, _ := f.dir.Ask(ctx, "ana", &schedule.Cancel{AppointmentID: OfferID("w1"), Override: true}) // frees it as expiry would
	if r.(*schedule.Reply).Err != nil {
		t.Fatal(r.(*schedule.Reply).Err)
	}
	if err := f.p.Handle(ctx, lapsed); err != nil {
		t.Fatal(err)
	}
	if e := f.entry(t, "w1"); e.Status != persistence.WaitlistExpired {
		t.Fatalf("lapsed offer: %+v", e)
	}
	if e := f.entry(t, "w2"); e.Status != persistence.WaitlistOffered {
		t.Fatalf("next in line: %+v", e)
	}
	confirmed := cancelled(OfferID("w2"), at(10, 0))
	confirmed.FromStatus, confirmed.ToStatus = "held", "confirmed"
	if err := f.p.Handle(ctx, confirmed); err != nil {
		t.Fatal(err)
	}
	if e := f.entry(t, "w2"); e.Status != persistence.WaitlistFulfilled {
		t.Fatalf("confirmed offer: %+v", e)
	}
}

func TestLapsedHoldGivesBackItsSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.hold(t, "a1", "maria", at(10, 0))
	err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		if err := tx.PackageGrant(ctx, persistence.Package{ID: "p1", ClientID: "maria", Name: "Two", ServiceIDs: []string{"massage"},
			SessionsTotal: 2, ExpiresAt: at(23, 0), CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		_, err := tx.PackageRedeem(ctx, persistence.PackageRedeem{ID: "r1", PackageID: "p1", AppointmentID: "a1",
			ServiceID: "massage", ClientID: "maria", At: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	lapsed := cancelled("a1", at(10, 0))
	lapsed.FromStatus, lapsed.ToStatus = "held", "expired"
	for range 2 { // redelivered: released once
		if err := f.p.Handle(ctx, lapsed); err != nil {
			t.Fatal(err)
		}
	}
	var p persistence.Package
	f.store.InTx(ctx, func(tx persistence.Tx) (err error) { p, err = tx.PackageGet(ctx, "p1"); return err })
	if p.SessionsUsed != 0 {
		t.Fatalf("sessions used after the hold lapsed: %d", p.SessionsUsed)
	}
}
