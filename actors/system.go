// Package actors hosts the node's actor system: the single writers
// (schedule, inventory, cart, session and limiter actors) that decide every
// contended claim in memory. This file owns the system's lifecycle and its
// liveness probe; the domain actors live beside it in their own files.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrStopped is returned by Ping once the system has been stopped.
var ErrStopped = errors.New("actors: system stopped")

// System is the node's actor system.
type System struct {
	sys       *actor.ActorSystem
	heartbeat *actor.PID
	stopOnce  sync.Once
	mu        sync.RWMutex
	stopped   bool
}

// ping is the heartbeat actor's only message; it answers with pong.
type ping struct{}
type pong struct{}

// heartbeat proves the dispatcher delivers messages: /readyz asks it.
type heartbeat struct{}

func (heartbeat) Receive(c actor.Context) {
	switch c.Message().(type) {
	case ping:
		c.Respond(pong{})
	}
}

// Start creates the actor system, logging through logger.
func Start(logger *slog.Logger) (*System, error) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With("component", "actors")
	}))
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return heartbeat{} }), "heartbeat")
	if err != nil {
		sys.Shutdown()
		return nil, fmt.Errorf("actors: spawn heartbeat: %w", err)
	}
	return &System{sys: sys, heartbeat: pid}, nil
}

// Root is the context from which the node spawns and messages actors.
func (s *System) Root() *actor.RootContext { return s.sys.Root }

// Ping makes a round trip through the heartbeat actor, bounded by ctx.
func (s *System) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		return ErrStopped
	}
	timeout := time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	res, err := s.sys.Root.RequestFuture(s.heartbeat, ping{}, timeout).Result()
	if err != nil {
		return fmt.Errorf("actors: heartbeat: %w", err)
	}
	if _, ok := res.(pong); !ok {
		return fmt.Errorf("actors: heartbeat answered %T", res)
	}
	return nil
}

// Stop poisons the heartbeat (after its queued messages, as every actor is
// stopped: they finish what they accepted) and shuts the system down.
// Calling it twice is harmless.
func (s *System) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		_ = s.sys.Root.PoisonFuture(s.heartbeat).Wait()
		s.sys.Shutdown()
	})
}

// MailboxDepth is a mailbox middleware that keeps a gauge of the messages
// waiting in the mailboxes it is attached to (all actors of one kind
// together): a sustained rise means those actors cannot keep up.
type MailboxDepth struct{ prometheus.Gauge }

// MailboxStarted is part of actor.MailboxMiddleware.
func (MailboxDepth) MailboxStarted() {}

// MessagePosted counts a message in.
func (m MailboxDepth) MessagePosted(any) { m.Inc() }

// MessageReceived counts a message out (after its handler returned).
func (m MailboxDepth) MessageReceived(any) { m.Dec() }

// MailboxEmpty is part of actor.MailboxMiddleware.
func (MailboxDepth) MailboxEmpty() {}

// Register registers each collector on reg, stopping at the first error:
// the actor kinds' NewMetrics share it.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
