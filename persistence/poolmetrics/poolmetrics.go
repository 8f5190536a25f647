// Package poolmetrics exports a store's connection pool to Prometheus. It
// is a Collector: the pool is read on each scrape, so the numbers are
// never older than the scrape and nothing runs between scrapes.
package poolmetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/persistence"
)

var (
	inUse    = prometheus.NewDesc("spa_db_pool_acquired_connections", "Database connections lent out now.", nil, nil)
	idle     = prometheus.NewDesc("spa_db_pool_idle_connections", "Open database connections waiting to be lent.", nil, nil)
	maxConns = prometheus.NewDesc("spa_db_pool_max_connections", "The pool's connection limit (0: none).", nil, nil)
	waits    = prometheus.NewDesc("spa_db_pool_waits_total", "Acquisitions that waited for a free connection.", nil, nil)
	waitSecs = prometheus.NewDesc("spa_db_pool_wait_seconds_total", "Time acquisitions spent waiting for a free connection.", nil, nil)
	retries  = prometheus.NewDesc("spa_db_tx_retries_total", "Transaction attempts retried, by cause (rw_dependency, concurrent_update, retry_serializable, retry_write_too_old, ...).", []string{"cause"}, nil)
	slow     = prometheus.NewDesc("spa_db_slow_statements_total", "Statements slower than SPA_DB_SLOW_STATEMENT, by the store operation that ran them (not the SQL).", []string{"query"}, nil)
)

// Collector reads a pool's stats on scrape.
type Collector struct{ src persistence.PoolStatser }

// New returns the collector of src's pool.
func New(src persistence.PoolStatser) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{inUse, idle, maxConns, waits, waitSecs, retries, slow} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.PoolStats()
	ch <- prometheus.MustNewConstMetric(inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(maxConns, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(waits, prometheus.CounterValue, float64(s.Waits))
	ch <- prometheus.MustNewConstMetric(waitSecs, prometheus.CounterValue, s.WaitTime.Seconds())
	for cause, n := range s.TxRetries {
		ch <- prometheus.MustNewConstMetric(retries, prometheus.CounterValue, float64(n), cause)
	}
	for query, n := range s.SlowStatements {
		ch <- prometheus.MustNewConstMetric(slow, prometheus.CounterValue, float64(n), query)
	}
}
