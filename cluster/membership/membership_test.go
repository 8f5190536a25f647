package membership_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/membership"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

const ttl = 2 * time.Second

// recorder keeps every Change a node reported.
type recorder struct {
	mu      sync.Mutex
	changes []membership.Change
}

func (r *recorder) add(c membership.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) all() []membership.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

func (r *recorder) left(name, inc string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		for _, m := range c.Left {
			if m.Name == name && m.Incarnation == inc {
				return true
			}
		}
	}
	return false
}

func join(t *testing.T, c *natstest.Cluster, i int, rec *recorder) *membership.Node {
	t.Helper()
	js, err := c.Server(i).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := membership.Config{
		Name:     fmt.Sprintf("node-%d", i),
		Meta:     map[string]string{"server": c.Name(i)},
		TTL:      ttl,
		Replicas: membership.Replicas(c.N()),
	}
	if rec != nil {
		cfg.OnChange = rec.add
	}
	n, err := membership.Join(ctx, js, cfg)
	if err != nil {
		t.Fatalf("join node-%d: %v", i, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n
}

func names(n *membership.Node) []string {
	var out []string
	for _, m := range n.Members() {
		out = append(out, m.Name)
	}
	return out
}

func has(n *membership.Node, name, inc string) bool {
	m, ok := n.Member(name)
	return ok && (inc == "" || m.Incarnation == inc)
}

func startThree(t *testing.T) (*natstest.Cluster, []*membership.Node, []*recorder) {
	c := natstest.RunCluster(t, 3)
	var nodes []*membership.Node
	var recs []*recorder
	for i := range 3 {
		r := &recorder{}
		recs = append(recs, r)
		nodes = append(nodes, join(t, c, i, r))
	}
	want := []string{"node-0", "node-1", "node-2"}
	for _, n := range nodes {
		testwait.For(t, 5*time.Second, fmt.Sprintf("three members visible to %s", n.Self().Name), func() bool {
			return slices.Equal(names(n), want)
		})
	}
	return c, nodes, recs
}

func TestThreeNodesSeeEachOther(t *testing.T) {
	_, nodes, _ := startThree(t)
	for _, n := range nodes {
		for _, o := range nodes {
			m, ok := n.Member(o.Self().Name)
			if !ok || m.Incarnation != o.Self().Incarnation || m.Meta["server"] == "" {
				t.Fatalf("%s sees %s as %+v (ok=%v), want %+v", n.Self().Name, o.Self().Name, m, ok, o.Self())
			}
		}
	}
	// Renewals keep everyone listed well past the TTL.
	ch, cancel := nodes[0].Subscribe()
	defer cancel()
	deadline := time.After(2 * ttl)
	for {
		select {
		case <-ch:
			if len(nodes[0].Members()) != 3 {
				t.Fatalf("member set changed without a leave: %v", names(nodes[0]))
			}
		case <-deadline:
			return
		}
	}
}

func TestGracefulLeaveSeenQuickly(t *testing.T) {
	_, nodes, recs := startThree(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gone := nodes[2].Self()
	if err := nodes[2].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes[:2] {
		// Here the bound is the point: a leave seen within half the TTL
		// was not an expiry.
		d := testwait.For(t, ttl/2, "graceful leave seen before the TTL could expire it",
			func() bool { return !has(n, gone.Name, "") })
		t.Logf("node-%d saw the leave after %s", i, d)
		testwait.For(t, time.Second, "leave reported to OnChange", func() bool { return recs[i].left(gone.Name, gone.Incarnation) })
	}
}

func TestCrashSeenWithinTTLAndRestartRejoins(t *testing.T) {
	c, nodes, recs := startThree(t)
	old := nodes[2].Self()

	// Crash: renewals stop without a deregistration, and node 2's NATS
	// server dies with it.
	crashed := time.Now()
	nodes[2].Abort()
	c.Stop(2)
	for i, n := range nodes[:2] {
		testwait.For(t, ttl+3*time.Second, "crashed node expired", func() bool { return !has(n, old.Name, "") })
		t.Logf("node-%d saw the crash after %s (TTL %s)", i, time.Since(crashed), ttl)
		if !recs[i].left(old.Name, old.Incarnation) {
			t.Fatalf("node-%d: crash not reported to OnChange", i)
		}
	}

	// The restarted process rejoins under the same name, new incarnation.
	c.Restart(2)
	again := join(t, c, 2, nil)
	if again.Self().Incarnation == old.Incarnation {
		t.Fatal("restart reused the incarnation")
	}
	for _, n := range []*membership.Node{nodes[0], nodes[1], again} {
		testwait.For(t, 10*time.Second, "restarted node visible with its new incarnation",
			func() bool { return has(n, old.Name, again.Self().Incarnation) && len(n.Members()) == 3 })
	}
}
