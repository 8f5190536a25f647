package natsserver_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

// TestRoutesOverTLS: servers whose certificates one CA signed form a
// JetStream cluster over TLS routes; a server with a certificate from
// another CA gets no route to them.
func TestRoutesOverTLS(t *testing.T) {
	ca := natstest.NewCA(t, "spa-routes-ca")
	c := natstest.RunClusterWith(t, 3, func(i int, cfg *natsserver.Config) {
		cert, key := ca.Issue(t, fmt.Sprintf("s%d", i))
		tc, err := natsserver.RouteTLS(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClusterTLS = tc
	})
	for i := range c.N() {
		if n := c.Server(i).Routes(); n < 2 {
			t.Fatalf("%s has %d routes, want both peers", c.Name(i), n)
		}
	}

	// Two more servers with the cluster's name, secret and seed routes: a
	// friend with a certificate of the cluster's CA joins; an intruder
	// with one of another CA gets no route (both ends refuse it).
	join := func(name string, ca *natstest.CA) *natsserver.Server {
		cert, key := ca.Issue(t, name)
		tc, err := natsserver.RouteTLS(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		cfg := c.Config(0)
		cfg.ServerName, cfg.StoreDir, cfg.ClusterPort, cfg.ClusterTLS = name, t.TempDir(), -1, tc
		s, err := natsserver.Start(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s
	}
	in := join("intruder", natstest.NewCA(t, "rogue-ca"))
	friend := join("friend", ca)
	for end := time.Now().Add(10 * time.Second); friend.Routes() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("a server with a certificate of the cluster's CA got no route")
		}
	}
	time.Sleep(2 * time.Second) // more route attempts by the intruder
	if n := in.Routes(); n != 0 {
		t.Fatalf("the intruder got %d routes", n)
	}

	cert, key := ca.Issue(t, "spare")
	if _, err := natsserver.RouteTLS(cert, key, filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
