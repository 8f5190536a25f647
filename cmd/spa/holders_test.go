package main

import (
	"testing"

	"github.com/spa-engine/spa/cluster/membership"
)

// TestMemberHolders: a key's holder in a cluster is "<node>/<incarnation>";
// it lives while the member list has that node at that incarnation, and
// is gone once the node left (or crashed past the membership TTL) or
// restarted as a new incarnation.
func TestMemberHolders(t *testing.T) {
	members := map[string]membership.Member{
		"node-a":    {Name: "node-a", Incarnation: "aaa"},
		"zone/b":    {Name: "zone/b", Incarnation: "bbb2"}, // restarted: was bbb1
		"node-self": {Name: "node-self", Incarnation: "sss"},
	}
	h := memberHolders{
		self:   func() membership.Member { return members["node-self"] },
		member: func(name string) (membership.Member, bool) { m, ok := members[name]; return m, ok },
	}
	if h.Self() != "node-self/sss" {
		t.Fatalf("Self = %q", h.Self())
	}
	for holder, alive := range map[string]bool{
		"node-a/aaa":   true,
		"zone/b/bbb2":  true,
		"zone/b/bbb1":  false, // the incarnation before the restart
		"node-c/ccc":   false, // left or crashed
		"no-node-here": true,  // not a member's holder: wait for the lease
	} {
		if got := h.Alive(holder); got != alive {
			t.Errorf("Alive(%q) = %v, want %v", holder, got, alive)
		}
	}
}
