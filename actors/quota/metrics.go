package quota

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
)

// Metrics are the quota actors' Prometheus series.
type Metrics struct {
	decisions *prometheus.CounterVec
	live      prometheus.Gauge
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_quota_decisions_total",
			Help: "Requests decided by quota actors, by outcome (granted, refused, released, unavailable).",
		}, []string{"outcome"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_quota_actors",
			Help: "Quota actors (one per counted key) activated on this node.",
		}),
	}
	if err := actors.Register(reg, m.decisions, m.live); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) decided(msg any, r *Reply) {
	outcome := "granted"
	switch {
	case r.Err != nil:
		outcome = "unavailable"
	case !r.OK:
		outcome = "refused"
	default:
		if _, ok := msg.(*Release); ok {
			outcome = "released"
		}
	}
	m.decisions.WithLabelValues(outcome).Inc()
}
