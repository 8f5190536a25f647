// Package route is the cluster's door to one kind of placed actor
// (schedule actors per staff member, resource actors per room, inventory
// actors per shop variant, cart actors per cart, session actors per phone
// key): it places each actor id in a partition by a stable hash of its
// placement key, asks the local directory when this node holds the
// partition, and otherwise forwards the request to the owner (part of
// cluster/: it joins partition, forward and the wire codecs (calwire,
// shopwire, sessionwire) to the actor directories).
//
// A Router also follows the partition hooks of its node: on acquisition
// the partition starts serving; on release it stops taking new requests,
// waits (bounded) for the ones in flight, then retires every activation of
// the partition once its writes are done, before the manager deletes the
// lease. Safety never rests on that drain: an activation on the next owner
// takes a new calendar epoch in the database (calendars) or meets the
// version checks of its rows (inventory, carts, sessions), which fence
// every write of the old one.
package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/cluster/forward"
	"github.com/spa-engine/spa/cluster/partition"
)

// Local is the node's directory of one actor kind (actors/directory).
type Local interface {
	Ask(ctx context.Context, id string, msg any) (any, error)
	Invalidate(id string)
	// InvalidateWhere retires the activations whose id match reports true.
	InvalidateWhere(match func(id string) bool)
	// Live returns how many activations the node hosts.
	Live() int
}

// Placement answers which partition holds what; *partition.Manager
// implements it.
type Placement interface {
	PartitionOf(key string) int
	Holds(p int) (epoch uint64, ok bool)
}

// Sender forwards a request to a partition's owner; *forward.Forwarder
// implements it.
type Sender interface {
	Request(ctx context.Context, p int, idempotencyKey string, msg proto.Message) (proto.Message, error)
}

// Invalidate asks the owner to retire an actor's activation (Local.Invalidate)
// so that its next request loads it afresh. Router.Invalidate sends it; a
// codec that supports it encodes it, and *Invalidated as its reply.
type Invalidate struct{}

// Invalidated answers Invalidate.
type Invalidated struct{}

// Codec converts one actor kind's messages to and from protobuf.
type Codec struct {
	// Key maps an actor id to its placement key ("staff/<id>",
	// "inventory/<variant>").
	Key func(id string) string
	// Request encodes msg for actor id; DecodeRequest reverses it.
	Request       func(id string, msg any) (proto.Message, error)
	DecodeRequest func(m proto.Message) (id string, msg any, err error)
	// Reply encodes an actor's reply; DecodeReply reverses it.
	Reply       func(reply any) (proto.Message, error)
	DecodeReply func(m proto.Message) (any, error)
	// IdempotencyKey names a request stably across retries; "" declares it
	// unsafe to apply twice, so a timed-out try is not resent (see
	// forward.Request).
	IdempotencyKey func(msg any) string
	// Example is the request message type, for the forward handler.
	Example proto.Message
}

// Config configures a Router.
type Config struct {
	// Kind names the actor kind in metrics ("schedule", "resource",
	// "inventory", "cart", "session").
	Kind      string
	Local     Local
	Placement Placement
	Codec     Codec
	// DrainTimeout bounds the wait for requests in flight on release.
	DrainTimeout time.Duration
	Metrics      *Metrics
	// ServeAll serves every partition locally, leases or not: a test hook
	// that forces split ownership (two nodes deciding for one actor),
	// which the database's fences must make harmless.
	ServeAll bool
	// InvalidateTimeout bounds the delivery of a forwarded Invalidate
	// (default 10s); Logger receives its failures (nil discards).
	InvalidateTimeout time.Duration
	Logger            *slog.Logger
}

// Router routes requests for one actor kind. Its methods are safe for
// concurrent use.
type Router struct {
	cfg    Config
	sender Sender

	mu    sync.Mutex
	parts map[int]*served
}

// served is a partition this node serves.
type served struct {
	epoch    uint64
	draining bool
	inflight sync.WaitGroup
}

// New returns a Router; call Attach with the forwarder before serving.
func New(cfg Config) *Router {
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 2 * time.Second
	}
	if cfg.InvalidateTimeout <= 0 {
		cfg.InvalidateTimeout = forward.DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{cfg: cfg, parts: map[int]*served{}}
}

// Attach sets the forwarder and registers the kind's handler on it.
func (r *Router) Attach(f *forward.Forwarder) {
	r.sender = f
	f.Handle(r.cfg.Codec.Example, r.handle)
}

// Partition returns the partition of actor id.
func (r *Router) Partition(id string) int {
	return r.cfg.Placement.PartitionOf(r.cfg.Codec.Key(id))
}

// Ask sends msg to the actor id wherever its partition lives and returns
// its reply (a door.Door, which each kind's typed client wraps).
func (r *Router) Ask(ctx context.Context, id string, msg any) (any, error) {
	p := r.Partition(id)
	if s := r.enter(p, id); s != nil {
		defer s.inflight.Done()
		if _, ok := msg.(*Invalidate); ok {
			r.cfg.Local.Invalidate(id)
			return &Invalidated{}, nil
		}
		began := time.Now()
		out, err := r.cfg.Local.Ask(ctx, id, msg)
		r.cfg.Metrics.observe(r.cfg.Kind, "local", err, began)
		return out, err
	}
	if r.sender == nil {
		return nil, fmt.Errorf("route %s: partition %d is not local and no forwarder is attached", r.cfg.Kind, p)
	}
	req, err := r.cfg.Codec.Request(id, msg)
	if err != nil {
		return nil, err
	}
	key := ""
	if _, ok := msg.(*Invalidate); ok {
		key = "invalidate" // retiring twice is harmless
	} else if r.cfg.Codec.IdempotencyKey != nil {
		key = r.cfg.Codec.IdempotencyKey(msg)
	}
	began := time.Now()
	out, err := r.sender.Request(ctx, p, key, req)
	r.cfg.Metrics.observe(r.cfg.Kind, "forwarded", err, began)
	if err != nil {
		return nil, fmt.Errorf("route %s %s: %w", r.cfg.Kind, id, err)
	}
	if out == nil {
		return nil, fmt.Errorf("route %s %s: empty reply", r.cfg.Kind, id)
	}
	return r.cfg.Codec.DecodeReply(out)
}

// A Router answers snapshot reads at once and tells where actors live.
var (
	_ door.Now   = (*Router)(nil)
	_ door.Local = (*Router)(nil)
)

// AskNow answers msg at once when this node serves actor id's partition
// and its directory can (door.Now: a read from a snapshot); ok is false
// otherwise, and the caller Asks.
func (r *Router) AskNow(id string, msg any) (any, bool) {
	now, ok := r.cfg.Local.(door.Now)
	if !ok {
		return nil, false
	}
	s := r.enter(r.Partition(id), id)
	if s == nil {
		return nil, false
	}
	defer s.inflight.Done()
	began := time.Now()
	out, ok := now.AskNow(id, msg)
	if ok { // answered here: a local request like any other in the metrics
		r.cfg.Metrics.observe(r.cfg.Kind, "local", nil, began)
	}
	return out, ok
}

// Local reports whether this node serves actor id's partition now, so
// that asking it costs no forwarded request (a hint: ownership may move
// before the ask).
func (r *Router) Local(id string) bool {
	if r.cfg.ServeAll {
		return true
	}
	_, ok := r.cfg.Placement.Holds(r.Partition(id))
	return ok
}

// Invalidate retires actor id's activation on the node that owns it, so
// its next request reloads it (a restock, a catalogue change). It does not
// wait: on this node it is the directory's Invalidate; for another node's
// partition a goroutine forwards it (retrying while ownership moves, at
// most InvalidateTimeout) and logs a failure. A partition changing hands
// meanwhile needs no Invalidate: the next owner loads afresh anyway.
func (r *Router) Invalidate(id string) {
	p := r.Partition(id)
	if s := r.enter(p, id); s != nil {
		r.cfg.Local.Invalidate(id)
		s.inflight.Done()
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.InvalidateTimeout)
		defer cancel()
		if _, err := r.Ask(ctx, id, &Invalidate{}); err != nil {
			r.cfg.Logger.Warn("invalidate not delivered to the owner", "kind", r.cfg.Kind, "id", id, "partition", p, "err", err)
		}
	}()
}

// enter registers a request for actor id of partition p when this node
// serves p; nil otherwise. The caller calls inflight.Done.
func (r *Router) enter(p int, id string) *served {
	if r.cfg.ServeAll {
		s := &served{}
		s.inflight.Add(1)
		return s
	}
	if _, ok := r.cfg.Placement.Holds(p); !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.parts[p]
	if s == nil || s.draining {
		return nil
	}
	s.inflight.Add(1)
	return s
}

// handle serves a forwarded request on the owning node.
func (r *Router) handle(ctx context.Context, req *forward.Request) (proto.Message, error) {
	id, msg, err := r.cfg.Codec.DecodeRequest(req.Message)
	if err != nil {
		return nil, &forward.Error{Code: forward.ErrUnknownType.Code, Message: err.Error()}
	}
	if p := r.Partition(id); p != req.Partition {
		return nil, &forward.Error{Code: forward.ErrBadRequest.Code,
			Message: fmt.Sprintf("%s %s is in partition %d, not %d", r.cfg.Kind, id, p, req.Partition)}
	}
	s := r.enter(req.Partition, id)
	if s == nil {
		return nil, &forward.Error{Code: forward.ErrNotOwner.Code, Message: fmt.Sprintf("partition %d is not served here", req.Partition)}
	}
	defer s.inflight.Done()
	if _, ok := msg.(*Invalidate); ok {
		r.cfg.Local.Invalidate(id)
		return r.cfg.Codec.Reply(&Invalidated{})
	}
	out, err := r.cfg.Local.Ask(ctx, id, msg)
	if err != nil {
		return nil, err
	}
	return r.cfg.Codec.Reply(out)
}

// Acquired starts serving partition p (partition.Hooks.OnAcquire).
func (r *Router) Acquired(p int, epoch uint64) {
	r.mu.Lock()
	r.parts[p] = &served{epoch: epoch}
	r.mu.Unlock()
}

// Released stops serving partition p (partition.Hooks.OnRelease): new
// requests go elsewhere, requests in flight finish (at most DrainTimeout;
// none are awaited when the lease is already lost), and the partition's
// activations retire once their writes are done.
func (r *Router) Released(p int, _ uint64, why partition.Reason) {
	r.mu.Lock()
	s := r.parts[p]
	if s == nil {
		r.mu.Unlock()
		return
	}
	s.draining = true
	delete(r.parts, p)
	r.mu.Unlock()
	if why != partition.Lost {
		done := make(chan struct{})
		go func() { s.inflight.Wait(); close(done) }()
		t := time.NewTimer(r.cfg.DrainTimeout)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	// By partition rather than by a list of the ids asked here, which
	// would grow with every cart and phone the node ever served.
	r.cfg.Local.InvalidateWhere(func(id string) bool { return r.Partition(id) == p })
}

// Served returns the partitions this router serves and their epochs.
func (r *Router) Served() map[int]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]uint64, len(r.parts))
	for p, s := range r.parts {
		out[p] = s.epoch
	}
	return out
}

// Kind returns the actor kind the router serves.
func (r *Router) Kind() string { return r.cfg.Kind }

// Stats returns how many partitions the router serves and how many
// actors of its kind live on this node.
func (r *Router) Stats() (partitions, actors int) {
	r.mu.Lock()
	partitions = len(r.parts)
	r.mu.Unlock()
	return partitions, r.cfg.Local.Live()
}

// Metrics are the routers' Prometheus series (shared by every kind).
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_cluster_requests_total",
			Help: "Requests to placed actors by actor kind, path (local or forwarded to the owning node) and outcome (ok, timeout, error).",
		}, []string{"kind", "path", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spa_cluster_request_seconds",
			Help:    "Latency of requests to placed actors by actor kind and path (local or forwarded).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}, []string{"kind", "path"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("route metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) observe(kind, path string, err error, began time.Time) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if errors.Is(err, forward.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			outcome = "timeout"
		}
	}
	m.requests.WithLabelValues(kind, path, outcome).Inc()
	m.latency.WithLabelValues(kind, path).Observe(time.Since(began).Seconds())
}
