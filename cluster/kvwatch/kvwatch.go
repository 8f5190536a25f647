// Package kvwatch keeps a JetStream KeyValue watch alive (part of cluster/:
// membership and partition follow their buckets through it). A watcher
// can die quietly: its consumer lost with a stream leader, its
// subscription closed under a reconnect. A node that stops seeing its
// bucket keeps acting on a frozen view, so Follow replaces a watcher whose
// channel closed, or that delivered nothing for longer than the bucket's
// writers are known to stay silent (both buckets are rewritten at least
// every TTL/3 while any node lives).
package kvwatch

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/cluster/jsretry"
)

// Config configures Follow.
type Config struct {
	// Open creates a watcher (e.g. kv.WatchAll); it is retried until ctx
	// ends. Required.
	Open func(ctx context.Context) (jetstream.KeyWatcher, error)
	// Silence is how long a watcher may deliver nothing before it is
	// replaced. Required.
	Silence time.Duration
	// Logger receives replacements; nil discards.
	Logger *slog.Logger
}

// Watch is a followed bucket.
type Watch struct {
	cfg      Config
	out      chan jetstream.KeyValueEntry
	current  atomic.Pointer[jetstream.KeyWatcher]
	restarts atomic.Int64
}

// Follow starts following with first (already opened, so the caller can
// report an open failure) and returns at once. Every watcher's entries go
// to Entries in order, including the nil that ends its initial values: a
// replacement replays the bucket's current values, then nil, so a consumer
// must accept that more than once. Entries is closed once ctx ends.
func Follow(ctx context.Context, first jetstream.KeyWatcher, cfg Config) *Watch {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watch{cfg: cfg, out: make(chan jetstream.KeyValueEntry)}
	w.current.Store(&first)
	go w.run(ctx, first)
	return w
}

// Entries delivers the entries.
func (w *Watch) Entries() <-chan jetstream.KeyValueEntry { return w.out }

// Restarts counts replaced watchers.
func (w *Watch) Restarts() int64 { return w.restarts.Load() }

// Current returns the live watcher (tests stop it to simulate a loss).
func (w *Watch) Current() jetstream.KeyWatcher { return *w.current.Load() }

func (w *Watch) run(ctx context.Context, kw jetstream.KeyWatcher) {
	defer close(w.out)
	defer func() { _ = kw.Stop() }()
	silent := time.NewTimer(w.cfg.Silence)
	defer silent.Stop()
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case <-silent.C:
			reason = "silent"
		case e, ok := <-kw.Updates():
			if ok {
				silent.Reset(w.cfg.Silence)
				select {
				case w.out <- e:
				case <-ctx.Done():
					return
				}
				continue
			}
			reason = "closed"
		}
		_ = kw.Stop()
		w.cfg.Logger.Warn("kv watcher replaced", "reason", reason)
		var next jetstream.KeyWatcher
		if err := jsretry.Do(ctx, func(c context.Context) (err error) {
			next, err = w.cfg.Open(ctx)
			return err
		}); err != nil {
			return // ctx ended
		}
		kw = next
		w.current.Store(&next)
		w.restarts.Add(1)
		silent.Reset(w.cfg.Silence)
	}
}
