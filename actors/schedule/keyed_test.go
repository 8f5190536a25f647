package schedule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence"
)

// idemKey is a client's Idempotency-Key for request: a fresh value each
// call, as each HTTP request builds its own.
func idemKey(name, request string) *keyed.Key {
	return &keyed.Key{Scope: "sub:maria", Name: name, Hash: []byte(request)}
}

func (f *fixture) keyedHold(t *testing.T, id string, start time.Time, k *keyed.Key) *HoldReply {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), "ana", &Hold{AppointmentID: id, ClientID: "maria", Service: massage, Start: start, ActorID: "maria", Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*HoldReply)
}

// reactivate retires ana's activation and waits until it has stopped, so
// the next request is decided by a fresh one that loads what was stored.
func (f *fixture) reactivate(t *testing.T) {
	t.Helper()
	f.dir.Invalidate("ana")
	testwait.For(t, 5*time.Second, "ana's activation to stop", func() bool { return testutil.ToFloat64(f.metrics.live) == 0 })
}

// appointments lists every appointment of ana's day, whatever its status.
func (f *fixture) appointments(t *testing.T) []persistence.Appointment {
	t.Helper()
	var all []persistence.Appointment
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		all, err = tx.AppointmentList(context.Background(), persistence.AppointmentRange{StaffID: "ana", From: at(0, 0), To: at(23, 0)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

func (f *fixture) idemRecord(t *testing.T, k *keyed.Key) (persistence.IdempotencyRecord, error) {
	t.Helper()
	var r persistence.IdempotencyRecord
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		r, err = tx.IdempotencyGet(context.Background(), k.Scope, k.Name, f.clock.now())
		return err
	})
	return r, err
}

func sameAppointment(a, b persistence.Appointment) bool {
	return a.ID == b.ID && a.Status == b.Status && a.Version == b.Version && a.Start.Equal(b.Start) && a.ClientID == b.ClientID
}

// TestKeyedHoldReplays: a keyed hold is answered once; the same key again
// gets that appointment, marked replayed, from the activation that
// answered and from a fresh one, and no second appointment is made. The
// retries carry another appointment id on purpose: only the key can tell
// them apart from a new request for a taken slot.
func TestKeyedHoldReplays(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	first := f.keyedHold(t, "a1", at(10, 0), idemKey("k1", "hold 10:00"))
	if first.Err != nil || first.Replayed || first.Appointment.ID != "a1" {
		t.Fatalf("first keyed hold: %+v", first)
	}
	if rec, err := f.idemRecord(t, idemKey("k1", "hold 10:00")); err != nil || rec.Owner != CalendarID("ana") {
		t.Fatalf("remembered record %+v, %v", rec, err)
	}
	again := f.keyedHold(t, "a1-retry", at(10, 0), idemKey("k1", "hold 10:00"))
	if again.Err != nil || !again.Replayed || !sameAppointment(again.Appointment, first.Appointment) {
		t.Fatalf("retry on the same activation: %+v", again)
	}

	f.reactivate(t)
	after := f.keyedHold(t, "a1-later", at(10, 0), idemKey("k1", "hold 10:00"))
	if after.Err != nil || !after.Replayed || !sameAppointment(after.Appointment, first.Appointment) {
		t.Fatalf("retry on a fresh activation: %+v", after)
	}
	if all := f.appointments(t); len(all) != 1 || all[0].ID != "a1" {
		t.Fatalf("appointments %+v, want a1 alone", all)
	}
}

// TestKeyReusedForAnotherHold: another request under an answered key is
// refused with keyed.ErrReused, before and after a re-activation, and
// decides nothing.
func TestKeyReusedForAnotherHold(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	if r := f.keyedHold(t, "a1", at(10, 0), idemKey("k1", "hold 10:00")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.keyedHold(t, "a2", at(13, 0), idemKey("k1", "hold 13:00")); !errors.Is(r.Err, keyed.ErrReused) || r.Replayed {
		t.Fatalf("reused key: %+v, want ErrReused", r)
	}
	f.reactivate(t)
	if r := f.keyedHold(t, "a2", at(13, 0), idemKey("k1", "hold 13:00")); !errors.Is(r.Err, keyed.ErrReused) || r.Replayed {
		t.Fatalf("reused key after re-activation: %+v, want ErrReused", r)
	}
	if all := f.appointments(t); len(all) != 1 {
		t.Fatalf("appointments %+v, want a1 alone", all)
	}
}

// TestKeyedRefusalIsDecidedAgain: slot_taken under a key is not
// remembered, so once the slot is free the same key books it.
func TestKeyedRefusalIsDecidedAgain(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	if r := f.hold(t, "block", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.keyedHold(t, "a1", at(10, 0), idemKey("k1", "hold 10:00")); !errors.Is(r.Err, ErrSlotTaken) {
		t.Fatalf("keyed hold of a taken slot: %+v", r)
	}
	if _, err := f.idemRecord(t, idemKey("k1", "hold 10:00")); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a refusal was stored under the key: %v", err)
	}
	if r := f.ask(t, &Cancel{AppointmentID: "block", ActorID: "c-block"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	r := f.keyedHold(t, "a1", at(10, 0), idemKey("k1", "hold 10:00"))
	if r.Err != nil || r.Replayed || r.Appointment.ID != "a1" {
		t.Fatalf("retry once the slot is free: %+v", r)
	}
}

// TestDuplicateWhileTheFirstIsPending: a duplicate that reaches the actor
// while the first hold's write is still pending waits for it and gets its
// appointment, replayed; one appointment is stored.
func TestDuplicateWhileTheFirstIsPending(t *testing.T) {
	f, gs := newGatedFixture(t)
	root := f.system.Root
	pid := root.Spawn(actor.PropsFromProducer(newActor(f.deps, "ana")))
	query := func() { // through the mailbox: answered once everything sent before is decided
		t.Helper()
		if _, err := root.RequestFuture(pid, &SlotsQuery{Service: massage, From: at(9, 0), To: at(10, 0)}, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
	}
	query() // activated
	gs.armed.Store(true)
	hold := func(id string) *actor.Future {
		return root.RequestFuture(pid, &Hold{AppointmentID: id, ClientID: "maria", Service: massage, Start: at(10, 0),
			Key: idemKey("k1", "hold 10:00")}, 5*time.Second)
	}
	first, duplicate := hold("first"), hold("duplicate")
	query() // both decided; the first one's write waits at the gate
	close(gs.gate)
	var replies []*HoldReply
	for _, fut := range []*actor.Future{first, duplicate} {
		r, err := fut.Result()
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, r.(*HoldReply))
	}
	if r := replies[0]; r.Err != nil || r.Replayed || r.Appointment.ID != "first" {
		t.Fatalf("first: %+v", r)
	}
	if r := replies[1]; r.Err != nil || !r.Replayed || !sameAppointment(r.Appointment, replies[0].Appointment) {
		t.Fatalf("duplicate: %+v", r)
	}
	if all := f.appointments(t); len(all) != 1 || all[0].ID != "first" {
		t.Fatalf("appointments %+v", all)
	}
}

// TestConcurrentKeyedHoldsOneAppointment: clients racing the same key
// through the directory all get one appointment; exactly one answer is
// the fresh one.
func TestConcurrentKeyedHoldsOneAppointment(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	const clients = 8
	replies := make([]*HoldReply, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			r, err := f.dir.Ask(context.Background(), "ana", &Hold{AppointmentID: fmt.Sprint("a", i), ClientID: "maria",
				Service: massage, Start: at(10, 0), ActorID: "maria", Key: idemKey("k1", "hold 10:00")})
			if err != nil {
				t.Error(err)
				return
			}
			replies[i] = r.(*HoldReply)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fresh := 0
	for i, r := range replies {
		if r.Err != nil || !sameAppointment(r.Appointment, replies[0].Appointment) {
			t.Fatalf("client %d: %+v, client 0 got %+v", i, r, replies[0].Appointment)
		}
		if !r.Replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d fresh answers, want 1", fresh)
	}
	if all := f.appointments(t); len(all) != 1 || all[0].ID != replies[0].Appointment.ID {
		t.Fatalf("appointments %+v", all)
	}
}

// TestKeyedLifecycleReplaysAfterReactivation: a keyed confirm and cancel
// are replayed by a fresh activation (without the key, confirming again is
// a fresh harmless answer and cancelling again a refusal), and another
// change under the confirm's key is ErrReused.
func TestKeyedLifecycleReplaysAfterReactivation(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	confirm := func() *Reply {
		return f.ask(t, &Confirm{AppointmentID: "a1", ActorID: "maria", Key: idemKey("kc", "confirm a1")})
	}
	cancel := func() *Reply {
		return f.ask(t, &Cancel{AppointmentID: "a1", ActorID: "maria", Reason: "changed plans", Key: idemKey("kx", "cancel a1")})
	}
	confirmed := confirm()
	if confirmed.Err != nil || confirmed.Replayed || confirmed.Appointment.Status != persistence.StatusConfirmed {
		t.Fatalf("confirm: %+v", confirmed)
	}
	f.reactivate(t)
	if r := confirm(); r.Err != nil || !r.Replayed || !sameAppointment(r.Appointment, confirmed.Appointment) {
		t.Fatalf("confirm replayed by a fresh activation: %+v", r)
	}

	cancelled := cancel()
	if cancelled.Err != nil || cancelled.Replayed || cancelled.Appointment.Status != persistence.StatusCancelled {
		t.Fatalf("cancel: %+v", cancelled)
	}
	f.reactivate(t)
	if r := cancel(); r.Err != nil || !r.Replayed || !sameAppointment(r.Appointment, cancelled.Appointment) {
		t.Fatalf("cancel replayed by a fresh activation: %+v", r)
	}
	// The confirm's answer stands: replayed as it was, though the
	// appointment has been cancelled since.
	if r := confirm(); r.Err != nil || !r.Replayed || r.Appointment.Status != persistence.StatusConfirmed {
		t.Fatalf("confirm replayed after the cancel: %+v", r)
	}
	if r := f.ask(t, &Cancel{AppointmentID: "a1", Key: idemKey("kc", "cancel a1")}); !errors.Is(r.Err, keyed.ErrReused) {
		t.Fatalf("the confirm's key on a cancel: %+v, want ErrReused", r)
	}
	if got := f.stored(t, "a1"); got.Status != persistence.StatusCancelled || got.Version != 3 {
		t.Fatalf("stored %+v", got)
	}
}

// TestKeyAnsweredByAnotherCalendar: a key another calendar already
// answered cannot be claimed in the hold's batch: the batch fails with
// keyed.ErrElsewhere (the caller reads the other answer) and the hold
// never happened.
func TestKeyAnsweredByAnotherCalendar(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	ctx := context.Background()
	k := idemKey("k1", "hold 10:00")
	theirs := persistence.Appointment{ID: "elsewhere", StaffID: "other", Status: persistence.StatusHeld}
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		return keyed.Write(ctx, tx, keyed.Config{}, "staff/other", k, theirs, f.clock.now())
	}); err != nil {
		t.Fatal(err)
	}
	r := f.keyedHold(t, "a1", at(10, 0), idemKey("k1", "hold 10:00"))
	if !errors.Is(r.Err, keyed.ErrElsewhere) || !errors.Is(r.Err, ErrRetry) || r.Replayed {
		t.Fatalf("hold under another calendar's key: %+v, want ErrElsewhere", r)
	}
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		_, err := tx.AppointmentGet(ctx, "a1")
		return err
	}); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the refused hold: %v, want it never stored", err)
	}
	if got, err := keyed.Lookup[persistence.Appointment](ctx, f.store, keyed.Config{}, k, f.clock.now()); err != nil || got.ID != "elsewhere" {
		t.Fatalf("the other calendar's answer: %+v, %v", got, err)
	}
	// The failed batch left the calendar as stored: the slot is free.
	if r := f.hold(t, "a2", at(10, 0)); r.Err != nil {
		t.Fatalf("the slot after the failed keyed hold: %v", r.Err)
	}
}
