package membership_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/membership"
)

// A node whose health check keeps failing goes on standby, every member
// sees it (a Change names it), and it comes off once the check passes
// again; a single failure moves nothing.
func TestStandbyWhileUnhealthy(t *testing.T) {
	_, nodes, recs := startThree(t)
	var failing atomic.Bool
	var checks atomic.Int64
	check := func(context.Context) error {
		checks.Add(1)
		if failing.Load() {
			return errors.New("store unreachable")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		nodes[0].WatchHealth(ctx, membership.Health{Check: check, Every: 20 * time.Millisecond, After: 200 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()

	standbyAt := func(n *membership.Node) bool { m, ok := n.Member("node-0"); return ok && m.Standby() }
	// One failed check, then passes: no standby.
	failing.Store(true)
	from := checks.Load()
	testwait.For(t, 5*time.Second, "a failed check", func() bool { return checks.Load() > from })
	failing.Store(false)
	from = checks.Load()
	testwait.For(t, 5*time.Second, "checks past the standby delay", func() bool { return checks.Load() > from+20 })
	if nodes[0].Self().Standby() {
		t.Fatal("one failed check put the node on standby")
	}

	failing.Store(true)
	for _, n := range nodes {
		testwait.For(t, 5*time.Second, "node-0 on standby as "+n.Self().Name+" sees it", func() bool { return standbyAt(n) })
	}
	if !nodes[0].Self().Standby() {
		t.Fatal("node-0 does not see itself on standby")
	}
	changed := false
	for _, c := range recs[1].all() {
		for _, m := range c.Changed {
			changed = changed || m.Name == "node-0" && m.Standby()
		}
	}
	if !changed {
		t.Fatal("node-1 reported no change naming node-0 on standby")
	}
	if got := len(nodes[1].Members()); got != 3 {
		t.Fatalf("node-1 lists %d members, want 3: standby is not leaving", got)
	}

	failing.Store(false)
	for _, n := range nodes {
		testwait.For(t, 5*time.Second, "node-0 off standby as "+n.Self().Name+" sees it", func() bool { return !standbyAt(n) })
	}
}
