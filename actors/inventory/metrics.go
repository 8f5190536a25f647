package inventory

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
)

// Metrics are the inventory actors' Prometheus series.
type Metrics struct {
	reservations *prometheus.CounterVec
	stockOuts    prometheus.Counter
	lowStock     prometheus.Counter
	live         prometheus.Gauge
	fenced       prometheus.Counter
	mailbox      actors.MailboxDepth
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_inventory_reservations_total",
			Help: "Reservation requests by outcome (granted, out_of_stock, expired, invalid, fenced, write_failed).",
		}, []string{"outcome"}),
		stockOuts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_inventory_stockouts_total",
			Help: "Times a variant's available stock reached zero.",
		}),
		lowStock: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_inventory_low_stock_events_total",
			Help: "Low-stock events emitted: available stock crossed a variant's threshold downwards.",
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_inventory_actors",
			Help: "Inventory actors activated on this node.",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_inventory_fenced_writes_total",
			Help: "Inventory group commits refused because a newer activation owns the variant.",
		}),
		mailbox: actors.MailboxDepth{Gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spa_inventory_mailbox_messages",
			Help: "Messages waiting in the mailboxes of this node's inventory actors.",
		})},
	}
	if err := actors.Register(reg, m.reservations, m.stockOuts, m.lowStock, m.live, m.fenced, m.mailbox); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) reserved(outcome string) { m.reservations.WithLabelValues(outcome).Inc() }
