package route

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/forward"
	"github.com/spa-engine/spa/cluster/partition"
)

// fakeLocal answers with the message it got, after release is closed
// when block is set.
type fakeLocal struct {
	mu          sync.Mutex
	asked       []string
	invalidated []string
	block       chan struct{}
	live        int // what Live reports
}

func (l *fakeLocal) Ask(_ context.Context, id string, msg any) (any, error) {
	l.mu.Lock()
	l.asked = append(l.asked, id)
	block := l.block
	l.mu.Unlock()
	if block != nil {
		<-block
	}
	return msg, nil
}

func (l *fakeLocal) Invalidate(id string) {
	l.mu.Lock()
	l.invalidated = append(l.invalidated, id)
	l.mu.Unlock()
}

// InvalidateWhere retires the asked ids that match, as a directory would
// retire its live activations.
func (l *fakeLocal) InvalidateWhere(match func(string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range l.asked {
		if match(id) && !slices.Contains(l.invalidated, id) {
			l.invalidated = append(l.invalidated, id)
		}
	}
}

func (l *fakeLocal) Live() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live
}

type fakePlacement struct{ held map[int]bool }

func (f fakePlacement) PartitionOf(key string) int { return partition.PartitionOf(key, 64) }
func (f fakePlacement) Holds(p int) (uint64, bool) { return 7, f.held[p] }

type fakeSender struct {
	p   int
	key string
}

func (s *fakeSender) Request(_ context.Context, p int, key string, msg proto.Message) (proto.Message, error) {
	s.p, s.key = p, key
	return wrapperspb.String("remote:" + msg.(*wrapperspb.StringValue).GetValue()), nil
}

// codec carries string messages as StringValue; the id is the value.
var codec = Codec{
	Key:     func(id string) string { return "k/" + id },
	Example: &wrapperspb.StringValue{},
	Request: func(id string, msg any) (proto.Message, error) { return wrapperspb.String(id), nil },
	DecodeRequest: func(m proto.Message) (string, any, error) {
		v := m.(*wrapperspb.StringValue).GetValue()
		if v == "" {
			return "", nil, errors.New("no id")
		}
		return v, v, nil
	},
	Reply:          func(r any) (proto.Message, error) { return wrapperspb.String(r.(string)), nil },
	DecodeReply:    func(m proto.Message) (any, error) { return m.(*wrapperspb.StringValue).GetValue(), nil },
	IdempotencyKey: func(msg any) string { return "key-" + msg.(string) },
}

func newRouter(held ...int) (*Router, *fakeLocal, *fakeSender) {
	pl := fakePlacement{held: map[int]bool{}}
	for _, p := range held {
		pl.held[p] = true
	}
	l := &fakeLocal{}
	r := New(Config{Kind: "test", Local: l, Placement: pl, Codec: codec, DrainTimeout: time.Second})
	s := &fakeSender{}
	r.sender = s
	return r, l, s
}

func TestAskGoesLocalOnlyWhenThePartitionIsServed(t *testing.T) {
	r, _, s := newRouter()
	p := r.Partition("ana")
	got, err := r.Ask(context.Background(), "ana", "ana")
	if err != nil || got != "remote:ana" || s.p != p || s.key != "key-ana" {
		t.Fatalf("not held: got %v %v, sent to %d with key %q", got, err, s.p, s.key)
	}
	r, l, _ := newRouter(p)
	// Held but not yet acquired through the hook: still forwarded.
	if got, _ := r.Ask(context.Background(), "ana", "ana"); got != "remote:ana" {
		t.Fatalf("held before OnAcquire: %v", got)
	}
	r.Acquired(p, 7)
	if got, _ := r.Ask(context.Background(), "ana", "ana"); got != "ana" || len(l.asked) != 1 {
		t.Fatalf("served: %v, local asks %v", got, l.asked)
	}
	if e := r.Served()[p]; e != 7 {
		t.Fatalf("served epoch %d", e)
	}
}

func TestHandleRefusesWhatThisNodeDoesNotServe(t *testing.T) {
	r, _, _ := newRouter()
	p := r.Partition("ana")
	_, err := r.handle(context.Background(), &forward.Request{Partition: p, Message: wrapperspb.String("ana")})
	if !errors.Is(err, forward.ErrNotOwner) {
		t.Fatalf("unserved partition: %v", err)
	}
	r, _, _ = newRouter(p)
	r.Acquired(p, 7)
	_, err = r.handle(context.Background(), &forward.Request{Partition: (p + 1) % 64, Message: wrapperspb.String("ana")})
	if !errors.Is(err, forward.ErrBadRequest) {
		t.Fatalf("wrong partition: %v", err)
	}
	_, err = r.handle(context.Background(), &forward.Request{Partition: p, Message: wrapperspb.String("")})
	if !errors.Is(err, forward.ErrUnknownType) {
		t.Fatalf("undecodable: %v", err)
	}
	out, err := r.handle(context.Background(), &forward.Request{Partition: p, Message: wrapperspb.String("ana")})
	if err != nil || out.(*wrapperspb.StringValue).GetValue() != "ana" {
		t.Fatalf("served: %v %v", out, err)
	}
}

func TestReleaseDrainsThenRetiresThePartitionsActors(t *testing.T) {
	r, _, _ := newRouter()
	p := r.Partition("ana")
	r, l, _ := newRouter(p)
	r.Acquired(p, 7)
	l.block = make(chan struct{})
	asked := make(chan any)
	go func() {
		got, _ := r.Ask(context.Background(), "ana", "ana")
		asked <- got
	}()
	testwait.For(t, 5*time.Second, "the Ask to reach the actor", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.asked) == 1
	})
	// An actor of another partition lives here too: the release must not
	// retire it.
	other := "bea"
	for i := 0; r.Partition(other) == p; i++ {
		other = fmt.Sprintf("bea%d", i)
	}
	l.mu.Lock()
	l.asked = append(l.asked, other)
	l.mu.Unlock()
	released := make(chan struct{})
	go func() { r.Released(p, 7, partition.Handoff); close(released) }()
	select {
	case <-released:
		t.Fatal("release returned with a request in flight")
	case <-time.After(50 * time.Millisecond):
	}
	// New requests no longer go local while draining.
	if got, _ := r.Ask(context.Background(), "ana", "ana"); got != "remote:ana" {
		t.Fatalf("during drain: %v", got)
	}
	close(l.block)
	if got := <-asked; got != "ana" {
		t.Fatalf("in flight: %v", got)
	}
	<-released
	if len(l.invalidated) != 1 || l.invalidated[0] != "ana" {
		t.Fatalf("invalidated %v", l.invalidated)
	}
	if len(r.Served()) != 0 {
		t.Fatalf("still served: %v", r.Served())
	}
}

func TestServeAllDecidesLocallyWithoutALease(t *testing.T) {
	r, l, s := newRouter()
	r.cfg.ServeAll = true
	if got, err := r.Ask(context.Background(), "ana", "ana"); err != nil || got != "ana" || len(l.asked) != 1 || s.key != "" {
		t.Fatalf("serve-all: %v %v, local %v, forwarded %q", got, err, l.asked, s.key)
	}
}

// TestLocalTellsServedPartitions: Local is true exactly for the actors
// whose partition this node serves (and for every actor under ServeAll).
func TestLocalTellsServedPartitions(t *testing.T) {
	r, _, _ := newRouter(partition.PartitionOf("k/ana", 64))
	if !r.Local("ana") {
		t.Fatal("ana's partition is served here: want Local")
	}
	for _, id := range []string{"bea", "caro", "dani"} {
		if r.Partition(id) != r.Partition("ana") && r.Local(id) {
			t.Fatalf("%s lives in partition %d, not served: want not Local", id, r.Partition(id))
		}
	}
	r.cfg.ServeAll = true
	if !r.Local("bea") {
		t.Fatal("serve-all: want every actor Local")
	}
}

// nowLocal is a directory that answers every request at once.
type nowLocal struct{ *fakeLocal }

func (nowLocal) AskNow(id string, msg any) (any, bool) { return "now:" + id, true }

// TestAskNowOnlyForServedPartitions: AskNow answers through the directory
// only for a partition this node serves, and only when the directory can
// answer at once.
func TestAskNowOnlyForServedPartitions(t *testing.T) {
	r, l, _ := newRouter(partition.PartitionOf("k/ana", 64))
	if _, ok := r.AskNow("ana", "ana"); ok {
		t.Fatal("a directory without AskNow answered at once")
	}
	r.cfg.Local = nowLocal{l}
	if _, ok := r.AskNow("ana", "ana"); ok {
		t.Fatal("answered before the partition was acquired through the hook")
	}
	r.Acquired(r.Partition("ana"), 7)
	if got, ok := r.AskNow("ana", "ana"); !ok || got != "now:ana" {
		t.Fatalf("served partition: %v, %v", got, ok)
	}
	for _, id := range []string{"bea", "caro", "dani"} {
		if r.Partition(id) != r.Partition("ana") {
			if _, ok := r.AskNow(id, id); ok {
				t.Fatalf("%s's partition is not served, yet answered here", id)
			}
		}
	}
}

// invCodec is codec plus Invalidate, carried as "inv:<id>".
var invCodec = func() Codec {
	c := codec
	c.Request = func(id string, msg any) (proto.Message, error) {
		if _, ok := msg.(*Invalidate); ok {
			return wrapperspb.String("inv:" + id), nil
		}
		return wrapperspb.String(id), nil
	}
	c.DecodeRequest = func(m proto.Message) (string, any, error) {
		v := m.(*wrapperspb.StringValue).GetValue()
		if id, ok := strings.CutPrefix(v, "inv:"); ok {
			return id, &Invalidate{}, nil
		}
		return v, v, nil
	}
	c.Reply = func(r any) (proto.Message, error) {
		if _, ok := r.(*Invalidated); ok {
			return wrapperspb.String("invalidated"), nil
		}
		return wrapperspb.String(r.(string)), nil
	}
	c.DecodeReply = func(m proto.Message) (any, error) {
		if v := m.(*wrapperspb.StringValue).GetValue(); v != "invalidated" {
			return v, nil
		}
		return &Invalidated{}, nil
	}
	c.IdempotencyKey = func(any) string { return "" }
	return c
}()

// ownerSender delivers to another router's handle, as forward would.
type ownerSender struct {
	owner *Router
	sent  chan string
}

func (s *ownerSender) Request(ctx context.Context, p int, _ string, msg proto.Message) (proto.Message, error) {
	s.sent <- msg.(*wrapperspb.StringValue).GetValue()
	return s.owner.handle(ctx, &forward.Request{Partition: p, Message: msg})
}

// TestInvalidateReachesTheOwner: an Invalidate for a partition served here
// retires the local activation; one for another node's partition is
// forwarded and retires the activation there, never here.
func TestInvalidateReachesTheOwner(t *testing.T) {
	probe, _, _ := newRouter()
	p := probe.Partition("ana")
	owner, ownerLocal, _ := newRouter(p)
	owner.cfg.Codec = invCodec
	owner.Acquired(p, 7)

	owner.Invalidate("ana")
	if len(ownerLocal.invalidated) != 1 || len(ownerLocal.asked) != 0 {
		t.Fatalf("local invalidate: invalidated %v, asked %v", ownerLocal.invalidated, ownerLocal.asked)
	}

	other, otherLocal, _ := newRouter()
	other.cfg.Codec = invCodec
	sender := &ownerSender{owner: owner, sent: make(chan string, 1)}
	other.sender = sender
	other.Invalidate("ana")
	select {
	case got := <-sender.sent:
		if got != "inv:ana" {
			t.Fatalf("forwarded %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("invalidate was not forwarded")
	}
	testwait.For(t, 5*time.Second, "both invalidations to reach the owner's actor", func() bool {
		ownerLocal.mu.Lock()
		defer ownerLocal.mu.Unlock()
		return len(ownerLocal.invalidated) == 2
	})
	if len(otherLocal.invalidated) != 0 || len(ownerLocal.asked) != 0 {
		t.Fatalf("forwarded invalidate: here %v, owner asked %v", otherLocal.invalidated, ownerLocal.asked)
	}
	// Asked directly, the owner answers Invalidated without asking the actor.
	if got, err := owner.Ask(context.Background(), "ana", &Invalidate{}); err != nil || !isInvalidated(got) {
		t.Fatalf("local Ask(Invalidate): %v %v", got, err)
	}
	ownerLocal.mu.Lock()
	ownerLocal.live = 3
	ownerLocal.mu.Unlock()
	if parts, actors := owner.Stats(); parts != 1 || actors != 3 {
		t.Fatalf("owner stats: %d partitions, %d actors", parts, actors)
	}
}

func isInvalidated(v any) bool { _, ok := v.(*Invalidated); return ok }
