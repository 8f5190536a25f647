package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

func TestRunClusterReplicatesAndSurvivesRestart(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	for i := range c.N() {
		if a := c.Server(i).ClusterAddr(); a == "" {
			t.Fatalf("server %d has no route listener", i)
		}
	}
	// Each wait below has its own bound; ctx only bounds the test's
	// requests as a whole.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js0, err := c.Server(0).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	// A forming cluster may leave the first request unanswered: retry
	// each try with its own short deadline.
	var kv jetstream.KeyValue
	testwait.Until(t, 30*time.Second, "the R3 bucket", func() (err error) {
		tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
		defer tcancel()
		kv, err = js0.CreateOrUpdateKeyValue(tctx, jetstream.KeyValueConfig{Bucket: "fixture", Replicas: 3})
		return err
	})
	// The bucket's stream may not have elected its leader yet when its
	// creation returns: the first put may find no responder.
	testwait.Until(t, 30*time.Second, "the first put", func() error {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		_, err := kv.Put(pctx, "k", []byte("v1"))
		return err
	})

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
	testwait.Until(t, 30*time.Second, "the bucket's lookup after a stop", func() (err error) {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		defer lcancel()
		kv1, err = js1.KeyValue(lctx, "fixture")
		return err
	})
	// A put may go unanswered while the stream elects a new leader.
	testwait.Until(t, 30*time.Second, "a put after a stop", func() error {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		_, err := kv1.Put(pctx, "k", []byte("v2"))
		return err
	})

	// The restarted server catches up from its store and the others.
	s2 := c.Restart(2)
	js2, err := s2.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "the restarted server to see v2", func() error {
		lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
		defer lcancel()
		kv2, err := js2.KeyValue(lctx, "fixture")
		if err != nil {
			return err
		}
		e, err := kv2.Get(lctx, "k")
		if err != nil {
			return err
		}
		if v := string(e.Value()); v != "v2" {
			return fmt.Errorf("k = %q", v)
		}
		return nil
	})
}
