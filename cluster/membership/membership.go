// Package membership keeps the set of live engine nodes in a replicated
// JetStream KeyValue bucket (part of cluster/: it sits between the embedded
// NATS server of natsserver and the partition placement of partition, which
// assigns partitions over the members it reports).
//
// Each node writes its record (name, incarnation, start time, attributes)
// under its name with a bucket-wide TTL and renews it every TTL/3. A
// graceful Stop deletes the record, so others see the leave at once; a
// crashed node's record expires after the TTL, and because the bucket is
// created with LimitMarkerTTL the server writes a marker that every
// watcher sees as a deletion (without it, watchers never learn of the
// expiry). The marker can still be lost when the stream's leader dies
// with the node, so members not renewed for a TTL are also checked with a
// Get (detection then takes up to 1.25 TTL). A restarted process is a new incarnation under the same name,
// reported as a leave of the old incarnation and a join of the new one.
package membership

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/cluster/kvwatch"
	"github.com/spa-engine/spa/messages"
)

// DefaultBucket is the membership bucket's name unless Config.Bucket says
// otherwise.
const DefaultBucket = "spa_members"

// DefaultTTL is how long a record outlives its last renewal unless
// Config.TTL says otherwise: the upper bound of crash detection.
const DefaultTTL = 6 * time.Second

// Replicas returns the replication factor for a cluster bucket on a
// cluster of servers NATS servers: 3 when there are at least three, else 1.
func Replicas(servers int) int {
	if servers >= 3 {
		return 3
	}
	return 1
}

// Member is one live node as recorded in the bucket.
type Member struct {
	// Name is the node's stable name (the KV key).
	Name string
	// Incarnation is random per process start.
	Incarnation string
	// StartedAt is when this incarnation joined.
	StartedAt time.Time
	// Meta holds the node's attributes (e.g. advertised addresses).
	Meta map[string]string
}

// MetaStandby is the Meta key of a member on standby (see SetStandby).
const MetaStandby = "standby"

// Standby reports whether the member asked to own no partitions while
// others can (SetStandby).
func (m Member) Standby() bool { return m.Meta[MetaStandby] != "" }

// Change describes one change of the member set, in the order observed.
type Change struct {
	// Joined and Left list the members that appeared and disappeared; a
	// restart shows up as the old incarnation in Left and the new in Joined.
	Joined, Left []Member
	// Changed lists the members whose record changed without a restart:
	// they went on or off standby.
	Changed []Member
	// Members is the member set after the change, sorted by name.
	Members []Member
}

// Config configures a node's membership.
type Config struct {
	// Name is the node's name: unique in the cluster and stable across
	// restarts; a valid KV key ([-_=/.A-Za-z0-9]). Required.
	Name string
	// Meta are attributes published with the record.
	Meta map[string]string
	// Bucket is the KV bucket; default DefaultBucket.
	Bucket string
	// TTL bounds how long a crashed node stays listed; default DefaultTTL,
	// at least 1s (the server's minimum marker TTL).
	TTL time.Duration
	// Replicas is the bucket's replication factor (see Replicas); default 1.
	// Every node of a cluster must use the same value.
	Replicas int
	// OnChange, when set, is called with every change, one call at a time,
	// from the watching goroutine; it must not block for long.
	OnChange func(Change)
	// Logger receives renewal failures; nil discards.
	Logger *slog.Logger
}

// Node is this process's membership: its own record and the watched set
// of all members. Its methods are safe for concurrent use.
type Node struct {
	cfg  Config
	kv   jetstream.KeyValue
	self Member
	log  *slog.Logger

	cancel  context.CancelFunc
	follow  *kvwatch.Watch // keeps the bucket's watcher alive
	loops   sync.WaitGroup
	stopped sync.Once

	mu       sync.Mutex
	members  map[string]Member
	lastSeen map[string]time.Time // last Put observed per member
	lastRev  uint64
	subs     map[chan struct{}]struct{}
}

// Join creates or opens the bucket, writes this node's record under a
// new incarnation, and returns once the initial member set has been read
// (so Members includes every node already live, and this one).
func Join(ctx context.Context, js jetstream.JetStream, cfg Config) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("membership: Config.Name is required")
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("membership: TTL %s below the 1s minimum", cfg.TTL)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Right after a cluster forms, a create request can go unanswered:
	// retry each try with its own timeout.
	var kv jetstream.KeyValue
	err := jsretry.Do(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         cfg.Bucket,
			Description:    "spa cluster members",
			History:        1,
			TTL:            cfg.TTL,
			LimitMarkerTTL: cfg.TTL,
			Storage:        jetstream.MemoryStorage,
			Replicas:       cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("membership: bucket %s: %w", cfg.Bucket, err)
	}
	n := &Node{
		cfg: cfg,
		kv:  kv,
		self: Member{
			Name:        cfg.Name,
			Incarnation: NewIncarnation(),
			StartedAt:   time.Now().UTC().Truncate(time.Millisecond),
			Meta:        maps.Clone(cfg.Meta),
		},
		log:      cfg.Logger.With("component", "membership", "node", cfg.Name),
		members:  map[string]Member{},
		lastSeen: map[string]time.Time{},
		subs:     map[chan struct{}]struct{}{},
	}
	// A freshly created replicated bucket may not have elected its leader
	// yet: retry until ctx ends.
	if err := jsretry.Do(ctx, func(ctx context.Context) error { return n.put(ctx) }); err != nil {
		return nil, fmt.Errorf("membership: register %s: %w", cfg.Name, err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	// The watch lives as long as the node, not as long as ctx; creating it
	// is a JetStream request that a forming cluster may leave unanswered.
	// Each try is bounded within ctx; the watcher lives under loopCtx
	// (its own cancel is not needed: loopCtx ends it).
	w, _, err := kvwatch.Open(ctx, loopCtx, func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) })
	if err != nil {
		cancel()
		return nil, fmt.Errorf("membership: watch %s: %w", cfg.Bucket, err)
	}
	ready := make(chan struct{})
	// Every node renews every TTL/3 (this one too), so a watcher silent
	// for a TTL is dead.
	n.follow = kvwatch.Follow(loopCtx, w, kvwatch.Config{
		Open:    func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) },
		Silence: cfg.TTL, Logger: n.log,
	})
	n.loops.Go(func() { n.watch(loopCtx, n.follow.Entries(), ready) })
	n.loops.Go(func() { n.renew(loopCtx) })
	select {
	case <-ready:
		return n, nil
	case <-ctx.Done():
		n.Abort()
		return nil, fmt.Errorf("membership: initial member set: %w", ctx.Err())
	}
}

// NewIncarnation returns a random incarnation id.
func NewIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Self returns this node's own record, standby included as set here.
func (n *Node) Self() Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.self
}

// SetStandby puts this node on standby (on) or takes it off: a member on
// standby is listed and serves, but asks to own no partitions while
// another member is not on standby (partition places them over the
// others). A node cut from the database sets it, so the calendars it owns
// move to nodes that can write them instead of answering 503 until the
// database is back. The local subscribers hear of it at once; the record
// is written now and with every renewal (when this write fails, the next
// renewal carries it).
func (n *Node) SetStandby(ctx context.Context, on bool) error {
	n.mu.Lock()
	if n.self.Standby() == on {
		n.mu.Unlock()
		return nil
	}
	meta := maps.Clone(n.self.Meta) // replaced, never changed in place: Self's copies share it
	if meta == nil {
		meta = map[string]string{}
	}
	if on {
		meta[MetaStandby] = "store"
	} else {
		delete(meta, MetaStandby)
	}
	n.self.Meta = meta
	if _, listed := n.members[n.self.Name]; listed {
		n.members[n.self.Name] = n.self
	}
	n.signalLocked()
	n.mu.Unlock()
	return n.put(ctx)
}

// TTL returns the record TTL in force.
func (n *Node) TTL() time.Duration { return n.cfg.TTL }

// Members returns the live members, sorted by name.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sortedLocked()
}

// Member returns the live member named name.
func (n *Node) Member(name string) (Member, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.members[name]
	return m, ok
}

// Subscribe returns a channel that receives a value after every change of
// the member set (changes coalesce: read Members for the current set) and
// a function that ends the subscription.
func (n *Node) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Stop leaves gracefully: it stops renewing, deletes this node's record
// (others see the leave at once) and stops watching. ctx bounds the
// delete. Calling Stop or Abort again is harmless.
func (n *Node) Stop(ctx context.Context) error {
	var err error
	n.stopped.Do(func() {
		n.cancel()
		n.loops.Wait()
		n.mu.Lock()
		rev := n.lastRev
		n.mu.Unlock()
		err = n.kv.Delete(ctx, n.cfg.Name, jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			err = nil // someone else's record (or ours already expired): leave it
		}
		if err != nil {
			err = fmt.Errorf("membership: deregister %s: %w", n.cfg.Name, err)
		}
	})
	return err
}

// Abort stops renewing and watching without deregistering, as a crash
// would: the record expires after the TTL. For tests and for shutdown
// paths where NATS is already gone.
func (n *Node) Abort() {
	n.stopped.Do(func() {
		n.cancel()
		n.loops.Wait()
	})
}

func (n *Node) put(ctx context.Context) error {
	self := n.Self()
	b, err := proto.Marshal(&messages.ClusterMember{
		Name:        self.Name,
		Incarnation: self.Incarnation,
		StartedAt:   timestamppb.New(self.StartedAt),
		Meta:        self.Meta,
	})
	if err != nil {
		return err
	}
	rev, err := n.kv.Put(ctx, n.cfg.Name, b)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.lastRev = rev
	n.mu.Unlock()
	return nil
}

func (n *Node) renew(ctx context.Context) {
	every := n.cfg.TTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		if err := n.put(pctx); err != nil && ctx.Err() == nil {
			n.log.Warn("membership renewal failed", "err", err)
		}
		cancel()
	}
}

func (n *Node) watch(ctx context.Context, entries <-chan jetstream.KeyValueEntry, ready chan struct{}) {
	var pending Change
	initDone := false
	// A crashed member is dropped at most TTL/4 after its record is gone.
	check := time.NewTicker(n.cfg.TTL / 4)
	defer check.Stop()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			if initDone {
				n.sweep(ctx, &pending)
				n.emit(&pending)
			}
			continue
		case e, ok = <-entries:
			if !ok {
				return
			}
		}
		if e == nil { // end of a watcher's initial values
			if !initDone {
				close(ready)
			}
			initDone = true
			n.emit(&pending)
			continue
		}
		n.apply(e, &pending)
		if initDone {
			n.emit(&pending)
		}
	}
}

// sweep drops members whose record is gone although the watch did not
// report it. The server writes the expiry marker only on the stream's
// leader; when that leader is the server that died with the node, the
// marker can be lost (observed with nats-server 2.15.2), so watchers alone
// would keep a crashed member forever. A member not renewed for a whole
// TTL is checked with a Get and dropped if its key is gone.
func (n *Node) sweep(ctx context.Context, c *Change) {
	n.mu.Lock()
	var stale []string
	for name, seen := range n.lastSeen {
		if name != n.cfg.Name && time.Since(seen) > n.cfg.TTL {
			stale = append(stale, name)
		}
	}
	n.mu.Unlock()
	// The reads run concurrently within one TTL/4: while the bucket elects
	// a leader they time out, and the watch (which runs this) must not
	// stall for one timeout per member.
	gctx, cancel := context.WithTimeout(ctx, n.cfg.TTL/4)
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range stale {
		wg.Go(func() {
			_, err := n.kv.Get(gctx, name)
			if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
				n.mu.Lock()
				if old, ok := n.members[name]; ok && time.Since(n.lastSeen[name]) > n.cfg.TTL {
					delete(n.members, name)
					delete(n.lastSeen, name)
					c.Left = append(c.Left, old)
				}
				n.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// apply folds one KV entry into the member set and the pending change.
func (n *Node) apply(e jetstream.KeyValueEntry, c *Change) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old, had := n.members[e.Key()]
	if e.Operation() != jetstream.KeyValuePut {
		if had {
			delete(n.members, e.Key())
			delete(n.lastSeen, e.Key())
			c.Left = append(c.Left, old)
		}
		return
	}
	var rec messages.ClusterMember
	if err := proto.Unmarshal(e.Value(), &rec); err != nil || rec.GetName() != e.Key() {
		n.log.Warn("membership: ignoring malformed record", "key", e.Key(), "err", err)
		return
	}
	n.lastSeen[e.Key()] = time.Now()
	m := Member{
		Name:        rec.GetName(),
		Incarnation: rec.GetIncarnation(),
		StartedAt:   rec.GetStartedAt().AsTime(),
		Meta:        rec.GetMeta(),
	}
	if had && old.Incarnation == m.Incarnation {
		if old.Standby() != m.Standby() && m.Name != n.self.Name { // our own is set by SetStandby
			n.members[m.Name] = m
			c.Changed = append(c.Changed, m)
		}
		return // a renewal
	}
	if m.Name == n.self.Name && m.Incarnation == n.self.Incarnation {
		m = n.self // our own record as set here, not as last written
	}
	if had {
		c.Left = append(c.Left, old)
	}
	n.members[m.Name] = m
	c.Joined = append(c.Joined, m)
}

// emit reports a non-empty pending change and resets it.
func (n *Node) emit(c *Change) {
	if len(c.Joined) == 0 && len(c.Left) == 0 && len(c.Changed) == 0 {
		return
	}
	n.mu.Lock()
	c.Members = n.sortedLocked()
	n.signalLocked()
	n.mu.Unlock()
	if n.cfg.OnChange != nil {
		n.cfg.OnChange(*c)
	}
	*c = Change{}
}

// signalLocked wakes the subscribers (Subscribe).
func (n *Node) signalLocked() {
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *Node) sortedLocked() []Member {
	out := slices.Collect(maps.Values(n.members))
	slices.SortFunc(out, func(a, b Member) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}
