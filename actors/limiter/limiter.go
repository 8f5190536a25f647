// Package limiter caps how often something may happen per key and in
// total, with actors instead of a shared counter store: one window actor
// per key (an IP address), activated on demand by a Directory and
// passivated when idle, and a global budget split over N shard actors, each
// the single writer of its share. A request takes one unit from its key's
// actor and then from a shard, trying the other shards when its first is
// spent, so the global total never exceeds the budget and no one shard
// becomes a bottleneck.
//
// The OTP endpoint uses it to cap code sends per IP and in total (SMS cost
// and toll fraud). Counters live in memory: a restart forgets at most one
// window of sends, while the per-phone limits, which matter for brute
// force, are persisted by the session actors.
package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/directory"
)

// ErrLimited is wrapped by *LimitedError.
var ErrLimited = errors.New("limiter: limit reached")

// ErrUnavailable: the limiter could not answer (node shutting down, actor
// timeout). Callers fail closed.
var ErrUnavailable = errors.New("limiter: unavailable")

// LimitedError says which limit refused and when to retry.
type LimitedError struct {
	Scope      string // "ip" or "global"
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("limiter: %s limit reached (retry after %s)", e.Scope, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrLimited) hold.
func (e *LimitedError) Unwrap() error { return ErrLimited }

// Window is Limit events per Per, sliding.
type Window struct {
	Limit int
	Per   time.Duration
}

// Config tunes a Limiter.
type Config struct {
	Name      string // actor name prefix, unique on the node ("otp")
	PerKey    Window // per key (IP)
	Global    Window // in total on this node, split over Shards
	Shards    int    // default 8; at most Global.Limit
	IdleAfter time.Duration
	Timeout   time.Duration // bound on one Allow when ctx has none (2s)
	Now       func() time.Time
}

// take asks a window actor for one unit.
type take struct{}

// taken answers take: ok, or when the oldest unit in the window frees.
type taken struct {
	ok         bool
	retryAfter time.Duration
}

// windowActor is the single writer of one sliding window.
type windowActor struct {
	key    string
	w      Window
	now    func() time.Time
	grants []time.Time // ascending, at most w.Limit, all inside the window
	idle   time.Duration
}

func (a *windowActor) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Started:
		if a.idle > 0 {
			c.SetReceiveTimeout(a.idle)
		}
	case *actor.ReceiveTimeout:
		// Idle for at least a window: every grant has expired, so
		// passivating loses nothing.
		directory.Retire(c, a.key)
	case directory.Stop:
		c.Stop(c.Self())
	case take:
		c.Respond(a.take())
	}
}

func (a *windowActor) take() taken {
	now := a.now()
	i := 0
	for i < len(a.grants) && !now.Before(a.grants[i].Add(a.w.Per)) {
		i++
	}
	a.grants = a.grants[i:]
	if len(a.grants) >= a.w.Limit {
		return taken{retryAfter: a.grants[0].Add(a.w.Per).Sub(now)}
	}
	a.grants = append(a.grants, now)
	return taken{ok: true}
}

// Limiter is the handle to a per-key directory and the global shards.
type Limiter struct {
	root    *actor.RootContext
	keys    *directory.Directory
	shards  []*actor.PID
	next    atomic.Uint64
	timeout time.Duration
	refused *prometheus.CounterVec
}

// New spawns the limiter's actors on root and registers its metric on reg.
func New(root *actor.RootContext, cfg Config, reg prometheus.Registerer) (*Limiter, error) {
	if cfg.Name == "" || cfg.PerKey.Limit < 1 || cfg.PerKey.Per <= 0 || cfg.Global.Limit < 1 || cfg.Global.Per <= 0 {
		return nil, errors.New("limiter: Name and positive PerKey and Global windows are required")
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 8
	}
	cfg.Shards = min(cfg.Shards, cfg.Global.Limit)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.IdleAfter = max(cfg.IdleAfter, cfg.PerKey.Per)
	l := &Limiter{root: root, timeout: cfg.Timeout,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "spa_limiter_refused_total",
			Help:        "Requests refused by a limiter, by scope (ip, global).",
			ConstLabels: prometheus.Labels{"limiter": cfg.Name},
		}, []string{"scope"})}
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			return nil, err
		}
	}
	keys, err := directory.New(root, directory.Config{
		Name: cfg.Name + "-keys",
		Spawn: func(key string) actor.Producer {
			return func() actor.Actor { return &windowActor{key: key, w: cfg.PerKey, now: cfg.Now, idle: cfg.IdleAfter} }
		},
		Refuse:      func(any, error) any { return taken{} },
		ErrShutdown: ErrUnavailable,
		Timeout:     cfg.Timeout,
	})
	if err != nil {
		return nil, err
	}
	l.keys = keys
	for i := range cfg.Shards {
		// Each shard holds an equal share; the first ones take the
		// remainder, so the shares add up to the budget exactly.
		share := cfg.Global.Limit / cfg.Shards
		if i < cfg.Global.Limit%cfg.Shards {
			share++
		}
		w := Window{Limit: share, Per: cfg.Global.Per}
		pid, err := root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
			return &windowActor{w: w, now: cfg.Now}
		}), fmt.Sprintf("%s-global-%d", cfg.Name, i))
		if err != nil {
			l.Stop()
			return nil, err
		}
		l.shards = append(l.shards, pid)
	}
	return l, nil
}

// Allow takes one unit for key and one from the global budget. It returns
// nil, a *LimitedError, or an error wrapping ErrUnavailable.
func (l *Limiter) Allow(ctx context.Context, key string) error {
	timeout := l.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return fmt.Errorf("%w: %w", ErrUnavailable, context.DeadlineExceeded)
	}
	ask := func(res any, err error) (taken, error) {
		if err != nil {
			return taken{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		t, ok := res.(taken)
		if !ok {
			return taken{}, fmt.Errorf("%w: unexpected reply %T", ErrUnavailable, res)
		}
		return t, nil
	}
	t, err := ask(l.keys.Ask(ctx, key, take{}))
	if err != nil {
		return err
	}
	if !t.ok {
		if t.retryAfter == 0 { // refused during shutdown
			return ErrUnavailable
		}
		l.refused.WithLabelValues("ip").Inc()
		return &LimitedError{Scope: "ip", RetryAfter: t.retryAfter}
	}
	if len(l.shards) == 0 { // stopped
		return ErrUnavailable
	}
	first := int(l.next.Add(1) % uint64(len(l.shards)))
	soonest := time.Duration(-1)
	for i := range l.shards {
		pid := l.shards[(first+i)%len(l.shards)]
		t, err := ask(l.root.RequestFuture(pid, take{}, timeout).Result())
		if err != nil {
			return err
		}
		if t.ok {
			return nil
		}
		if soonest < 0 || t.retryAfter < soonest {
			soonest = t.retryAfter
		}
	}
	l.refused.WithLabelValues("global").Inc()
	return &LimitedError{Scope: "global", RetryAfter: soonest}
}

// Stop stops the actors; calling it twice is harmless.
func (l *Limiter) Stop() {
	if l.keys != nil {
		l.keys.Stop(l.timeout)
	}
	for _, pid := range l.shards {
		_ = l.root.PoisonFuture(pid).Wait()
	}
	l.shards = nil
}
