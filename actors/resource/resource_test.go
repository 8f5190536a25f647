package resource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var t0 = time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)

func at(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, time.UTC) }

func span(h1, m1, h2, m2 int) availability.Interval {
	return availability.Interval{Start: at(h1, m1), End: at(h2, m2)}
}

// clock is a settable Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	store   persistence.Store
	clock   *clock
	system  *actor.ActorSystem
	dir     *Directory
	deps    Deps
	metrics *Metrics
}

// newFixture: a room for one and a sauna for four, over SQLite.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := sqlitetest.Open(t, persistence.Options{})
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		for id, capacity := range map[string]int{"room": 1, "sauna": 4} {
			if _, err := tx.ResourcePut(ctx, persistence.Resource{ID: id, Name: id, Capacity: capacity, Active: true}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &fixture{store: st, clock: clk, metrics: m, system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))}
	f.deps = Deps{Store: st, Now: clk.now, Log: quiet, Metrics: m}
	f.dir, err = NewDirectory(f.system.Root, f.deps, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.dir.Stop(5 * time.Second); f.system.Shutdown() })
	return f
}

func (f *fixture) claim(t *testing.T, res, id string, iv availability.Interval) *ClaimReply {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), res, &Claim{AppointmentID: id, Interval: iv})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*ClaimReply)
}

func (f *fixture) ask(t *testing.T, res string, msg any) any {
	t.Helper()
	r, err := f.dir.Ask(context.Background(), res, msg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// claimsStored lists the resource's unexpired claim rows.
func (f *fixture) claimsStored(t *testing.T, res string) []persistence.ResourceClaim {
	t.Helper()
	var out []persistence.ResourceClaim
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		out, err = tx.ResourceClaimList(context.Background(), res, at(0, 0), at(23, 59), f.clock.now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func appointment(id, res string, start time.Time, status persistence.AppointmentStatus, version int64) persistence.Appointment {
	ap := persistence.Appointment{ID: id, StaffID: "ana", ResourceID: res, ServiceID: "sauna-30", ClientID: "c",
		Start: start, End: start.Add(30 * time.Minute), BufferAfter: 15 * time.Minute, Status: status, Version: version}
	if status == persistence.StatusHeld {
		ap.HoldExpiresAt = t0.Add(10 * time.Minute)
	}
	return ap
}

func TestRoomForOne(t *testing.T) {
	f := newFixture(t)
	r := f.claim(t, "room", "a", span(14, 0, 14, 45))
	if r.Err != nil || !r.ExpiresAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("first claim: %+v", r)
	}
	if got := f.claimsStored(t, "room"); len(got) != 1 || got[0].AppointmentID != "a" {
		t.Fatalf("claim not durable when answered: %+v", got)
	}
	if r := f.claim(t, "room", "b", span(14, 30, 15, 0)); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("overlapping claim: %v", r.Err)
	}
	if r := f.claim(t, "room", "c", span(14, 45, 15, 30)); r.Err != nil {
		t.Fatalf("back-to-back claim: %v", r.Err)
	}
	// A retry of the same appointment's claim is not blocked by itself.
	if r := f.claim(t, "room", "a", span(14, 0, 14, 45)); r.Err != nil {
		t.Fatalf("retried claim: %v", r.Err)
	}
	// Release frees the unit at once and deletes the row.
	if r := f.ask(t, "room", &Release{AppointmentID: "a"}).(*Reply); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.claim(t, "room", "b", span(14, 30, 14, 45)); r.Err != nil {
		t.Fatalf("claim after release: %v", r.Err)
	}
	if got := f.claimsStored(t, "room"); len(got) != 2 {
		t.Fatalf("stored claims after release: %+v", got)
	}
	if r := f.claim(t, "pool", "x", span(14, 0, 15, 0)); !errors.Is(r.Err, ErrUnknownResource) {
		t.Fatalf("unknown resource: %v", r.Err)
	}
	if r := f.claim(t, "room", "", span(9, 0, 10, 0)); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("no id: %v", r.Err)
	}
}

// Four concurrent claims fit the sauna, the fifth does not: pending
// (accepted, not yet written) claims count as taken.
func TestSaunaForFourCountsPendingClaims(t *testing.T) {
	f := newFixture(t)
	var ok, full atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			r, err := f.dir.Ask(context.Background(), "sauna", &Claim{AppointmentID: fmt.Sprint("c", i), Interval: span(15, 0, 16, 0)})
			switch {
			case err != nil:
				t.Error(err)
			case r.(*ClaimReply).Err == nil:
				ok.Add(1)
			case errors.Is(r.(*ClaimReply).Err, ErrFull):
				full.Add(1)
			default:
				t.Error(r.(*ClaimReply).Err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 4 || full.Load() != 8 {
		t.Fatalf("%d claims won, %d full; want 4 and 8", ok.Load(), full.Load())
	}
	if got := f.claimsStored(t, "sauna"); len(got) != 4 {
		t.Fatalf("%d claims stored", len(got))
	}
	// Three uses that follow each other never fill it: a later interval fits.
	if r := f.claim(t, "sauna", "later", span(16, 0, 17, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
}

// A claim whose TTL passed blocks nothing, before anything deleted it.
func TestClaimExpires(t *testing.T) {
	f := newFixture(t)
	if r := f.claim(t, "room", "a", span(14, 0, 15, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	f.clock.add(29 * time.Second)
	if r := f.claim(t, "room", "b", span(14, 0, 15, 0)); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("before expiry: %v", r.Err)
	}
	f.clock.add(time.Second)
	full := f.ask(t, "room", &FullQuery{From: at(0, 0), To: at(23, 0)}).(*FullReply)
	if len(full.Spans) != 0 || full.Capacity != 1 {
		t.Fatalf("after expiry the room is not free: %+v", full)
	}
	if r := f.claim(t, "room", "b", span(14, 0, 15, 0)); r.Err != nil {
		t.Fatalf("after expiry: %v", r.Err)
	}
	if got := f.claimsStored(t, "room"); len(got) != 1 || got[0].AppointmentID != "b" {
		t.Fatalf("stored claims %+v", got)
	}
}

// Track replaces a claim with its appointment, follows its transitions in
// version order, and frees the unit when it is cancelled.
func TestTrackFollowsTheAppointment(t *testing.T) {
	f := newFixture(t)
	held := appointment("a", "room", at(14, 0), persistence.StatusHeld, 1)
	if r := f.claim(t, "room", "a", Padded(held)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.ask(t, "room", &Track{Appointment: held}).(*TrackReply); r.Err != nil || r.Overbooked {
		t.Fatalf("track: %+v", r)
	}
	if got := f.claimsStored(t, "room"); len(got) != 0 {
		t.Fatalf("claim kept after track: %+v", got)
	}
	// After the claim's TTL the appointment still holds the room (its hold
	// lasts ten minutes); the after-buffer counts.
	f.clock.add(time.Minute)
	if r := f.claim(t, "room", "b", span(14, 40, 15, 0)); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("room held by the appointment: %v", r.Err)
	}
	confirmed := held
	confirmed.Status, confirmed.HoldExpiresAt, confirmed.Version = persistence.StatusConfirmed, time.Time{}, 2
	f.ask(t, "room", &Track{Appointment: confirmed})
	f.ask(t, "room", &Track{Appointment: held}) // a late event: ignored
	f.clock.add(20 * time.Minute)               // past the old hold's expiry: confirmed still blocks
	if r := f.claim(t, "room", "b", span(14, 40, 15, 0)); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("room held by the confirmed appointment: %v", r.Err)
	}
	cancelled := confirmed
	cancelled.Status, cancelled.Version = persistence.StatusCancelled, 3
	f.ask(t, "room", &Track{Appointment: cancelled})
	if r := f.claim(t, "room", "b", span(14, 40, 15, 0)); r.Err != nil {
		t.Fatalf("cancelling frees the room: %v", r.Err)
	}
	// An appointment that arrives after its claim lapsed into a full room
	// is reported overbooked.
	late := appointment("c", "room", at(14, 30), persistence.StatusConfirmed, 1)
	if r := f.ask(t, "room", &Track{Appointment: late}).(*TrackReply); !r.Overbooked {
		t.Fatalf("late appointment into a full room: %+v", r)
	}
}

// A new activation loads live appointments and unexpired claims.
func TestActivationLoadsAppointmentsAndClaims(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		ap := appointment("booked", "sauna", at(15, 0), persistence.StatusConfirmed, 1)
		ap.CreatedAt, ap.UpdatedAt = t0, t0
		for i := range 3 {
			if err := tx.ResourceClaimPut(ctx, persistence.ResourceClaim{ResourceID: "sauna", AppointmentID: fmt.Sprint("c", i),
				Start: at(15, 0), End: at(15, 30), ExpiresAt: t0.Add(time.Minute)}); err != nil {
				return err
			}
		}
		return tx.AppointmentInsert(ctx, ap)
	}); err != nil {
		t.Fatal(err)
	}
	if r := f.claim(t, "sauna", "x", span(15, 0, 15, 30)); !errors.Is(r.Err, ErrFull) {
		t.Fatalf("3 claims + 1 appointment fill a sauna for four: %v", r.Err)
	}
	f.clock.add(time.Minute)
	if r := f.claim(t, "sauna", "x", span(15, 0, 15, 30)); r.Err != nil {
		t.Fatalf("loaded claims lapse too: %v", r.Err)
	}
}

// TestTwoActivationsCannotOverbook creates two activations of one resource
// on purpose. The older one's claim is fenced, it stops, and only the newer
// one's claim is stored.
func TestTwoActivationsCannotOverbook(t *testing.T) {
	f := newFixture(t)
	root := f.system.Root
	spawn := func() *actor.PID {
		pid := root.Spawn(actor.PropsFromProducer(newActor(f.deps.withDefaults(), "room")))
		if _, err := root.RequestFuture(pid, &FullQuery{From: at(0, 0), To: at(1, 0)}, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	older, newer := spawn(), spawn()
	claimVia := func(pid *actor.PID, id string) *ClaimReply {
		r, err := root.RequestFuture(pid, &Claim{AppointmentID: id, Interval: span(14, 0, 15, 0)}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return r.(*ClaimReply)
	}
	if r := claimVia(older, "old"); !errors.Is(r.Err, ErrRetry) {
		t.Fatalf("older activation's claim: %v", r.Err)
	}
	if r := claimVia(newer, "new"); r.Err != nil {
		t.Fatalf("newer activation's claim: %v", r.Err)
	}
	if got := f.claimsStored(t, "room"); len(got) != 1 || got[0].AppointmentID != "new" {
		t.Fatalf("stored claims %+v", got)
	}
	if got := testutil.ToFloat64(f.metrics.fenced); got != 1 {
		t.Fatalf("fenced writes = %v", got)
	}
	if _, err := root.RequestFuture(older, &FullQuery{From: at(0, 0), To: at(1, 0)}, 200*time.Millisecond).Result(); err == nil {
		t.Fatal("the fenced activation still answers")
	}
}
