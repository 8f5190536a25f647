// Package partition places the cluster's actors: the key space is cut into a
// fixed number of partitions and each partition is owned by exactly one live
// node at a time (part of cluster/: it builds on membership for the live
// node set and on a replicated JetStream KeyValue bucket for leases; forward
// routes requests to the owners it reports, and the actor layer activates
// and stops actors through its hooks).
//
// Ownership of a partition is a lease: the partition's key in the lease
// bucket, created with Create (only when the key is absent, deleted or
// expired) and renewed with Update at the last revision seen, so two nodes
// can never both succeed. The bucket's Raft group is therefore the one
// directory. A lease's epoch is the bucket revision at which it was
// acquired; revisions only grow (the bucket uses file storage, so they keep
// growing across server restarts), so a later owner always has a higher
// epoch. That epoch is the fencing token an actor writes into the database.
//
// Rendezvous hashing of each partition over the live members decides the
// desired owner. A node acquires the free partitions it should own, renews
// its own leases every TTL/3, and hands off the ones it should no longer
// own: it calls OnRelease (the actors drain and flush), then deletes the
// lease at its revision, and the desired owner acquires it. A crashed
// node's leases expire after the TTL (the bucket's LimitMarkerTTL makes the
// expiry visible to watchers; leases not renewed for longer than the TTL
// are also checked with a Get, because the marker is lost when the
// stream's leader dies with the holder; so are partitions seen free for a
// while, because a watcher whose consumer died with the crashed node
// hears nothing until it is replaced) and the desired owners take them
// over. A node
// that cannot renew in time (e.g. a long GC pause) stops counting a lease as
// its own at its local deadline, which falls before the server expires it,
// and calls OnRelease; its renewals fail afterwards because the revision
// moved on. When nothing moved on (its renewals only went unanswered while
// the bucket elected a leader, and nobody took the lease), it takes the
// lease back at once by compare-and-set on its own entry, at a new epoch.
package partition

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/cluster/kvwatch"
	"github.com/spa-engine/spa/cluster/membership"
	"github.com/spa-engine/spa/messages"
)

// Defaults for Config.
const (
	DefaultPartitions = 64
	DefaultBucket     = "spa_partitions"
	DefaultLeaseTTL   = 6 * time.Second
)

// Reason says why a node gave up a partition (see Hooks.OnRelease).
type Reason int

// Release reasons.
const (
	// Handoff: another live node should own the partition; the lease is
	// deleted after the hook returns, so actors may still flush.
	Handoff Reason = iota + 1
	// Shutdown: the node stops gracefully; the lease is deleted after the
	// hook returns.
	Shutdown
	// Lost: the lease expired or was taken over before this node renewed
	// it; another node may already own the partition, so writes at the old
	// epoch will be fenced: the actors must stop without writing.
	Lost
)

// String names the reason.
func (r Reason) String() string {
	switch r {
	case Handoff:
		return "handoff"
	case Shutdown:
		return "shutdown"
	case Lost:
		return "lost"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Hooks connect the actor layer. OnAcquire and Lost releases run on the
// manager's goroutine; Handoff and Shutdown releases, which drain, run
// concurrently, one goroutine per partition, so a slow drain delays
// neither renewals nor other hand-offs (a lease being handed off is not
// renewed: a drain must end well within the TTL). Hooks for
// one partition never overlap: it is re-acquired only after its lease is
// gone, which is after its release hook returned.
type Hooks struct {
	// OnAcquire is called after this node acquired partition p at epoch.
	OnAcquire func(p int, epoch uint64)
	// OnRelease is called when this node gives up partition p held at
	// epoch. For Handoff and Shutdown the lease is still held while it
	// runs; for Lost it is not.
	OnRelease func(p int, epoch uint64, why Reason)
}

// Membership is the live member set the manager assigns partitions over;
// *membership.Node implements it.
type Membership interface {
	Self() membership.Member
	Members() []membership.Member
	Subscribe() (<-chan struct{}, func())
}

// Config configures a partition manager. Every node of a cluster must use
// the same Partitions, Bucket, LeaseTTL and Replicas.
type Config struct {
	// Partitions is the fixed number of partitions; default
	// DefaultPartitions. Changing it re-maps keys: treat it as permanent.
	Partitions int
	// Bucket is the lease bucket; default DefaultBucket.
	Bucket string
	// LeaseTTL is how long a lease outlives its last renewal: the upper
	// bound of failover after a crash. Default DefaultLeaseTTL; at least 1s.
	LeaseTTL time.Duration
	// Replicas is the bucket's replication factor (membership.Replicas);
	// default 1.
	Replicas int
	// Hooks are called on acquisition and release.
	Hooks Hooks
	// Logger receives lease errors; nil discards.
	Logger *slog.Logger
}

// view is the latest lease bucket entry seen for a partition.
type view struct {
	rev         uint64
	present     bool // false: deleted, purged or expired
	node, inc   string
	epoch       uint64
	initialized bool
	seen        time.Time // when this entry was observed
}

// held is a lease this node holds.
type held struct {
	epoch, rev uint64
	renewedAt  time.Time // when the last successful renewal was sent
	validUntil time.Time // local deadline: renewedAt + TTL - margin
}

// Manager acquires, renews and releases this node's partition leases.
// Its methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	kv      jetstream.KeyValue
	members Membership
	// generation is when the lease bucket was created (Unix seconds): a
	// bucket created afresh restarts its revisions, so fencing tokens
	// carry the generation above the epoch (see Token).
	generation int64
	self       membership.Member
	log        *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}
	once   sync.Once

	// follow keeps the lease bucket's watcher alive.
	follow *kvwatch.Watch

	// gate is read-locked for each reconcile pass; tests lock it to
	// simulate a process pause.
	gate sync.RWMutex

	// deaf makes the watcher drop what it delivers; tests set it to
	// simulate a watcher whose consumer died with another node (it hears
	// nothing until it is replaced).
	deaf atomic.Bool

	// handoffs tracks hand-offs in progress.
	handoffs sync.WaitGroup
	// leaving stops acquisitions (see Leave).
	leaving atomic.Bool

	mu    sync.Mutex
	views []view
	owned map[int]*held
	// handing are the partitions whose hand-off is in progress: not taken
	// back while their release hook runs.
	handing map[int]bool
}

// Start creates or opens the lease bucket, reads the current leases and
// starts the manager's loop. It returns before any partition is acquired;
// OnAcquire reports acquisitions.
func Start(ctx context.Context, js jetstream.JetStream, members Membership, cfg Config) (*Manager, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("partition: LeaseTTL %s below the 1s minimum", cfg.LeaseTTL)
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
			Description:    "spa partition leases",
			History:        1,
			TTL:            cfg.LeaseTTL,
			LimitMarkerTTL: cfg.LeaseTTL,
			// File storage: revisions (epochs) must keep growing even when
			// every server restarts.
			Storage:  jetstream.FileStorage,
			Replicas: cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("partition: bucket %s: %w", cfg.Bucket, err)
	}
	var generation int64
	err = jsretry.Do(ctx, func(ctx context.Context) error {
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		bs, ok := st.(*jetstream.KeyValueBucketStatus)
		if !ok || bs.StreamInfo() == nil {
			return fmt.Errorf("partition: bucket %s: no stream info", cfg.Bucket)
		}
		generation = bs.StreamInfo().Created.Unix()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partition: bucket %s: status: %w", cfg.Bucket, err)
	}
	self := members.Self()
	m := &Manager{
		cfg:        cfg,
		kv:         kv,
		generation: generation,
		members:    members,
		self:       self,
		log:        cfg.Logger.With("component", "partition", "node", self.Name),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		views:      make([]view, cfg.Partitions),
		owned:      map[int]*held{},
		handing:    map[int]bool{},
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	// Creating the watch is a JetStream request that a forming cluster may
	// leave unanswered: retry it within ctx.
	// Each try is bounded within ctx; the watcher lives under loopCtx
	// (its own cancel is not needed: loopCtx ends it).
	w, _, err := kvwatch.Open(ctx, loopCtx, func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) })
	if err != nil {
		cancel()
		return nil, fmt.Errorf("partition: watch %s: %w", cfg.Bucket, err)
	}
	ready := make(chan struct{})
	// Owners renew every TTL/3, so a watcher silent for a TTL is dead.
	m.follow = kvwatch.Follow(loopCtx, w, kvwatch.Config{
		Open:    func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) },
		Silence: cfg.LeaseTTL, Logger: m.log,
	})
	go m.watch(loopCtx, m.follow.Entries(), ready)
	select {
	case <-ready:
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("partition: initial leases: %w", ctx.Err())
	}
	go m.run(loopCtx)
	return m, nil
}

// Token turns a lease epoch into the fencing token an actor writes into
// the database: the bucket's generation (creation second) in the high 32
// bits plus the epoch. Tokens grow with epochs, and a bucket recreated
// after its storage was lost (revisions restart at 1) still issues tokens
// above every token of the old one; database-issued epochs of a single
// node (small counters) are below them all.
func (m *Manager) Token(epoch uint64) int64 { return Token(m.generation, epoch) }

// Token is Manager.Token for a bucket created at generation.
func Token(generation int64, epoch uint64) int64 { return generation<<32 + int64(epoch) }

// Key returns the lease bucket key of partition p.
func Key(p int) string { return "p." + strconv.Itoa(p) }

func parseKey(k string) (int, bool) {
	s, ok := strings.CutPrefix(k, "p.")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil
}

// PartitionOf maps key to a partition in [0, partitions) with a stable
// hash (FNV-1a): every node and every build maps a key the same way.
func PartitionOf(key string, partitions int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % uint64(partitions))
}

// PartitionOf maps key to one of this manager's partitions.
func (m *Manager) PartitionOf(key string) int { return PartitionOf(key, m.cfg.Partitions) }

// Partitions returns the number of partitions.
func (m *Manager) Partitions() int { return m.cfg.Partitions }

// Self returns the member this manager acts for.
func (m *Manager) Self() membership.Member { return m.self }

// Owner returns partition p's current lease holder and epoch as last seen
// in the bucket (ok is false when the partition is free or p is out of
// range). For partitions this node holds, its own record is authoritative,
// and a lease of its own it no longer holds is reported as no owner.
func (m *Manager) Owner(p int) (node string, epoch uint64, ok bool) {
	if p < 0 || p >= m.cfg.Partitions {
		return "", 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, mine := m.owned[p]; mine && time.Now().Before(h.validUntil) {
		return m.self.Name, h.epoch, true
	}
	v := m.views[p]
	if !v.present || (v.node == m.self.Name && v.inc == m.self.Incarnation) {
		// This node's own lease that it no longer holds (lost past its
		// local deadline, or being handed back) has no owner to report:
		// not this node, and nobody else yet.
		return "", 0, false
	}
	return v.node, v.epoch, true
}

// Refresh reads partition p's lease from the bucket (not from the watched
// copy) and returns its holder, as Owner does.
func (m *Manager) Refresh(ctx context.Context, p int) (node string, epoch uint64, ok bool, err error) {
	if p < 0 || p >= m.cfg.Partitions {
		return "", 0, false, fmt.Errorf("partition: %d out of range", p)
	}
	m.mu.Lock()
	before := m.views[p].rev
	m.mu.Unlock()
	e, err := m.kv.Get(ctx, Key(p))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		// Free now, unless the watcher saw a newer entry meanwhile: a
		// caller must not be sent to an owner whose lease is gone.
		m.mu.Lock()
		if v := m.views[p]; v.present && v.rev == before {
			m.views[p] = view{rev: v.rev, initialized: true, seen: time.Now()}
		}
		m.mu.Unlock()
	case err != nil:
		return "", 0, false, err
	default:
		m.observe(p, e)
	}
	node, epoch, ok = m.Owner(p)
	return node, epoch, ok, nil
}

// Holds reports whether this node currently holds partition p, and at
// which epoch. A lease past its local deadline is not held.
func (m *Manager) Holds(p int) (epoch uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, mine := m.owned[p]
	if !mine || !time.Now().Before(h.validUntil) {
		return 0, false
	}
	return h.epoch, true
}

// Owned returns the partitions this node holds and their epochs.
func (m *Manager) Owned() map[int]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make(map[int]uint64, len(m.owned))
	for p, h := range m.owned {
		if now.Before(h.validUntil) {
			out[p] = h.epoch
		}
	}
	return out
}

// Desired returns the member that should own partition p among members
// (rendezvous hashing: the highest score of hash(member, p) wins), or ""
// when members is empty. Adding a member moves only the partitions the
// newcomer wins, about 1/n of them.
func Desired(p int, members []string) string {
	best, bestScore := "", uint64(0)
	for _, name := range members {
		s := score(p, name)
		if best == "" || s > bestScore || (s == bestScore && name < best) {
			best, bestScore = name, s
		}
	}
	return best
}

func score(p int, name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.Itoa(p)))
	x := h.Sum64()
	// splitmix64 finaliser: FNV alone spreads similar inputs poorly.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// placedOver names the members partitions are placed over: self and the
// other live members, but not those on standby (membership.SetStandby: a
// node cut from the database), unless every one of them is, when standby
// tells nothing apart and all are. So a node on standby hands its
// partitions off, and the others take them, while one of them can.
func placedOver(self membership.Member, members []membership.Member) []string {
	var all, ready []string
	add := func(mem membership.Member) {
		all = append(all, mem.Name)
		if !mem.Standby() {
			ready = append(ready, mem.Name)
		}
	}
	add(self)
	for _, mem := range members {
		if mem.Name != self.Name {
			add(mem)
		}
	}
	if len(ready) == 0 {
		return all
	}
	return ready
}

// Leave stops acquiring partitions, as the node is about to leave: call it
// before leaving the membership, during which this node would otherwise
// still take a partition that frees up (and hand it straight back).
func (m *Manager) Leave() { m.leaving.Store(true) }

// Stop hands every held partition back gracefully: OnRelease(Shutdown),
// then delete the lease so the desired owners acquire it at once; the
// partitions drain concurrently. Leave the membership first, so the other
// nodes already want these partitions when their leases are deleted. ctx
// bounds the deletes. Calling Stop or Abort again is harmless.
func (m *Manager) Stop(ctx context.Context) error {
	var errs []error
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.handoffs.Wait()
		m.mu.Lock()
		owned := m.owned
		m.owned = map[int]*held{}
		m.mu.Unlock()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range sortedKeys(owned) {
			h := owned[p]
			wg.Go(func() {
				if err := m.handBack(ctx, p, *h, Shutdown); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	})
	return errors.Join(errs...)
}

// Abort stops the manager without releasing anything, as a crash would:
// its leases expire after the TTL. For tests and for shutdown paths where
// NATS is already gone.
func (m *Manager) Abort() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.handoffs.Wait()
		m.mu.Lock()
		m.owned = map[int]*held{}
		m.mu.Unlock()
	})
}

func (m *Manager) watch(ctx context.Context, entries <-chan jetstream.KeyValueEntry, ready chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-entries:
			if !ok {
				return
			}
			if e == nil { // end of a watcher's initial values
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			if m.deaf.Load() {
				continue
			}
			if p, ok := parseKey(e.Key()); ok && p < m.cfg.Partitions {
				m.observe(p, e)
				m.poke()
			}
		}
	}
}

// observe records entry e of partition p unless a newer one is known.
func (m *Manager) observe(p int, e jetstream.KeyValueEntry) {
	v := view{rev: e.Revision(), initialized: true, seen: time.Now()}
	if e.Operation() == jetstream.KeyValuePut {
		var l messages.PartitionLease
		if err := proto.Unmarshal(e.Value(), &l); err != nil {
			m.log.Warn("partition: malformed lease", "partition", p, "err", err)
			return
		}
		v.present, v.node, v.inc, v.epoch = true, l.GetNode(), l.GetIncarnation(), l.GetEpoch()
		if v.epoch == 0 {
			v.epoch = e.Revision() // the acquiring write
		}
	}
	m.mu.Lock()
	if old := m.views[p]; !old.initialized || old.rev < v.rev {
		m.views[p] = v
	}
	m.mu.Unlock()
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) run(ctx context.Context) {
	defer close(m.done)
	changes, unsubscribe := m.members.Subscribe()
	defer unsubscribe()
	t := time.NewTicker(m.cfg.LeaseTTL / 8)
	defer t.Stop()
	for {
		m.gate.RLock()
		m.reconcile(ctx)
		m.gate.RUnlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes:
		case <-m.wake:
		}
	}
}

// reconcile runs one pass: drop lost leases, hand off, renew, acquire.
func (m *Manager) reconcile(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	m.sweep(ctx)
	names := placedOver(m.members.Self(), m.members.Members())
	now := time.Now()
	renewDue := m.cfg.LeaseTTL / 3

	var lost, handoff, renew []job
	var acquire []int
	retake := map[int]bool{}
	m.mu.Lock()
	for p := range m.cfg.Partitions {
		v := m.views[p]
		h, mine := m.owned[p]
		switch {
		case mine && (!now.Before(h.validUntil) || m.takenLocked(v, h)):
			lost = append(lost, job{p, *h})
			delete(m.owned, p)
		case mine && Desired(p, names) != m.self.Name:
			// Not held from now on (Holds and Owned stop reporting it), so
			// the hand-off starts once.
			handoff = append(handoff, job{p, *h})
			delete(m.owned, p)
		case mine && now.Sub(h.renewedAt) >= renewDue:
			renew = append(renew, job{p, *h})
		case !mine && !v.present && Desired(p, names) == m.self.Name && !m.leaving.Load():
			acquire = append(acquire, p)
		case !mine && v.node == m.self.Name && v.inc == m.self.Incarnation && !m.handing[p] &&
			Desired(p, names) == m.self.Name && !m.leaving.Load():
			// A lease of this node's own that it dropped (its renewals went
			// unanswered past the local deadline, while the bucket elected
			// a leader) and nobody took: take it back now instead of
			// waiting for it to expire.
			acquire = append(acquire, p)
			retake[p] = true
		}
	}
	for _, j := range handoff {
		m.handing[j.p] = true
	}
	m.mu.Unlock()

	for _, j := range lost {
		m.log.Warn("partition lease lost", "partition", j.p, "epoch", j.h.epoch)
		m.release(j.p, j.h.epoch, Lost)
	}
	for _, j := range handoff {
		m.handoffs.Add(1)
		go m.handoff(j.p, j.h)
	}
	m.renewAll(ctx, renew)
	m.acquireAll(ctx, acquire, retake)
}

// sweep reads from the bucket the partitions whose watched view may be
// stale, because nothing was heard of them for a while:
//
//   - leases of other nodes not renewed for longer than 1.25 TTL: their
//     key is gone once they expired, but the expiry marker that reports it
//     is lost when the stream's leader dies with the lease holder
//     (observed with nats-server 2.15.2);
//   - partitions seen free for longer than TTL/4: another node may have
//     taken them since, and a watcher whose consumer lived on a crashed
//     node delivers nothing until it is replaced (up to a TTL of silence
//     and the time to open a new one), so without this read a survivor
//     would report such a partition ownerless for seconds after a peer
//     took it over.
//
// The reads run concurrently, all within TTL/4, so a bucket without a
// leader (an election) delays a reconcile pass by TTL/4 at most.
func (m *Manager) sweep(ctx context.Context) {
	limit, freeFor := m.cfg.LeaseTTL+m.cfg.LeaseTTL/4, m.cfg.LeaseTTL/4
	var stale []int
	m.mu.Lock()
	for p, v := range m.views {
		if _, mine := m.owned[p]; mine {
			continue
		}
		if since := time.Since(v.seen); (v.present && since > limit) || (!v.present && since > freeFor) {
			stale = append(stale, p)
		}
	}
	m.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/4)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, p := range stale {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e, err := m.kv.Get(gctx, Key(p))
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
				m.mu.Lock()
				if v := m.views[p]; !v.present || time.Since(v.seen) > limit {
					// Free now (again): noted as seen, so it is read
					// again only after another TTL/4.
					m.views[p] = view{rev: v.rev, initialized: true, seen: time.Now()}
				}
				m.mu.Unlock()
			case err == nil:
				m.observe(p, e)
			}
		})
	}
	wg.Wait()
}

// takenLocked reports whether the bucket shows an entry newer than this
// node's own last write of a lease it believes it holds: another owner,
// a deletion or the expiry marker.
func (m *Manager) takenLocked(v view, h *held) bool {
	if !v.initialized || v.rev <= h.rev {
		return false
	}
	return !v.present || v.node != m.self.Name || v.inc != m.self.Incarnation || v.epoch != h.epoch
}

// handoff releases partition p, no longer counted as held, and deletes its
// lease: the actors drain while the lease still fences everyone else out.
// It runs on its own goroutine, outliving neither Stop nor Abort.
func (m *Manager) handoff(p int, h held) {
	defer m.handoffs.Done()
	defer func() {
		m.mu.Lock()
		delete(m.handing, p)
		m.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.LeaseTTL/2)
	defer cancel()
	if err := m.handBack(ctx, p, h, Handoff); err != nil {
		// The lease expires on its own; nobody else could renew it.
		m.log.Warn("partition hand-off delete failed", "partition", p, "err", err)
	}
}

// handBack releases partition p, held as h, for why, then deletes its
// lease at the revision this node wrote last, so the next owner can
// create it at once. A lease already rewritten by someone else is left.
func (m *Manager) handBack(ctx context.Context, p int, h held, why Reason) error {
	m.release(p, h.epoch, why)
	err := m.kv.Delete(ctx, Key(p), jetstream.LastRevision(h.rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil
	}
	return err
}

// job is a held lease to act on.
type job struct {
	p int
	h held
}

func (m *Manager) renewAll(ctx context.Context, jobs []job) {
	if len(jobs) == 0 {
		return
	}
	type result struct {
		rev  uint64
		sent time.Time
		err  error
	}
	results := make([]result, len(jobs))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sent := time.Now()
			rev, err := m.renew(ctx, j.p, j.h.epoch, j.h.rev)
			results[i] = result{rev, sent, err}
		})
	}
	wg.Wait()
	var lost []int
	m.mu.Lock()
	for i, j := range jobs {
		r := results[i]
		h, still := m.owned[j.p]
		if !still || h.rev != j.h.rev {
			continue
		}
		switch {
		case r.err == nil:
			h.rev, h.renewedAt, h.validUntil = r.rev, r.sent, m.deadline(r.sent)
		case errors.Is(r.err, jetstream.ErrKeyRevisionMismatch):
			delete(m.owned, j.p)
			lost = append(lost, i)
		default:
			if ctx.Err() == nil {
				m.log.Warn("partition renewal failed", "partition", j.p, "err", r.err)
			}
		}
	}
	m.mu.Unlock()
	for _, i := range lost {
		m.log.Warn("partition lease lost on renewal", "partition", jobs[i].p, "epoch", jobs[i].h.epoch)
		m.release(jobs[i].p, jobs[i].h.epoch, Lost)
	}
}

// renew extends the lease of p held at epoch, last written at rev, by
// compare-and-set: it fails with jetstream.ErrKeyRevisionMismatch once
// anything else was written to the key.
func (m *Manager) renew(ctx context.Context, p int, epoch, rev uint64) (uint64, error) {
	b, err := proto.Marshal(&messages.PartitionLease{Node: m.self.Name, Incarnation: m.self.Incarnation, Epoch: epoch})
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/3)
	defer cancel()
	return m.kv.Update(rctx, Key(p), b, rev)
}

// acquireAll tries to create the leases of partitions, concurrently: a
// take-over after a crash acquires a third of the partitions at once, and
// one after another, each waiting up to TTL/3 while the bucket elects a
// leader, they would take many TTLs. OnAcquire runs afterwards on the
// manager's goroutine, in partition order.
func (m *Manager) acquireAll(ctx context.Context, parts []int, retake map[int]bool) {
	if len(parts) == 0 || ctx.Err() != nil {
		return
	}
	b, err := proto.Marshal(&messages.PartitionLease{Node: m.self.Name, Incarnation: m.self.Incarnation})
	if err != nil {
		return
	}
	type result struct {
		rev  uint64
		sent time.Time
		err  error
	}
	results := make([]result, len(parts))
	cctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/3)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, p := range parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sent := time.Now()
			create := m.kv.Create
			if retake[p] {
				create = m.retake
			}
			rev, err := create(cctx, Key(p), b)
			results[i] = result{rev, sent, err}
		})
	}
	wg.Wait()
	for i, p := range parts {
		r := results[i]
		if r.err != nil {
			if !errors.Is(r.err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				m.log.Warn("partition acquire failed", "partition", p, "err", r.err)
			}
			continue
		}
		m.mu.Lock()
		m.owned[p] = &held{epoch: r.rev, rev: r.rev, renewedAt: r.sent, validUntil: m.deadline(r.sent)}
		m.mu.Unlock()
		if f := m.cfg.Hooks.OnAcquire; f != nil {
			f(p, r.rev)
		}
	}
}

// retake takes back key, a lease this node wrote and then dropped, if it
// is still the bucket's latest entry: its compare-and-set at that entry's
// revision proves nobody wrote the key since. The lease is written afresh
// (no epoch: the epoch is this write's revision), so the actors activate
// under a new, higher fencing token and any write of the dropped
// activation still in flight is fenced. A key gone meanwhile is created.
func (m *Manager) retake(ctx context.Context, key string, lease []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return m.kv.Create(ctx, key, lease)
	}
	if err != nil {
		return 0, err
	}
	var l messages.PartitionLease
	if e.Operation() != jetstream.KeyValuePut || proto.Unmarshal(e.Value(), &l) != nil ||
		l.GetNode() != m.self.Name || l.GetIncarnation() != m.self.Incarnation {
		if p, ok := parseKey(key); ok {
			m.observe(p, e) // someone else's now
		}
		return 0, jetstream.ErrKeyExists
	}
	rev, err := m.kv.Update(ctx, key, lease, e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, jetstream.ErrKeyExists // written meanwhile; the next pass looks again
	}
	return rev, err
}

// deadline is the local end of a lease renewed at sent. The server counts
// the TTL from when it stored the write, which is after sent; the margin
// (TTL/5) covers clock-rate differences between the servers.
func (m *Manager) deadline(sent time.Time) time.Time {
	return sent.Add(m.cfg.LeaseTTL - m.cfg.LeaseTTL/5)
}

func (m *Manager) release(p int, epoch uint64, why Reason) {
	if f := m.cfg.Hooks.OnRelease; f != nil {
		f(p, epoch, why)
	}
}

func sortedKeys(m map[int]*held) []int { return slices.Sorted(maps.Keys(m)) }
