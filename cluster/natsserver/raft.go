package natsserver

import (
	"time"
	_ "unsafe" // go:linkname: nats-server has no option for its Raft timing

	// The variables linked below live in this package.
	_ "github.com/nats-io/nats-server/v2/server"
)

// Raft timing of the embedded server's JetStream groups (the meta group,
// every replicated stream and consumer: the lease and membership buckets
// among them). nats-server's defaults (a heartbeat every 1s, an election
// after 4-9s of silence) suit a WAN: in a cluster they made a kill -9 of
// the node leading the lease bucket cost up to 8 s of fail-over, because
// no lease could be renewed, freed or taken until the survivors elected
// a new leader. The nodes of a cluster share a LAN, where a heartbeat
// every 250ms and an election after 1-2s of silence (4-8 missed
// heartbeats) is both quick and safe from false elections.
//
// nats-server reads these package variables, which it has no option for,
// when a group starts and at each timer reset; they are set once, in
// init, before any server starts. The build pins nats-server's version
// (go.mod), and TestRaftTimingApplies checks that the link still holds.
const (
	RaftHeartbeat          = 250 * time.Millisecond
	RaftMinElectionTimeout = time.Second
	RaftMaxElectionTimeout = 2 * time.Second
)

//go:linkname raftHeartbeat github.com/nats-io/nats-server/v2/server.hbInterval
var raftHeartbeat time.Duration

//go:linkname raftMinElection github.com/nats-io/nats-server/v2/server.minElectionTimeout
var raftMinElection time.Duration

//go:linkname raftMaxElection github.com/nats-io/nats-server/v2/server.maxElectionTimeout
var raftMaxElection time.Duration

func init() {
	raftHeartbeat = RaftHeartbeat
	raftMinElection = RaftMinElectionTimeout
	raftMaxElection = RaftMaxElectionTimeout
}
