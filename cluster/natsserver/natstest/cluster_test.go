package natstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

func TestRunClusterReplicatesAndSurvivesRestart(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	for i := range c.N() {
		if a := c.Server(i).ClusterAddr(); a == "" {
			t.Fatalf("server %d has no route listener", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js0, err := c.Server(0).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	// A forming cluster may leave the first request unanswered: retry
	// each try with its own short deadline.
	var kv jetstream.KeyValue
	for {
		tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
		kv, err = js0.CreateOrUpdateKeyValue(tctx, jetstream.KeyValueConfig{Bucket: "fixture", Replicas: 3})
		tcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("R3 bucket: %v", err)
		}
	}
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}

	// With one server down the other two keep quorum.
	c.Stop(2)
	if c.Server(2) != nil {
		t.Fatal("stopped server still returned")
	}
	js1, err := c.Server(1).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	// Lookups and puts may go unanswered while the stream re-elects.
	var kv1 jetstream.KeyValue
	for {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		kv1, err = js1.KeyValue(lctx, "fixture")
		lcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("bucket lookup after stop: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	putUntil(ctx, t, kv1, "k", "v2")

	// The restarted server catches up from its store and the others.
	s2 := c.Restart(2)
	js2, err := s2.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		kv2, err := js2.KeyValue(lctx, "fixture")
		if err == nil {
			if e, err := kv2.Get(lctx, "k"); err == nil && string(e.Value()) == "v2" {
				lcancel()
				return
			}
		}
		lcancel()
		if ctx.Err() != nil {
			t.Fatalf("restarted server never saw v2: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// putUntil retries a put while the stream elects a new leader.
func putUntil(ctx context.Context, t *testing.T, kv jetstream.KeyValue, k, v string) {
	t.Helper()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := kv.Put(pctx, k, []byte(v))
		cancel()
		if err == nil {
			return
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("put after stop: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
