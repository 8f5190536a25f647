package placement

import (
	"context"
	"errors"
	"testing"

	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/persistence"
)

// leases holds the partitions in held, at their epoch; owners are the
// current owners' epochs of the others.
type leases struct {
	held   map[int]uint64
	owners map[int]uint64
}

func (l leases) PartitionOf(key string) int {
	return partition.PartitionOf(key, partition.DefaultPartitions)
}
func (l leases) Holds(p int) (uint64, bool) { e, ok := l.held[p]; return e, ok }
func (l leases) Owner(p int) (string, uint64, bool) {
	if e, ok := l.held[p]; ok {
		return "self", e, true
	}
	e, ok := l.owners[p]
	return "other", e, ok
}
func (l leases) Token(epoch uint64) int64 { return 1<<32 + int64(epoch) }

// activating is a transaction that takes lease epochs, recording them.
type activating struct {
	persistence.Tx
	calendar string
	epoch    int64
	err      error
}

func (a *activating) CalendarActivateAt(_ context.Context, calendarID string, epoch int64) error {
	a.calendar, a.epoch = calendarID, epoch
	return a.err
}

func TestNothingIsHeldBeforeTheManager(t *testing.T) {
	var l Lazy
	p := l.PartitionOf("staff/ana")
	if p != partition.PartitionOf("staff/ana", partition.DefaultPartitions) {
		t.Fatalf("partition %d", p)
	}
	if _, ok := l.Holds(p); ok {
		t.Fatal("held before the manager started")
	}
	tx := &activating{}
	if _, err := l.Fence(context.Background(), tx, "staff/ana"); !errors.Is(err, ErrNotOwner) || tx.calendar != "" {
		t.Fatalf("fence before the manager: %v, activated %q", err, tx.calendar)
	}
}

func TestFenceWritesTheLeaseToken(t *testing.T) {
	const cal = "staff/ana"
	p := partition.PartitionOf(cal, partition.DefaultPartitions)
	other := "staff/bob"
	for partition.PartitionOf(other, partition.DefaultPartitions) == p {
		other += "x"
	}
	po := partition.PartitionOf(other, partition.DefaultPartitions)
	m := leases{held: map[int]uint64{p: 5}, owners: map[int]uint64{po: 9}}
	var l Lazy
	l.Set(m)
	if e, ok := l.Holds(p); !ok || e != 5 {
		t.Fatalf("holds %d %v", e, ok)
	}
	ctx := context.Background()

	tx := &activating{}
	token, err := l.Fence(ctx, tx, cal)
	if err != nil || token != m.Token(5) || tx.calendar != cal || tx.epoch != token {
		t.Fatalf("fence = %d, %v; activated %q at %d", token, err, tx.calendar, tx.epoch)
	}
	if _, err := l.Fence(ctx, &activating{}, other); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("another node's partition: %v, want ErrNotOwner", err)
	}
	if l.Fenced() != 0 {
		t.Fatalf("fenced %d before any refusal", l.Fenced())
	}
	refused := &activating{err: persistence.ErrFenced}
	if _, err := l.Fence(ctx, refused, cal); !errors.Is(err, persistence.ErrFenced) || l.Fenced() != 1 {
		t.Fatalf("a later owner's epoch stored: %v, fenced %d", err, l.Fenced())
	}

	// The split-brain hook acts as the stale owner: the epoch before the
	// current owner's.
	l.SplitBrain = true
	tx = &activating{}
	if token, err := l.Fence(ctx, tx, other); err != nil || token != m.Token(8) || tx.epoch != token {
		t.Fatalf("split brain = %d, %v; want the token of epoch 8", token, err)
	}
}
