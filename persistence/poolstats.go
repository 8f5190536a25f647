package persistence

import "time"

// PoolStats is a snapshot of a store's connection pool, for metrics.
// Counters (Waits, WaitTime) only grow.
type PoolStats struct {
	// InUse and Idle are the open connections lent out and waiting;
	// Max is the pool's limit.
	InUse, Idle, Max int64
	// Waits is how many acquisitions had to wait for a free connection,
	// and WaitTime how long they waited in all.
	Waits    int64
	WaitTime time.Duration
	// TxRetries counts retried transaction attempts by cause (PostgreSQL's
	// kind of serialization failure, CockroachDB's retry reason), and
	// SlowStatements the statements slower than Options.SlowStatement by
	// the store operation that ran them. Nil where the driver has none
	// (SQLite serializes its writers and does not retry).
	TxRetries, SlowStatements map[string]int64
}

// PoolStatser is a Store that reports its pool (both drivers do).
type PoolStatser interface {
	PoolStats() PoolStats
}
