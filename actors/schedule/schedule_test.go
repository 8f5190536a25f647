package schedule

import (
	"context"
	"errors"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var bogota, _ = time.LoadLocation("America/Bogota")

// t0 is a Tuesday at 08:00 in Bogota; the staff works 09:00-17:00 daily.
var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, bogota)

func at(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, bogota) }

var massage = persistence.Service{ID: "massage", Name: "Massage", Category: "body", Duration: time.Hour,
	BufferAfter: 15 * time.Minute, PriceMinor: 10000000, DepositPolicy: persistence.DepositPercent, DepositValue: 30,
	CancelCutoff: 2 * time.Hour, RescheduleCutoff: 2 * time.Hour, Active: true}

// clock is a settable Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }

type fixture struct {
	store   persistence.Store
	clock   *clock
	system  *actor.ActorSystem
	dir     *Directory
	deps    Deps
	metrics *Metrics
}

func newFixture(t *testing.T, cfg Config, wrap func(persistence.Store) persistence.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t, persistence.Options{})
	staff := persistence.StaffMember{ID: "ana", Name: "Ana", Skills: []string{"massage"}, TimeZone: "America/Bogota", Active: true}
	for d := range staff.Weekly {
		staff.Weekly[d] = []persistence.ClockRange{{StartMinute: 9 * 60, EndMinute: 17 * 60}}
	}
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		if _, err := tx.StaffPut(ctx, staff); err != nil {
			return err
		}
		_, err := tx.ServicePut(ctx, massage)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var store persistence.Store = st
	if wrap != nil {
		store = wrap(st)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(t0)
	f := &fixture{store: store, clock: clk, metrics: m, system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))}
	f.deps = Deps{Store: store, Now: clk.now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, Config: cfg}
	f.dir, err = NewDirectory(f.system.Root, f.deps, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dir.Stop(5 * time.Second); f.system.Shutdown() })
	return f
}

func (f *fixture) hold(t *testing.T, id string, start time.Time) *HoldReply {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), "ana", &Hold{AppointmentID: id, ClientID: "c-" + id, Service: massage, Start: start, ActorID: "c-" + id})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*HoldReply)
}

func (f *fixture) ask(t *testing.T, msg any) *Reply {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), "ana", msg)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*Reply)
}

func (f *fixture) stored(t *testing.T, id string) persistence.Appointment {
	t.Helper()
	var ap persistence.Appointment
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		ap, err = tx.AppointmentGet(context.Background(), id)
		return err
	}); err != nil {
		t.Fatalf("appointment %s: %v", id, err)
	}
	return ap
}

func TestHoldConfirmCancel(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	r := f.hold(t, "a1", at(10, 0))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := f.stored(t, "a1"); got.Status != persistence.StatusHeld || !got.Start.Equal(at(10, 0)) ||
		!got.HoldExpiresAt.Equal(t0.Add(10*time.Minute)) || got.DepositMinor != 3000000 {
		t.Fatalf("stored hold %+v", got)
	}
	// The same slot, and one overlapping the after-buffer, are taken.
	for _, start := range []time.Time{at(10, 0), at(11, 0), at(9, 15)} {
		r := f.hold(t, fmt.Sprint("b", start.Minute(), start.Hour()), start)
		if !errors.Is(r.Err, ErrSlotTaken) {
			t.Fatalf("hold at %v: %v", start, r.Err)
		}
		if len(r.Alternatives) == 0 || len(r.Alternatives) > 5 {
			t.Fatalf("alternatives %v", r.Alternatives)
		}
	}
	// 11:15 is free: 10:00-11:00 plus a 15-minute buffer.
	if r := f.hold(t, "a2", at(11, 15)); r.Err != nil {
		t.Fatalf("hold right after the buffer: %v", r.Err)
	}
	if r := f.ask(t, &Confirm{AppointmentID: "a1", ActorID: "c-a1"}); r.Err != nil || r.Appointment.Status != persistence.StatusConfirmed {
		t.Fatalf("confirm: %+v", r)
	}
	if got := f.stored(t, "a1"); got.Status != persistence.StatusConfirmed || !got.HoldExpiresAt.IsZero() {
		t.Fatalf("stored after confirm %+v", got)
	}
	// Inside the cut-off a client may not cancel; staff may override.
	f.clock.set(at(8, 30))
	if r := f.ask(t, &Cancel{AppointmentID: "a1", Cutoff: massage.CancelCutoff}); !errors.Is(r.Err, ErrCutoff) {
		t.Fatalf("cancel inside cut-off: %v", r.Err)
	}
	if r := f.ask(t, &Cancel{AppointmentID: "a1", Cutoff: massage.CancelCutoff, Override: true, Reason: "client called"}); r.Err != nil {
		t.Fatalf("cancel with override: %v", r.Err)
	}
	// Cancelling frees the slot at once.
	if r := f.hold(t, "a3", at(10, 0)); r.Err != nil {
		t.Fatalf("hold a freed slot: %v", r.Err)
	}
	var trs []persistence.Transition
	f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		trs, err = tx.TransitionList(context.Background(), "a1")
		return err
	})
	if len(trs) != 3 || trs[2].To != persistence.StatusCancelled || trs[2].Reason != "client called" {
		t.Fatalf("transitions %+v", trs)
	}
}

func TestExpiredHoldNeverBlocks(t *testing.T) {
	f := newFixture(t, Config{HoldTTL: 5 * time.Minute}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	f.clock.add(5 * time.Minute) // expiry is exclusive: at HoldExpiresAt the hold is gone
	if r := f.hold(t, "a2", at(10, 0)); r.Err != nil {
		t.Fatalf("expired hold still blocks: %v", r.Err)
	}
	if r := f.ask(t, &Confirm{AppointmentID: "a1"}); !errors.Is(r.Err, ErrHoldExpired) {
		t.Fatalf("confirm of an expired hold: %v", r.Err)
	}
}

func TestRescheduleIsAtomic(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	f.hold(t, "a1", at(10, 0))
	f.hold(t, "a2", at(13, 0))
	if r := f.ask(t, &Reschedule{AppointmentID: "a1", Start: at(13, 0), Service: massage}); !errors.Is(r.Err, ErrSlotTaken) {
		t.Fatalf("reschedule onto a taken slot: %v", r.Err)
	}
	// Moving within its own time (10:00 → 10:30) must not collide with itself.
	if r := f.ask(t, &Reschedule{AppointmentID: "a1", Start: at(10, 30), Service: massage}); r.Err != nil {
		t.Fatalf("reschedule: %v", r.Err)
	}
	if got := f.stored(t, "a1"); !got.Start.Equal(at(10, 30)) || got.Version != 2 {
		t.Fatalf("stored after reschedule %+v", got)
	}
	if r := f.hold(t, "a3", at(9, 0)); r.Err != nil {
		t.Fatalf("the old slot's start is not free again: %v", r.Err)
	}
}

// TestConcurrentClaimsOneWinnerPerSlot: 200 clients race for 8 slots; each
// slot goes to exactly one, every other answer is slot_taken, and accepted
// claims were written in batches.
func TestConcurrentClaimsOneWinnerPerSlot(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	// 60 minutes plus a 15-minute buffer: back-to-back slots 75 minutes apart.
	slots := []time.Time{}
	for m := 9 * 60; m+60 <= 17*60; m += 75 {
		slots = append(slots, at(m/60, m%60))
	}
	const clients = 200
	var wg sync.WaitGroup
	winners := make([]atomic.Int32, len(slots))
	var taken, other atomic.Int32
	for i := range clients {
		wg.Go(func() {
			slot := i % len(slots)
			r := f.hold(t, fmt.Sprintf("c%03d", i), slots[slot])
			switch {
			case r.Err == nil:
				winners[slot].Add(1)
			case errors.Is(r.Err, ErrSlotTaken):
				taken.Add(1)
			default:
				other.Add(1)
				t.Errorf("client %d: %v", i, r.Err)
			}
		})
	}
	wg.Wait()
	for i := range winners {
		if n := winners[i].Load(); n != 1 {
			t.Errorf("slot %v has %d winners", slots[i], n)
		}
	}
	if taken.Load() != clients-int32(len(slots)) || other.Load() != 0 {
		t.Fatalf("taken %d other %d", taken.Load(), other.Load())
	}
	// The mailbox counts a message as received after its handler returns,
	// which may be just after the reply: poll.
	testwait.Until(t, 5*time.Second, "the mailbox to empty", func() error {
		if depth := testutil.ToFloat64(f.metrics.mailbox); depth != 0 {
			return fmt.Errorf("mailbox depth %v after every request was answered", depth)
		}
		return nil
	})
	var live []persistence.Appointment
	f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		live, err = tx.AppointmentList(context.Background(), persistence.AppointmentRange{StaffID: "ana", From: at(0, 0), To: at(23, 0), LiveAt: t0})
		return err
	})
	if len(live) != len(slots) {
		t.Fatalf("%d live appointments stored, want %d", len(live), len(slots))
	}
}

// TestTwoActivationsCannotDoubleBook creates two activations of one
// calendar on purpose. The older one's write is fenced, it stops, and only
// one live appointment holds the slot.
func TestTwoActivationsCannotDoubleBook(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	root := f.system.Root
	spawn := func() *actor.PID { // and wait until it has activated
		pid := root.Spawn(actor.PropsFromProducer(newActor(f.deps, "ana")))
		if _, err := root.RequestFuture(pid, &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)}, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	older := spawn()
	newer := spawn()
	holdVia := func(pid *actor.PID, id string) *HoldReply {
		r, err := root.RequestFuture(pid, &Hold{AppointmentID: id, ClientID: "c", Service: massage, Start: at(10, 0)}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return r.(*HoldReply)
	}
	// Both believe the slot is free; only the newer epoch may write it.
	if r := holdVia(older, "old"); !errors.Is(r.Err, ErrRetry) {
		t.Fatalf("older activation's hold: %v", r.Err)
	}
	if r := holdVia(newer, "new"); r.Err != nil {
		t.Fatalf("newer activation's hold: %v", r.Err)
	}
	var live []persistence.Appointment
	f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		live, err = tx.AppointmentList(context.Background(), persistence.AppointmentRange{StaffID: "ana", From: at(0, 0), To: at(23, 0), LiveAt: t0})
		return err
	})
	if len(live) != 1 || live[0].ID != "new" {
		t.Fatalf("live appointments %+v", live)
	}
	if got := testutil.ToFloat64(f.metrics.fenced); got != 1 {
		t.Fatalf("fenced writes = %v", got)
	}
	// The fenced activation stopped itself.
	if _, err := root.RequestFuture(older, &Hold{AppointmentID: "x", ClientID: "c", Service: massage, Start: at(12, 0)}, 200*time.Millisecond).Result(); err == nil {
		t.Fatal("the fenced activation still answers")
	}
}

// gatedStore holds every transaction, once armed, until gate is closed.
type gatedStore struct {
	persistence.Store
	armed atomic.Bool
	gate  chan struct{}
}

func (s *gatedStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if s.armed.Load() {
		<-s.gate
	}
	return s.Store.InTx(ctx, fn)
}

// newGatedFixture is a fixture whose store holds every write at the gate
// until the test opens it.
func newGatedFixture(t *testing.T) (*fixture, *gatedStore) {
	var gs *gatedStore
	f := newFixture(t, Config{}, func(s persistence.Store) persistence.Store {
		gs = &gatedStore{Store: s, gate: make(chan struct{})}
		return gs
	})
	return f, gs
}

// TestNoRefusalRestsOnAFencedWrite: a stale activation refuses a slot only
// because of its own pending hold; that hold is then fenced, so the slot
// was never taken and the refusal must become a retryable error, not a
// false slot_taken.
func TestNoRefusalRestsOnAFencedWrite(t *testing.T) {
	f, gs := newGatedFixture(t)
	root := f.system.Root
	spawn := func() *actor.PID { // and wait until it has activated
		pid := root.Spawn(actor.PropsFromProducer(newActor(f.deps, "ana")))
		if _, err := root.RequestFuture(pid, &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)}, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	older := spawn()
	spawn() // the newer activation fences the older one's writes
	gs.armed.Store(true)
	hold := func(id string) *actor.Future {
		return root.RequestFuture(older, &Hold{AppointmentID: id, ClientID: "c-" + id, Service: massage, Start: at(10, 0)}, 5*time.Second)
	}
	first, second := hold("first"), hold("second")
	// Once this query is answered the actor has decided both holds; the
	// first one's write is still held at the gate.
	if _, err := root.RequestFuture(older, &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	close(gs.gate)
	for name, fut := range map[string]*actor.Future{"first": first, "second": second} {
		r, err := fut.Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := r.(*HoldReply); !errors.Is(got.Err, ErrRetry) {
			t.Fatalf("%s hold on the fenced activation: %v, want a retryable error", name, got.Err)
		}
	}
}

// failingStore fails every transaction once armed.
type failingStore struct {
	persistence.Store
	fail atomic.Bool
}

func (s *failingStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if s.fail.Load() {
		return persistence.ErrUnavailable
	}
	return s.Store.InTx(ctx, fn)
}

func TestFailedBatchReleasesEverything(t *testing.T) {
	var fs *failingStore
	f := newFixture(t, Config{}, func(s persistence.Store) persistence.Store { fs = &failingStore{Store: s}; return fs })
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil { // activates while the store works
		t.Fatal(r.Err)
	}
	fs.fail.Store(true)
	if r := f.hold(t, "a2", at(12, 0)); !errors.Is(r.Err, ErrRetry) {
		t.Fatalf("hold during an outage: %v", r.Err)
	}
	fs.fail.Store(false)
	// A fresh activation loads the truth: a1 is held, 12:00 is free.
	if r := f.hold(t, "a3", at(12, 0)); r.Err != nil {
		t.Fatalf("after the outage: %v", r.Err)
	}
	if r := f.hold(t, "a4", at(10, 0)); !errors.Is(r.Err, ErrSlotTaken) {
		t.Fatalf("a1 lost after reactivation: %v", r.Err)
	}
}

func TestPassivationAndReactivation(t *testing.T) {
	f := newFixture(t, Config{IdleAfter: 50 * time.Millisecond}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	testwait.For(t, 5*time.Second, "the idle actor to passivate", func() bool { return testutil.ToFloat64(f.metrics.live) == 0 })
	if r := f.hold(t, "a2", at(10, 0)); !errors.Is(r.Err, ErrSlotTaken) {
		t.Fatalf("reactivated actor lost the hold: %v", r.Err)
	}
}

func TestUnknownStaff(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	r, err := f.dir.Ask(context.Background(), "nobody", &Hold{AppointmentID: "x", ClientID: "c", Service: massage, Start: at(10, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(r.(*HoldReply).Err, ErrUnknownStaff) {
		t.Fatalf("unknown staff: %v", r.(*HoldReply).Err)
	}
}

func TestHoldRetryIsIdempotent(t *testing.T) {
	f := newFixture(t, Config{IdleAfter: 50 * time.Millisecond}, nil)
	first := f.hold(t, "k1", at(10, 0))
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	if again := f.hold(t, "k1", at(10, 0)); again.Err != nil || again.Appointment.ID != "k1" || !again.Appointment.CreatedAt.Equal(first.Appointment.CreatedAt) {
		t.Fatalf("retry: %+v", again)
	}
	// After passivation, and after the hold expired, the id is still known.
	f.clock.add(time.Hour)
	testwait.For(t, 5*time.Second, "the idle actor to passivate", func() bool { return testutil.ToFloat64(f.metrics.live) == 0 })
	if again := f.hold(t, "k1", at(10, 0)); again.Err != nil || again.Appointment.Status != persistence.StatusHeld {
		t.Fatalf("retry after reactivation: %+v", again)
	}
	if other := f.hold(t, "k1", at(12, 0)); !errors.Is(other.Err, ErrInvalid) {
		t.Fatalf("id reused for another slot: %v", other.Err)
	}
}

func TestHoldExpiryIsRecorded(t *testing.T) {
	f := newFixture(t, Config{HoldTTL: 100 * time.Millisecond}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	f.clock.add(time.Second)
	testwait.For(t, 5*time.Second, "the lapsed hold to be recorded as expired", func() bool {
		return f.stored(t, "a1").Status == persistence.StatusExpired
	})
	var trs []persistence.Transition
	var events []persistence.OutboxEvent
	f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		if trs, err = tx.TransitionList(context.Background(), "a1"); err != nil {
			return err
		}
		events, err = tx.OutboxPending(context.Background(), 10)
		return err
	})
	if len(trs) != 2 || trs[1].To != persistence.StatusExpired || trs[1].ActorID != "system" {
		t.Fatalf("transitions %+v", trs)
	}
	var last messages.AppointmentChanged
	var env messages.Event
	if len(events) != 2 || proto.Unmarshal(events[1].Payload, &env) != nil || env.Payload.UnmarshalTo(&last) != nil ||
		last.ToStatus != "expired" || last.FromStatus != "held" || last.AppointmentId != "a1" {
		t.Fatalf("events %d, last %v", len(events), &last)
	}
	if r := f.ask(t, &Confirm{AppointmentID: "a1"}); !errors.Is(r.Err, ErrHoldExpired) {
		t.Fatalf("confirm after expiry: %v", r.Err)
	}
}

// TestNoRetryAnsweredBeforeItsHoldIsWritten: a retry of a hold whose
// write is still pending must not be told it succeeded before the write
// is: were it fenced, the appointment never existed.
func TestNoRetryAnsweredBeforeItsHoldIsWritten(t *testing.T) {
	f, gs := newGatedFixture(t)
	root := f.system.Root
	spawn := func() *actor.PID {
		pid := root.Spawn(actor.PropsFromProducer(newActor(f.deps, "ana")))
		if _, err := root.RequestFuture(pid, &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)}, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	older := spawn()
	spawn()
	gs.armed.Store(true)
	hold := func() *actor.Future {
		return root.RequestFuture(older, &Hold{AppointmentID: "once", ClientID: "c-once", Service: massage, Start: at(10, 0)}, 5*time.Second)
	}
	first, retry := hold(), hold()
	if _, err := root.RequestFuture(older, &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	close(gs.gate)
	for name, fut := range map[string]*actor.Future{"first": first, "retry": retry} {
		r, err := fut.Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := r.(*HoldReply); !errors.Is(got.Err, ErrRetry) {
			t.Fatalf("%s of a fenced hold: %+v, want a retryable error", name, got)
		}
	}
}

// Holds taken one after another each lapse in turn: a later hold leaves
// the timer armed for the earlier one, and the timer is re-armed for the
// later one once the earlier has lapsed.
func TestSuccessiveHoldsEachLapse(t *testing.T) {
	f := newFixture(t, Config{HoldTTL: 200 * time.Millisecond}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	f.clock.add(100 * time.Millisecond)
	if r := f.hold(t, "a2", at(14, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	waitStatus := func(id string, want persistence.AppointmentStatus) {
		t.Helper()
		testwait.Until(t, 5*time.Second, id+" to be "+string(want), func() error {
			if got := f.stored(t, id).Status; got != want {
				return fmt.Errorf("%s: status %s, want %s", id, got, want)
			}
			return nil
		})
	}
	f.clock.add(150 * time.Millisecond) // a1 lapsed, a2 not yet
	waitStatus("a1", persistence.StatusExpired)
	if s := f.stored(t, "a2").Status; s != persistence.StatusHeld {
		t.Fatalf("a2 %s before its expiry", s)
	}
	f.clock.add(time.Second)
	waitStatus("a2", persistence.StatusExpired)
}

// TestManyLapsesRecordedInChunks: a calendar whose holds lapse together
// records them all, each batch at most expireChunk changes (a batch of
// thousands ran past the store's deadline and failed at every reload).
func TestManyLapsesRecordedInChunks(t *testing.T) {
	f := newFixture(t, Config{HoldTTL: 100 * time.Millisecond}, nil)
	var ids []string
	for d := range 40 { // four a day, more than two chunks in all
		for _, h := range []int{9, 11, 13, 15} {
			id := fmt.Sprintf("lapse-%d-%d", d, h)
			if r := f.hold(t, id, at(h, 0).AddDate(0, 0, d)); r.Err != nil {
				t.Fatal(id, r.Err)
			}
			ids = append(ids, id)
		}
	}
	if len(ids) <= 2*expireChunk {
		t.Fatalf("%d holds: not enough for three chunks", len(ids))
	}
	sizes := func() *dto.Histogram {
		t.Helper()
		var m dto.Metric
		if err := f.metrics.batchSize.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram()
	}
	before := sizes()
	f.clock.add(time.Second)
	testwait.Until(t, 10*time.Second, "every lapsed hold to be recorded", func() error {
		for _, id := range ids {
			if st := f.stored(t, id).Status; st != persistence.StatusExpired {
				return fmt.Errorf("%s is %s", id, st)
			}
		}
		return nil
	})
	after := sizes()
	batches := after.GetSampleCount() - before.GetSampleCount()
	for i, b := range after.GetBucket() {
		if b.GetUpperBound() == expireChunk {
			if larger := (after.GetSampleCount() - b.GetCumulativeCount()) - (before.GetSampleCount() - before.GetBucket()[i].GetCumulativeCount()); larger != 0 {
				t.Fatalf("%d lapse batches larger than %d changes", larger, expireChunk)
			}
		}
	}
	if min := uint64((len(ids) + expireChunk - 1) / expireChunk); batches < min {
		t.Fatalf("%d lapses in %d batches, want at least %d", len(ids), batches, min)
	}
}

// TestLapsesWithinTheNodesRate: the node records at most LapsesPerSecond
// lapses a second over its calendars: at one a second, one chunk (the
// burst) is recorded and the rest stay held, blocking nothing, while the
// calendar keeps answering.
func TestLapsesWithinTheNodesRate(t *testing.T) {
	f := newFixture(t, Config{HoldTTL: 100 * time.Millisecond, LapsesPerSecond: 1}, nil)
	var ids []string
	for d := range 25 {
		for _, h := range []int{9, 11, 13, 15} {
			id := fmt.Sprintf("lapse-%d-%d", d, h)
			if r := f.hold(t, id, at(h, 0).AddDate(0, 0, d)); r.Err != nil {
				t.Fatal(id, r.Err)
			}
			ids = append(ids, id)
		}
	}
	count := func() (expired, held int) {
		for _, id := range ids {
			switch f.stored(t, id).Status {
			case persistence.StatusExpired:
				expired++
			case persistence.StatusHeld:
				held++
			}
		}
		return expired, held
	}
	// The node's rate runs on the real clock: a burst of expireChunk, then
	// one lapse a second, so a slow run (race detector, a loaded machine)
	// may record one more per second it takes.
	began := time.Now()
	allowed := func() int { return expireChunk + int(time.Since(began)/time.Second) }
	f.clock.add(time.Second)
	testwait.Until(t, 10*time.Second, "the first chunk of lapses to be recorded", func() error {
		if e, _ := count(); e < expireChunk {
			return fmt.Errorf("%d recorded, want %d", e, expireChunk)
		}
		return nil
	})
	// Lapsed holds block nothing: the calendar offers their slots, and a
	// pass refused by the rate has run meanwhile (it retries every
	// lapseRetry) without recording more.
	time.Sleep(3 * lapseRetry)
	if r := f.hold(t, "after-lapse", at(9, 0).AddDate(0, 0, 24)); r.Err != nil {
		t.Fatalf("the slot of a lapsed hold not yet recorded: %v", r.Err)
	}
	if e, h := count(); e < expireChunk || e > allowed() || e+h != len(ids) {
		t.Fatalf("%d recorded and %d held, want %d to %d recorded and the rest held (one burst at one lapse a second)", e, h, expireChunk, allowed())
	}
}

// TestGivesBack: the cancellation policy's decision on what an
// appointment spent, at its boundaries.
func TestGivesBack(t *testing.T) {
	start := at(12, 0)
	for _, tc := range []struct {
		name   string
		status persistence.AppointmentStatus
		cutoff time.Duration
		now    time.Time
		want   bool
	}{
		{"booking outside the cut-off", persistence.StatusConfirmed, 2 * time.Hour, at(9, 0), true},
		{"booking exactly at the cut-off", persistence.StatusConfirmed, 2 * time.Hour, at(10, 0), true},
		{"booking inside the cut-off", persistence.StatusConfirmed, 2 * time.Hour, at(10, 0).Add(time.Microsecond), false},
		{"booking after its start", persistence.StatusConfirmed, 2 * time.Hour, at(12, 30), false},
		{"booking, service without a cut-off", persistence.StatusConfirmed, 0, at(11, 59), true},
		{"hold inside the cut-off", persistence.StatusHeld, 2 * time.Hour, at(11, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := persistence.Appointment{Status: tc.status, Start: start}
			if got := givesBack(ap, tc.cutoff, tc.now); got != tc.want {
				t.Fatalf("givesBack = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHolderFindsItsHoldWhereItMoved: the holder wins its own slot where
// the hold is now, after a reschedule moved it, and after the calendar
// was loaded again; the old start is anyone's.
func TestHolderFindsItsHoldWhereItMoved(t *testing.T) {
	f := newFixture(t, Config{IdleAfter: 300 * time.Millisecond}, nil)
	claim := func(id, client string, start time.Time) *HoldReply {
		t.Helper()
		r, err := f.dir.Ask(context.Background(), "ana", &Hold{AppointmentID: id, ClientID: client, Service: massage, Start: start, ActorID: client})
		if err != nil {
			t.Fatal(err)
		}
		return r.(*HoldReply)
	}
	if r := claim("a1", "c-eva", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.ask(t, &Reschedule{AppointmentID: "a1", Start: at(12, 0), Service: massage}); r.Err != nil {
		t.Fatalf("reschedule: %v", r.Err)
	}
	if r := claim("a2", "c-eva", at(12, 0)); r.Err != nil || r.Appointment.ID != "a1" {
		t.Fatalf("the holder claims where its hold moved: %+v %v, want a1 back", r.Appointment, r.Err)
	}
	if r := claim("a3", "c-luz", at(12, 0)); !errors.Is(r.Err, ErrSlotTaken) {
		t.Fatalf("another client claims the moved hold's slot: %v, want slot_taken", r.Err)
	}
	if r := claim("a4", "c-luz", at(10, 0)); r.Err != nil || r.Appointment.ID != "a4" {
		t.Fatalf("the old start is free again: %+v %v", r.Appointment, r.Err)
	}
	// Passivated, the next claim loads the calendar from the store.
	testwait.For(t, 5*time.Second, "the idle actor to passivate", func() bool { return testutil.ToFloat64(f.metrics.live) == 0 })
	if r := claim("a5", "c-luz", at(10, 0)); r.Err != nil || r.Appointment.ID != "a4" {
		t.Fatalf("after a reload the holder still wins its own slot: %+v %v", r.Appointment, r.Err)
	}
}
