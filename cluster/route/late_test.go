package route

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/cluster/forward"
)

func TestLateAnswersUnavailableUntilSet(t *testing.T) {
	l := &Late{Kind: "session"}
	_, err := l.Ask(context.Background(), "k", "code")
	var fe *forward.Error
	if !errors.Is(err, forward.ErrUnavailable) || !errors.As(err, &fe) || fe.Message != "session actors not started yet" {
		t.Fatalf("before Set: %v, want a retryable UNAVAILABLE naming the kind", err)
	}
	l.Invalidate("k") // nothing to retire, and no panic
	l.InvalidateWhere(func(string) bool { return true })
	if l.Live() != 0 {
		t.Fatal("live actors before Set")
	}
	local := &fakeLocal{live: 3}
	l.Set(local)
	if got, err := l.Ask(context.Background(), "k", "code"); err != nil || got != "code" {
		t.Fatalf("after Set: %v %v", got, err)
	}
	l.Invalidate("k")
	if l.Live() != 3 || len(local.invalidated) != 1 {
		t.Fatalf("live %d, invalidated %v", l.Live(), local.invalidated)
	}
}

// tellingLocal records asks and tells, and signals each ask.
type tellingLocal struct {
	fakeLocal
	mu    sync.Mutex
	told  []any
	asked chan any
}

func (l *tellingLocal) Ask(ctx context.Context, id string, msg any) (any, error) {
	l.asked <- msg
	return l.fakeLocal.Ask(ctx, id, msg)
}

func (l *tellingLocal) Tell(_ string, msg any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.told = append(l.told, msg)
}

func TestSwitchIsLocalUntilTheRouterThenTellsWithoutWaiting(t *testing.T) {
	local := &tellingLocal{asked: make(chan any, 4)}
	s := NewSwitch(local, time.Second, nil)
	if got, err := s.Ask(context.Background(), "oil", "level"); err != nil || got != "level" || <-local.asked != "level" {
		t.Fatalf("before Use: %v %v", got, err)
	}
	s.Tell("oil", "consumed")
	if len(local.told) != 1 || local.told[0] != "consumed" {
		t.Fatalf("before Use, Tell is the directory's: told %v", local.told)
	}

	// With the router: Ask goes through it (here forwarded), Tell asks in
	// a goroutine the caller does not wait for.
	r, served, sender := newRouter()
	s.Use(r)
	if got, err := s.Ask(context.Background(), "oil", "level"); err != nil || got != "remote:oil" || sender.key != "key-level" {
		t.Fatalf("after Use: %v %v (key %q)", got, err, sender.key)
	}
	p := r.Partition("oil")
	r2, _, _ := newRouter(p)
	r2.cfg.Local = local
	r2.Acquired(p, 7)
	s.Use(r2)
	block := make(chan struct{})
	local.block = block // the owner is slow: Tell must not wait for it
	returned := make(chan struct{})
	go func() { s.Tell("oil", "consumed"); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Tell waited for the owner's answer")
	}
	select {
	case msg := <-local.asked:
		if msg != "consumed" {
			t.Fatalf("delivered %v", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the notice never reached the actor")
	}
	close(block)
	if len(served.asked) != 0 || len(local.told) != 1 {
		t.Fatalf("served %v, told %v: the notice went elsewhere", served.asked, local.told)
	}
}
