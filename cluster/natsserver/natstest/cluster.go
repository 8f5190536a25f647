package natstest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spa-engine/spa/cluster/natsserver"
)

// Cluster is a set of in-process NATS servers joined by routes, each with
// JetStream in its own store directory: a stand-in for a multi-node
// deployment inside one test process. Its methods are safe for concurrent
// use.
type Cluster struct {
	t    testing.TB
	name string

	mu      sync.Mutex
	cfgs    []natsserver.Config
	servers []*natsserver.Server // nil while stopped
}

// RunCluster starts n servers (named s0…s<n-1>) on 127.0.0.1 with random
// client and route ports, joined into one cluster, and waits until the
// JetStream meta group has a leader that every server follows. All servers
// stop when the test ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return RunClusterWith(t, n, nil)
}

// RunClusterWith is RunCluster with tweak applied to each server's
// configuration before it starts (nil: none).
func RunClusterWith(t testing.TB, n int, tweak func(i int, cfg *natsserver.Config)) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: RunCluster(%d)", n)
	}
	exclusive(t)
	// Route ports are picked free and then bound by the servers: another
	// test process may take one in between, so a failed start is retried
	// on fresh ports.
	var c *Cluster
	var errs []error
	for attempt := 0; attempt < 5; attempt++ {
		c, errs = tryCluster(t, n, tweak)
		if errs == nil {
			break
		}
		c.StopAll()
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("natstest: start %s: %v", c.cfgs[i].ServerName, err)
		}
	}
	t.Cleanup(c.StopAll)
	c.WaitReady()
	return c
}

// exclusive holds a machine-wide lock until the test ends, so that the
// multi-server clusters of test binaries running in parallel (go test runs
// packages concurrently) take turns: on a small machine several forming
// JetStream clusters at once starve each other's elections.
func exclusive(t testing.TB) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "spa-natstest-cluster.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("natstest: lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("natstest: lock: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// tryCluster starts n servers on fresh ports; errs is nil when all started.
func tryCluster(t testing.TB, n int, tweak func(i int, cfg *natsserver.Config)) (*Cluster, []error) {
	ports := make([]int, n)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	c := &Cluster{t: t, name: fmt.Sprintf("spa-test-%d", ports[0])}
	for i := range n {
		c.cfgs = append(c.cfgs, natsserver.Config{
			Host:        "127.0.0.1",
			Port:        -1,
			StoreDir:    t.TempDir(),
			ServerName:  fmt.Sprintf("s%d", i),
			ClusterName: c.name,
			ClusterHost: "127.0.0.1",
			ClusterPort: ports[i],
			Routes:      routes,
			// Routes authenticate, as in production.
			Secret: c.name + "-secret",
			// Short drains keep crash simulations quick.
			DrainTimeout: time.Second,
			ReadyTimeout: 20 * time.Second,
		})
		if tweak != nil {
			tweak(i, &c.cfgs[i])
		}
	}
	c.servers = make([]*natsserver.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.servers[i], errs[i] = start(c.cfgs[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return c, errs
		}
	}
	return c, nil
}

func start(cfg natsserver.Config) (*natsserver.Server, error) {
	// Route dial errors while peers start or stop are expected: log only
	// when NATSTEST_LOG is set.
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("NATSTEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return natsserver.Start(context.Background(), cfg, logger)
}

// FreePort is a free loopback port below the kernel's range of ephemeral
// ports, so no outgoing connection (the tests' clients, the nodes' routes
// and database connections) can take it while a node that listens on it
// restarts (a server of a Cluster, a node of cmd/spa's tests): a rolling
// restart in CI once failed with "bind: address already in use" on the
// port its node had just left. The range also leaves out the system
// NATS's 4222.
func FreePort(t testing.TB) int {
	t.Helper()
	const lowest = 10000
	top := 32768 // Linux's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo > lowest+1000 {
			top = lo
		}
	}
	for range 200 {
		port := lowest + rand.IntN(top-lowest)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatalf("no free port in %d-%d", lowest, top-1)
	return 0
}

// N returns the number of servers, running or stopped.
func (c *Cluster) N() int { return len(c.cfgs) }

// Server returns server i, or nil while it is stopped.
func (c *Cluster) Server(i int) *natsserver.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Config returns server i's configuration (its cluster name, secret and
// routes included), for a test that starts another server like it.
func (c *Cluster) Config(i int) natsserver.Config { return c.cfgs[i] }

// Name returns server i's name.
func (c *Cluster) Name(i int) string { return c.cfgs[i].ServerName }

// Stop stops server i (its clients are drained and closed), simulating the
// loss of that node's NATS server; the others keep quorum when n ≥ 3.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

// Restart starts a stopped server i again on the same store directory and
// route port, and waits until the cluster's meta group is current on every
// running server. It returns the new server.
func (c *Cluster) Restart(i int) *natsserver.Server {
	c.t.Helper()
	c.mu.Lock()
	if c.servers[i] != nil {
		c.mu.Unlock()
		c.t.Fatalf("natstest: Restart(%d): server is running", i)
	}
	c.mu.Unlock()
	s, err := start(c.cfgs[i])
	if err != nil {
		c.t.Fatalf("natstest: restart %s: %v", c.cfgs[i].ServerName, err)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	c.WaitReady()
	return s
}

// StopAll stops every running server; it runs at the end of the test.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for i := range c.cfgs {
		wg.Go(func() { c.Stop(i) })
	}
	wg.Wait()
}

// WaitReady waits (up to 30s) until exactly one running server leads the
// JetStream meta group, the leader sees every configured peer and every
// running server is current.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		running := make([]*natsserver.Server, 0, len(c.servers))
		for _, s := range c.servers {
			if s != nil {
				running = append(running, s)
			}
		}
		c.mu.Unlock()
		leaders, current, peers := 0, 0, 0
		for _, s := range running {
			if s.JetStreamMetaLeader() {
				leaders++
				peers = len(s.JetStreamPeers())
			}
			if s.JetStreamMetaCurrent() {
				current++
			}
		}
		if leaders == 1 && current == len(running) && peers == len(c.cfgs) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster not ready: %d leaders, %d/%d current, leader sees %d peers",
				leaders, current, len(running), peers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
