package batch

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/persistence"
)

// Writer is the node's group commit across calendars: it writes the
// batches of many Committers in one transaction. With load spread over
// many calendars most Committer batches carry one change, so without it
// each change would still cost a transaction of its own (and a WAL flush).
// Every calendar's changes stay behind its own epoch check inside the
// shared transaction, so fencing is what it was.
//
// A few workers take the batches: a worker takes one, then everything
// queued meanwhile (up to WriterConfig.MaxJobs/MaxOps), so transactions
// grow with the load and nothing waits on a timer.
//
// At light load that makes a batch that arrives while a transaction is in
// flight wait for it before its own: the light-load lane (see
// WriterConfig.LaneJobs) writes such a batch at once instead, in a second
// transaction, but only while the ones in flight are small. Under heavy
// load transactions are large and the lane stays idle, so its extra
// transactions (and the serialization conflicts between concurrent
// writers) cost the throughput nothing.
type Writer struct {
	store    persistence.Store
	maxJobs  int
	maxOps   int
	workers  int
	laneJobs int
	m        writerMetrics

	mu     sync.Mutex
	ready  *sync.Cond // broadcast when a job is queued, a worker leaves some queued, or the writer closes
	queue  []job
	closed bool
	// busy is how many workers (not the lane) have a transaction in
	// flight, and busyJobs how many batches those carry.
	busy, busyJobs int
	done           sync.WaitGroup
}

// WriterConfig sizes a Writer.
type WriterConfig struct {
	// Workers is how many transactions may be in flight at once; 0: no
	// Writer (NewWriter returns nil and every batch is its own transaction).
	// More workers overlap round trips but, under SERIALIZABLE, abort each
	// other's transactions more (see the retries metric).
	Workers int
	MaxJobs int // batches per transaction (32)
	MaxOps  int // changes per transaction (256); a larger batch goes alone
	// LaneJobs starts the light-load lane: a batch queued while every
	// worker has a transaction in flight, all of them together carrying
	// at most LaneJobs batches, is written at once in a transaction of
	// the lane's instead of waiting (0: no lane).
	LaneJobs int
}

type writerMetrics struct {
	jobs, ops          prometheus.Histogram
	fallbacks, retries prometheus.Counter
	lane               prometheus.Counter
}

// job is one Committer's batch.
type job struct {
	calendar string
	epoch    int64
	ops      []Op
	deadline time.Time       // the batch's outcome is known by then
	done     func(err error) // reports the outcome to the Committer's actor
}

// NewWriter starts cfg.Workers workers writing to store, which must be the
// store of the Committers that use it, and registers its metrics on reg.
// With no workers it returns nil, a valid value for Committer.Writer.
func NewWriter(store persistence.Store, cfg WriterConfig, reg prometheus.Registerer) (*Writer, error) {
	if cfg.Workers <= 0 {
		return nil, nil
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 32
	}
	if cfg.MaxOps <= 0 {
		cfg.MaxOps = 256
	}
	sizes := []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	w := &Writer{store: store, maxJobs: cfg.MaxJobs, maxOps: cfg.MaxOps, workers: cfg.Workers, laneJobs: max(cfg.LaneJobs, 0), m: writerMetrics{
		jobs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spa_group_commit_batches_per_tx",
			Help:    "Calendar batches (one per actor) written per group-commit transaction.",
			Buckets: sizes,
		}),
		ops: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spa_group_commit_changes_per_tx",
			Help:    "Calendar changes written per group-commit transaction.",
			Buckets: sizes,
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_group_commit_fallbacks_total",
			Help: "Group-commit transactions of several calendars that failed in one calendar's write and were rerun one calendar per transaction.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_group_commit_tx_retries_total",
			Help: "Group-commit transaction attempts beyond the first (serialization failures retried by the store).",
		}),
		lane: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_group_commit_lane_tx_total",
			Help: "Group-commit transactions the light-load lane wrote because the workers' transactions in flight were small (SPA_GROUP_COMMIT_LANE_JOBS).",
		}),
	}}
	if err := actors.Register(reg, w.m.jobs, w.m.ops, w.m.fallbacks, w.m.retries, w.m.lane); err != nil {
		return nil, err
	}
	w.ready = sync.NewCond(&w.mu)
	w.done.Add(cfg.Workers)
	for range cfg.Workers {
		go w.work()
	}
	if w.laneJobs > 0 {
		w.done.Add(1)
		go w.lane()
	}
	return w, nil
}

// Close lets the workers finish what is queued and waits for them; call it
// once the actors have stopped. A batch submitted later is still written,
// alone.
func (w *Writer) Close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.ready.Broadcast()
	w.done.Wait()
}

// submit queues j for the next transaction; it never blocks the actor.
func (w *Writer) submit(j job) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		go func() { j.done(writeAlone(w.store, j)) }()
		return
	}
	w.queue = append(w.queue, j)
	w.mu.Unlock()
	w.ready.Broadcast() // the workers and the lane wait on one condition
}

func (w *Writer) work() {
	defer w.done.Done()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.ready.Wait()
		}
		if len(w.queue) == 0 { // closed and drained
			w.mu.Unlock()
			return
		}
		jobs := w.take()
		w.busy++
		w.busyJobs += len(jobs)
		if len(w.queue) > 0 {
			// Left behind a batch too large to share (a calendar's wave
			// of lapsed holds, written alone): the lane may take them.
			w.ready.Broadcast()
		}
		w.mu.Unlock()
		w.write(jobs)
		w.mu.Lock()
		w.busy--
		w.busyJobs -= len(jobs)
		w.mu.Unlock()
	}
}

// lane writes what is queued while every worker is in a small
// transaction (see WriterConfig.LaneJobs); an idle worker takes the queue
// itself, and a large transaction in flight means the load is heavy
// enough for the next one to be worth waiting for.
func (w *Writer) lane() {
	defer w.done.Done()
	for {
		w.mu.Lock()
		for !w.closed && (len(w.queue) == 0 || w.busy < w.workers || w.busyJobs > w.laneJobs) {
			w.ready.Wait()
		}
		if w.closed { // the workers drain the queue
			w.mu.Unlock()
			return
		}
		jobs := w.take()
		w.mu.Unlock()
		w.m.lane.Inc()
		w.write(jobs)
	}
}

// take removes the jobs of the next transaction from the queue (w.mu
// held): the oldest, and those after it while they fit.
func (w *Writer) take() []job {
	n, ops := 1, len(w.queue[0].ops)
	for n < len(w.queue) && n < w.maxJobs && ops+len(w.queue[n].ops) <= w.maxOps {
		ops += len(w.queue[n].ops)
		n++
	}
	jobs := make([]job, n)
	copy(jobs, w.queue)
	w.queue = append(w.queue[:0], w.queue[n:]...)
	return jobs
}

// write commits jobs in one transaction and reports each one's outcome.
// When one job's write fails, the transaction has rolled back, so every
// job is run again alone and learns its own outcome: a fenced calendar or
// a failed change costs only its own batch. Any other failure (the commit
// itself, the store) is every job's: after a failed COMMIT the changes may
// or may not be written, so nothing is rerun and each actor reloads what
// is true, as after a failed batch of its own.
func (w *Writer) write(jobs []job) {
	ops := 0
	for _, j := range jobs {
		ops += len(j.ops)
	}
	w.m.jobs.Observe(float64(len(jobs)))
	w.m.ops.Observe(float64(ops))
	failed, err := w.run(jobs)
	if failed < 0 || len(jobs) == 1 {
		for _, j := range jobs {
			j.done(err)
		}
		return
	}
	w.m.fallbacks.Inc()
	for _, j := range jobs {
		_, err := w.run([]job{j})
		j.done(err)
	}
}

// run writes jobs in one transaction, bounded by the earliest of their
// deadlines. failed is the index of a job whose write failed in the last
// attempt (0 when a pipelined write failed, whoever's it was), or -1 when
// none did (the transaction committed, or failed outside the jobs' writes).
func (w *Writer) run(jobs []job) (failed int, err error) {
	deadline := jobs[0].deadline
	for _, j := range jobs[1:] {
		if j.deadline.Before(deadline) {
			deadline = j.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	attempts := 0
	err = w.store.InTx(ctx, func(tx persistence.Tx) error {
		if attempts++; attempts > 1 {
			w.m.retries.Inc()
		}
		failed = -1
		// The whole transaction's writes go in one round trip; an error
		// they meet surfaces at the end, without telling whose it was, so
		// then every job runs again alone and learns its own outcome. The
		// epoch checks go first and the jobs' writes after them, in one
		// stretch, where the pipeline sends the inserts of each kind as
		// one statement.
		err := tx.Pipelined(ctx, func() error {
			for i, j := range jobs {
				if err := j.check(ctx, tx); err != nil {
					failed = i
					return err
				}
			}
			for i, j := range jobs {
				if err := j.apply(ctx, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if err != nil && failed < 0 {
			failed = 0
		}
		return err
	})
	if err == nil {
		failed = -1
	}
	return failed, err
}

// writeAlone writes j in a transaction of its own.
func writeAlone(store persistence.Store, j job) error {
	ctx, cancel := context.WithDeadline(context.Background(), j.deadline)
	defer cancel()
	return store.InTx(ctx, func(tx persistence.Tx) error { return j.write(ctx, tx) })
}

// write checks the calendar's epoch, so a stale activation cannot write,
// then applies the batch's changes. They are pipelined (Tx.Pipelined): the
// check and the inserts cost one round trip, not one each.
func (j job) write(ctx context.Context, tx persistence.Tx) error {
	return tx.Pipelined(ctx, func() error {
		if err := j.check(ctx, tx); err != nil {
			return err
		}
		return j.apply(ctx, tx)
	})
}

// check is the epoch check of write.
func (j job) check(ctx context.Context, tx persistence.Tx) error {
	return tx.CalendarCheckEpoch(ctx, j.calendar, j.epoch)
}

// apply is the changes of write.
func (j job) apply(ctx context.Context, tx persistence.Tx) error {
	for _, o := range j.ops {
		if err := o.Apply(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}
