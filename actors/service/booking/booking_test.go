package booking

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var (
	quiet     = slog.New(slog.NewTextHandler(io.Discard, nil))
	bogota, _ = time.LoadLocation("America/Bogota")
	// now is a Tuesday, 07:00 in Bogota; staff work 08:00-18:00.
	now = time.Date(2026, 12, 1, 7, 0, 0, 0, bogota)
)

func at(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, bogota) }

// fixture is the service over a real SQLite store and real schedule and
// resource actors, with a fixed clock and this catalogue:
//
//   - ana and bea give facials (30 minutes, cut-off two hours), and "deposit"
//     facials that ask a deposit before confirmation; carl gives massages;
//   - s0 and s1 give "wet" treatments: a room-treatment needs the room for
//     one (45 minutes and 15 of cleanup), a wet-wrap needs no room.
type fixture struct {
	t     *testing.T
	store persistence.Store
	svc   *Service
	deps  Deps // svc's, for a service over another door
	sched *schedule.Directory
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, sqlitetest.Open(t, persistence.Options{}), func() time.Time { return now }, schedule.Config{})
}

// newFixtureOn is newFixture over store, with clock and the schedule
// actors' cfg (a zero Step: 30 minutes).
func newFixtureOn(t *testing.T, store persistence.Store, clock func() time.Time, cfg schedule.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, store: store}
	if cfg.Step == 0 {
		cfg.Step = 30 * time.Minute
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	sm, err := schedule.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.NewDirectory(sys.Root, schedule.Deps{Store: f.store, Now: clock, Metrics: sm,
		Config: cfg, Log: quiet}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := resource.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.NewDirectory(sys.Root, resource.Deps{Store: f.store, Now: clock, Metrics: rm, Log: quiet}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(5 * time.Second); res.Stop(5 * time.Second); sys.Shutdown() })

	var week [7][]persistence.ClockRange
	for d := range week {
		week[d] = []persistence.ClockRange{{StartMinute: 8 * 60, EndMinute: 18 * 60}}
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		for id, skills := range map[string][]string{"ana": {"facial"}, "bea": {"facial"}, "carl": {"massage"}, "s0": {"wet"}, "s1": {"wet"}} {
			if _, err := tx.StaffPut(ctx, persistence.StaffMember{ID: id, Name: id, Skills: skills, TimeZone: "America/Bogota", Weekly: week, Active: true}); err != nil {
				return err
			}
		}
		if _, err := tx.ResourcePut(ctx, persistence.Resource{ID: "room", Name: "Room", Capacity: 1, Active: true}); err != nil {
			return err
		}
		for _, sv := range []persistence.Service{
			{ID: "facial", Name: "Facial", Category: "face", Duration: 30 * time.Minute, PriceMinor: 8_000_000, RequiredSkills: []string{"facial"},
				CancelCutoff: 2 * time.Hour, DepositPolicy: persistence.DepositNone, Active: true},
			{ID: "deposit", Name: "Facial with deposit", Category: "face", Duration: 30 * time.Minute, PriceMinor: 8_000_000, RequiredSkills: []string{"facial"},
				DepositPolicy: persistence.DepositFixed, DepositValue: 2_000_000, Active: true},
			{ID: "room-treatment", Name: "Treatment", Category: "body", Duration: 45 * time.Minute, BufferAfter: 15 * time.Minute, PriceMinor: 9_000_000,
				RequiredSkills: []string{"wet"}, ResourceID: "room", DepositPolicy: persistence.DepositNone, Active: true},
			{ID: "wet-wrap", Name: "Wrap", Category: "body", Duration: 60 * time.Minute, PriceMinor: 5_000_000, RequiredSkills: []string{"wet"},
				DepositPolicy: persistence.DepositNone, Active: true},
		} {
			if _, err := tx.ServicePut(ctx, sv); err != nil {
				return err
			}
		}
		return nil
	})
	// The catalogue cache with a ttl of 0 reads the store on every call.
	f.deps = Deps{Store: f.store, Calendars: schedule.NewClient(sched), Resources: resource.NewClient(res),
		Catalogue: catalogue.NewCache(f.store, 0), Logger: quiet, Now: clock}
	f.svc = New(f.deps)
	f.sched = sched
	return f
}

func (f *fixture) tx(fn func(context.Context, persistence.Tx) error) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) }); err != nil {
		f.t.Fatal(err)
	}
}

// inTx runs a use case that takes the caller's transaction and returns
// its error (a refusal rolls the transaction back, as in the gateway).
func (f *fixture) inTx(fn func(context.Context, persistence.Tx) error) error {
	ctx := context.Background()
	return f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

func caller(subject string, role auth.Role) service.Caller {
	return service.Caller{Claims: auth.Claims{Subject: subject, Role: role}, RequestID: "req-test"}
}

var (
	maria = caller("maria", auth.RoleClient)
	juan  = caller("juan", auth.RoleClient)
	desk  = caller("desk", auth.RoleReceptionist)
	owner = caller("owner", auth.RoleAdmin)
)

// hold holds a slot and fails the test unless it was held.
func (f *fixture) hold(by service.Caller, in HoldInput) persistence.Appointment {
	f.t.Helper()
	ap, err := f.svc.Hold(context.Background(), by, in)
	if err != nil || ap.Status != persistence.StatusHeld {
		f.t.Fatalf("hold %+v: %+v, %v", in, ap, err)
	}
	return ap
}

// load reads an appointment for by and fails the test if it cannot.
func (f *fixture) load(by service.Caller, id string) Appointment {
	f.t.Helper()
	a, err := f.svc.Load(context.Background(), by, id)
	if err != nil {
		f.t.Fatalf("load %s: %v", id, err)
	}
	return a
}

// appointments lists a staff member's or a resource's live appointments of
// the day.
func (f *fixture) appointments(r persistence.AppointmentRange) []persistence.Appointment {
	f.t.Helper()
	r.From, r.To, r.LiveAt = at(0, 0), at(23, 59), now
	var list []persistence.Appointment
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.AppointmentList(ctx, r)
		return err
	})
	return list
}

// claims lists the room's unexpired claims.
func (f *fixture) claims() []persistence.ResourceClaim {
	f.t.Helper()
	var list []persistence.ResourceClaim
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.ResourceClaimList(ctx, "room", at(0, 0), at(23, 59), now)
		return err
	})
	return list
}

func (f *fixture) audit(subject string) []persistence.AuditEntry {
	f.t.Helper()
	var list []persistence.AuditEntry
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: subject, Limit: 100})
		return err
	})
	return list
}

// wantCode fails unless err is the fault with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	fe, safe := fault.From(err)
	if err == nil || fe.Code != code || !safe {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// wantTaken fails unless err is a slot_taken refusal, and returns its
// alternatives.
func wantTaken(t *testing.T, err error) []availability.Slot {
	t.Helper()
	var tk *Taken
	if !errors.As(err, &tk) {
		t.Fatalf("got %v, want a *Taken", err)
	}
	wantCode(t, err, fault.CodeSlotTaken)
	return tk.Alternatives
}

func TestHold(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ap := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0)})
	if ap.ClientID != "maria" || ap.StaffID != "ana" || !ap.Start.Equal(at(10, 0)) || ap.HoldExpiresAt.IsZero() || ap.PriceMinor != 8_000_000 {
		t.Fatalf("held %+v", ap)
	}

	// The same slot for someone else: slot_taken, with ana's nearest
	// starts and bea at the same time.
	_, err := f.svc.Hold(ctx, juan, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0)})
	alts := wantTaken(t, err)
	if len(alts) == 0 || len(alts) > maxAlternatives {
		t.Fatalf("alternatives %v", alts)
	}
	var bea bool
	for _, a := range alts {
		bea = bea || a.StaffID == "bea" && a.Start.Equal(at(10, 0))
		if a.StaffID == "ana" && a.Start.Equal(at(10, 0)) {
			t.Fatalf("the taken slot offered as an alternative: %v", alts)
		}
	}
	if !bea {
		t.Fatalf("alternatives lack bea at the same time: %v", alts)
	}

	// A retry with the same id (from the same idempotency key) gets the
	// appointment it made.
	first := f.hold(juan, HoldInput{ID: "apt_retry", ServiceID: "facial", StaffID: "bea", Start: at(11, 0)})
	if again := f.hold(juan, HoldInput{ID: "apt_retry", ServiceID: "facial", StaffID: "bea", Start: at(11, 0)}); again.ID != "apt_retry" || again.ID != first.ID {
		t.Fatalf("retry %+v, first %+v", again, first)
	}

	// Any staff: the least loaded qualified one (bea has one booking, ana
	// one, ties by id → ana; then bea), then nobody is left.
	if got := f.hold(caller("c1", auth.RoleClient), HoldInput{ServiceID: "facial", Start: at(9, 0)}); got.StaffID != "ana" {
		t.Fatalf("any staff → %s", got.StaffID)
	}
	if got := f.hold(caller("c2", auth.RoleClient), HoldInput{ServiceID: "facial", Start: at(9, 0)}); got.StaffID != "bea" {
		t.Fatalf("any staff → %s", got.StaffID)
	}
	_, err = f.svc.Hold(ctx, caller("c3", auth.RoleClient), HoldInput{ServiceID: "facial", Start: at(9, 0)})
	if alts := wantTaken(t, err); len(alts) == 0 || alts[0].Start.Equal(at(9, 0)) {
		t.Fatalf("any-staff alternatives %v", alts)
	}
}

// TestHoldWhoFor: clients book for themselves, staff may book for a
// client; every input problem is named.
func TestHoldWhoFor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	slot := HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0)}
	for _, tc := range []struct {
		name string
		by   service.Caller
		in   func(HoldInput) HoldInput
		code string
	}{
		{"anonymous", service.Caller{}, func(in HoldInput) HoldInput { return in }, fault.CodeUnauthenticated},
		{"client for someone else", maria, func(in HoldInput) HoldInput { in.ClientID = "juan"; return in }, fault.CodeForbidden},
		{"staff for a malformed client", desk, func(in HoldInput) HoldInput { in.ClientID = "juan pérez"; return in }, fault.CodeValidationFailed},
		{"no start", maria, func(in HoldInput) HoldInput { in.Start = time.Time{}; return in }, fault.CodeValidationFailed},
		{"malformed service", maria, func(in HoldInput) HoldInput { in.ServiceID = "Facial"; return in }, fault.CodeValidationFailed},
		{"malformed staff", maria, func(in HoldInput) HoldInput { in.StaffID = "-ana"; return in }, fault.CodeValidationFailed},
		{"malformed package", maria, func(in HoldInput) HoldInput { in.PackageID = "p1"; return in }, fault.CodeValidationFailed},
		{"unknown service", maria, func(in HoldInput) HoldInput { in.ServiceID = "sauna"; return in }, fault.CodeValidationFailed},
		{"unskilled staff", maria, func(in HoldInput) HoldInput { in.StaffID = "carl"; return in }, fault.CodeValidationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Hold(ctx, tc.by, tc.in(slot))
			wantCode(t, err, tc.code)
		})
	}
	if list := f.appointments(persistence.AppointmentRange{StaffID: "ana"}); len(list) != 0 {
		t.Fatalf("refused holds were written: %+v", list)
	}
	// Naming oneself is booking for oneself; staff book for a client.
	if ap := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0), ClientID: "maria"}); ap.ClientID != "maria" {
		t.Fatalf("own booking for %s", ap.ClientID)
	}
	ap := f.hold(desk, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(11, 0), ClientID: "juan"})
	if ap.ClientID != "juan" {
		t.Fatalf("desk booked for %s", ap.ClientID)
	}
	// The client it was booked for sees it; another client does not.
	if got := f.load(juan, ap.ID); got.ID != ap.ID {
		t.Fatalf("juan reads %+v", got)
	}
	_, err := f.svc.Get(ctx, maria, ap.ID)
	wantCode(t, err, fault.CodeNotFound)
	mine, err := f.svc.Mine(ctx, juan, at(0, 0), at(23, 0))
	if err != nil || len(mine) != 1 || mine[0].ID != ap.ID {
		t.Fatalf("juan's appointments %+v, %v", mine, err)
	}
}

// TestLifecycleRules: the cancellation cut-off binds clients and not
// staff, a deposit must be taken by staff, staff-only transitions refuse
// clients, and an appointment not loaded for the caller is not theirs.
func TestLifecycleRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// 08:00 is an hour away: inside the facial's two-hour cut-off.
	early := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(8, 0)})
	a := f.load(maria, early.ID)
	if _, err := f.svc.Confirm(ctx, maria, a, ChangeInput{Reason: " ok "}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Cancel(ctx, maria, f.load(maria, early.ID), ChangeInput{})
	wantCode(t, err, fault.CodeCutoffPassed)
	_, err = f.svc.Cancel(ctx, maria, f.load(maria, early.ID), ChangeInput{Reason: string(make([]byte, 201))})
	wantCode(t, err, fault.CodeValidationFailed)
	// Staff override the cut-off.
	cancelled, err := f.svc.Cancel(ctx, desk, f.load(desk, early.ID), ChangeInput{Reason: "client called"})
	if err != nil || cancelled.Status != persistence.StatusCancelled {
		t.Fatalf("desk cancel: %+v, %v", cancelled, err)
	}

	// A deposit is due: the client cannot confirm, staff can.
	dep := f.hold(maria, HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(15, 0)})
	if dep.DepositMinor == 0 {
		t.Fatalf("no deposit on %+v", dep)
	}
	_, err = f.svc.Confirm(ctx, maria, f.load(maria, dep.ID), ChangeInput{})
	wantCode(t, err, fault.CodeForbidden)
	if got, err := f.svc.Confirm(ctx, desk, f.load(desk, dep.ID), ChangeInput{}); err != nil || got.Status != persistence.StatusConfirmed {
		t.Fatalf("desk confirm: %+v, %v", got, err)
	}
	// Staff-only transitions.
	for name, fn := range map[string]func(context.Context, service.Caller, Appointment, ChangeInput) (persistence.Appointment, error){
		"check-in": f.svc.CheckIn, "complete": f.svc.Complete, "no-show": f.svc.NoShow,
	} {
		_, err := fn(ctx, maria, f.load(maria, dep.ID), ChangeInput{})
		if fe, _ := fault.From(err); err == nil || fe.Code != fault.CodeForbidden {
			t.Fatalf("client %s: %v", name, err)
		}
	}
	// An Appointment not loaded for the caller is nobody's.
	_, err = f.svc.Cancel(ctx, juan, f.load(maria, dep.ID), ChangeInput{})
	wantCode(t, err, fault.CodeNotFound)
	_, err = f.svc.Confirm(ctx, maria, Appointment{Appointment: dep}, ChangeInput{})
	wantCode(t, err, fault.CodeNotFound)
	_, err = f.svc.Load(ctx, juan, dep.ID)
	wantCode(t, err, fault.CodeNotFound)

	// Reschedule: a start is required; a taken start is refused with
	// alternatives; a free one moves the appointment.
	later := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(12, 0)})
	_, err = f.svc.Reschedule(ctx, maria, f.load(maria, later.ID), ChangeInput{})
	wantCode(t, err, fault.CodeValidationFailed)
	f.hold(juan, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(13, 0)})
	_, err = f.svc.Reschedule(ctx, maria, f.load(maria, later.ID), ChangeInput{Start: at(13, 0)})
	wantTaken(t, err)
	if moved, err := f.svc.Reschedule(ctx, maria, f.load(maria, later.ID), ChangeInput{Start: at(14, 0)}); err != nil || !moved.Start.Equal(at(14, 0)) {
		t.Fatalf("reschedule: %+v, %v", moved, err)
	}

	// The agenda is the front desk's.
	_, err = f.svc.Agenda(ctx, maria, AgendaInput{StaffID: "ana", Date: "2026-12-01"})
	wantCode(t, err, fault.CodeForbidden)
	_, err = f.svc.Agenda(ctx, desk, AgendaInput{StaffID: "ana", Date: "1 Dec"})
	wantCode(t, err, fault.CodeValidationFailed)
	_, err = f.svc.Agenda(ctx, desk, AgendaInput{StaffID: "zoe", Date: "2026-12-01"})
	wantCode(t, err, fault.CodeNotFound)
	agenda, err := f.svc.Agenda(ctx, desk, AgendaInput{StaffID: "ana", Date: "2026-12-01"})
	if err != nil || len(agenda) != 3 { // the cancelled one, juan's and the moved one
		t.Fatalf("agenda %+v, %v", agenda, err)
	}
}

func TestKioskCheckIn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	early := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(8, 0)})
	later := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 30)})
	for _, ap := range []persistence.Appointment{early, later} {
		if _, err := f.svc.Confirm(ctx, maria, f.load(maria, ap.ID), ChangeInput{}); err != nil {
			t.Fatal(err)
		}
	}
	done, err := f.svc.KioskCheckIn(ctx, early, "kiosk/k1")
	if err != nil || done.CheckedInAt.IsZero() {
		t.Fatalf("check in an hour before: %+v, %v", done, err)
	}
	// Two and a half hours early: the calendar refuses.
	_, err = f.svc.KioskCheckIn(ctx, later, "kiosk/k1")
	var r *Refused
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want a *Refused", err)
	}
	wantCode(t, r.Err, fault.CodeInvalidTransition)
}

func TestAvailability(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, slots, err := f.svc.Availability(ctx, service.Caller{}, AvailabilityInput{ServiceID: "facial", StaffID: "ana", From: at(0, 0), To: at(23, 0)})
	if err != nil || len(slots) != 20 || !slots[0].Start.Equal(at(8, 0)) {
		t.Fatalf("ana's day: %d slots, %v", len(slots), err)
	}
	f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 0)})
	f.hold(juan, HoldInput{ServiceID: "facial", StaffID: "bea", Start: at(9, 0)})
	_, slots, err = f.svc.Availability(ctx, service.Caller{}, AvailabilityInput{ServiceID: "facial", From: at(9, 0), To: at(10, 0)})
	if err != nil || len(slots) != 1 || !slots[0].Start.Equal(at(9, 30)) {
		t.Fatalf("any staff 09:00-10:00: %v, %v", slots, err)
	}
	_, _, err = f.svc.Availability(ctx, service.Caller{}, AvailabilityInput{ServiceID: "facial", From: at(0, 0), To: at(0, 0).AddDate(0, 0, 32)})
	wantCode(t, err, fault.CodeValidationFailed)
	_, _, err = f.svc.Availability(ctx, service.Caller{}, AvailabilityInput{ServiceID: "facial", StaffID: "carl", From: at(0, 0), To: at(23, 0)})
	wantCode(t, err, fault.CodeValidationFailed)
}

// TestKeyedAnyStaffResendReadsTheStoredAnswer: a resent "any staff" hold
// cannot know which calendar answered it (that one's slot is taken now,
// so it would go to another, whose write would then meet the key and fail
// with everything batched beside it); it reads the stored answer instead
// and asks no calendar.
func TestKeyedAnyStaffResendReadsTheStoredAnswer(t *testing.T) {
	f := newFixture(t)
	var holds atomic.Int32
	counting := door.Func(func(ctx context.Context, id string, msg any) (any, error) {
		if _, ok := msg.(*schedule.Hold); ok {
			holds.Add(1)
		}
		return f.sched.Ask(ctx, id, msg)
	})
	d := f.deps
	d.Calendars = schedule.NewClient(counting)
	svc := New(d)
	maria := caller("maria", auth.RoleClient)
	in := func(body string) HoldInput {
		return HoldInput{ID: "apt-any-1", ServiceID: "facial", Start: at(10, 0),
			Key: &keyed.Key{Scope: "sub:maria", Name: "any-1", Hash: []byte(body)}}
	}
	first, err := svc.Hold(context.Background(), maria, in("first"))
	if err != nil || holds.Load() != 1 {
		t.Fatalf("first hold: %+v, %v after %d calendar holds", first, err, holds.Load())
	}
	again := in("first")
	ap, err := svc.Hold(context.Background(), maria, again)
	if err != nil || ap.ID != first.ID || ap.StaffID != first.StaffID || !again.Key.Replayed() {
		t.Fatalf("resend: %+v, %v, replayed %v; want %s of %s", ap, err, again.Key.Replayed(), first.ID, first.StaffID)
	}
	if _, err := svc.Hold(context.Background(), maria, in("another request")); servicetest.Code(err) != fault.CodeIdempotencyKeyReused {
		t.Fatalf("same key, other request: %v", err)
	}
	if n := holds.Load(); n != 1 {
		t.Fatalf("the resends asked %d calendars to hold; want none", n-1)
	}
}

// TestDepositOnlyAfterNoShows: a service that asks its deposit only of
// clients with a no-show in the last year asks none of a client without
// one (the hold's deposit is 0, the client confirms it), and the whole
// deposit of a client with one; a no-show older than the year is
// forgotten.
func TestDepositOnlyAfterNoShows(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		sv, err := tx.ServiceGet(ctx, "deposit")
		if err != nil {
			return err
		}
		sv.DepositNoShows = 1
		_, err = tx.ServicePut(ctx, sv)
		return err
	})
	noShow := func(client string, start time.Time) {
		f.tx(func(ctx context.Context, tx persistence.Tx) error {
			return tx.AppointmentInsert(ctx, persistence.Appointment{ID: ulid.Make().String(), StaffID: "ana", ServiceID: "facial",
				ClientID: client, Start: start, End: start.Add(30 * time.Minute), Status: persistence.StatusNoShow,
				PriceMinor: 8_000_000, Version: 1, CreatedAt: start, UpdatedAt: start})
		})
	}
	noShow("maria", now.Add(-persistence.NoShowLookback-time.Hour)) // forgotten

	free := f.hold(maria, HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(15, 0)})
	if free.DepositMinor != 0 {
		t.Fatalf("a client without a no-show in the year was asked a deposit: %+v", free)
	}
	if got, err := f.svc.Confirm(ctx, maria, f.load(maria, free.ID), ChangeInput{}); err != nil || got.Status != persistence.StatusConfirmed {
		t.Fatalf("client confirm without a deposit: %+v, %v", got, err)
	}

	noShow("maria", now.Add(-30*24*time.Hour))
	asked := f.hold(maria, HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(16, 0)})
	if asked.DepositMinor != 2_000_000 {
		t.Fatalf("a client with a no-show in the year: deposit %d, want 2000000", asked.DepositMinor)
	}
	_, err := f.svc.Confirm(ctx, maria, f.load(maria, asked.ID), ChangeInput{})
	wantCode(t, err, fault.CodeForbidden)
}

// TestDepositPaidWithCredit: a client's credit pays a deposit exactly to
// the cent, in parts; once nothing is due the client confirms; a
// cancellation within policy gives the credit back; the refusals.
func TestDepositPaidWithCredit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		return tx.CreditGrant(ctx, persistence.CreditGrant{ID: ulid.Make().String(), ClientID: "maria", AmountMinor: 3_000_001,
			Reason: "goodwill", GrantedBy: "desk", ExpiresAt: now.Add(90 * 24 * time.Hour), CreatedAt: now})
	})
	pay := func(by service.Caller, id string, amount int64) (CreditPayment, error) {
		var p CreditPayment
		err := f.inTx(func(ctx context.Context, tx persistence.Tx) (err error) {
			a, err := f.svc.LoadIn(ctx, tx, by, id)
			if err != nil {
				return err
			}
			p, err = f.svc.PayDepositWithCredit(ctx, tx, by, a, amount)
			return err
		})
		return p, err
	}
	balance := func() int64 {
		var b int64
		f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
			b, err = tx.CreditBalance(ctx, "maria", now)
			return err
		})
		return b
	}

	ap := f.hold(maria, HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(15, 0)})
	p, err := pay(maria, ap.ID, 500_001)
	if err != nil || p != (CreditPayment{AppliedMinor: 500_001, DueMinor: 1_499_999, BalanceMinor: 2_500_000}) {
		t.Fatalf("first part: %+v, %v", p, err)
	}
	_, err = f.svc.Confirm(ctx, maria, f.load(maria, ap.ID), ChangeInput{})
	wantCode(t, err, fault.CodeForbidden) // 1,499,999 still due
	_, err = pay(maria, ap.ID, 1_500_000)
	wantCode(t, err, fault.CodeConflict) // more than is due
	_, err = pay(juan, ap.ID, 1)
	wantCode(t, err, fault.CodeNotFound) // someone else's
	p, err = pay(maria, ap.ID, 0)        // the rest
	if err != nil || p != (CreditPayment{AppliedMinor: 1_499_999, DueMinor: 0, BalanceMinor: 1_000_001}) {
		t.Fatalf("the rest: %+v, %v", p, err)
	}
	_, err = pay(maria, ap.ID, 0)
	wantCode(t, err, fault.CodeConflict) // nothing due
	if got, err := f.svc.Confirm(ctx, maria, f.load(maria, ap.ID), ChangeInput{}); err != nil || got.Status != persistence.StatusConfirmed {
		t.Fatalf("confirm once paid by credit: %+v, %v", got, err)
	}
	_, err = pay(maria, ap.ID, 0)
	wantCode(t, err, fault.CodeInvalidTransition) // confirmed: no deposit to pay

	// Cancelled within policy: the 2,000,000 spent comes back.
	if _, err := f.svc.Cancel(ctx, maria, f.load(maria, ap.ID), ChangeInput{Reason: "cannot come"}); err != nil {
		t.Fatal(err)
	}
	if b := balance(); b != 3_000_001 {
		t.Fatalf("balance after the cancellation %d, want 3000001", b)
	}

	// A hold cancelled at the desk gives back what it spent too.
	second := f.hold(maria, HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(16, 0)})
	if p, err := pay(maria, second.ID, 0); err != nil || p.BalanceMinor != 1_000_001 {
		t.Fatalf("second hold: %+v, %v", p, err)
	}
	if _, err := f.svc.Cancel(ctx, desk, f.load(desk, second.ID), ChangeInput{Reason: "client called"}); err != nil {
		t.Fatal(err)
	}
	if b := balance(); b != 3_000_001 {
		t.Fatalf("balance after the desk's cancellation %d, want 3000001", b)
	}

	// Credit below the amount.
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		return tx.CreditGrant(ctx, persistence.CreditGrant{ID: ulid.Make().String(), ClientID: "ana-client", AmountMinor: 10,
			Reason: "goodwill", GrantedBy: "desk", ExpiresAt: now.Add(time.Hour), CreatedAt: now})
	})
	third := f.hold(caller("ana-client", auth.RoleClient), HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(17, 0)})
	_, err = pay(caller("ana-client", auth.RoleClient), third.ID, 11)
	wantCode(t, err, fault.CodeInsufficientCredit)
}
