package natsserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
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
	join := func(name string, ca *natstest.CA, logger *slog.Logger) *natsserver.Server {
		cert, key := ca.Issue(t, name)
		tc, err := natsserver.RouteTLS(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		cfg := c.Config(0)
		cfg.ServerName, cfg.StoreDir, cfg.ClusterPort, cfg.ClusterTLS = name, t.TempDir(), -1, tc
		s, err := natsserver.Start(context.Background(), cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s
	}
	refused := &refusals{by: map[string]int{}}
	in := join("intruder", natstest.NewCA(t, "rogue-ca"), slog.New(refused))
	friend := join("friend", ca, nil)
	testwait.For(t, 10*time.Second, "a server with a certificate of the cluster's CA to get a route", func() bool { return friend.Routes() > 0 })
	// More route attempts by the intruder, after the friend's succeeded:
	// every seed refuses it twice more.
	before := refused.count()
	testwait.Until(t, 30*time.Second, "the intruder's further route attempts", func() error {
		now := refused.count()
		for i := range c.N() {
			seed := c.Server(i).ClusterAddr()
			if now[seed]-before[seed] < 2 {
				return fmt.Errorf("handshakes refused by %s since the friend joined: %d", seed, now[seed]-before[seed])
			}
		}
		return nil
	})
	if n := in.Routes(); n != 0 {
		t.Fatalf("the intruder got %d routes", n)
	}

	cert, key := ca.Issue(t, "spare")
	if _, err := natsserver.RouteTLS(cert, key, filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}

// refusals is a slog.Handler counting the TLS route handshakes that failed,
// by the peer's address (nats-server logs each at error level as
// "<host:port> - rid:<n> - TLS route handshake error: ...").
type refusals struct {
	mu sync.Mutex
	by map[string]int
}

func (r *refusals) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (r *refusals) Handle(_ context.Context, rec slog.Record) error {
	addr, rest, ok := strings.Cut(rec.Message, " - ")
	if ok && strings.Contains(rest, "TLS route handshake error") {
		r.mu.Lock()
		r.by[addr]++
		r.mu.Unlock()
	}
	return nil
}

func (r *refusals) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *refusals) WithGroup(string) slog.Handler      { return r }

func (r *refusals) count() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.by)
}
