package resource

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
)

// Metrics are the resource actors' Prometheus series.
type Metrics struct {
	decisions *prometheus.CounterVec
	live      prometheus.Gauge
	fenced    prometheus.Counter
	mailbox   actors.MailboxDepth
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_resource_decisions_total",
			Help: "Resource actor decisions by kind (claim, release, track) and outcome (ok, full, overbooked, fenced, write_failed).",
		}, []string{"kind", "outcome"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_resource_actors",
			Help: "Resource actors activated on this node.",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_resource_fenced_writes_total",
			Help: "Resource group commits refused because a newer activation owns the calendar.",
		}),
		mailbox: actors.MailboxDepth{Gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_resource_mailbox_messages",
			Help: "Messages waiting in the mailboxes of this node's resource actors.",
		})},
	}
	if err := actors.Register(reg, m.decisions, m.live, m.fenced, m.mailbox); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) decided(kind, outcome string) { m.decisions.WithLabelValues(kind, outcome).Inc() }
