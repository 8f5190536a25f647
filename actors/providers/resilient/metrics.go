package resilient

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Metrics are the provider-call series, shared by every provider (label
// "provider"). Register once per registry and pass to each New.
type Metrics struct {
	// callers are the Callers made with these metrics, for Health.
	mu      sync.Mutex
	callers []*Caller

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	state    *prometheus.GaugeVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_provider_requests_total",
			Help: "Calls to external providers by provider and outcome (ok, rejected, unavailable, breaker_open, canceled).",
		}, []string{"provider", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spa_provider_request_seconds",
			Help:    "Time of a provider call including its retries, by provider and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"provider", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_provider_retries_total",
			Help: "Retries of provider calls after a transient failure (network, 429, 5xx, timeout).",
		}, []string{"provider"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spa_provider_breaker_state",
			Help: "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.retries, m.state} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// The methods below accept a nil receiver so a Caller works without metrics.

func (m *Metrics) done(provider, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(provider, outcome).Inc()
	m.latency.WithLabelValues(provider, outcome).Observe(d.Seconds())
}

func (m *Metrics) retry(provider string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(provider).Inc()
}

func (m *Metrics) breaker(provider string, s gobreaker.State) {
	if m == nil {
		return
	}
	// gobreaker's states are StateClosed=0, StateHalfOpen=1, StateOpen=2.
	m.state.WithLabelValues(provider).Set(float64(s))
}

// Health is one provider's state for readiness and the ops console.
type Health struct {
	Provider string
	// State is the breaker's: closed, half-open or open.
	State string
	// LastSuccess is when a call last succeeded (zero: never, since start).
	LastSuccess time.Time
}

// Health reports every provider a Caller was made for with m, by name.
// A nil m reports none.
func (m *Metrics) Health() []Health {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	cs := slices.Clone(m.callers)
	m.mu.Unlock()
	out := make([]Health, 0, len(cs))
	for _, c := range cs {
		h := Health{Provider: c.provider, State: c.State()}
		if ns := c.lastSuccess.Load(); ns != 0 {
			h.LastSuccess = time.Unix(0, ns).UTC()
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Health) int { return strings.Compare(a.Provider, b.Provider) })
	return out
}

func (m *Metrics) add(c *Caller) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.callers = append(m.callers, c)
}
