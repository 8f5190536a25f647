package kvwatch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	js, err := natstest.Run(t).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "watched"})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// next returns the next entry's key ("" for the end-of-replay nil).
func next(t *testing.T, w *Watch) string {
	t.Helper()
	select {
	case e, ok := <-w.Entries():
		if !ok {
			t.Fatal("entries closed")
		}
		if e == nil {
			return ""
		}
		return e.Key() + "=" + string(e.Value())
	case <-time.After(10 * time.Second):
		t.Fatal("no entry")
	}
	return ""
}

func follow(t *testing.T, kv jetstream.KeyValue, silence time.Duration) *Watch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return Follow(ctx, first, Config{Open: func(ctx context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx) }, Silence: silence})
}

func TestAClosedWatcherIsReplacedAndReplays(t *testing.T) {
	kv := bucket(t)
	w := follow(t, kv, time.Hour)
	if got := next(t, w); got != "" {
		t.Fatalf("empty bucket replay: %q", got)
	}
	if _, err := kv.PutString(t.Context(), "a", "1"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != "a=1" {
		t.Fatalf("got %q", got)
	}
	if err := w.Current().Stop(); err != nil { // the watcher dies
		t.Fatal(err)
	}
	// The replacement replays the current value, then the marker.
	if got := next(t, w); got != "a=1" {
		t.Fatalf("replay: %q", got)
	}
	if got := next(t, w); got != "" {
		t.Fatalf("replay end: %q", got)
	}
	if _, err := kv.PutString(t.Context(), "b", "2"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != "b=2" {
		t.Fatalf("after replacement: %q", got)
	}
	if w.Restarts() != 1 {
		t.Fatalf("restarts %d", w.Restarts())
	}
}

func TestASilentWatcherIsReplaced(t *testing.T) {
	kv := bucket(t)
	w := follow(t, kv, 200*time.Millisecond)
	if got := next(t, w); got != "" {
		t.Fatalf("empty bucket replay: %q", got)
	}
	// Nothing is written: the watcher counts as dead and is replaced,
	// each replacement replaying the (empty) bucket.
	if got := next(t, w); got != "" {
		t.Fatalf("replacement replay: %q", got)
	}
	if w.Restarts() < 1 {
		t.Fatalf("restarts %d", w.Restarts())
	}
	if _, err := kv.PutString(t.Context(), "c", "3"); err != nil {
		t.Fatal(err)
	}
	for {
		if got := next(t, w); got == "c=3" {
			break
		} else if got != "" {
			t.Fatalf("got %q", got)
		}
	}
}

// A watcher is opened with the follower's lifetime context (nats.go ties
// the subscription to it), so that context has no deadline: a consumer
// create request that nobody answers (a stream electing its leader) must
// not hang the follower for good. Each try is bounded and retried.
func TestAnUnansweredOpenIsRetried(t *testing.T) {
	kv := bucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	w := Follow(ctx, first, Config{Silence: time.Hour, Open: func(ctx context.Context) (jetstream.KeyWatcher, error) {
		if calls.Add(1) == 1 {
			<-ctx.Done() // the request is never answered
			return nil, ctx.Err()
		}
		return kv.WatchAll(ctx)
	}})
	if got := next(t, w); got != "" {
		t.Fatalf("empty bucket replay: %q", got)
	}
	if _, err := kv.PutString(t.Context(), "a", "1"); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != "a=1" {
		t.Fatalf("got %q", got)
	}
	if err := w.Current().Stop(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, w); got != "a=1" {
		t.Fatalf("replay: %q", got)
	}
	if got := next(t, w); got != "" {
		t.Fatalf("replay end: %q", got)
	}
	if calls.Load() != 2 {
		t.Fatalf("opens %d, want 2", calls.Load())
	}
}

// Open gives up when its ctx ends even though the request is never
// answered (start-up: membership.Join, partition.Start), and the watcher
// context it handed to open is cancelled.
func TestOpenGivesUpWithCtx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ended := make(chan struct{}, 8)
	began := time.Now()
	_, _, err := Open(ctx, context.Background(), func(ctx context.Context) (jetstream.KeyWatcher, error) {
		<-ctx.Done()
		ended <- struct{}{}
		return nil, ctx.Err()
	})
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
	select {
	case <-ended:
	case <-time.After(time.Second):
		t.Fatal("the watcher context was not cancelled")
	}
}
