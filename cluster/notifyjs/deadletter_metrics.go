package notifyjs

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DeadLetterMetrics reports the dead-letter queue on scrape, by kind and
// channel only (no recipient, user or notification id ever becomes a
// label):
//
//	spa_notification_dead_letters{kind,channel}              letters parked
//	spa_notification_dead_letter_oldest_seconds{kind,channel} age of the oldest
//
// The queue is the cluster's, so every node reports the same values
// (aggregate with max, not sum). A scrape that cannot read the stream
// reports nothing rather than zeros.
type DeadLetterMetrics struct {
	q     *DeadLetters
	log   *slog.Logger
	now   func() time.Time
	depth *prometheus.Desc
	age   *prometheus.Desc
}

// NewDeadLetterMetrics is the collector over q (log: where a failed read
// goes; nil discards).
func NewDeadLetterMetrics(q *DeadLetters, log *slog.Logger) *DeadLetterMetrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DeadLetterMetrics{q: q, log: log, now: time.Now,
		depth: prometheus.NewDesc("spa_notification_dead_letters",
			"Notifications parked in the dead-letter queue, waiting for an admin's retry or discard.", []string{"kind", "channel"}, nil),
		age: prometheus.NewDesc("spa_notification_dead_letter_oldest_seconds",
			"Age of the oldest parked notification.", []string{"kind", "channel"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *DeadLetterMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.depth
	ch <- m.age
}

// Collect implements prometheus.Collector.
func (m *DeadLetterMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depths, err := m.q.Depths(ctx)
	if err != nil {
		m.log.Warn("dead-letter metrics not read", "err", err)
		return
	}
	now := m.now()
	for _, d := range depths {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(d.Count), d.Kind, d.Channel)
		age := 0.0
		if !d.Oldest.IsZero() {
			age = max(0, now.Sub(d.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, age, d.Kind, d.Channel)
	}
}
