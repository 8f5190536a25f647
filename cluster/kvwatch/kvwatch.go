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
	// Open creates a watcher (e.g. kv.WatchAll) living as long as the
	// context it is given; a try unanswered within jsretry.Try is
	// cancelled, and tries repeat until ctx ends (see the function Open).
	// Required.
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
	stop := func() {} // ends the current watcher's context (none for first)
	defer func() { _ = kw.Stop(); stop() }()
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
		stop()
		w.cfg.Logger.Warn("kv watcher replaced", "reason", reason)
		next, cancel, err := Open(ctx, ctx, w.cfg.Open)
		if err != nil {
			return // ctx ended
		}
		kw, stop = next, cancel
		w.current.Store(&next)
		w.restarts.Add(1)
		silent.Reset(w.cfg.Silence)
	}
}

// Open opens a watcher with open, retrying until ctx ends, and returns
// it with the cancel function that ends it. The context given to open also
// bounds the watcher's life (nats.go ties the subscription to it), so it
// cannot carry a try's deadline: each watcher gets a context of its own
// under life, and a try that does not return within jsretry.Try (a
// consumer request nobody answers while a stream elects its leader) is
// cancelled and retried instead of waiting for good.
func Open(ctx, life context.Context, open func(context.Context) (jetstream.KeyWatcher, error)) (jetstream.KeyWatcher, context.CancelFunc, error) {
	type opened struct {
		kw  jetstream.KeyWatcher
		err error
	}
	var kw jetstream.KeyWatcher
	var stop context.CancelFunc
	err := jsretry.Do(ctx, func(try context.Context) error {
		wctx, cancel := context.WithCancel(life)
		done := make(chan opened, 1)
		go func() {
			k, err := open(wctx)
			done <- opened{k, err}
		}()
		select {
		case o := <-done:
			if o.err != nil {
				cancel()
				return o.err
			}
			kw, stop = o.kw, cancel
			return nil
		case <-try.Done():
			cancel()
			go func() { // a watcher opened after all is not used
				if o := <-done; o.err == nil && o.kw != nil {
					_ = o.kw.Stop()
				}
			}()
			return try.Err()
		}
	})
	return kw, stop, err
}
