package batch

import (
	"context"
	"errors"
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

type enqueue struct{ n int }

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
		h.b.Enqueue(c, Op{Kind: "test", Start: time.Now(),
			Apply: func(context.Context, persistence.Tx) error { return nil },
			Reply: func(err error) { h.results <- result{m.n, err} }})
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
		system.Root.Send(pid, enqueue{n})
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
		system.Root.Send(pid, enqueue{n})
	}
	close(gate)
	for range 3 {
		if r := <-results; !errors.Is(r.err, persistence.ErrFenced) {
			t.Fatalf("change %d: %v, want fenced", r.n, r.err)
		}
	}
}
