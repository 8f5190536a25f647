package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// gatedStore holds every transaction until the test opens the gate.
type gatedStore struct {
	persistence.Store
	gate chan struct{}
}

func (s gatedStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	<-s.gate
	return s.Store.InTx(ctx, fn)
}

// enqueue asks the host to accept change n, written by apply (nil: a
// change that writes nothing).
type enqueue struct {
	n     int
	apply func(context.Context, persistence.Tx) error
}

// afterPending asks to be answered once what is pending is settled; n is
// reported with errNothingPending when nothing was.
type afterPending struct{ n int }

var errNothingPending = errors.New("nothing pending")

// host is a minimal actor around a Committer, as a calendar actor uses it.
type host struct {
	b       *Committer
	results chan<- result
}

type result struct {
	n   int
	err error
}

func (h *host) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case enqueue:
		apply := m.apply
		if apply == nil {
			apply = func(context.Context, persistence.Tx) error { return nil }
		}
		h.b.Enqueue(c, Op{Kind: "test", Start: time.Now(), Apply: apply,
			Reply: func(err error) { h.results <- result{m.n, err} }})
	case afterPending:
		if !h.b.AfterPending(func(err error) { h.results <- result{m.n, err} }) {
			h.results <- result{m.n, errNothingPending}
		}
	case Done:
		ops, err := h.b.Done(c, m)
		for _, o := range ops {
			o.Reply(err)
		}
	}
}

func setup(t *testing.T, epoch int64) (*actor.ActorSystem, *actor.PID, chan struct{}, chan result, *[]int, *sync.Mutex) {
	st := sqlitetest.Open(t, persistence.Options{})
	if err := st.InTx(context.Background(), func(tx persistence.Tx) error {
		_, err := tx.CalendarActivate(context.Background(), "staff/x")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	gate, results := make(chan struct{}), make(chan result, 10)
	var mu sync.Mutex
	var sizes []int
	b := &Committer{Store: gatedStore{st, gate}, Calendar: "staff/x", Epoch: epoch, Timeout: 5 * time.Second,
		Flushed: func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }}
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &host{b: b, results: results} }))
	return system, pid, gate, results, &sizes, &mu
}

func TestChangesQueueWhileABatchIsInFlight(t *testing.T) {
	system, pid, gate, results, sizes, mu := setup(t, 1)
	for n := range 3 {
		system.Root.Send(pid, enqueue{n: n})
	}
	// The first batch (one change) is held at the gate; the other two
	// queue behind it and go together in the second batch.
	gate <- struct{}{}
	gate <- struct{}{}
	got := map[int]bool{}
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Fatalf("change %d: %v", r.n, r.err)
		}
		got[r.n] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || len(*sizes) != 2 || (*sizes)[0] != 1 || (*sizes)[1] != 2 {
		t.Fatalf("answered %v, batch sizes %v; want all three in batches of 1 and 2", got, *sizes)
	}
}

func TestAStaleEpochRefusesTheBatchAndEverythingQueued(t *testing.T) {
	system, pid, gate, results, _, _ := setup(t, 0) // the calendar is at epoch 1
	for n := range 3 {
		system.Root.Send(pid, enqueue{n: n})
	}
	close(gate)
	for range 3 {
		if r := <-results; !errors.Is(r.err, persistence.ErrFenced) {
			t.Fatalf("change %d: %v, want fenced", r.n, r.err)
		}
	}
}

// TestAfterPendingWaitsForEveryAcceptedChange: a refusal that rests on
// unwritten changes is answered after them, with their outcome; with
// nothing pending it is answered at once.
func TestAfterPendingWaitsForEveryAcceptedChange(t *testing.T) {
	system, pid, gate, results, _, _ := setup(t, 1)
	system.Root.Send(pid, afterPending{100})
	if r := <-results; r.n != 100 || !errors.Is(r.err, errNothingPending) {
		t.Fatalf("with nothing pending: %+v", r)
	}
	system.Root.Send(pid, enqueue{n: 0})   // in flight, held at the gate
	system.Root.Send(pid, afterPending{1}) // rests on the batch in flight
	system.Root.Send(pid, enqueue{n: 2})   // queued for the next batch
	system.Root.Send(pid, afterPending{3}) // rests on the queued change too
	gate <- struct{}{}
	gate <- struct{}{}
	var order []int
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Fatalf("%d: %v", r.n, r.err)
		}
		order = append(order, r.n)
	}
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Fatalf("answered in order %v, want [0 1 2 3]", order)
	}
}

// TestAfterPendingSharesAFencedBatchsError: were the pending changes
// fenced, the waiting refusals learn it instead of being sent as true.
func TestAfterPendingSharesAFencedBatchsError(t *testing.T) {
	system, pid, gate, results, _, _ := setup(t, 0) // the calendar is at epoch 1
	system.Root.Send(pid, enqueue{n: 0})
	system.Root.Send(pid, afterPending{1})
	system.Root.Send(pid, enqueue{n: 2})
	system.Root.Send(pid, afterPending{3})
	close(gate)
	for range 4 {
		if r := <-results; !errors.Is(r.err, persistence.ErrFenced) {
			t.Fatalf("%d: %v, want fenced", r.n, r.err)
		}
	}
}
