package partition

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/membership"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/messages"
)

const (
	testTTL        = 2 * time.Second
	testPartitions = 64
)

// event is one hook call.
type event struct {
	node    string
	acquire bool
	p       int
	epoch   uint64
	why     Reason
	at      time.Time
}

// hookLog records every node's hook calls in one order.
type hookLog struct {
	mu     sync.Mutex
	events []event
	// drain, when set, is how long a release hook of node for why takes
	// (a router draining requests in flight).
	drain func(node string, why Reason) time.Duration
}

func (l *hookLog) add(e event) {
	l.mu.Lock()
	e.at = time.Now()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *hookLog) all() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event(nil), l.events...)
}

type node struct {
	name   string
	mem    *membership.Node
	pm     *Manager
	passes *passCounter
}

// passCounter is a node's membership as its manager sees it, counting the
// manager's Members calls: reconcile asks for the members once, at the
// start of each pass, and nothing else in the manager asks, so the count
// is the number of reconcile passes begun. A test that must see that
// something does not happen waits for passes that had their chance to do
// it.
type passCounter struct {
	*membership.Node
	n atomic.Int64
}

func (c *passCounter) Members() []membership.Member {
	c.n.Add(1)
	return c.Node.Members()
}

// startNode starts node-i on server i with the lease and membership TTL
// testTTL.
func startNode(t *testing.T, c *natstest.Cluster, i int, log *hookLog) *node {
	t.Helper()
	return startNodeWith(t, c, i, log, nil, testTTL)
}

// startNodeWith starts node-i with the given TTL (for its membership record
// and its leases); a non-nil hist records every lease write the node makes.
func startNodeWith(t *testing.T, c *natstest.Cluster, i int, log *hookLog, hist *history, ttl time.Duration) *node {
	t.Helper()
	js, err := c.Server(i).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := fmt.Sprintf("node-%d", i)
	mem, err := membership.Join(ctx, js, membership.Config{Name: name, TTL: ttl, Replicas: membership.Replicas(c.N())})
	if err != nil {
		t.Fatal(err)
	}
	var leases jetstream.JetStream = js
	if hist != nil {
		leases = recordingJS{JetStream: js, h: hist}
	}
	passes := &passCounter{Node: mem}
	pm, err := Start(ctx, leases, passes, Config{
		Partitions: testPartitions,
		LeaseTTL:   ttl,
		Replicas:   membership.Replicas(c.N()),
		Hooks: Hooks{
			OnAcquire: func(p int, epoch uint64) { log.add(event{node: name, acquire: true, p: p, epoch: epoch}) },
			OnRelease: func(p int, epoch uint64, why Reason) {
				if log.drain != nil {
					// A sleep that stays: it is no wait for an event but
					// the simulated work of a router draining its requests
					// in flight, whose length (against the lease TTL) is
					// what TestSlowHandoffsDoNotDelayRenewals is about.
					time.Sleep(log.drain(name, why))
				}
				log.add(event{node: name, p: p, epoch: epoch, why: why})
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, mem: mem, pm: pm, passes: passes}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop leaves gracefully: membership first (the others start wanting its
// partitions), then the partitions, each taken over as its lease is
// deleted.
func (n *node) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.pm.Leave()
	_ = n.mem.Stop(ctx)
	if err := n.pm.Stop(ctx); err != nil {
		t.Logf("%s: partition stop: %v", n.name, err)
	}
}

// crash stops n's loops without releasing or deregistering.
func (n *node) crash() {
	n.pm.Abort()
	n.mem.Abort()
}

// converged reports whether every partition is held by exactly one of
// nodes, that one is its desired owner among them, and every node's
// directory agrees.
func converged(nodes []*node) bool { return convergedBy(nodes, true) }

// convergedBy is converged; withViews false checks only the leases held,
// not what each node's watched directory says.
func convergedBy(nodes []*node, withViews bool) bool {
	var names []string
	for _, n := range nodes {
		names = append(names, n.name)
	}
	owned := make([]map[int]uint64, len(nodes))
	for i, n := range nodes {
		owned[i] = n.pm.Owned()
	}
	for p := range testPartitions {
		holders := 0
		var holder string
		var epoch uint64
		for i, n := range nodes {
			if e, ok := owned[i][p]; ok {
				holders++
				holder, epoch = n.name, e
			}
		}
		if holders != 1 || holder != Desired(p, names) {
			return false
		}
		if !withViews {
			continue
		}
		for _, n := range nodes {
			if o, e, ok := n.pm.Owner(p); !ok || o != holder || e != epoch {
				return false
			}
		}
	}
	return true
}

func owners(nodes []*node) map[int]struct {
	node  string
	epoch uint64
} {
	out := map[int]struct {
		node  string
		epoch uint64
	}{}
	for _, n := range nodes {
		for p, e := range n.pm.Owned() {
			out[p] = struct {
				node  string
				epoch uint64
			}{n.name, e}
		}
	}
	return out
}

// history records the lease bucket's entries, to check the single-owner
// invariant on what the server actually stored.
//
// A watcher alone does not see every entry: the bucket keeps one entry per
// key (History 1), and a watcher's consumer skips an entry that a later
// write to the same key replaced before it was delivered. Under load that
// happens to a hand-off's delete marker, which the new owner's create
// replaces within milliseconds, and the history then shows the create
// right after the old owner's lease. So every node's lease writes are also
// recorded as they succeed (recordingKV), at the revision the server
// assigned, and the check orders each partition's entries by revision. A
// delete's revision is not returned to the client, but a successful delete
// is a compare-and-set at the deleting node's last write of the key, so it
// is the key's entry right after that write. Only the server's expiry
// markers come from the watcher alone; the check covers a missing one with
// the lease's lapse by server time.
type history struct {
	ttl time.Duration

	mu       sync.Mutex
	entries  []record
	watched  uint64           // the highest revision the watcher delivered
	nextOp   int              // ids of recorded writes
	inflight map[int]struct{} // writes sent and not yet recorded
	kv       jetstream.KeyValue
}

// record is one lease bucket entry.
type record struct {
	p   int
	rev uint64 // its revision; 0 for a delete known from the deleting node
	// after is, for a delete known from the deleting node, the revision it
	// deleted at: the key's previous entry.
	after uint64
	op    jetstream.KeyValueOp
	lease *messages.PartitionLease // puts
	// lo and hi bound when the server stored it: its timestamp for a
	// watched entry, the client's send and reply for a recorded one.
	lo, hi  time.Time
	watched bool
}

// pos orders a partition's records: by revision, a recorded delete right
// after the entry it deleted at.
func (r record) pos() (uint64, int) {
	if r.rev == 0 {
		return r.after, 1
	}
	return r.rev, 0
}

func newHistory(ttl time.Duration) *history {
	return &history{ttl: ttl, inflight: map[int]struct{}{}}
}

// watch starts the watcher, once the lease bucket exists.
func (h *history) watch(t *testing.T, c *natstest.Cluster) {
	t.Helper()
	js, err := c.Server(0).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kv, err := js.KeyValue(ctx, DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IncludeHistory())
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.kv = kv
	h.mu.Unlock()
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			p, ok := parseKey(e.Key())
			if !ok {
				continue
			}
			r := record{p: p, rev: e.Revision(), op: e.Operation(), lo: e.Created(), hi: e.Created(), watched: true}
			if r.op == jetstream.KeyValuePut {
				r.lease = &messages.PartitionLease{}
				if err := proto.Unmarshal(e.Value(), r.lease); err != nil {
					r.lease = nil // reported by check
				}
			}
			h.mu.Lock()
			h.entries = append(h.entries, r)
			h.watched = max(h.watched, e.Revision())
			h.mu.Unlock()
		}
	}()
}

// begin registers a lease write about to be sent.
func (h *history) begin() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextOp++
	h.inflight[h.nextOp] = struct{}{}
	return h.nextOp
}

// end records the outcome of write id (r is nil when it failed).
func (h *history) end(id int, r *record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.inflight, id)
	if r != nil {
		h.entries = append(h.entries, *r)
	}
}

// catchUp waits until the history holds every entry written so far: the
// watcher delivered up to the bucket's last revision, and every node's
// write sent before then has been recorded.
func (h *history) catchUp(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	kv := h.kv
	h.mu.Unlock()
	if kv == nil {
		t.Fatal("history: not watching")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil {
		t.Fatal("history: no stream info")
	}
	lastRev := bs.StreamInfo().State.LastSeq
	h.mu.Lock()
	pending := slices.Collect(maps.Keys(h.inflight))
	h.mu.Unlock()
	testwait.For(t, 20*time.Second, fmt.Sprintf("history catches up with revision %d", lastRev), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, id := range pending {
			if _, ok := h.inflight[id]; ok {
				return false
			}
		}
		return h.watched >= lastRev
	})
}

// recordingJS hands the manager a lease bucket that records its writes.
type recordingJS struct {
	jetstream.JetStream
	h *history
}

func (r recordingJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &recordingKV{KeyValue: kv, h: r.h, last: map[string]uint64{}}, nil
}

// recordingKV records one node's successful lease writes in h.
type recordingKV struct {
	jetstream.KeyValue
	h *history

	mu   sync.Mutex
	last map[string]uint64 // this node's last successful write per key
}

func (k *recordingKV) put(key string, value []byte, write func() (uint64, error)) (uint64, error) {
	id := k.h.begin()
	sent := time.Now()
	rev, err := write()
	if err != nil {
		k.h.end(id, nil)
		return rev, err
	}
	k.mu.Lock()
	k.last[key] = rev
	k.mu.Unlock()
	p, ok := parseKey(key)
	l := &messages.PartitionLease{}
	if !ok || proto.Unmarshal(value, l) != nil {
		k.h.end(id, nil)
		return rev, err
	}
	k.h.end(id, &record{p: p, rev: rev, op: jetstream.KeyValuePut, lease: l, lo: sent, hi: time.Now()})
	return rev, nil
}

func (k *recordingKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return k.put(key, value, func() (uint64, error) { return k.KeyValue.Create(ctx, key, value, opts...) })
}

func (k *recordingKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	return k.put(key, value, func() (uint64, error) { return k.KeyValue.Update(ctx, key, value, rev) })
}

// Delete records a successful delete as the key's entry right after this
// node's last write of it: the manager only deletes at the revision of its
// own last write (jetstream.LastRevision), so a delete that succeeds
// directly follows that write.
func (k *recordingKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	id := k.h.begin()
	k.mu.Lock()
	after := k.last[key]
	k.mu.Unlock()
	sent := time.Now()
	err := k.KeyValue.Delete(ctx, key, opts...)
	p, ok := parseKey(key)
	if err != nil || !ok || after == 0 {
		k.h.end(id, nil)
		return err
	}
	k.h.end(id, &record{p: p, after: after, op: jetstream.KeyValueDelete, lo: sent, hi: time.Now()})
	return nil
}

// check waits for the history to catch up, then asserts the single-owner
// invariant on it: a lease is only created on a free key, only renewed by
// its holder at its epoch, and epochs grow. It returns, per partition, the
// ops that ended a lease (KeyValueDelete for a hand-off, KeyValuePurge for
// an expiry).
func (h *history) check(t *testing.T) map[int][]jetstream.KeyValueOp {
	t.Helper()
	h.catchUp(t)
	h.mu.Lock()
	recs := slices.Clone(h.entries)
	h.mu.Unlock()

	// One record per entry (the watched copy where both exist), each
	// partition's in revision order.
	watched := map[[2]uint64]bool{}
	for _, r := range recs {
		if r.watched {
			watched[[2]uint64{uint64(r.p), r.rev}] = true
		}
	}
	recs = slices.DeleteFunc(recs, func(r record) bool {
		return !r.watched && r.rev != 0 && watched[[2]uint64{uint64(r.p), r.rev}]
	})
	slices.SortStableFunc(recs, func(a, b record) int {
		if a.p != b.p {
			return a.p - b.p
		}
		ar, as := a.pos()
		br, bs := b.pos()
		if ar != br {
			return cmp.Compare(ar, br)
		}
		return as - bs
	})

	type holder struct {
		node, inc string
		epoch     uint64
		lo        time.Time // the holder's last write, earliest server time
	}
	cur := map[int]*holder{}
	last := map[int]uint64{}
	ends := map[int][]jetstream.KeyValueOp{}
	for _, r := range recs {
		p := r.p
		if r.op != jetstream.KeyValuePut {
			if _, known := last[p]; !known {
				last[p] = 0
			}
			if cur[p] != nil {
				ends[p] = append(ends[p], r.op)
			}
			cur[p] = nil
			continue
		}
		l := r.lease
		if l == nil {
			t.Fatalf("partition %d: malformed lease at revision %d", p, r.rev)
		}
		if l.GetEpoch() == 0 { // acquisition
			// The expiry marker may be missing (lost with a dead stream
			// leader, or replaced before the watcher saw it); then the old
			// lease must have lapsed by server time.
			if c := cur[p]; c != nil && r.hi.Before(c.lo.Add(h.ttl)) {
				t.Fatalf("partition %d: %s acquired at %d while %s held it at epoch %d", p, l.GetNode(), r.rev, c.node, c.epoch)
			}
			if r.rev <= last[p] {
				t.Fatalf("partition %d: epoch %d not above %d", p, r.rev, last[p])
			}
			cur[p] = &holder{l.GetNode(), l.GetIncarnation(), r.rev, r.lo}
			last[p] = r.rev
			continue
		}
		if _, known := last[p]; !known { // the history began mid-lease
			cur[p] = &holder{l.GetNode(), l.GetIncarnation(), l.GetEpoch(), r.lo}
			last[p] = l.GetEpoch()
			continue
		}
		if c := cur[p]; c == nil || c.node != l.GetNode() || c.inc != l.GetIncarnation() || c.epoch != l.GetEpoch() {
			t.Fatalf("partition %d: renewal by %s at epoch %d does not match holder %+v", p, l.GetNode(), l.GetEpoch(), c)
		}
		cur[p].lo = r.lo
	}
	return ends
}

func TestJoinHandsOffAThirdAndLeaveHandsBack(t *testing.T) {
	// Nothing here waits for a lease to expire, so a long TTL costs no time
	// and keeps a node starved of CPU for a second (race detector, loaded
	// CI machine) from losing a lease or its membership, which would move
	// partitions this test expects to stay put.
	const ttl = 10 * time.Second
	c := natstest.RunCluster(t, 3)
	log := &hookLog{}
	hist := newHistory(ttl)
	a := startNodeWith(t, c, 0, log, hist, ttl)
	hist.watch(t, c)
	b := startNodeWith(t, c, 1, log, hist, ttl)
	testwait.For(t, 15*time.Second, "two nodes converge", func() bool { return converged([]*node{a, b}) })
	before := owners([]*node{a, b})

	joined := time.Now()
	n2 := startNodeWith(t, c, 2, log, hist, ttl)
	all := []*node{a, b, n2}
	d := testwait.For(t, 15*time.Second, "three nodes converge", func() bool { return converged(all) })
	after := owners(all)
	var moved []int
	for p := range testPartitions {
		if before[p].node != after[p].node {
			moved = append(moved, p)
			if after[p].node != n2.name {
				t.Fatalf("partition %d moved from %s to %s, not to the new node", p, before[p].node, after[p].node)
			}
			if after[p].epoch <= before[p].epoch {
				t.Fatalf("partition %d: epoch %d after move, %d before", p, after[p].epoch, before[p].epoch)
			}
		} else if after[p].epoch != before[p].epoch {
			t.Fatalf("partition %d stayed on %s but its epoch changed", p, after[p].node)
		}
	}
	t.Logf("join moved %d/%d partitions in %s (converged %s after start)", len(moved), testPartitions, time.Since(joined), d)
	if len(moved) < testPartitions/6 || len(moved) > testPartitions/2 {
		t.Fatalf("join moved %d partitions, want about a third", len(moved))
	}

	// Hand-off order: the old owner's release precedes the new acquisition.
	events := log.all()
	for _, p := range moved {
		rel, acq := -1, -1
		for i, e := range events {
			if e.p != p {
				continue
			}
			if !e.acquire && e.node == before[p].node && e.epoch == before[p].epoch {
				if e.why != Handoff {
					t.Fatalf("partition %d released for %s, want handoff", p, e.why)
				}
				rel = i
			}
			if e.acquire && e.node == n2.name && e.epoch == after[p].epoch {
				acq = i
			}
		}
		if rel < 0 || acq < 0 || rel > acq {
			t.Fatalf("partition %d: release at %d, acquire at %d", p, rel, acq)
		}
	}
	ends := hist.check(t)
	for _, p := range moved {
		if len(ends[p]) == 0 || ends[p][len(ends[p])-1] != jetstream.KeyValueDelete {
			t.Fatalf("partition %d: lease ended by %v, want a hand-off delete", p, ends[p])
		}
	}

	// Graceful leave: node-2 hands everything back, each lease ended by its
	// delete rather than by expiry, and the old owners take them at once.
	left := time.Now()
	n2.stop(t)
	d = testwait.For(t, 15*time.Second, "partitions handed back on leave", func() bool { return converged([]*node{a, b}) })
	t.Logf("graceful leave: partitions back %s after Stop (%s converge)", time.Since(left), d)
	if took := time.Since(left); took >= ttl {
		t.Fatalf("partitions handed back %s after Stop, not before a lease (TTL %s) could expire", took, ttl)
	}
	back := owners([]*node{a, b})
	ends = hist.check(t)
	for _, p := range moved {
		if len(ends[p]) == 0 || ends[p][len(ends[p])-1] != jetstream.KeyValueDelete {
			t.Fatalf("partition %d: node-2's lease ended by %v, want a delete on leave", p, ends[p])
		}
		if back[p].node != before[p].node || back[p].epoch <= after[p].epoch {
			t.Fatalf("partition %d back on %s at epoch %d, want %s above %d", p, back[p].node, back[p].epoch, before[p].node, after[p].epoch)
		}
	}
}

// Hand-offs that drain slowly must not delay the renewals of the leases
// the node keeps: drained one after another, 20 hand-offs of 3/4 TTL each
// would leave the other leases unrenewed for many TTLs.
func TestSlowHandoffsDoNotCostOtherLeases(t *testing.T) {
	c := natstest.RunCluster(t, 2)
	drain := testTTL * 3 / 4
	log := &hookLog{drain: func(node string, why Reason) time.Duration {
		if why == Handoff {
			return drain
		}
		return 0
	}}
	a := startNode(t, c, 0, log)
	testwait.For(t, 15*time.Second, "one node owns everything", func() bool { return converged([]*node{a}) })
	joined := time.Now()
	b := startNode(t, c, 1, log)
	d := testwait.For(t, 20*time.Second, "two nodes converge", func() bool { return converged([]*node{a, b}) })
	handoffs := 0
	for _, e := range log.all() {
		if e.node != a.name || e.acquire {
			continue
		}
		switch e.why {
		case Lost:
			t.Fatalf("%s lost partition %d while handing others off", a.name, e.p)
		case Handoff:
			handoffs++
		}
	}
	if handoffs < testPartitions/4 {
		t.Fatalf("%d hand-offs, want about half of %d", handoffs, testPartitions)
	}
	t.Logf("%d hand-offs draining %s each converged %s after the join (%s)", handoffs, drain, time.Since(joined), d)
	if serial := time.Duration(handoffs) * drain; d >= serial/2 {
		t.Fatalf("converged after %s: hand-offs were not drained concurrently (one after another: %s)", d, serial)
	}
}

func TestCrashedNodesPartitionsTakenOverAfterExpiry(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	log := &hookLog{}
	hist := newHistory(testTTL)
	nodes := []*node{startNodeWith(t, c, 0, log, hist, testTTL)}
	hist.watch(t, c)
	nodes = append(nodes, startNodeWith(t, c, 1, log, hist, testTTL), startNodeWith(t, c, 2, log, hist, testTTL))
	testwait.For(t, 15*time.Second, "three nodes converge", func() bool { return converged(nodes) })
	before := owners(nodes)

	crashed := time.Now()
	nodes[2].crash()
	c.Stop(2)
	survivors := nodes[:2]
	// What the survivors see, for the failure message.
	seen := func() error {
		var b strings.Builder
		for _, n := range survivors {
			var names []string
			for _, m := range n.mem.Members() {
				names = append(names, m.Name)
			}
			fmt.Fprintf(&b, "\n%s members %v owned %d", n.name, names, len(n.pm.Owned()))
			for p := range testPartitions {
				n.pm.mu.Lock()
				v := n.pm.views[p]
				n.pm.mu.Unlock()
				if v.node == "node-2" {
					fmt.Fprintf(&b, "\n  p%d view %+v", p, v)
				}
			}
		}
		return errors.New(b.String())
	}
	testwait.Until(t, 3*testTTL+5*time.Second, "the survivors to take over", func() error {
		if convergedBy(survivors, false) {
			return nil
		}
		return seen()
	})
	t.Logf("failover after crash: %s (lease TTL %s)", time.Since(crashed), testTTL)
	// The watched directories catch up too (a watcher whose consumer lived
	// on the dead server resumes after its heartbeat check).
	d := testwait.For(t, 20*time.Second, "directories agree", func() bool { return converged(survivors) })
	t.Logf("directories agree %s later", d)
	after := owners(survivors)
	took := 0
	for p, b := range before {
		if b.node != nodes[2].name {
			if after[p] != b {
				t.Fatalf("partition %d of a survivor moved: %+v → %+v", p, b, after[p])
			}
			continue
		}
		took++
		if after[p].epoch <= b.epoch {
			t.Fatalf("partition %d taken over at epoch %d, not above %d", p, after[p].epoch, b.epoch)
		}
	}
	if took == 0 {
		t.Fatal("the crashed node owned nothing")
	}
	hist.check(t)
}

func TestStaleOwnerLearnsItLostTheLease(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	log := &hookLog{}
	a, b := startNode(t, c, 0, log), startNode(t, c, 1, log)
	testwait.For(t, 15*time.Second, "two nodes converge", func() bool { return converged([]*node{a, b}) })
	var p int
	var epoch uint64
	for p, epoch = range a.pm.Owned() {
		break
	}
	a.pm.mu.Lock()
	staleRev, validUntil := a.pm.owned[p].rev, a.pm.owned[p].validUntil
	a.pm.mu.Unlock()

	// A long pause: a's manager and membership stop renewing; b sees a
	// leave and takes the partition once the lease expired.
	a.pm.gate.Lock()
	paused := true
	defer func() {
		if paused {
			a.pm.gate.Unlock()
		}
	}()
	a.mem.Abort()
	testwait.For(t, 3*testTTL+5*time.Second, "b takes over", func() bool {
		e, ok := b.pm.Holds(p)
		return ok && e > epoch
	})
	bEpoch, _ := b.pm.Holds(p)
	for _, e := range log.all() {
		if e.acquire && e.node == b.name && e.p == p && e.epoch == bEpoch && !e.at.After(validUntil) {
			t.Fatalf("b acquired at %s, before a's local deadline %s", e.at, validUntil)
		}
	}
	// Even before a's loop runs again, a no longer claims the partition.
	if _, ok := a.pm.Holds(p); ok {
		t.Fatal("paused a still claims the partition past its deadline")
	}
	// Any compare-and-set renewal by the stale owner fails.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.pm.renew(ctx, p, epoch, staleRev); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		t.Fatalf("stale renewal: err = %v, want a revision mismatch", err)
	}

	a.pm.gate.Unlock()
	paused = false
	testwait.For(t, 5*time.Second, "a reports the loss", func() bool {
		for _, e := range log.all() {
			if !e.acquire && e.node == a.name && e.p == p && e.epoch == epoch {
				return e.why == Lost
			}
		}
		return false
	})
	if o, e, ok := a.pm.Owner(p); !ok || o != b.name || e != bEpoch {
		t.Fatalf("a sees owner %s@%d (ok=%v), want %s@%d", o, e, ok, b.name, bEpoch)
	}
}

func TestPartitionOfAndDesired(t *testing.T) {
	// Pinned (which also shows it is deterministic): changing the hash would re-map every key of a live cluster.
	if got := PartitionOf("staff/alice", 64); got != 58 {
		t.Fatalf("PartitionOf(staff/alice) = %d, want %d", got, 58)
	}
	three := []string{"node-0", "node-1", "node-2"}
	count := map[string]int{}
	for p := range 3000 {
		count[Desired(p, three)]++
		if Desired(p, three) != Desired(p, []string{"node-2", "node-0", "node-1"}) {
			t.Fatal("Desired depends on member order")
		}
		if d := Desired(p, append(three, "node-3")); d != "node-3" && d != Desired(p, three) {
			t.Fatalf("adding node-3 moved partition %d between old members", p)
		}
	}
	for n, k := range count {
		if k < 800 || k > 1200 {
			t.Fatalf("%s desired for %d of 3000 partitions", n, k)
		}
	}
	if Desired(1, nil) != "" {
		t.Fatal("Desired over no members")
	}
}

// Refresh must report a partition free when its key is gone, even if the
// watched copy still names an owner (a deletion the watcher has not
// delivered yet): otherwise callers keep being sent to that owner.
func TestRefreshForgetsADeletedOwner(t *testing.T) {
	srv := natstest.Run(t)
	js, err := srv.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "refresh_test"})
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: Config{Partitions: 4}, kv: kv, views: make([]view, 4), owned: map[int]*held{}}
	m.views[2] = view{rev: 5, present: true, node: "ghost", epoch: 5, initialized: true, seen: time.Now()}
	if node, _, ok := m.Owner(2); !ok || node != "ghost" {
		t.Fatalf("before refresh: owner %q %v, want the watched ghost", node, ok)
	}
	node, _, ok, err := m.Refresh(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("after refresh: owner %q, want none (the key does not exist)", node)
	}
	// A live lease is reported as it is.
	b, err := proto.Marshal(&messages.PartitionLease{Node: "n1", Incarnation: "i"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, Key(3), b); err != nil {
		t.Fatal(err)
	}
	if node, _, ok, err = m.Refresh(ctx, 3); err != nil || !ok || node != "n1" {
		t.Fatalf("refresh of a held partition: %q %v %v, want n1", node, ok, err)
	}
}

// A node that is leaving takes no partition that frees up meanwhile (it
// would only have to hand it straight back); before Leave it does.
func TestLeavingNodeAcquiresNothing(t *testing.T) {
	c := natstest.RunCluster(t, 2)
	log := &hookLog{}
	a := startNode(t, c, 0, log)
	testwait.For(t, 15*time.Second, "one node owns everything", func() bool { return converged([]*node{a}) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// free deletes p's lease behind the manager's back, as an expiry would.
	free := func(p int) uint64 {
		a.pm.mu.Lock()
		h := *a.pm.owned[p]
		a.pm.mu.Unlock()
		if err := a.pm.kv.Delete(ctx, Key(p), jetstream.LastRevision(h.rev)); err != nil {
			t.Fatal(err)
		}
		return h.epoch
	}
	lost := func(p int, epoch uint64) bool {
		for _, e := range log.all() {
			if !e.acquire && e.p == p && e.epoch == epoch && e.why == Lost {
				return true
			}
		}
		return false
	}
	old := free(1)
	testwait.For(t, 10*time.Second, "partition 1 taken again at a new epoch", func() bool {
		epoch, ok := a.pm.Holds(1)
		return ok && epoch != old
	})
	a.pm.Leave()
	old = free(2)
	testwait.For(t, 10*time.Second, "partition 2's lease seen lost", func() bool { return lost(2, old) })
	// Eight reconcile passes, each a chance to take partition 2 again (the
	// pass running now, which saw the loss, may be the ninth from here).
	mark := a.passes.n.Load()
	testwait.For(t, 10*time.Second, "eight reconcile passes after the loss", func() bool { return a.passes.n.Load() >= mark+9 })
	if epoch, ok := a.pm.Holds(2); ok {
		t.Fatalf("a leaving node acquired partition 2 at epoch %d", epoch)
	}
}

// TestDeafWatcherStillLearnsATakeOver: a node whose watcher hears nothing
// (its consumer died with a crashed node) still learns, by reading the
// bucket, that a partition it saw free has been taken by another node,
// instead of reporting it ownerless until the watcher is replaced.
func TestDeafWatcherStillLearnsATakeOver(t *testing.T) {
	c := natstest.RunCluster(t, 2)
	log := &hookLog{}
	a := startNode(t, c, 0, log)
	testwait.For(t, 15*time.Second, "one node owns everything", func() bool { return converged([]*node{a}) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// a stops acquiring, and partition 5 becomes free behind its back.
	a.pm.Leave()
	a.pm.mu.Lock()
	h := *a.pm.owned[5]
	a.pm.mu.Unlock()
	if err := a.pm.kv.Delete(ctx, Key(5), jetstream.LastRevision(h.rev)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "a to see partition 5 free", func() bool {
		_, _, ok := a.pm.Owner(5)
		return !ok
	})
	a.pm.deaf.Store(true)
	// node-x takes partition 5 and renews it, as a live owner would.
	lease, _ := proto.Marshal(&messages.PartitionLease{Node: "node-x", Incarnation: "x1"})
	rev, err := a.pm.kv.Create(ctx, Key(5), lease)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			select {
			case <-done:
				return
			case <-time.After(testTTL / 4):
			}
			if r, err := a.pm.kv.Update(ctx, Key(5), lease, rev); err == nil {
				rev = r
			}
		}
	}()
	defer func() { close(done); <-renewed }()
	testwait.For(t, 10*time.Second, "deaf a to report node-x as partition 5's owner", func() bool {
		owner, _, ok := a.pm.Owner(5)
		return ok && owner == "node-x"
	})
}

// TestOwnerNeverReportsALeaseNoLongerHeld: past its local deadline a
// paused node no longer holds its lease, which the bucket still shows as
// its own until the server expires it; Owner then reports no owner, not
// this node (GET /v1/cluster, and requests this node would send itself).
func TestOwnerNeverReportsALeaseNoLongerHeld(t *testing.T) {
	c := natstest.RunCluster(t, 2)
	a := startNode(t, c, 0, &hookLog{})
	testwait.For(t, 15*time.Second, "one node owns everything", func() bool { return converged([]*node{a}) })
	a.pm.gate.Lock()
	paused := true
	defer func() {
		if paused {
			a.pm.gate.Unlock()
		}
	}()
	testwait.For(t, 2*testTTL, "a's lease of partition 0 past its local deadline", func() bool {
		_, ok := a.pm.Holds(0)
		return !ok
	})
	if owner, epoch, ok := a.pm.Owner(0); ok && owner == a.name {
		t.Fatalf("Owner reports %s@%d, which no longer holds the partition", owner, epoch)
	}
	a.pm.gate.Unlock()
	paused = false
}

// TestDroppedLeaseTakenBackAtOnce: a node whose renewals went unanswered
// past its local deadline (here: paused) drops its leases, but when the
// bucket still holds its own entry (a late renewal got through), it takes
// the lease back at once, at a new epoch, instead of waiting for it to
// expire: the acquisition comes while the old lease is still live, which a
// create could not do.
func TestDroppedLeaseTakenBackAtOnce(t *testing.T) {
	const ttl = 6 * time.Second // room between the local deadline and the expiry
	c := natstest.RunCluster(t, 2)
	log := &hookLog{}
	a := startNodeWith(t, c, 0, log, nil, ttl)
	testwait.For(t, 30*time.Second, "one node owns everything", func() bool { return converged([]*node{a}) })
	a.pm.mu.Lock()
	h := *a.pm.owned[7]
	a.pm.mu.Unlock()
	a.pm.gate.Lock()
	paused := true
	defer func() {
		if paused {
			a.pm.gate.Unlock()
		}
	}()
	testwait.For(t, 2*ttl, "a's lease of partition 7 past its local deadline", func() bool {
		_, ok := a.pm.Holds(7)
		return !ok
	})
	// The renewal that got through late: the bucket keeps a's lease for
	// another TTL from now.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.pm.renew(ctx, 7, h.epoch, h.rev); err != nil {
		t.Fatal(err)
	}
	renewed := time.Now()
	a.pm.gate.Unlock()
	paused = false
	var again event
	testwait.For(t, 2*ttl, "a to hold partition 7 again", func() bool {
		for _, e := range log.all() {
			if e.acquire && e.p == 7 && e.epoch > h.epoch {
				again = e
				return true
			}
		}
		return false
	})
	if !again.at.Before(renewed.Add(ttl)) {
		t.Fatalf("partition 7 taken again at %s, after the late renewal's lease expired (%s): not taken back", again.at, renewed.Add(ttl))
	}
	lostAt := false
	for _, e := range log.all() {
		lostAt = lostAt || (!e.acquire && e.p == 7 && e.epoch == h.epoch && e.why == Lost)
	}
	if !lostAt {
		t.Fatal("the dropped lease was not released as lost before it was taken back")
	}
}

// A member on standby (its store unreachable) hands its partitions to the
// others, without waiting for a lease to expire, and takes its share back
// when it comes off; with every member on standby all are owners.
func TestStandbyNodeHandsOffAndTakesBack(t *testing.T) {
	const ttl = 10 * time.Second // nothing here waits for an expiry
	c := natstest.RunCluster(t, 3)
	log := &hookLog{}
	all := []*node{startNodeWith(t, c, 0, log, nil, ttl), startNodeWith(t, c, 1, log, nil, ttl), startNodeWith(t, c, 2, log, nil, ttl)}
	testwait.For(t, 15*time.Second, "three nodes converge", func() bool { return converged(all) })
	standby := func(n *node, on bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.mem.SetStandby(ctx, on); err != nil {
			t.Fatal(err)
		}
	}

	began := time.Now()
	standby(all[2], true)
	testwait.For(t, 15*time.Second, "node-0 and node-1 own every partition", func() bool {
		return converged(all[:2]) && len(all[2].pm.Owned()) == 0
	})
	if took := time.Since(began); took >= ttl {
		t.Fatalf("partitions moved %s after standby: by expiry, not hand-off (TTL %s)", took, ttl)
	}
	for _, e := range log.all() {
		if e.node == all[2].name && !e.acquire && e.why != Handoff {
			t.Fatalf("node-2 gave up partition %d for %s, want handoff", e.p, e.why)
		}
	}

	standby(all[2], false)
	testwait.For(t, 15*time.Second, "three nodes converge again", func() bool { return converged(all) })

	// Every member on standby (the database is down for all): standby
	// tells nothing apart, and the partitions are placed over all of them
	// again (on the way, while only some were, they moved to the rest).
	for _, n := range all {
		standby(n, true)
	}
	testwait.For(t, 15*time.Second, "every member on standby: placed over all three", func() bool { return converged(all) })
}

func TestPlacedOverLeavesStandbyOut(t *testing.T) {
	m := func(name string, standby bool) membership.Member {
		mem := membership.Member{Name: name}
		if standby {
			mem.Meta = map[string]string{membership.MetaStandby: "store"}
		}
		return mem
	}
	for _, tc := range []struct {
		self    membership.Member
		members []membership.Member
		want    []string
	}{
		{m("a", false), []membership.Member{m("a", false), m("b", false)}, []string{"a", "b"}},
		{m("a", true), []membership.Member{m("a", false), m("b", false), m("c", false)}, []string{"b", "c"}},
		{m("a", false), []membership.Member{m("b", true), m("c", false)}, []string{"a", "c"}},
		{m("a", true), []membership.Member{m("a", true), m("b", true)}, []string{"a", "b"}},
	} {
		if got := placedOver(tc.self, tc.members); !slices.Equal(got, tc.want) {
			t.Errorf("placedOver(%v, %v) = %v, want %v", tc.self, tc.members, got, tc.want)
		}
	}
}
