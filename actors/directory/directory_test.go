package directory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/spa-engine/spa/actors/testwait"
)

// echo answers each request with its id and records its stops.
type echo struct {
	id      string
	stopped *sync.Map
}

func (e *echo) Receive(c actor.Context) {
	switch c.Message().(type) {
	case string:
		c.Respond(e.id)
	case Stop:
		e.stopped.Store(e.id, true)
		c.Stop(c.Self())
	}
}

func newTestDirectory(t *testing.T) (*Directory, *sync.Map) {
	t.Helper()
	stopped := &sync.Map{}
	return newDirectory(t, "echoes", func(id string) actor.Actor { return &echo{id: id, stopped: stopped} }), stopped
}

// newDirectory is a directory of the actors newActor makes, stopped when
// the test ends.
func newDirectory(t *testing.T, name string, newActor func(id string) actor.Actor) *Directory {
	t.Helper()
	sys := actor.NewActorSystem()
	d, err := New(sys.Root, Config{
		Name:        name,
		Spawn:       func(id string) actor.Producer { return func() actor.Actor { return newActor(id) } },
		Refuse:      func(_ any, err error) any { return err },
		ErrShutdown: errors.New("shutting down"),
		Timeout:     2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(2 * time.Second) })
	return d
}

// InvalidateWhere retires exactly the matching activations (a node giving
// up a partition), and Live follows activations and retirements.
func TestInvalidateWhereRetiresOnlyMatchingActivations(t *testing.T) {
	d, stopped := newTestDirectory(t)
	ctx := context.Background()
	for _, id := range []string{"p1/ana", "p1/bea", "p2/cam"} {
		if got, err := d.Ask(ctx, id, "hi"); err != nil || got != id {
			t.Fatalf("ask %s: %v %v", id, got, err)
		}
	}
	if n := d.Live(); n != 3 {
		t.Fatalf("live %d, want 3", n)
	}
	d.InvalidateWhere(func(id string) bool { return id[:3] == "p1/" })
	testwait.For(t, 5*time.Second, "the p1 actors to retire", func() bool { return d.Live() == 1 })
	for id, want := range map[string]bool{"p1/ana": true, "p1/bea": true, "p2/cam": false} {
		if _, got := stopped.Load(id); got != want {
			t.Fatalf("%s stopped %v, want %v", id, got, want)
		}
	}
	// A retired calendar activates afresh on its next request.
	if got, err := d.Ask(ctx, "p1/ana", "again"); err != nil || got != "p1/ana" {
		t.Fatalf("ask after retirement: %v %v", got, err)
	}
	if n := d.Live(); n != 2 {
		t.Fatalf("live %d after reactivation, want 2", n)
	}
}

// slowStop counts the requests it answers and, told to stop, stops only
// once release is closed: an activation whose last write hangs on the
// store.
type slowStop struct {
	answered *sync.Map
	release  chan struct{}
}

func (s *slowStop) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case string:
		s.answered.Store(m, true)
		c.Respond(m)
	case Stop:
		go func() { <-s.release; c.ActorSystem().Root.Stop(c.Self()) }()
	}
}

// A request that arrives while its calendar's activation retires waits for
// the next activation, unless its caller stopped waiting meanwhile: then
// it is dropped, not applied after the caller was told it failed. A
// request still awaited goes to the next activation.
func TestParkedRequestDroppedOnceItsCallerGaveUp(t *testing.T) {
	answered, release := &sync.Map{}, make(chan struct{})
	d := newDirectory(t, "slow", func(string) actor.Actor { return &slowStop{answered: answered, release: release} })
	if _, err := d.Ask(context.Background(), "cal", "first"); err != nil {
		t.Fatal(err)
	}
	d.Invalidate("cal") // retiring until release is closed
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.Ask(short, "cal", "given up"); err == nil {
		t.Fatal("a request to a retiring activation was answered before it stopped")
	}
	// Sent (and parked behind the retirement) before the release.
	awaited := d.root.RequestFuture(d.pid, envelope{id: "cal", msg: "awaited", deadline: time.Now().Add(5 * time.Second)}, 5*time.Second)
	close(release)
	if _, err := awaited.Result(); err != nil {
		t.Fatalf("the awaited request: %v", err)
	}
	if _, ok := answered.Load("awaited"); !ok {
		t.Fatal("the awaited request did not reach the next activation")
	}
	if _, ok := answered.Load("given up"); ok {
		t.Fatal("a request whose caller had given up was applied by the next activation")
	}
}
