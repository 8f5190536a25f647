// Package placement is a cluster node's answer to "who decides for this
// key, under which epoch" for the two that ask it before the node has
// joined: the routers (cluster/route.Placement) and the fenced actor kinds
// (schedule, resource, inventory), whose activations take their epoch
// from the partition lease. The partition manager starts after both exist,
// so a Lazy answers through it once Set and holds nothing before.
//
// Lease epochs are the cluster's fencing tokens: an activation writes its
// calendar's epoch as the lease's token (partition.Token: the lease
// bucket's creation second in the high 32 bits plus the lease revision),
// which grows with every new owner. An activation whose token is below the
// stored one (a node whose lease was taken over) is refused by the store
// with persistence.ErrFenced instead of fencing out the new owner.
package placement

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/persistence"
)

// Leases is what placement asks of the partition manager;
// *partition.Manager implements it.
type Leases interface {
	PartitionOf(key string) int
	Holds(p int) (epoch uint64, ok bool)
	Owner(p int) (node string, epoch uint64, ok bool)
	Token(epoch uint64) int64
}

var _ Leases = (*partition.Manager)(nil)

// Lazy forwards to the partition manager once it exists; before, nothing
// is held.
type Lazy struct {
	m atomic.Pointer[Leases]
	// SplitBrain is the test hook: act as a stale owner of every
	// partition. Set it before the first activation.
	SplitBrain bool
	// fenced counts activations refused because a later owner's epoch is
	// stored.
	fenced atomic.Int64
}

// ErrNotOwner refuses an activation on a node that does not hold the
// calendar's partition: the request is retried at the owner.
var ErrNotOwner = errors.New("cluster: this node does not hold the calendar's partition")

func (l *Lazy) manager() Leases {
	if p := l.m.Load(); p != nil {
		return *p
	}
	return nil
}

// Fence issues a calendar's activation epoch from its partition's lease:
// the Fence of actors/schedule, actors/resource and actors/inventory in a
// cluster.
func (l *Lazy) Fence(ctx context.Context, tx persistence.Tx, calendarID string) (int64, error) {
	m := l.manager()
	if m == nil {
		return 0, ErrNotOwner
	}
	p := m.PartitionOf(calendarID)
	epoch, ok := m.Holds(p)
	if !ok && l.SplitBrain {
		// A stale owner: the epoch it held before the current owner's.
		_, current, _ := m.Owner(p)
		epoch, ok = max(current, 1)-1, true
	}
	if !ok {
		return 0, ErrNotOwner
	}
	token := m.Token(epoch)
	err := tx.CalendarActivateAt(ctx, calendarID, token)
	if errors.Is(err, persistence.ErrFenced) {
		l.fenced.Add(1)
	}
	return token, err
}

// Fenced counts the activations refused to this node as a stale owner
// (spa_cluster_fenced_activations_total).
func (l *Lazy) Fenced() int64 { return l.fenced.Load() }

// Set makes m the partition manager from now on.
func (l *Lazy) Set(m Leases) { l.m.Store(&m) }

// PartitionOf returns key's partition (the same before and after Set).
func (l *Lazy) PartitionOf(key string) int {
	return partition.PartitionOf(key, partition.DefaultPartitions)
}

// Holds reports whether this node holds p, and under which epoch.
func (l *Lazy) Holds(p int) (uint64, bool) {
	m := l.manager()
	if m == nil {
		return 0, false
	}
	return m.Holds(p)
}
