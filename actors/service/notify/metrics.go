package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

// Metrics are the notifications' delivery series (docs/notifications.md,
// Metrics), by channel and kind only: no phone numbers, addresses or ids
// in labels. The delivery rate of a channel is delivered over sent.
type Metrics struct {
	sends, deliveries, failures, fallbacks *prometheus.CounterVec
}

// Why a message failed on a channel (the reason label of
// spa_notifications_failed_total).
const (
	FailedRejected = "rejected"  // the provider refused it when sent
	FailedDead     = "dead"      // transient failures outlasted the retries
	FailedStatus   = "status"    // the provider reported it failed
	FailedNoStatus = "no_status" // no delivery status within the kind's window
	// FailedUnavailable: a login code the provider could not take now
	// (it is not retried later: the next channel takes it at once).
	FailedUnavailable = "unavailable"
)

// NewMetrics registers the spa_notifications_* counters with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_notifications_sent_total",
			Help: "Messages a provider accepted, by channel and kind."}, []string{"channel", "kind"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_notifications_delivered_total",
			Help: "Messages the provider reported delivered or read (once each), by channel and kind."}, []string{"channel", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_notifications_failed_total",
			Help: "Messages that failed on a channel, by channel, kind and reason (rejected, dead, status, no_status, unavailable)."},
			[]string{"channel", "kind", "reason"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_notifications_fallbacks_total",
			Help: "Messages that went on to a next channel, by the channel they fell back to, the one they left (from) and kind."},
			[]string{"channel", "from", "kind"}),
	}
	for _, c := range []*prometheus.CounterVec{m.sends, m.deliveries, m.failures, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sendOutcome counts what a provider call recorded on n.
func (m *Metrics) sendOutcome(n persistence.Notification) {
	switch n.Status {
	case persistence.NotificationSent:
		if m != nil {
			m.sends.WithLabelValues(n.Channel, n.Kind).Inc()
		}
	case persistence.NotificationFailed:
		m.failed(n, FailedRejected)
	case persistence.NotificationDead:
		m.failed(n, FailedDead)
	}
}

func (m *Metrics) delivered(n persistence.Notification) {
	if m != nil {
		m.deliveries.WithLabelValues(n.Channel, n.Kind).Inc()
	}
}

func (m *Metrics) failed(n persistence.Notification, reason string) {
	if m != nil {
		m.failures.WithLabelValues(n.Channel, n.Kind, reason).Inc()
	}
}

func (m *Metrics) fallback(kind Kind, from, to string) {
	if m != nil {
		m.fallbacks.WithLabelValues(to, from, string(kind)).Inc()
	}
}

// loginSent and loginFailed count a login code, which has no row.
func (m *Metrics) loginSent(ch sender.Channel) {
	if m != nil {
		m.sends.WithLabelValues(string(ch), string(KindLoginCode)).Inc()
	}
}

func (m *Metrics) loginFailed(ch sender.Channel, reason string) {
	if m != nil {
		m.failures.WithLabelValues(string(ch), string(KindLoginCode), reason).Inc()
	}
}
