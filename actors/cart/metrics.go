package cart

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
)

// Metrics are the cart actors' Prometheus series.
type Metrics struct {
	expiries        prometheus.Counter
	checkoutSeconds prometheus.Histogram
	checkoutErrors  *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		expiries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "spa_cart_expiries_total",
			Help: "Carts closed because they were left past their TTL.",
		}),
		checkoutSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spa_cart_checkout_duration_seconds",
			Help:    "Time to check a cart out, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}),
		checkoutErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_cart_checkout_errors_total",
			Help: "Failed checkouts by reason (lapsed, empty, closed, invalid, not_found, sign_in, retry).",
		}, []string{"reason"}),
	}
	if err := actors.Register(reg, m.expiries, m.checkoutSeconds, m.checkoutErrors); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) checkedOut(err error, took time.Duration) {
	m.checkoutSeconds.Observe(took.Seconds())
	if err == nil {
		return
	}
	reason := "retry"
	for _, r := range []struct {
		err  error
		name string
	}{{ErrReservationLapsed, "lapsed"}, {ErrEmpty, "empty"}, {ErrClosed, "closed"}, {ErrInvalid, "invalid"},
		{ErrNotFound, "not_found"}, {ErrSignInRequired, "sign_in"}} {
		if errors.Is(err, r.err) {
			reason = r.name
			break
		}
	}
	m.checkoutErrors.WithLabelValues(reason).Inc()
}
