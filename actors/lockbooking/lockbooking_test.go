package lockbooking

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence/pgtest"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/postgres"
)

func TestOpenRefusesSQLite(t *testing.T) {
	for _, u := range []string{"", "file:spa.db", "sqlite:///tmp/x.db"} {
		if _, err := Open(t.Context(), u, Config{}); !errors.Is(err, ErrNotPostgres) {
			t.Errorf("Open(%q) = %v, want ErrNotPostgres", u, err)
		}
	}
}

// fixture is a migrated schema of its own with one staff member working
// 08:00-18:00 every day in Bogota and a 60-minute service.
type fixture struct {
	engine  *Engine
	store   *postgres.Store
	service persistence.Service
	day     time.Time // 00:00 Bogota, two days ahead
}

func setup(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	url := pgtest.SchemaURL(t, "lockbooking") // the lock baseline runs on PostgreSQL only
	store, err := postgres.Open(ctx, url, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var week [7][]persistence.ClockRange
	for d := range week {
		week[d] = []persistence.ClockRange{{StartMinute: 8 * 60, EndMinute: 18 * 60}}
	}
	sv := persistence.Service{ID: "massage", Name: "Massage", Duration: time.Hour, PriceMinor: 1000,
		RequiredSkills: []string{"massage"}, DepositPolicy: persistence.DepositNone, Active: true}
	if err := store.InTx(ctx, func(tx persistence.Tx) error {
		if _, err := tx.StaffPut(ctx, persistence.StaffMember{ID: "ana", Name: "Ana", Skills: []string{"massage"},
			TimeZone: "America/Bogota", Weekly: week, Active: true}); err != nil {
			return err
		}
		sv, err = tx.ServicePut(ctx, sv)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, url, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	bogota, _ := time.LoadLocation("America/Bogota")
	now := time.Now().In(bogota).AddDate(0, 0, 2)
	return fixture{engine: e, store: store, service: sv, day: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, bogota)}
}

// cal reaches the engine as the gateway does.
func (f fixture) cal() *schedule.Client { return schedule.NewClient(f.engine) }

// change sends one transition through the engine and fails the test when
// it does not answer.
func (f fixture) change(t *testing.T, m schedule.Change) *schedule.Reply {
	t.Helper()
	r, err := f.cal().Change(t.Context(), "ana", m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f fixture) hold(t *testing.T, id, client string, start time.Time) *schedule.HoldReply {
	t.Helper()
	r, err := f.cal().Hold(t.Context(), "ana", &schedule.Hold{AppointmentID: id, ClientID: client, Service: f.service, Start: start, ActorID: client})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f fixture) slots(t *testing.T) int {
	t.Helper()
	sr, err := f.cal().Slots(t.Context(), "ana", &schedule.SlotsQuery{Service: f.service, From: f.day, To: f.day.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if sr.Err != nil {
		t.Fatal(sr.Err)
	}
	return len(sr.Slots)
}

func TestHoldRefuseCancel(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	nine := f.day.Add(9 * time.Hour)
	before := f.slots(t)
	if before == 0 {
		t.Fatal("no slots on an open day")
	}
	won := f.hold(t, "apt-1", "maria", nine)
	if won.Err != nil || won.Appointment.Status != persistence.StatusHeld || !won.Appointment.Start.Equal(nine) {
		t.Fatalf("first hold: %+v", won)
	}
	if again := f.hold(t, "apt-1", "maria", nine); again.Err != nil || again.Appointment.ID != "apt-1" {
		t.Fatalf("a retry of the same hold must get its appointment: %+v", again)
	}
	if reuse := f.hold(t, "apt-1", "maria", nine.Add(time.Hour)); !errors.Is(reuse.Err, schedule.ErrInvalid) {
		t.Fatalf("reusing an id for another slot: %v", reuse.Err)
	}
	lost := f.hold(t, "apt-2", "juan", nine.Add(30*time.Minute)) // overlaps 09:00-10:00
	if !errors.Is(lost.Err, schedule.ErrSlotTaken) || len(lost.Alternatives) == 0 {
		t.Fatalf("overlapping hold: %+v", lost)
	}
	for _, a := range lost.Alternatives {
		if a.Start.Before(nine.Add(time.Hour)) && a.Start.Add(time.Hour).After(nine) {
			t.Fatalf("alternative %v overlaps the held slot", a.Start)
		}
	}
	if got := f.slots(t); got >= before {
		t.Fatalf("slots after a hold = %d, before %d", got, before)
	}
	// Confirm, then cancel: the slot is free again.
	if rep := f.change(t, &schedule.Confirm{AppointmentID: "apt-1", ActorID: "maria"}); rep.Err != nil || rep.Appointment.Status != persistence.StatusConfirmed || rep.Appointment.Version != 2 {
		t.Fatalf("confirm: %+v", rep)
	}
	if rep := f.change(t, &schedule.Cancel{AppointmentID: "apt-1", ActorID: "maria", Cutoff: 72 * time.Hour}); !errors.Is(rep.Err, schedule.ErrCutoff) {
		t.Fatalf("cancel inside the cut-off: %+v", rep)
	}
	if rep := f.change(t, &schedule.Cancel{AppointmentID: "apt-1", ActorID: "maria", Reason: "sick"}); rep.Err != nil || rep.Appointment.Status != persistence.StatusCancelled {
		t.Fatalf("cancel: %+v", rep)
	}
	if rep := f.change(t, &schedule.Cancel{AppointmentID: "apt-1", ActorID: "maria"}); !errors.Is(rep.Err, schedule.ErrTransition) {
		t.Fatalf("cancelling twice: %+v", rep)
	}
	if rep := f.change(t, &schedule.Cancel{AppointmentID: "nope", ActorID: "maria"}); !errors.Is(rep.Err, schedule.ErrNotFound) {
		t.Fatalf("cancelling an unknown appointment: %+v", rep)
	}
	if got := f.slots(t); got != before {
		t.Fatalf("slots after cancel = %d, want %d", got, before)
	}
	if won := f.hold(t, "apt-3", "juan", nine.Add(30*time.Minute)); won.Err != nil {
		t.Fatalf("hold after cancel: %v", won.Err)
	}
	if r, err := f.cal().Slots(ctx, "bob", &schedule.SlotsQuery{Service: f.service, From: f.day, To: f.day.AddDate(0, 0, 1)}); err != nil || !errors.Is(r.Err, schedule.ErrUnknownStaff) {
		t.Fatalf("unknown staff: %+v, %v", r, err)
	}

	// What the actor writes, the baseline writes: transitions and events.
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		ts, err := tx.TransitionList(ctx, "apt-1")
		if err != nil {
			return err
		}
		if len(ts) != 3 || ts[0].To != persistence.StatusHeld || ts[2].To != persistence.StatusCancelled {
			return fmt.Errorf("transitions: %+v", ts)
		}
		pending, err := tx.OutboxCount(ctx)
		if err == nil && pending != 4 {
			err = fmt.Errorf("outbox events = %d, want 4 (held, confirmed, cancelled, held)", pending)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentClaimsOneWinner(t *testing.T) {
	f := setup(t)
	start := f.day.Add(11 * time.Hour)
	const n = 24
	var wg sync.WaitGroup
	replies := make([]*schedule.HoldReply, n)
	for i := range n {
		wg.Go(func() {
			r, err := f.cal().Hold(context.Background(), "ana", &schedule.Hold{AppointmentID: fmt.Sprintf("c-%d", i),
				ClientID: fmt.Sprintf("client-%d", i), Service: f.service, Start: start.Add(time.Duration(i%4) * 15 * time.Minute)})
			if err == nil {
				replies[i] = r
			}
		})
	}
	wg.Wait()
	winners := 0
	for i, r := range replies {
		switch {
		case r == nil:
			t.Fatalf("claim %d: no reply", i)
		case r.Err == nil:
			winners++
		case !errors.Is(r.Err, schedule.ErrSlotTaken):
			t.Fatalf("claim %d: %v", i, r.Err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners of overlapping claims, want 1", winners)
	}
	var live []persistence.Appointment
	if err := f.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
		live, err = tx.AppointmentList(t.Context(), persistence.AppointmentRange{StaffID: "ana", From: f.day, To: f.day.AddDate(0, 0, 1), LiveAt: time.Now()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 {
		t.Fatalf("%d live appointments stored, want 1", len(live))
	}
}

// TestKeyedRequestsReplay: the baseline keeps Idempotency-Keys in each
// request's locking transaction, as the actors keep them in their group
// commit: a keyed hold and a keyed confirm sent again get their first
// answer, marked replayed, and another request under a key is refused.
func TestKeyedRequestsReplay(t *testing.T) {
	f := setup(t)
	nine := f.day.Add(9 * time.Hour)
	key := func(name, request string) *keyed.Key {
		return &keyed.Key{Scope: "sub:maria", Name: name, Hash: []byte(request)}
	}
	hold := func(id string, start time.Time, k *keyed.Key) *schedule.HoldReply {
		t.Helper()
		r, err := f.cal().Hold(t.Context(), "ana", &schedule.Hold{AppointmentID: id, ClientID: "maria", Service: f.service,
			Start: start, ActorID: "maria", Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := hold("apt-k", nine, key("tap-1", "hold 09:00"))
	if first.Err != nil || first.Replayed {
		t.Fatalf("keyed hold: %+v", first)
	}
	// Another appointment id on purpose: only the key tells the resend
	// from a new request for a taken slot.
	again := hold("apt-k-resent", nine, key("tap-1", "hold 09:00"))
	if again.Err != nil || !again.Replayed || again.Appointment.ID != "apt-k" || !again.Appointment.Start.Equal(nine) {
		t.Fatalf("keyed hold resent: %+v", again)
	}
	if r := hold("apt-other", nine.Add(2*time.Hour), key("tap-1", "hold 11:00")); !errors.Is(r.Err, keyed.ErrReused) {
		t.Fatalf("key reused for another hold: %+v", r)
	}

	confirm := func() *schedule.Reply {
		return f.change(t, &schedule.Confirm{AppointmentID: "apt-k", ActorID: "maria", Key: key("confirm-1", "confirm apt-k")})
	}
	confirmed := confirm()
	if confirmed.Err != nil || confirmed.Replayed || confirmed.Appointment.Status != persistence.StatusConfirmed {
		t.Fatalf("keyed confirm: %+v", confirmed)
	}
	if r := confirm(); r.Err != nil || !r.Replayed || r.Appointment.Status != persistence.StatusConfirmed || r.Appointment.Version != confirmed.Appointment.Version {
		t.Fatalf("keyed confirm resent: %+v", r)
	}
	if r := f.change(t, &schedule.Cancel{AppointmentID: "apt-k", ActorID: "maria", Key: key("confirm-1", "cancel apt-k")}); !errors.Is(r.Err, keyed.ErrReused) {
		t.Fatalf("the confirm's key on a cancel: %+v", r)
	}

	var live []persistence.Appointment
	if err := f.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
		live, err = tx.AppointmentList(t.Context(), persistence.AppointmentRange{StaffID: "ana", From: f.day, To: f.day.AddDate(0, 0, 1)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].ID != "apt-k" || live[0].Status != persistence.StatusConfirmed {
		t.Fatalf("appointments %+v, want apt-k alone, confirmed", live)
	}
}
