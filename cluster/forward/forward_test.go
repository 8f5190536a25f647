package forward_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/cluster/forward"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/messages"
)

// The partition manager is the production directory.
var _ forward.Directory = (*partition.Manager)(nil)

// table is the ownership truth shared by the fake directories.
type table struct {
	mu    sync.Mutex
	owner map[int]string
	epoch map[int]uint64
}

func (t *table) set(p int, node string, epoch uint64) {
	t.mu.Lock()
	t.owner[p], t.epoch[p] = node, epoch
	t.mu.Unlock()
}

func (t *table) get(p int) (string, uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.owner[p]
	return n, t.epoch[p], ok
}

// dir is one node's view: it may hold a stale cached owner per partition,
// which Refresh replaces with the truth.
type dir struct {
	self  string
	t     *table
	mu    sync.Mutex
	stale map[int]string
}

func (d *dir) Owner(p int) (string, uint64, bool) {
	d.mu.Lock()
	s, ok := d.stale[p]
	d.mu.Unlock()
	if ok {
		return s, 1, true
	}
	return d.t.get(p)
}

func (d *dir) Refresh(_ context.Context, p int) (string, uint64, bool, error) {
	d.mu.Lock()
	delete(d.stale, p)
	d.mu.Unlock()
	n, e, ok := d.t.get(p)
	return n, e, ok, nil
}

func (d *dir) Holds(p int) (uint64, bool) {
	n, e, ok := d.t.get(p)
	return e, ok && n == d.self
}

type env struct {
	t     *table
	nodes map[string]*forward.Forwarder
	dirs  map[string]*dir
	conns map[string]*nats.Conn
}

func setup(t *testing.T, names ...string) *env {
	t.Helper()
	s := natstest.Run(t)
	e := &env{t: &table{owner: map[int]string{}, epoch: map[int]uint64{}}, nodes: map[string]*forward.Forwarder{}, dirs: map[string]*dir{}, conns: map[string]*nats.Conn{}}
	for _, n := range names {
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		d := &dir{self: n, t: e.t, stale: map[int]string{}}
		f, err := forward.New(forward.Config{Node: n, Conn: nc, Directory: d, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		e.nodes[n], e.dirs[n], e.conns[n] = f, d, nc
	}
	return e
}

// echo answers a StudioUpdated with the node's name and what it received.
func echo(node string, served *atomic.Int32) forward.Handler {
	return func(_ context.Context, r *forward.Request) (proto.Message, error) {
		served.Add(1)
		in := r.Message.(*messages.StudioUpdated)
		return &messages.StudioUpdated{StudioId: in.GetStudioId(), Name: node + "|" + r.IdempotencyKey, Version: int64(r.Epoch)}, nil
	}
}

func TestRoundTrip(t *testing.T) {
	e := setup(t, "a", "b")
	var served atomic.Int32
	e.nodes["b"].Handle(&messages.StudioUpdated{}, echo("b", &served))
	e.t.set(7, "b", 42)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := e.nodes["a"].Request(ctx, 7, "idem-1", &messages.StudioUpdated{StudioId: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*messages.StudioUpdated)
	if got.GetStudioId() != "s1" || got.GetName() != "b|idem-1" || got.GetVersion() != 42 {
		t.Fatalf("reply %v", got)
	}
}

func TestUnknownTypeIsATypedErrorNotACrash(t *testing.T) {
	e := setup(t, "a", "b")
	var served atomic.Int32
	e.nodes["b"].Handle(&messages.StudioUpdated{}, echo("b", &served))
	e.t.set(3, "b", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A known Go type without a handler on the receiver.
	_, err := e.nodes["a"].Request(ctx, 3, "k", &messages.CatalogueChanged{})
	if !errors.Is(err, forward.ErrUnknownType) {
		t.Fatalf("err = %v, want unknown type", err)
	}

	// A type the receiver's build has never heard of (a newer node during a
	// rolling deploy), sent as a raw envelope.
	req := &messages.ForwardRequest{
		Partition: 3, Deadline: timestamppb.New(time.Now().Add(5 * time.Second)),
		Payload: &anypb.Any{TypeUrl: "type.googleapis.com/spa.v9.FromTheFuture", Value: []byte{8, 1}},
	}
	b, _ := proto.Marshal(req)
	m, err := e.conns["a"].Request(forward.DefaultSubjectPrefix+".b", b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply messages.ForwardReply
	if err := proto.Unmarshal(m.Data, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.GetError().GetCode() != messages.ForwardError_CODE_UNKNOWN_TYPE {
		t.Fatalf("reply %v, want CODE_UNKNOWN_TYPE", &reply)
	}
	// Garbage is a bad request, and the receiver still serves afterwards.
	m, err = e.conns["a"].Request(forward.DefaultSubjectPrefix+".b", []byte{0xff, 0xff, 0xff}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(m.Data, &reply); err != nil || reply.GetError().GetCode() != messages.ForwardError_CODE_BAD_REQUEST {
		t.Fatalf("garbage: reply %v err %v", &reply, err)
	}
	if _, err := e.nodes["a"].Request(ctx, 3, "k2", &messages.StudioUpdated{}); err != nil {
		t.Fatalf("receiver unusable after bad input: %v", err)
	}
}

func TestNotOwnerRetriesReachTheNewOwner(t *testing.T) {
	e := setup(t, "a", "b", "c")
	var servedA, servedB atomic.Int32
	e.nodes["a"].Handle(&messages.StudioUpdated{}, echo("a", &servedA))
	e.nodes["b"].Handle(&messages.StudioUpdated{}, echo("b", &servedB))
	// The partition moved from a to b; c's cache still says a.
	e.t.set(9, "b", 77)
	e.dirs["c"].stale[9] = "a"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := e.nodes["c"].Request(ctx, 9, "k", &messages.StudioUpdated{StudioId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(*messages.StudioUpdated); got.GetName() != "b|k" || got.GetVersion() != 77 {
		t.Fatalf("reply %v, want b at epoch 77", got)
	}
	if servedA.Load() != 0 || servedB.Load() != 1 {
		t.Fatalf("served a=%d b=%d", servedA.Load(), servedB.Load())
	}

	// No owner for a while (between a release and an acquisition): the
	// sender keeps retrying and gets through once the new owner appears.
	e.t.mu.Lock()
	delete(e.t.owner, 9)
	e.t.mu.Unlock()
	move := time.AfterFunc(150*time.Millisecond, func() { e.t.set(9, "a", 80) })
	defer move.Stop()
	out, err = e.nodes["c"].Request(ctx, 9, "k2", &messages.StudioUpdated{})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(*messages.StudioUpdated); got.GetName() != "a|k2" || got.GetVersion() != 80 {
		t.Fatalf("reply %v, want a at epoch 80", got)
	}
}

func TestDeadlineHonoured(t *testing.T) {
	e := setup(t, "a", "b")
	e.nodes["b"].Handle(&messages.StudioUpdated{}, func(ctx context.Context, _ *forward.Request) (proto.Message, error) {
		<-ctx.Done() // a handler that never finishes on its own
		return nil, ctx.Err()
	})
	e.t.set(1, "b", 1)
	for _, tc := range []struct {
		name string
		p    int
	}{{"slow handler", 1}, {"no owner ever", 2}} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := e.nodes["a"].Request(ctx, tc.p, "k", &messages.StudioUpdated{})
		cancel()
		d := time.Since(start)
		if !errors.Is(err, forward.ErrDeadlineExceeded) {
			t.Fatalf("%s: err = %v, want deadline exceeded", tc.name, err)
		}
		if d > 800*time.Millisecond {
			t.Fatalf("%s: returned after %s, deadline was 300ms", tc.name, d)
		}
		t.Logf("%s: %v after %s", tc.name, err, d)
	}
}

// TestAttemptTimeoutMovesOnToTheNextOwner: an owner that stops answering
// (a paused process) costs one attempt, not the caller's deadline: the
// sender refreshes ownership and reaches the new owner.
func TestAttemptTimeoutMovesOnToTheNextOwner(t *testing.T) {
	s := natstest.Run(t)
	tbl := &table{owner: map[int]string{}, epoch: map[int]uint64{}}
	nodes := map[string]*forward.Forwarder{}
	for _, n := range []string{"a", "b", "c"} {
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		f, err := forward.New(forward.Config{Node: n, Conn: nc, Directory: &dir{self: n, t: tbl, stale: map[int]string{}},
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, AttemptTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		nodes[n] = f
	}
	release := make(chan struct{})
	defer close(release)
	nodes["a"].Handle(&messages.StudioUpdated{}, func(ctx context.Context, _ *forward.Request) (proto.Message, error) {
		<-release // a paused owner
		return nil, errors.New("too late")
	})
	var served atomic.Int32
	nodes["b"].Handle(&messages.StudioUpdated{}, echo("b", &served))
	tbl.set(4, "a", 10)
	// The partition moves to b while a hangs.
	move := time.AfterFunc(300*time.Millisecond, func() { tbl.set(4, "b", 11) })
	defer move.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := nodes["c"].Request(ctx, 4, "k", &messages.StudioUpdated{StudioId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.(*messages.StudioUpdated); got.GetName() != "b|k" || got.GetVersion() != 11 {
		t.Fatalf("reply %v, want b at epoch 11", got)
	}
}

// TestTimedOutAttemptIsResentOnlyWhenIdempotent: a slow owner may still
// apply a request whose attempt timed out, so a request without an
// idempotency key is not sent again (its outcome is unknown: deadline
// exceeded), while one with a key is.
func TestTimedOutAttemptIsResentOnlyWhenIdempotent(t *testing.T) {
	s := natstest.Run(t)
	tbl := &table{owner: map[int]string{}, epoch: map[int]uint64{}}
	nodes := map[string]*forward.Forwarder{}
	for _, n := range []string{"a", "c"} {
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		f, err := forward.New(forward.Config{Node: n, Conn: nc, Directory: &dir{self: n, t: tbl, stale: map[int]string{}},
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		nodes[n] = f
	}
	var received atomic.Int32
	nodes["a"].Handle(&messages.StudioUpdated{}, func(ctx context.Context, _ *forward.Request) (proto.Message, error) {
		received.Add(1)
		<-ctx.Done() // slower than any attempt: the sender cannot know whether it was applied
		return nil, ctx.Err()
	})
	tbl.set(4, "a", 10)
	for _, tc := range []struct {
		key      string
		resent   bool
		deadline time.Duration
	}{{"", false, 2 * time.Second}, {"k", true, 600 * time.Millisecond}} {
		received.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
		_, err := nodes["c"].Request(ctx, 4, tc.key, &messages.StudioUpdated{StudioId: "x"})
		cancel()
		if !errors.Is(err, forward.ErrDeadlineExceeded) {
			t.Fatalf("key %q: %v, want deadline exceeded", tc.key, err)
		}
		if n := received.Load(); (n > 1) != tc.resent || n == 0 {
			t.Fatalf("key %q: the owner received it %d times; resent want %v", tc.key, n, tc.resent)
		}
	}
}
