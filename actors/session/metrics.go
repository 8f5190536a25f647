package session

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
)

// Metrics are the session actors' Prometheus series.
type Metrics struct {
	requests      *prometheus.CounterVec
	verifications *prometheus.CounterVec
	lockouts      prometheus.Counter
	live          prometheus.Gauge
	conversations prometheus.Gauge
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_otp_requests_total",
			Help: "Login-code requests decided by session actors, by outcome (sent, rate_limited, locked, delivery_failed, unavailable).",
		}, []string{"outcome"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_otp_verifications_total",
			Help: "Login-code checks decided by session actors, by outcome (ok, wrong, expired, used, locked, unavailable).",
		}, []string{"outcome"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_otp_lockouts_total",
			Help: "Phones locked out after too many wrong codes.",
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_session_actors",
			Help: "Session actors (one per phone) activated on this node.",
		}),
		conversations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_bot_conversations_active",
			Help: "WhatsApp conversations held by this node's session actors: phones that wrote (or a person answered) within the passivation window.",
		}),
	}
	if err := actors.Register(reg, m.requests, m.verifications, m.lockouts, m.live, m.conversations); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) request(outcome string)      { m.requests.WithLabelValues(outcome).Inc() }
func (m *Metrics) verification(outcome string) { m.verifications.WithLabelValues(outcome).Inc() }
