package natsserver

import (
	"testing"
	"time"
	_ "unsafe" // go:linkname
)

// nats-server's own draw of an election timeout. A function, unlike a
// variable, must exist to link: should a nats-server upgrade rename it,
// this test no longer builds and the timing below needs a new look.
//
//go:linkname natsRandElectionTimeout github.com/nats-io/nats-server/v2/server.randElectionTimeout
func natsRandElectionTimeout() time.Duration

// TestRaftTimingApplies: the election timeouts nats-server draws are
// within the bounds this package set, not its 4-9s defaults, so the
// variables init writes are the ones the server reads.
func TestRaftTimingApplies(t *testing.T) {
	for range 1000 {
		if d := natsRandElectionTimeout(); d < RaftMinElectionTimeout || d >= RaftMaxElectionTimeout {
			t.Fatalf("nats-server drew an election timeout of %v, want [%v, %v)", d, RaftMinElectionTimeout, RaftMaxElectionTimeout)
		}
	}
}
