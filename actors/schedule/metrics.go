package schedule

import (
	"sync"
	"time"

	"github.com/spa-engine/spa/actors"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the schedule actors' Prometheus series.
type Metrics struct {
	claims       *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	batchSize    prometheus.Histogram
	availability prometheus.Histogram
	live         prometheus.Gauge
	fenced       prometheus.Counter
	mailbox      actors.MailboxDepth
	// memoHits and memoMisses count the actor's memo lookups (cache.go),
	// resolved once: the lookup is on the hot path of every claim.
	memoHits, memoMisses prometheus.Counter

	// The series of each (kind, outcome) once looked up: a hot calendar
	// counts a refusal per claim, and the vectors hash and compare their
	// labels on every lookup.
	seriesMu sync.RWMutex
	series   map[[2]string]claimSeries
}

type claimSeries struct {
	count prometheus.Counter
	took  prometheus.Observer
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_schedule_decisions_total",
			Help: "Calendar changes decided by schedule actors, by kind (hold, confirm, cancel, ...) and outcome (ok, slot_taken, fenced, write_failed).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spa_schedule_decision_seconds",
			Help:    "Time from a change reaching its schedule actor to its answer (after commit for accepted ones).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12),
		}, []string{"kind", "outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spa_schedule_batch_size",
			Help:    "Changes written per group-commit transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		availability: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spa_availability_compute_seconds",
			Help:    "Time to compute one staff member's slots in memory.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2.5, 12),
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_schedule_actors",
			Help: "Schedule actors activated on this node.",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_schedule_fenced_writes_total",
			Help: "Group commits refused because a newer activation owns the calendar.",
		}),
		mailbox: actors.MailboxDepth{Gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_schedule_mailbox_messages",
			Help: "Messages waiting in the mailboxes of this node's schedule actors.",
		})},
	}
	memo := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_schedule_memo_lookups_total",
		Help: "Schedule actors' memo lookups of computed slots and free starts, by result (hit, miss): misses compute from the calendar.",
	}, []string{"result"})
	m.memoHits, m.memoMisses = memo.WithLabelValues("hit"), memo.WithLabelValues("miss")
	if err := actors.Register(reg, m.claims, m.latency, m.batchSize, m.availability, m.live, m.fenced, m.mailbox, memo); err != nil {
		return nil, err
	}
	return m, nil
}

// memoLookup counts one memo lookup (m may be nil in tests).
func (m *Metrics) memoLookup(hit bool) {
	switch {
	case m == nil:
	case hit:
		m.memoHits.Inc()
	default:
		m.memoMisses.Inc()
	}
}

func (m *Metrics) claim(kind, outcome string, began time.Time) {
	s := m.claimSeries(kind, outcome)
	s.count.Inc()
	s.took.Observe(time.Since(began).Seconds())
}

func (m *Metrics) claimSeries(kind, outcome string) claimSeries {
	k := [2]string{kind, outcome}
	m.seriesMu.RLock()
	s, ok := m.series[k]
	m.seriesMu.RUnlock()
	if ok {
		return s
	}
	s = claimSeries{m.claims.WithLabelValues(kind, outcome), m.latency.WithLabelValues(kind, outcome)}
	m.seriesMu.Lock()
	if m.series == nil {
		m.series = map[[2]string]claimSeries{}
	}
	m.series[k] = s
	m.seriesMu.Unlock()
	return s
}

func newID() string { return ulid.Make().String() }
