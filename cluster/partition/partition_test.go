package partition

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/cluster/membership"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/messages"
)

const (
	testTTL        = 2 * time.Second
	testPartitions = 64
)

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

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
	name string
	mem  *membership.Node
	pm   *Manager
}

func startNode(t *testing.T, c *natstest.Cluster, i int, log *hookLog) *node {
	t.Helper()
	js, err := c.Server(i).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := fmt.Sprintf("node-%d", i)
	mem, err := membership.Join(ctx, js, membership.Config{Name: name, TTL: testTTL, Replicas: membership.Replicas(c.N())})
	if err != nil {
		t.Fatal(err)
	}
	pm, err := Start(ctx, js, mem, Config{
		Partitions: testPartitions,
		LeaseTTL:   testTTL,
		Replicas:   membership.Replicas(c.N()),
		Hooks: Hooks{
			OnAcquire: func(p int, epoch uint64) { log.add(event{node: name, acquire: true, p: p, epoch: epoch}) },
			OnRelease: func(p int, epoch uint64, why Reason) {
				log.add(event{node: name, p: p, epoch: epoch, why: why})
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, mem: mem, pm: pm}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop leaves gracefully: partitions first, then membership.
func (n *node) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.pm.Stop(ctx); err != nil {
		t.Logf("%s: partition stop: %v", n.name, err)
	}
	_ = n.mem.Stop(ctx)
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

// history records every entry of the lease bucket as it happens.
type history struct {
	mu      sync.Mutex
	entries []jetstream.KeyValueEntry
}

func watchHistory(t *testing.T, c *natstest.Cluster) *history {
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
	h := &history{}
	go func() {
		for e := range w.Updates() {
			if e != nil {
				h.mu.Lock()
				h.entries = append(h.entries, e)
				h.mu.Unlock()
			}
		}
	}()
	return h
}

// check asserts the single-owner invariant on the recorded history: a
// lease is only created on a free key, only renewed by its holder at its
// epoch, and epochs grow. It returns, per partition, the ops that ended a
// lease (KeyValueDelete for a hand-off, KeyValuePurge for an expiry).
func (h *history) check(t *testing.T) map[int][]jetstream.KeyValueOp {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	type holder struct {
		node, inc string
		epoch     uint64
		last      time.Time // the holder's last write, server time
	}
	cur := map[int]*holder{}
	last := map[int]uint64{}
	ends := map[int][]jetstream.KeyValueOp{}
	for _, e := range h.entries {
		p, ok := parseKey(e.Key())
		if !ok {
			continue
		}
		if e.Operation() != jetstream.KeyValuePut {
			if _, known := last[p]; !known {
				last[p] = 0
			}
			if cur[p] != nil {
				ends[p] = append(ends[p], e.Operation())
			}
			cur[p] = nil
			continue
		}
		var l messages.PartitionLease
		if err := proto.Unmarshal(e.Value(), &l); err != nil {
			t.Fatal(err)
		}
		if l.GetEpoch() == 0 { // acquisition
			// The expiry marker may be missing (lost with a dead stream
			// leader); then the old lease must have lapsed by server time.
			if c := cur[p]; c != nil && e.Created().Before(c.last.Add(testTTL)) {
				t.Fatalf("partition %d: %s acquired at %d while %s held it at epoch %d", p, l.GetNode(), e.Revision(), c.node, c.epoch)
			}
			if e.Revision() <= last[p] {
				t.Fatalf("partition %d: epoch %d not above %d", p, e.Revision(), last[p])
			}
			cur[p] = &holder{l.GetNode(), l.GetIncarnation(), e.Revision(), e.Created()}
			last[p] = e.Revision()
			continue
		}
		if _, known := last[p]; !known { // the watch began mid-lease
			cur[p] = &holder{l.GetNode(), l.GetIncarnation(), l.GetEpoch(), e.Created()}
			last[p] = l.GetEpoch()
			continue
		}
		if c := cur[p]; c == nil || c.node != l.GetNode() || c.inc != l.GetIncarnation() || c.epoch != l.GetEpoch() {
			t.Fatalf("partition %d: renewal by %s at epoch %d does not match holder %+v", p, l.GetNode(), l.GetEpoch(), c)
		}
		cur[p].last = e.Created()
	}
	return ends
}

func TestJoinHandsOffAThirdAndLeaveHandsBack(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	log := &hookLog{}
	a, b := startNode(t, c, 0, log), startNode(t, c, 1, log)
	hist := watchHistory(t, c)
	eventually(t, 15*time.Second, "two nodes converge", func() bool { return converged([]*node{a, b}) })
	before := owners([]*node{a, b})

	joined := time.Now()
	n2 := startNode(t, c, 2, log)
	all := []*node{a, b, n2}
	d := eventually(t, 15*time.Second, "three nodes converge", func() bool { return converged(all) })
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

	// Graceful leave: node-2 hands everything back well before a lease
	// could expire.
	left := time.Now()
	n2.stop(t)
	d = eventually(t, testTTL, "partitions handed back on leave", func() bool { return converged([]*node{a, b}) })
	t.Logf("graceful leave: partitions back %s after Stop (%s converge)", time.Since(left), d)
	hist.check(t)
}

func TestCrashedNodesPartitionsTakenOverAfterExpiry(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	log := &hookLog{}
	nodes := []*node{startNode(t, c, 0, log), startNode(t, c, 1, log), startNode(t, c, 2, log)}
	hist := watchHistory(t, c)
	eventually(t, 15*time.Second, "three nodes converge", func() bool { return converged(nodes) })
	before := owners(nodes)

	crashed := time.Now()
	nodes[2].crash()
	c.Stop(2)
	survivors := nodes[:2]
	ok := false
	for start := time.Now(); time.Since(start) < 3*testTTL+5*time.Second; time.Sleep(20 * time.Millisecond) {
		if ok = convergedBy(survivors, false); ok {
			break
		}
	}
	if !ok {
		for _, n := range survivors {
			var names []string
			for _, m := range n.mem.Members() {
				names = append(names, m.Name)
			}
			t.Logf("%s members %v owned %d", n.name, names, len(n.pm.Owned()))
			for p := range testPartitions {
				n.pm.mu.Lock()
				v := n.pm.views[p]
				n.pm.mu.Unlock()
				if v.node == "node-2" {
					t.Logf("  p%d view %+v", p, v)
				}
			}
		}
		t.Fatal("survivors did not take over")
	}
	t.Logf("failover after crash: %s (lease TTL %s)", time.Since(crashed), testTTL)
	// The watched directories catch up too (a watcher whose consumer lived
	// on the dead server resumes after its heartbeat check).
	d := eventually(t, 20*time.Second, "directories agree", func() bool { return converged(survivors) })
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
	eventually(t, 15*time.Second, "two nodes converge", func() bool { return converged([]*node{a, b}) })
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
	eventually(t, 3*testTTL+5*time.Second, "b takes over", func() bool {
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
	eventually(t, 5*time.Second, "a reports the loss", func() bool {
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
