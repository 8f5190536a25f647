package inbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the webhooks' series on the node's registry.
type Metrics struct {
	webhooks *prometheus.CounterVec
}

// NewMetrics registers spa_messaging_webhooks_total with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_messaging_webhooks_total",
		Help: "Bodies posted to the messaging webhooks, by provider (whatsapp, twilio), route (webhook, status, inbound) and outcome (applied, replay, ignored, forged, failed)."},
		[]string{"provider", "route", "outcome"})}
	if err := reg.Register(m.webhooks); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) webhook(provider, route string, out Outcome) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(provider, route, string(out)).Inc()
}
