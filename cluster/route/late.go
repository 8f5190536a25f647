package route

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/spa-engine/spa/cluster/forward"
)

// Late is a kind's Local that exists only after the router: the session
// directory starts after the node joined the cluster. Until Set, a request
// is answered UNAVAILABLE (a forwarding sender retries it) and there is
// nothing to retire.
type Late struct {
	Kind string // names the kind in the UNAVAILABLE answer
	l    atomic.Pointer[Local]
}

// Set makes l the Local from now on.
func (k *Late) Set(l Local) { k.l.Store(&l) }

func (k *Late) local() Local {
	if p := k.l.Load(); p != nil {
		return *p
	}
	return nil
}

// Ask asks the Local once set; before, it answers UNAVAILABLE.
func (k *Late) Ask(ctx context.Context, id string, msg any) (any, error) {
	l := k.local()
	if l == nil {
		return nil, &forward.Error{Code: forward.ErrUnavailable.Code, Message: k.Kind + " actors not started yet"}
	}
	return l.Ask(ctx, id, msg)
}

// Invalidate retires id's activation once the Local is set.
func (k *Late) Invalidate(id string) {
	if l := k.local(); l != nil {
		l.Invalidate(id)
	}
}

// InvalidateWhere retires matching activations once the Local is set.
func (k *Late) InvalidateWhere(match func(id string) bool) {
	if l := k.local(); l != nil {
		l.InvalidateWhere(match)
	}
}

// Live counts the Local's activations; 0 before it is set.
func (k *Late) Live() int {
	if l := k.local(); l != nil {
		return l.Live()
	}
	return 0
}

// Teller is a kind's directory that can also send a notice without
// waiting (actors/directory.Directory).
type Teller interface {
	Ask(ctx context.Context, id string, msg any) (any, error)
	Tell(id string, msg any)
}

// Switch is the door to a kind for callers that start before the router
// (the cart actors reach the inventory through one): the local directory
// until Use attaches the router, the router afterwards. Its Tell sends a
// notice without making the caller wait on another node.
type Switch struct {
	r       atomic.Pointer[Router]
	local   Teller // until the router exists
	log     *slog.Logger
	timeout time.Duration
}

// NewSwitch returns a Switch over local; timeout bounds a notice's
// delivery through the router, log receives its failures (nil discards).
func NewSwitch(local Teller, timeout time.Duration, log *slog.Logger) *Switch {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Switch{local: local, log: log, timeout: timeout}
}

// Use routes every later request through r.
func (s *Switch) Use(r *Router) { s.r.Store(r) }

// Ask asks the actor id through the router once attached, else locally.
func (s *Switch) Ask(ctx context.Context, id string, msg any) (any, error) {
	if r := s.r.Load(); r != nil {
		return r.Ask(ctx, id, msg)
	}
	return s.local.Ask(ctx, id, msg)
}

// Tell sends a notice (Consumed after a checkout) without making the
// caller wait: through the router, a goroutine asks the owner and drops
// the reply, as a local Tell would; before, the directory's own Tell. A
// late or lost notice must be harmless to its receiver (an inventory
// actor: the checkout's transaction already consumed the reservations in
// the store, whose reservation SQL re-checks stock, and its next
// activation loads them as consumed).
func (s *Switch) Tell(id string, msg any) {
	r := s.r.Load()
	if r == nil {
		s.local.Tell(id, msg)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		if _, err := r.Ask(ctx, id, msg); err != nil {
			s.log.Warn("notice not delivered to the owner", "kind", r.cfg.Kind, "id", id, "msg", fmt.Sprintf("%T", msg), "err", err)
		}
	}()
}
