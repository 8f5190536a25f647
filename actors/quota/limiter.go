package quota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/limiter"
)

// LimiterConfig tunes a Limiter.
type LimiterConfig struct {
	Name   string         // key prefix and metric label, unique per limit ("otp")
	PerKey limiter.Window // per key (an IP address or an IPv6 /64)
	Global limiter.Window // in total across the cluster, split over Shards
	Shards int            // default 8; at most Global.Limit
}

// Limiter caps how often something may happen per key and in total, for
// the whole cluster and across restarts: the per-key window is the quota
// actor of "<name>/ip/<key>", and the global budget is split over Shards
// quota actors "<name>/global/<i>", each placed by partition like any
// other key, so the shards spread over the nodes and the budget holds for
// the cluster, not per node. A request takes one unit from its key, then
// one from a shard (starting from a rotating one, trying the others when
// it is spent), so the total never exceeds the budget and no one shard is
// every request's bottleneck. It implements identity.Limiter, in place of
// the node-local limiter.Limiter.
type Limiter struct {
	quota   *Client
	cfg     LimiterConfig
	shares  []int64
	next    atomic.Uint64
	refused *prometheus.CounterVec
}

// NewLimiter returns a Limiter over q and registers its metric on reg.
func NewLimiter(q *Client, cfg LimiterConfig, reg prometheus.Registerer) (*Limiter, error) {
	if q == nil || cfg.Name == "" || cfg.PerKey.Limit < 1 || cfg.PerKey.Per <= 0 || cfg.Global.Limit < 1 || cfg.Global.Per <= 0 {
		return nil, errors.New("quota: a client, Name and positive PerKey and Global windows are required")
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 8
	}
	cfg.Shards = min(cfg.Shards, cfg.Global.Limit)
	l := &Limiter{quota: q, cfg: cfg,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "spa_limiter_refused_total",
			Help:        "Requests refused by a limiter, by scope (ip, global).",
			ConstLabels: prometheus.Labels{"limiter": cfg.Name},
		}, []string{"scope"})}
	for i := range cfg.Shards {
		// Equal shares, the first ones taking the remainder, so the
		// shares add up to the budget exactly.
		share := cfg.Global.Limit / cfg.Shards
		if i < cfg.Global.Limit%cfg.Shards {
			share++
		}
		l.shares = append(l.shares, int64(share))
	}
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// KeyOf is the quota key of key's window under limit name.
func KeyOf(name, key string) string { return name + "/ip/" + key }

// ShardKey is the quota key of a global shard of limit name.
func ShardKey(name string, shard int) string { return name + "/global/" + strconv.Itoa(shard) }

// Allow takes one unit for key and one from the global budget. It returns
// nil, a *limiter.LimitedError, or an error wrapping
// limiter.ErrUnavailable (callers fail closed).
func (l *Limiter) Allow(ctx context.Context, key string) error {
	r := l.quota.Take(ctx, KeyOf(l.cfg.Name, key), &Take{Units: 1, Limit: int64(l.cfg.PerKey.Limit), TTL: l.cfg.PerKey.Per})
	switch {
	case r.Err != nil:
		return fmt.Errorf("%w: %w", limiter.ErrUnavailable, r.Err)
	case !r.OK:
		l.refused.WithLabelValues("ip").Inc()
		return &limiter.LimitedError{Scope: "ip", RetryAfter: r.RetryAfter}
	}
	n := len(l.shares)
	first := int(l.next.Add(1) % uint64(n))
	soonest := time.Duration(-1)
	for i := range n {
		s := (first + i) % n
		r := l.quota.Take(ctx, ShardKey(l.cfg.Name, s), &Take{Units: 1, Limit: l.shares[s], TTL: l.cfg.Global.Per})
		switch {
		case r.Err != nil:
			return fmt.Errorf("%w: %w", limiter.ErrUnavailable, r.Err)
		case r.OK:
			return nil
		}
		if soonest < 0 || r.RetryAfter < soonest {
			soonest = r.RetryAfter
		}
	}
	l.refused.WithLabelValues("global").Inc()
	return &limiter.LimitedError{Scope: "global", RetryAfter: soonest}
}
