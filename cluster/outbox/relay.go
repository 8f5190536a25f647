// Package outbox relays transactional outbox events from the store to
// JetStream (part of cluster/: embedded NATS and, later, membership and
// placement).
//
// Delivery is at-least-once with stable event ids: an event is deleted
// from the outbox only after JetStream acknowledged it, and it is published
// with Nats-Msg-Id = event id, so a crash between the ack and the delete
// republishes the same id and the stream's duplicate window drops it. The
// stream keeps the events; the table holds only what is still to publish.
// Consumers should still treat the id as their idempotency key (a replay
// later than the window is stored again).
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Stream and header names.
const (
	// StreamName is the default JetStream stream holding domain events.
	StreamName = "SPA_EVENTS"
	// SubjectPrefix starts every event subject; the stream binds
	// SubjectPrefix + ">".
	SubjectPrefix = messages.SubjectPrefix
	// HeaderEventType carries the event's Type (the payload's full proto
	// name) so consumers can filter without decoding.
	HeaderEventType = "Spa-Event-Type"
)

// Config tunes the relay; zero fields take the documented defaults.
type Config struct {
	Stream          string        // stream name; default StreamName
	DuplicateWindow time.Duration // stream dedupe window; default 2m
	PollInterval    time.Duration // poll fallback and first retry delay; default 250ms
	// Linger is how long the relay waits after a pass that published
	// before the next one, which deletes what was published and reads
	// what was committed meanwhile in one transaction; default 10ms. Under
	// load a pass per commit cost two transactions, nearly as much as the
	// commit itself; now passes run at most 1/Linger a second (a full batch
	// goes on at once), each one transaction.
	Linger     time.Duration
	MaxBackoff time.Duration // cap of the retry backoff; default 5s
	BatchSize  int           // events read per transaction; default 500 (in a cluster most of the oldest are other nodes')
	// MaxInFlight bounds unacknowledged publishes; default 128. When a
	// publish fails, later events of that window may already be stored and
	// so precede the failed one's retry; set 1 for strict stream order
	// even across failures.
	MaxInFlight    int
	PublishTimeout time.Duration // wait for each ack; default 5s
	StoreTimeout   time.Duration // per store transaction; default 10s
	// Replicas is the stream's replication factor: 3 on a cluster of at
	// least three servers (membership.Replicas), default 1.
	Replicas int
	// Shared says other nodes' relays read the same outbox (a cluster).
	// A shared relay publishes at once only the events its own node
	// committed (Committed) and leaves another node's to that node's relay
	// for Grace after it first read them; after that it publishes them as
	// orphans (their node died or is stuck). When every relay published every pending event,
	// JetStream dropped most publishes as duplicates.
	Shared bool
	Grace  time.Duration // default 2s
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Stream == "" {
		c.Stream = StreamName
	}
	def(&c.DuplicateWindow, 2*time.Minute)
	def(&c.PollInterval, 250*time.Millisecond)
	def(&c.Linger, 10*time.Millisecond)
	def(&c.MaxBackoff, 5*time.Second)
	def(&c.PublishTimeout, 5*time.Second)
	def(&c.StoreTimeout, 10*time.Second)
	def(&c.Grace, 2*time.Second)
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 128
	}
	if c.MaxBackoff < c.PollInterval {
		c.MaxBackoff = c.PollInterval
	}
	return c
}

// Relay publishes pending outbox events to JetStream in ID order.
type Relay struct {
	store persistence.Store
	js    jetstream.JetStream
	cfg   Config
	log   *slog.Logger
	m     metrics

	// acked are the events JetStream acknowledged and the next pass
	// deletes (the run loop's goroutine only).
	acked []string
	// own are the events this node committed and not yet deleted, with
	// when they were reported (Shared only); pruned of what another relay
	// deleted once they are older than twice the grace. seen are other
	// nodes' events with when a pass first read them: the grace counts
	// from there, not from the event's time, which another node's clock
	// wrote and which may be older than its commit (a lapse's event).
	ownMu    sync.Mutex
	own      map[string]time.Time
	seen     map[string]time.Time
	prunedAt time.Time
	// surveyedAt is when a pass last read the oldest pending events of
	// every node (Shared; the run loop's goroutine only).
	surveyedAt time.Time

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	started  bool
	stopOnce sync.Once
}

// New builds a relay. js should be created with
// jetstream.WithPublishAsyncTimeout on connections that may hang, so
// abandoned acks do not pile up. reg may be nil; metrics already
// registered by an earlier relay are reused.
func New(store persistence.Store, js jetstream.JetStream, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Relay, error) {
	if store == nil || js == nil {
		return nil, errors.New("outbox: store and js are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Relay{
		store: store, js: js, cfg: cfg.withDefaults(), m: m,
		log:  logger.With("component", "outbox"),
		own:  map[string]time.Time{},
		seen: map[string]time.Time{},
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}, nil
}

// Start creates or updates the stream and starts the relay loop. The loop
// runs until Stop or until ctx is cancelled; either way the batch in
// flight is finished first. Start may be called once.
func (r *Relay) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stop:
		return errors.New("outbox: relay stopped")
	default:
	}
	if r.started {
		return errors.New("outbox: relay already started")
	}
	// A forming cluster may leave the create unanswered: retry within ctx.
	err := jsretry.Do(ctx, func(ctx context.Context) error {
		_, err := r.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        r.cfg.Stream,
			Description: "SPA domain events from the transactional outbox",
			Subjects:    []string{SubjectPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Duplicates:  r.cfg.DuplicateWindow,
			Replicas:    max(r.cfg.Replicas, 1),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: create or update stream %s: %w", r.cfg.Stream, err)
	}
	r.started = true
	go r.run(ctx)
	return nil
}

// Committed reports events this node committed and asks the relay to
// publish them now; use it as persistence.Options.AfterOutboxCommit. It
// never blocks for long.
func (r *Relay) Committed(ids []string) {
	if r.cfg.Shared {
		now := time.Now()
		r.ownMu.Lock()
		for _, id := range ids {
			r.own[id] = now
		}
		r.ownMu.Unlock()
	}
	r.Notify()
}

// Notify asks the relay to look for events now instead of at the next
// poll. It never blocks. A shared relay publishes events no Committed
// reported only a grace after it first read them.
func (r *Relay) Notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Stop ends the loop after the batch in flight is published and deleted,
// and waits for it. Calling it again, or before Start, is harmless.
func (r *Relay) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		close(r.stop)
		started := r.started
		r.mu.Unlock()
		if started {
			<-r.done
		}
	})
}

func (r *Relay) run(ctx context.Context) {
	defer close(r.done)
	// The batch in flight must not be cut short by cancellation: each
	// step has its own timeout instead.
	base := context.WithoutCancel(ctx)
	defer r.flush(base)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	var backoff time.Duration
	for {
		more, err := r.pass(base)
		var wait time.Duration
		kick := r.kick
		if err != nil {
			if backoff == 0 {
				backoff = r.cfg.PollInterval
			} else {
				backoff = min(2*backoff, r.cfg.MaxBackoff)
			}
			wait = backoff/2 + rand.N(backoff/2+1) // equal jitter
			kick = nil                             // do not let commits defeat the backoff
			r.log.Warn("outbox relay pass failed", "err", err, "retry_in", wait)
		} else {
			backoff = 0
			switch {
			case more:
			case len(r.acked) > 0:
				// Commits during the linger share the next pass, which
				// deletes what this one published.
				wait, kick = r.cfg.Linger, nil
			default:
				wait = r.cfg.PollInterval
			}
		}
		if wait == 0 {
			select {
			case <-r.stop:
				return
			case <-ctx.Done():
				return
			default:
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		case <-kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (r *Relay) inTx(base context.Context, fn func(context.Context, persistence.Tx) error) error {
	ctx, cancel := context.WithTimeout(base, r.cfg.StoreTimeout)
	defer cancel()
	return r.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

// pass deletes what the previous pass published and reads the next batch,
// in one transaction, then publishes that batch; more reports a full
// batch. What JetStream acknowledged waits in r.acked for the next pass
// (or flush): a crash before that republishes the same ids, which the
// stream drops as duplicates.
//
// A shared relay reads its own node's events by id, and only every half
// grace surveys the oldest pending events of every node (for orphans, and
// for the gauges): reading them all on each pass made PostgreSQL read and
// send three times the rows, two thirds of them to be left alone.
func (r *Relay) pass(base context.Context) (more bool, err error) {
	survey := !r.cfg.Shared || time.Since(r.surveyedAt) >= r.cfg.Grace/2
	r.forget(r.acked) // deleted below, first thing: not to be read again
	r.prune()
	var own []string
	if !survey {
		if own = r.ownIDs(r.cfg.BatchSize); len(own) == 0 && len(r.acked) == 0 {
			return false, nil
		}
	}
	var events []persistence.OutboxEvent
	var pending int
	err = r.inTx(base, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		pending = 0
		if len(r.acked) > 0 {
			if err := tx.OutboxDelete(ctx, r.acked); err != nil {
				return fmt.Errorf("delete %d published events: %w", len(r.acked), err)
			}
		}
		if !survey {
			events, err = tx.OutboxPendingAmong(ctx, own)
			return err
		}
		if events, err = tx.OutboxPending(ctx, r.cfg.BatchSize); err != nil || len(events) == 0 {
			return err
		}
		if len(events) < r.cfg.BatchSize {
			// A short batch is every pending event: no count needed. The
			// count walks the pending index, which holds an entry for each
			// event published since the table was last vacuumed.
			pending = len(events)
			return nil
		}
		pending, err = tx.OutboxCount(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read pending events: %w", err)
	}
	r.acked = r.acked[:0]
	full := len(own) == r.cfg.BatchSize
	if survey {
		r.surveyedAt = time.Now()
		r.m.pending.Set(float64(pending))
		if len(events) == 0 {
			r.m.oldest.Store(0)
			return false, nil
		}
		r.m.oldest.Store(events[0].CreatedAt.UnixNano())
		full = len(events) == r.cfg.BatchSize
	}
	if events = r.mine(events); len(events) == 0 {
		return false, nil // none, or all another node's within its grace
	}
	acked, pubErr := r.publish(events)
	if acked > 0 {
		for _, e := range events[:acked] {
			r.acked = append(r.acked, e.ID)
		}
		r.m.published.Add(float64(acked))
		if survey {
			r.m.pending.Set(float64(max(pending-acked, 0)))
			switch {
			case acked < len(events):
				r.m.oldest.Store(events[acked].CreatedAt.UnixNano())
			case pending <= acked:
				r.m.oldest.Store(0)
			} // else: the next pass, at once, reads the next oldest
		}
	}
	if errors.Is(pubErr, errInProcess) {
		return false, nil // the next pass publishes it again: a duplicate then
	}
	if pubErr != nil {
		return false, pubErr
	}
	return full, nil
}

// ownIDs are up to n of the node's own events not yet deleted, oldest
// first (ULIDs sort by time).
func (r *Relay) ownIDs(n int) []string {
	r.ownMu.Lock()
	ids := make([]string, 0, len(r.own))
	for id := range r.own {
		ids = append(ids, id)
	}
	r.ownMu.Unlock()
	slices.Sort(ids)
	return ids[:min(n, len(ids))]
}

// mine keeps, in order, the events this relay publishes now: every one
// unless the outbox is shared; else its node's own and orphans older than
// the grace.
func (r *Relay) mine(events []persistence.OutboxEvent) []persistence.OutboxEvent {
	if !r.cfg.Shared {
		return events
	}
	now := time.Now()
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	kept := events[:0]
	for _, e := range events {
		if _, ok := r.own[e.ID]; ok {
			kept = append(kept, e)
			continue
		}
		first, ok := r.seen[e.ID]
		if !ok {
			r.seen[e.ID] = now
		} else if now.Sub(first) >= r.cfg.Grace {
			kept = append(kept, e) // an orphan
		}
	}
	return kept
}

// prune drops, once a grace, the own events older than two graces
// (another relay published and deleted them as orphans, or the next
// survey finds them) and the other nodes' events first read four graces
// ago (their node deleted them, or, still pending, they wait a grace
// again), so neither map grows and no pass keeps reading gone ids.
func (r *Relay) prune() {
	if !r.cfg.Shared {
		return
	}
	now := time.Now()
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	if now.Sub(r.prunedAt) < r.cfg.Grace {
		return
	}
	r.prunedAt = now
	for _, m := range []struct {
		ids map[string]time.Time
		age time.Duration
	}{{r.own, 2 * r.cfg.Grace}, {r.seen, 4 * r.cfg.Grace}} {
		for id, at := range m.ids {
			if now.Sub(at) >= m.age {
				delete(m.ids, id)
			}
		}
	}
}

// forget drops deleted events from the node's own.
func (r *Relay) forget(ids []string) {
	if !r.cfg.Shared || len(ids) == 0 {
		return
	}
	r.ownMu.Lock()
	for _, id := range ids {
		delete(r.own, id)
		delete(r.seen, id)
	}
	r.ownMu.Unlock()
}

// flush deletes what the last pass published, as the relay stops. Should
// it fail, the next relay republishes those events as duplicates.
func (r *Relay) flush(base context.Context) {
	if len(r.acked) == 0 {
		return
	}
	err := r.inTx(base, func(ctx context.Context, tx persistence.Tx) error { return tx.OutboxDelete(ctx, r.acked) })
	if err != nil {
		r.log.Warn("outbox relay: published events not deleted; they will be published again", "events", len(r.acked), "err", err)
		return
	}
	r.acked = r.acked[:0]
}

// duplicateInProcess is JetStream's answer to a publish whose id another
// publish is storing at that moment (JSStreamDuplicateMessageConflict):
// two relays published one event, an orphan past the grace. It is no
// failure, and treating it as one backed the relay off for seconds, which
// made more events orphans and more of these answers.
var duplicateInProcess = &jetstream.APIError{ErrorCode: 10158}

var errInProcess = errors.New("outbox: event being stored by another publish")

// publish sends events in order with at most MaxInFlight unacknowledged
// and returns how many leading events JetStream acknowledged. It stops at
// the first failure.
func (r *Relay) publish(events []persistence.OutboxEvent) (int, error) {
	type flight struct {
		f     jetstream.PubAckFuture
		start time.Time
	}
	flights := make([]flight, 0, len(events))
	var sendErr error
	timer := time.NewTimer(r.cfg.PublishTimeout)
	defer timer.Stop()
	for i, e := range events {
		for sendErr == nil && len(flights) < len(events) && len(flights)-i < r.cfg.MaxInFlight {
			next := events[len(flights)]
			msg := nats.NewMsg(next.Subject)
			msg.Data = next.Payload
			msg.Header.Set(jetstream.MsgIDHeader, next.ID)
			msg.Header.Set(HeaderEventType, next.Type)
			start := time.Now()
			f, err := r.js.PublishMsgAsync(msg, jetstream.WithExpectStream(r.cfg.Stream))
			if err != nil {
				sendErr = fmt.Errorf("publish event %s: %w", next.ID, err)
				break
			}
			flights = append(flights, flight{f, start})
		}
		if i >= len(flights) {
			r.m.errors.Inc()
			return i, sendErr
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(r.cfg.PublishTimeout)
		select {
		case ack := <-flights[i].f.Ok():
			r.m.seconds.Observe(time.Since(flights[i].start).Seconds())
			if ack != nil && ack.Duplicate {
				r.m.duplicates.Inc()
			}
		case err := <-flights[i].f.Err():
			if errors.Is(err, duplicateInProcess) {
				return i, errInProcess
			}
			r.m.errors.Inc()
			return i, fmt.Errorf("publish event %s: %w", e.ID, err)
		case <-timer.C:
			r.m.errors.Inc()
			return i, fmt.Errorf("publish event %s: no ack within %s", e.ID, r.cfg.PublishTimeout)
		}
	}
	return len(events), nil
}

type metrics struct {
	published, errors prometheus.Counter
	// duplicates: acknowledged events the stream already held (a retry
	// after a crash between ack and delete, or another node's relay).
	duplicates prometheus.Counter
	pending    prometheus.Gauge
	seconds    prometheus.Histogram
	// oldest is when the oldest unpublished event was written (Unix
	// nanoseconds; 0: none), as of the last pass. Its age is computed on
	// scrape, so a relay that stopped passing shows a growing age.
	oldest *atomic.Int64
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_outbox_published_total", Help: "Outbox events acknowledged by JetStream and deleted from the outbox.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_outbox_publish_errors_total", Help: "Failed outbox publishes (send error, nack or ack timeout).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_outbox_duplicates_total", Help: "Outbox events JetStream acknowledged as duplicates: already published by another relay or before a crash.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_outbox_pending", Help: "Outbox events not yet published, as of the relay's last pass.",
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "spa_outbox_publish_seconds", Help: "Time from publishing an outbox event to its JetStream ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		oldest: new(atomic.Int64),
	}
	if reg == nil {
		return m, nil
	}
	age, err := register(reg, newAgeGauge(m.oldest))
	if err != nil {
		return m, err
	}
	m.oldest = age.oldest // shared with an earlier relay on reg
	if m.published, err = register(reg, m.published); err != nil {
		return m, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return m, err
	}
	if m.duplicates, err = register(reg, m.duplicates); err != nil {
		return m, err
	}
	if m.pending, err = register(reg, m.pending); err != nil {
		return m, err
	}
	m.seconds, err = register(reg, m.seconds)
	return m, err
}

// ageGauge is spa_outbox_oldest_pending_seconds, read on scrape.
type ageGauge struct {
	prometheus.GaugeFunc
	oldest *atomic.Int64
}

func newAgeGauge(oldest *atomic.Int64) *ageGauge {
	return &ageGauge{oldest: oldest, GaugeFunc: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_outbox_oldest_pending_seconds",
		Help: "Age of the oldest outbox event not yet published, as of the relay's last pass (0: none pending).",
	}, func() float64 {
		at := oldest.Load()
		if at == 0 {
			return 0
		}
		return max(time.Since(time.Unix(0, at)).Seconds(), 0)
	})}
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("outbox: register metrics: %w", err)
	}
	return c, nil
}
