package kvwatch

import (
	"context"
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
