package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence"
)

// countingStore counts transactions and holds the first one until release
// is closed, so the test can queue batches behind it.
type countingStore struct {
	persistence.Store
	calls   atomic.Int32
	entered chan struct{} // closed when the first transaction starts
	release chan struct{}
	// commitErr, when set, rolls back every transaction whose writes all
	// succeeded and returns this error: a failed COMMIT.
	commitErr error
}

func (s *countingStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return s.Store.InTx(ctx, func(tx persistence.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.commitErr
	})
}

// writerRig is a Writer with one worker over a real store, and a host
// actor per calendar whose Committer uses it.
type writerRig struct {
	t       *testing.T
	st      persistence.Store
	store   *countingStore
	w       *Writer
	reg     *prometheus.Registry
	system  *actor.ActorSystem
	results chan result
}

func newWriterRig(t *testing.T, st persistence.Store) *writerRig {
	return newWriterRigWith(t, st, WriterConfig{Workers: 1})
}

func newWriterRigWith(t *testing.T, st persistence.Store, cfg WriterConfig) *writerRig {
	r := &writerRig{t: t, st: st, store: &countingStore{Store: st, entered: make(chan struct{}), release: make(chan struct{})},
		reg: prometheus.NewRegistry(), system: actor.NewActorSystem(), results: make(chan result, 64)}
	var err error
	if r.w, err = NewWriter(r.store, cfg, r.reg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.system.Shutdown()
		r.w.Close()
	})
	return r
}

// calendar activates calendar id (epoch 1) and spawns a host writing to
// it at epoch.
func (r *writerRig) calendar(id string, epoch int64) *actor.PID {
	r.t.Helper()
	ctx := context.Background()
	if err := r.st.InTx(ctx, func(tx persistence.Tx) error {
		_, err := tx.CalendarActivate(ctx, id)
		return err
	}); err != nil {
		r.t.Fatal(err)
	}
	b := &Committer{Store: r.st, Calendar: id, Epoch: epoch, Timeout: 10 * time.Second, Writer: r.w}
	return r.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &host{b: b, results: r.results} }))
}

// hold sends a first change through the writer and waits until its
// transaction is held, so the next changes queue behind it.
func (r *writerRig) hold() {
	r.t.Helper()
	r.system.Root.Send(r.calendar("staff/first", 1), enqueue{n: -1})
	<-r.store.entered
}

// waitQueued waits until n batches wait in the writer's queue.
func (r *writerRig) waitQueued(n int) {
	r.t.Helper()
	testwait.Until(r.t, 10*time.Second, fmt.Sprintf("%d batches queued", n), func() error {
		r.w.mu.Lock()
		queued := len(r.w.queue)
		r.w.mu.Unlock()
		if queued != n {
			return fmt.Errorf("%d batches queued, want %d", queued, n)
		}
		return nil
	})
}

// answers releases the held transaction and collects n answers by change.
func (r *writerRig) answers(n int) map[int]error {
	close(r.store.release)
	got := map[int]error{}
	for range n {
		res := <-r.results
		got[res.n] = res.err
	}
	return got
}

// mark is a change that writes a marker calendar named after n.
func mark(n int) func(context.Context, persistence.Tx) error {
	return func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.CalendarActivate(ctx, fmt.Sprintf("mark/%d", n))
		return err
	}
}

// marked reports whether change n's marker was committed.
func (r *writerRig) marked(n int) bool {
	r.t.Helper()
	ctx := context.Background()
	err := r.st.InTx(ctx, func(tx persistence.Tx) error { return tx.CalendarCheckEpoch(ctx, fmt.Sprintf("mark/%d", n), 1) })
	if err != nil && !errors.Is(err, persistence.ErrFenced) {
		r.t.Fatal(err)
	}
	return err == nil
}

func histogram(t *testing.T, h prometheus.Histogram) (count uint64, sum float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func TestWriterPutsManyCalendarsInOneTransaction(t *testing.T) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			r := newWriterRig(t, d.Open(t))
			r.hold()
			const n = 8
			var mu sync.Mutex
			inTx := map[int]int32{} // change: the transaction (counted) it was written in
			write := func(i int) func(context.Context, persistence.Tx) error {
				return func(ctx context.Context, tx persistence.Tx) error {
					mu.Lock()
					inTx[i] = r.store.calls.Load()
					mu.Unlock()
					return mark(i)(ctx, tx)
				}
			}
			for i := range n {
				pid := r.calendar(fmt.Sprintf("staff/%d", i), 1)
				r.system.Root.Send(pid, enqueue{n: i, apply: write(i)})
				r.system.Root.Send(pid, enqueue{n: n + i, apply: write(n + i)}) // queues in the actor
			}
			// Each actor has one batch in flight (its first change); its
			// second waits in the actor for that batch's outcome.
			r.waitQueued(n)
			got := r.answers(2*n + 1)
			for i := range 2 * n {
				if got[i] != nil || !r.marked(i) {
					t.Fatalf("change %d: %v, marked %v", i, got[i], r.marked(i))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range n { // after the held one, together
				if inTx[i] != 2 {
					t.Fatalf("first changes written in transactions %v, want all in the second", inTx)
				}
			}
			if calls := r.store.calls.Load(); calls < 3 || calls > 2+n {
				t.Fatalf("%d transactions for 1+%d batches", calls, 2*n)
			}
			if count, sum := histogram(t, r.w.m.jobs); sum != 1+2*n || count != uint64(r.store.calls.Load()) {
				t.Fatalf("batches per transaction: %d transactions, %v batches", count, sum)
			}
			if f := testutil.ToFloat64(r.w.m.fallbacks); f != 0 {
				t.Fatalf("fallbacks %v", f)
			}
		})
	}
}

// TestWriterFailsOnlyTheFailingCalendar: a fenced calendar, or a change
// whose write fails, in a shared transaction fails its own batch only; the
// others are written.
func TestWriterFailsOnlyTheFailingCalendar(t *testing.T) {
	errBoom := errors.New("boom")
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			r := newWriterRig(t, d.Open(t))
			r.hold()
			r.system.Root.Send(r.calendar("staff/a", 1), enqueue{n: 0, apply: mark(0)})
			r.system.Root.Send(r.calendar("staff/stale", 0), enqueue{n: 1, apply: mark(1)}) // the calendar is at epoch 1
			r.system.Root.Send(r.calendar("staff/b", 1), enqueue{n: 2, apply: func(ctx context.Context, tx persistence.Tx) error {
				if err := mark(2)(ctx, tx); err != nil {
					return err
				}
				return errBoom
			}})
			r.system.Root.Send(r.calendar("staff/c", 1), enqueue{n: 3, apply: mark(3)})
			r.waitQueued(4)
			got := r.answers(5)
			if got[0] != nil || got[3] != nil || !r.marked(0) || !r.marked(3) {
				t.Fatalf("the sound batches: %v, %v; marked %v, %v", got[0], got[3], r.marked(0), r.marked(3))
			}
			if !errors.Is(got[1], persistence.ErrFenced) || r.marked(1) {
				t.Fatalf("the stale batch: %v, marked %v; want fenced", got[1], r.marked(1))
			}
			if !errors.Is(got[2], errBoom) || r.marked(2) {
				t.Fatalf("the failing batch: %v, marked %v; want boom", got[2], r.marked(2))
			}
			// The held one, the shared one, then each of the four alone.
			if calls := r.store.calls.Load(); calls != 6 {
				t.Fatalf("%d transactions, want 6", calls)
			}
			if f := testutil.ToFloat64(r.w.m.fallbacks); f != 1 {
				t.Fatalf("fallbacks %v, want 1", f)
			}
		})
	}
}

// TestWriterSharesAFailedCommit: when the transaction fails outside the
// batches' writes (its COMMIT), the changes may or may not be written, so
// no batch is rerun: each fails, and its actor reloads.
func TestWriterSharesAFailedCommit(t *testing.T) {
	errCommit := fmt.Errorf("commit: %w", persistence.ErrUnavailable)
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			r := newWriterRig(t, d.Open(t))
			r.store.commitErr = errCommit
			r.hold()
			for i := range 3 {
				r.system.Root.Send(r.calendar(fmt.Sprintf("staff/%d", i), 1), enqueue{n: i, apply: mark(i)})
			}
			r.waitQueued(3)
			got := r.answers(4)
			for i := range 3 {
				if !errors.Is(got[i], errCommit) || r.marked(i) {
					t.Fatalf("change %d: %v, marked %v; want the commit's error", i, got[i], r.marked(i))
				}
			}
			if calls, f := r.store.calls.Load(), testutil.ToFloat64(r.w.m.fallbacks); calls != 2 || f != 0 {
				t.Fatalf("%d transactions, %v fallbacks; want 2 and none", calls, f)
			}
		})
	}
}

// TestWriterLaneWritesAtOnceBesideASmallTransaction: at light load a
// batch does not wait for the transaction in flight; the lane writes it
// in one of its own while the first is still held.
func TestWriterLaneWritesAtOnceBesideASmallTransaction(t *testing.T) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			r := newWriterRigWith(t, d.Open(t), WriterConfig{Workers: 1, LaneJobs: 1})
			r.hold() // one batch in flight, held
			r.system.Root.Send(r.calendar("staff/a", 1), enqueue{n: 0, apply: mark(0)})
			select {
			case res := <-r.results:
				if res.n != 0 || res.err != nil || !r.marked(0) {
					t.Fatalf("the lane's batch: change %d, %v, marked %v", res.n, res.err, r.marked(0))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the batch waited for the held transaction")
			}
			if got := testutil.ToFloat64(r.w.m.lane); got != 1 {
				t.Fatalf("lane transactions %v, want 1", got)
			}
			if got := r.answers(1); got[-1] != nil {
				t.Fatalf("the held batch: %v", got[-1])
			}
		})
	}
}

// TestWriterLaneIdleBesideALargeTransaction: when the transaction in
// flight carries more than LaneJobs batches the load is heavy, and the
// next batch waits to be written with the others queued meanwhile.
func TestWriterLaneIdleBesideALargeTransaction(t *testing.T) {
	r := newWriterRigWith(t, inventorytest.Drivers()[0].Open(t), WriterConfig{Workers: 1, LaneJobs: 1})
	r.hold()
	r.w.mu.Lock()
	r.w.busyJobs += 4 // as if the held transaction carried five batches
	r.w.mu.Unlock()
	r.system.Root.Send(r.calendar("staff/a", 1), enqueue{n: 0, apply: mark(0)})
	r.waitQueued(1)
	got := r.answers(2)
	if got[0] != nil || !r.marked(0) {
		t.Fatalf("the queued batch: %v, marked %v", got[0], r.marked(0))
	}
	if lane := testutil.ToFloat64(r.w.m.lane); lane != 0 || r.store.calls.Load() != 2 {
		t.Fatalf("lane transactions %v, transactions %d; want 0 and 2 (the worker wrote it)", lane, r.store.calls.Load())
	}
}

// TestWriterWritesAfterClose: a batch that comes after Close is still
// written, alone.
func TestWriterWritesAfterClose(t *testing.T) {
	r := newWriterRig(t, inventorytest.Drivers()[0].Open(t))
	close(r.store.release)
	r.w.Close()
	r.system.Root.Send(r.calendar("staff/late", 1), enqueue{n: 0, apply: mark(0)})
	if res := <-r.results; res.err != nil || !r.marked(0) {
		t.Fatalf("after Close: %v, marked %v", res.err, r.marked(0))
	}
}

func TestNoWorkersNoWriter(t *testing.T) {
	w, err := NewWriter(nil, WriterConfig{}, prometheus.NewRegistry())
	if w != nil || err != nil {
		t.Fatalf("NewWriter with no workers = %v, %v; want nil, nil", w, err)
	}
	w.Close() // a nil Writer closes
}
