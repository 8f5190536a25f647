package schedule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence"
)

// quick is a short service with a buffer before; nails needs a skill Ana
// lacks. Both are stored by addServices.
var (
	quick = persistence.Service{ID: "quick", Name: "Quick", Category: "x", Duration: 15 * time.Minute,
		BufferBefore: 10 * time.Minute, Active: true, DepositPolicy: persistence.DepositNone}
	nails = persistence.Service{ID: "nails", Name: "Nails", Category: "x", Duration: 30 * time.Minute,
		RequiredSkills: []string{"nails"}, Active: true, DepositPolicy: persistence.DepositNone}
)

func addServices(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		for _, sv := range []persistence.Service{quick, nails} {
			if _, err := tx.ServicePut(ctx, sv); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// actorAnswer asks the actor itself, through its mailbox.
func (f *fixture) actorAnswer(t *testing.T, q *SlotsQuery) *SlotsReply {
	t.Helper()
	r, err := f.dir.Directory.Ask(context.Background(), "ana", q)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*SlotsReply)
}

// snapshotAnswer answers from the published snapshot, if there is one
// exact now.
func (f *fixture) snapshotAnswer(q *SlotsQuery) (*SlotsReply, bool) {
	return f.dir.shelf.answer("ana", q, f.dir.deps.Config, f.dir.deps.Metrics, f.clock.now)
}

func sameReply(a, b *SlotsReply) bool {
	return slices.Equal(a.Slots, b.Slots) && a.Load == b.Load && fmt.Sprint(a.Err) == fmt.Sprint(b.Err)
}

// TestSnapshotAnswersAsTheActor: a read answered from the snapshot must be
// the actor's answer. Random calendars (holds, confirmations,
// cancellations, completions) under random notice, horizon and hold TTL
// are read over random windows (cut by the notice, the horizon, or
// invalid) while the clock walks through hold expiries; each snapshot
// answer is compared with the actor's at the same instant.
func TestSnapshotAnswersAsTheActor(t *testing.T) {
	for seed := range 6 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 2026))
			cfg := Config{
				HoldTTL:   time.Duration(5+rng.IntN(60)) * time.Minute,
				MinNotice: []time.Duration{0, 20 * time.Minute, 3 * time.Hour}[rng.IntN(3)],
				Horizon:   []time.Duration{0, 2 * 24 * time.Hour}[rng.IntN(2)], // 0: 90 days
			}
			f := newFixture(t, cfg, nil)
			addServices(t, f)
			f.clock.set(at(7, 0).Add(time.Duration(rng.IntN(60)) * time.Minute))
			services := []persistence.Service{massage, quick, nails}
			ctx := context.Background()
			var ids []string
			pick := func() string { return ids[rng.IntN(len(ids))] }
			start := func() time.Time {
				return at(9, 0).AddDate(0, 0, rng.IntN(4)).Add(time.Duration(rng.IntN(32)) * 15 * time.Minute)
			}
			queries, fast, slots, lapsed := 0, 0, 0, 0
			for i := range 400 {
				switch r := rng.IntN(20); {
				case r < 7:
					id := fmt.Sprint("h", i)
					sv := services[rng.IntN(2)]
					reply, err := f.dir.Ask(ctx, "ana", &Hold{AppointmentID: id, ClientID: "c", Service: sv, Start: start(), ActorID: "c"})
					if err != nil {
						t.Fatal(err)
					}
					if reply.(*HoldReply).Err == nil {
						ids = append(ids, id)
					}
				case r < 9 && len(ids) > 0:
					f.ask(t, &Confirm{AppointmentID: pick(), ActorID: "c"})
				case r < 10 && len(ids) > 0:
					f.ask(t, &Cancel{AppointmentID: pick(), ActorID: "c"})
				case r < 11 && len(ids) > 0:
					f.ask(t, &Complete{AppointmentID: pick(), ActorID: "staff"})
				case r < 13:
					f.clock.add(time.Duration(rng.IntN(45)) * time.Minute)
				default:
					from := at(0, 0).AddDate(0, 0, rng.IntN(5)-1).Add(time.Duration(rng.IntN(24*60)) * time.Minute)
					span := []time.Duration{0, time.Hour, 6 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour}[rng.IntN(5)]
					q := &SlotsQuery{Service: services[rng.IntN(len(services))], From: from, To: from.Add(span)}
					queries += 2
					// The snapshot as the last change left it, then the actor.
					if _, s := f.dir.shelf.lookup("ana"); s != nil && !s.exactAt(f.clock.now()) {
						lapsed++
					}
					snap, ok := f.snapshotAnswer(q)
					want := f.actorAnswer(t, q)
					if ok {
						fast++
						if !sameReply(snap, want) {
							t.Fatalf("step %d at %v, %s [%v, %v):\nsnapshot %d slots, load %d, err %v\n   actor %d slots, load %d, err %v\n%v\n%v",
								i, f.clock.now(), q.Service.ID, q.From, q.To, len(snap.Slots), snap.Load, snap.Err,
								len(want.Slots), want.Load, want.Err, snap.Slots, want.Slots)
						}
					}
					// Again, from the readers' memo when the first computed it.
					if again, ok := f.snapshotAnswer(q); ok {
						fast++
						if !sameReply(again, want) {
							t.Fatalf("step %d, read again: snapshot %v, actor %v", i, again.Slots, want.Slots)
						}
					}
					slots += len(want.Slots)
				}
			}
			t.Logf("queries %d fast %d lapsed %d", queries, fast, lapsed)
			// Most reads follow a change, not a lapse, so most must be fast;
			// and the comparison must have had slots to compare.
			if fast < queries/2 || slots == 0 {
				t.Fatalf("%d of %d reads answered from the snapshot, %d slots in all", fast, queries, slots)
			}
		})
	}
}

// TestSnapshotReadsWhileClaiming: readers answered from snapshots while
// the actor takes claims (run with -race: the actor never writes what a
// reader holds). No read may offer a start whose hold was acknowledged
// before the read began.
func TestSnapshotReadsWhileClaiming(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	ctx := context.Background()
	const days = 5
	from, to := at(0, 0), at(0, 0).AddDate(0, 0, days)
	var starts []time.Time // massage blocks 1h15m: six disjoint starts a day
	for d := range days {
		for k := range 6 {
			starts = append(starts, at(9, 0).AddDate(0, 0, d).Add(time.Duration(k)*75*time.Minute))
		}
	}
	q := &SlotsQuery{Service: massage, From: from, To: to}
	if _, err := f.dir.Ask(ctx, "ana", q); err != nil { // activates
		t.Fatal(err)
	}
	var acked atomic.Int64 // holds answered so far, in order of starts
	var fast atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				n := int(acked.Load())
				var reply *SlotsReply
				if r%2 == 0 { // straight from the shelf, to count the fast ones
					var ok bool
					if reply, ok = f.snapshotAnswer(q); ok {
						fast.Add(1)
					} else {
						reply = f.actorAnswer(t, q)
					}
				} else {
					got, err := f.dir.Ask(ctx, "ana", q)
					if err != nil {
						t.Error(err)
						return
					}
					reply = got.(*SlotsReply)
				}
				if reply.Err != nil {
					t.Error(reply.Err)
					return
				}
				if !slices.IsSortedFunc(reply.Slots, func(a, b availability.Slot) int { return a.Start.Compare(b.Start) }) {
					t.Errorf("slots out of order: %v", reply.Slots)
					return
				}
				for _, taken := range starts[:n] {
					if slices.ContainsFunc(reply.Slots, func(sl availability.Slot) bool { return sl.Start.Equal(taken) }) {
						t.Errorf("%v offered after its hold was acknowledged", taken)
						return
					}
				}
			}
		})
	}
	for i, s := range starts {
		if r := f.hold(t, fmt.Sprint("a", i), s); r.Err != nil {
			t.Fatalf("hold %v: %v", s, r.Err)
		}
		acked.Add(1)
	}
	close(done)
	wg.Wait()
	if fast.Load() == 0 {
		t.Fatal("no read was answered from a snapshot")
	}
	if r := f.actorAnswer(t, q); len(r.Slots) != 0 {
		t.Fatalf("every start is held, yet %d are offered", len(r.Slots))
	}
}

// TestSnapshotNotServedAfterInvalidate: once Invalidate returns, reads
// reflect the calendar as stored, not the retired activation's view.
func TestSnapshotNotServedAfterInvalidate(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	ctx := context.Background()
	q := &SlotsQuery{Service: massage, From: at(0, 0), To: at(0, 0).AddDate(0, 0, 1)}
	read := func() []availability.Slot {
		t.Helper()
		r, err := f.dir.Ask(ctx, "ana", q)
		if err != nil || r.(*SlotsReply).Err != nil {
			t.Fatal(err, r)
		}
		return r.(*SlotsReply).Slots
	}
	if got := read(); len(got) == 0 || !got[0].Start.Equal(at(9, 0)) {
		t.Fatalf("before: %v", got)
	}
	waitPublished(t, f)
	// Ana now starts at 12:00.
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		m, err := tx.StaffGet(ctx, "ana")
		if err != nil {
			return err
		}
		for d := range m.Weekly {
			m.Weekly[d] = []persistence.ClockRange{{StartMinute: 12 * 60, EndMinute: 17 * 60}}
		}
		_, err = tx.StaffPut(ctx, m)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.dir.Invalidate("ana")
	if _, s := f.dir.shelf.lookup("ana"); s != nil {
		t.Fatal("the retired activation's snapshot is still served")
	}
	if got := read(); len(got) == 0 || !got[0].Start.Equal(at(12, 0)) {
		t.Fatalf("after Invalidate: %v", got)
	}
	waitPublished(t, f) // the next activation publishes its own
}

// TestAskNowAnswersOnlyFromASnapshot: AskNow (door.Now) answers a slots
// query at once from a published snapshot, the same as Ask, and declines
// before the calendar has one, and any other request.
func TestAskNowAnswersOnlyFromASnapshot(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	q := &SlotsQuery{Service: massage, From: at(0, 0), To: at(0, 0).AddDate(0, 0, 1)}
	if _, ok := f.dir.AskNow("ana", q); ok {
		t.Fatal("answered before ana's calendar was loaded")
	}
	asked, err := f.dir.Ask(context.Background(), "ana", q)
	if err != nil || asked.(*SlotsReply).Err != nil {
		t.Fatal(err, asked)
	}
	waitPublished(t, f)
	now, ok := f.dir.AskNow("ana", q)
	if !ok {
		t.Fatal("not answered from ana's snapshot")
	}
	if got, want := now.(*SlotsReply).Slots, asked.(*SlotsReply).Slots; len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("AskNow %v, Ask %v", got, want)
	}
	if _, ok := f.dir.AskNow("ana", &Hold{AppointmentID: "x"}); ok {
		t.Fatal("a hold was answered without the actor")
	}
}

// TestSnapshotNotServedAfterInvalidateWhere: a partition given up
// (InvalidateWhere) is not served from snapshots either; others are.
func TestSnapshotNotServedAfterInvalidateWhere(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	waitPublished(t, f)
	f.dir.InvalidateWhere(func(id string) bool { return id == "bob" })
	if _, s := f.dir.shelf.lookup("ana"); s == nil {
		t.Fatal("a calendar outside the match was withdrawn")
	}
	f.dir.InvalidateWhere(func(id string) bool { return id == "ana" })
	if _, s := f.dir.shelf.lookup("ana"); s != nil {
		t.Fatal("the retired activation's snapshot is still served")
	}
}

func waitPublished(t *testing.T, f *fixture) {
	t.Helper()
	testwait.For(t, 5*time.Second, "a snapshot to be published", func() bool {
		_, s := f.dir.shelf.lookup("ana")
		return s != nil
	})
}

// TestShelfGenerations: an activation that loaded before an Invalidate
// may publish after it (it is retired only once the directory gets to
// it); its snapshot must not be served, while its successor's is.
func TestShelfGenerations(t *testing.T) {
	var sh shelf
	served := func() bool { _, s := sh.lookup("ana"); return s != nil }
	old, gen := sh.enlist("ana")
	sh.invalidate("ana")
	old.snap.Store(&snapshot{gen: gen})
	if served() {
		t.Fatal("a snapshot loaded before Invalidate is served")
	}
	sh.release("ana", old)
	next, gen := sh.enlist("ana")
	next.snap.Store(&snapshot{gen: gen})
	if !served() {
		t.Fatal("the next activation's snapshot is not served")
	}
	sh.release("ana", old) // a late release of the predecessor changes nothing
	if !served() {
		t.Fatal("the predecessor's release withdrew its successor's snapshot")
	}
	sh.closed.Store(true)
	if served() {
		t.Fatal("served after Stop")
	}
}

// TestSnapshotWithdrawnAfterFailedBatch: a hold whose batch failed never
// happened; once its caller has been told so, no read may see it. The
// read is made as the refusal is delivered (in the actor's goroutine,
// before it finishes the message), the earliest a caller could read.
func TestSnapshotWithdrawnAfterFailedBatch(t *testing.T) {
	var fs *failingStore
	f := newFixture(t, Config{}, func(s persistence.Store) persistence.Store { fs = &failingStore{Store: s}; return fs })
	root, deps, sh := f.system.Root, f.deps.withDefaults(), &shelf{}
	pid := root.Spawn(actor.PropsFromProducer(newActorOn(deps, "ana", sh)))
	q := &SlotsQuery{Service: massage, From: at(0, 0), To: at(0, 0).AddDate(0, 0, 1)}
	read := func() (*SlotsReply, bool) { return sh.answer("ana", q, deps.Config, deps.Metrics, f.clock.now) }
	if r, err := root.RequestFuture(pid, &Hold{AppointmentID: "a1", ClientID: "c", Service: massage, Start: at(10, 0)}, 5*time.Second).Result(); err != nil || r.(*HoldReply).Err != nil {
		t.Fatal(err, r)
	}
	testwait.For(t, 5*time.Second, "a snapshot after a hold", func() bool { _, ok := read(); return ok })
	type seen struct {
		reply    *HoldReply
		snapshot *SlotsReply
	}
	delivered := make(chan seen, 1)
	onPost := postHook(func(msg any) {
		if r, ok := msg.(*HoldReply); ok {
			s, _ := read()
			delivered <- seen{r, s}
		}
	})
	probe := root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if h, ok := c.Message().(*Hold); ok {
			c.Request(pid, h)
		}
	}, actor.WithMailbox(actor.Unbounded(onPost))))
	fs.fail.Store(true)
	root.Send(probe, &Hold{AppointmentID: "a2", ClientID: "c", Service: massage, Start: at(12, 0)})
	got := <-delivered
	if !errors.Is(got.reply.Err, ErrRetry) {
		t.Fatalf("hold during an outage: %v", got.reply.Err)
	}
	if got.snapshot != nil && !slices.ContainsFunc(got.snapshot.Slots, func(sl availability.Slot) bool { return sl.Start.Equal(at(12, 0)) }) {
		t.Fatalf("12:00 is shown taken by a hold that failed: %v", got.snapshot.Slots)
	}
	fs.fail.Store(false)
	r, err := f.dir.Ask(context.Background(), "ana", q)
	if err != nil || r.(*SlotsReply).Err != nil {
		t.Fatal(err, r)
	}
	if !slices.ContainsFunc(r.(*SlotsReply).Slots, func(sl availability.Slot) bool { return sl.Start.Equal(at(12, 0)) }) {
		t.Fatalf("12:00 not offered after the outage: %v", r.(*SlotsReply).Slots)
	}
}

// postHook calls its function for each message posted to a mailbox, in
// the sender's goroutine.
type postHook func(msg any)

func (postHook) MailboxStarted()         {}
func (h postHook) MessagePosted(msg any) { h(msg) }
func (postHook) MessageReceived(any)     {}
func (postHook) MailboxEmpty()           {}

// TestSnapshotWithdrawnOnPassivation: a passivated calendar leaves
// nothing on the shelf (memory, and no view outliving its activation).
func TestSnapshotWithdrawnOnPassivation(t *testing.T) {
	f := newFixture(t, Config{IdleAfter: 300 * time.Millisecond}, nil)
	if r := f.hold(t, "a1", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	waitPublished(t, f)
	testwait.For(t, 5*time.Second, "the idle actor to passivate", func() bool { return testutil.ToFloat64(f.metrics.live) == 0 })
	if _, ok := f.dir.shelf.slots.Load("ana"); ok {
		t.Fatal("a passivated calendar keeps its slot")
	}
}

// TestRecordingALapseKeepsTheView: a lapsed hold blocks nothing from the
// instant it lapses, so the view published then (without it) is the
// calendar still once the timer records the lapse: recording it must not
// rebuild the view (after a peak, lapses are recorded a hundred a
// second, and each rebuild walked and sorted the whole calendar).
func TestRecordingALapseKeepsTheView(t *testing.T) {
	f := newFixture(t, Config{HoldTTL: 2 * time.Second}, nil)
	if r := f.hold(t, "noon", at(12, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.hold(t, "short", at(10, 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.ask(t, &Confirm{AppointmentID: "noon", ActorID: "c-noon"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	f.clock.add(time.Hour) // "short" lapsed; its timer fires in real time
	q := &SlotsQuery{Service: massage, From: at(0, 0), To: at(0, 0).AddDate(0, 0, 1)}
	reply := f.actorAnswer(t, q)
	if !slices.ContainsFunc(reply.Slots, func(s availability.Slot) bool { return s.Start.Equal(at(10, 0)) }) {
		t.Fatalf("the lapsed hold's start is not offered: %v", reply.Slots)
	}
	// The actor publishes its view after it has answered (at the end of
	// the message), so the reply can arrive first.
	var lapsed *snapshot
	testwait.For(t, 5*time.Second, "the view after the lapse to be published", func() bool {
		_, lapsed = f.dir.shelf.lookup("ana")
		return lapsed != nil && len(lapsed.cal.Busy) == 1 && lapsed.cal.Load == 1
	})
	testwait.For(t, 5*time.Second, "the lapse to be recorded", func() bool {
		return f.stored(t, "short").Status == persistence.StatusExpired
	})
	if _, now := f.dir.shelf.lookup("ana"); now != lapsed {
		t.Fatalf("the view was rebuilt when the lapse was recorded: version %d, was %d", now.version, lapsed.version)
	}
	if again, ok := f.snapshotAnswer(q); !ok || !sameReply(again, reply) {
		t.Fatalf("after the lapse was recorded: %v (from the snapshot: %v), want %v", again, ok, reply)
	}
}
