package payments

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/persistence"
)

// Metrics are the payments' series on the node's registry.
type Metrics struct {
	webhooks   *prometheus.CounterVec
	open       *prometheus.GaugeVec
	oldest     prometheus.Gauge
	reconciled *prometheus.CounterVec
}

// NewMetrics registers the payment metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_payments_webhook_events_total",
			Help: "Events posted to the Wompi webhook, by outcome (applied, replay, forged, orphan, ...)."}, []string{"outcome"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spa_payments_exceptions_open",
			Help: "Payment exceptions waiting for a human, by class."}, []string{"class"}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spa_payments_exception_oldest_seconds",
			Help: "Age of the oldest open payment exception (0: none open)."}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_payments_reconciled_total",
			Help: "What reconciliation passes did: intents checked, changes applied, intents expired, late events applied, failures."},
			[]string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.webhooks, m.open, m.oldest, m.reconciled} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) webhook(out Outcome) {
	if m == nil {
		return
	}
	if out == "" {
		out = OutcomeFailed
	}
	m.webhooks.WithLabelValues(string(out)).Inc()
}

func (m *Metrics) reconcile(r ReconcileResult) {
	if m == nil {
		return
	}
	for k, v := range map[string]int{"checked": r.Checked, "applied": r.Applied, "expired": r.Expired, "events": r.Events, "failures": r.Failures} {
		m.reconciled.WithLabelValues(k).Add(float64(v))
	}
}

func (m *Metrics) exceptions(stats []persistence.ExceptionStat, now time.Time) {
	if m == nil {
		return
	}
	var oldest time.Time
	for _, st := range stats {
		m.open.WithLabelValues(string(st.Class)).Set(float64(st.Open))
		if st.Open > 0 && (oldest.IsZero() || st.OldestOpenAt.Before(oldest)) {
			oldest = st.OldestOpenAt
		}
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, now.Sub(oldest).Seconds())
	}
	m.oldest.Set(age)
}

// refreshMetrics reads the open exceptions into the gauges.
func (s *Service) refreshMetrics(ctx context.Context) {
	if s.d.Metrics == nil {
		return
	}
	var stats []persistence.ExceptionStat
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		stats, err = tx.PaymentExceptionStats(ctx)
		return err
	})
	if err != nil {
		s.d.Log.Warn("payment exception metrics not refreshed", "err", err)
		return
	}
	s.d.Metrics.exceptions(stats, s.now())
}

// RefreshMetrics reads the open exceptions into the gauges (after a
// resolve, at start).
func (s *Service) RefreshMetrics(ctx context.Context) { s.refreshMetrics(ctx) }
