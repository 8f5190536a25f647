package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The chaos suite's network: one network namespace per node, each joined
// to a bridge in the test's own namespace by a veth pair. Nemeses are
// iptables rules and tc qdiscs inside the nodes' namespaces, so they only
// ever touch traffic between the test's namespaces; PostgreSQL (on the
// host's loopback) is reached through a proxy per node that the test runs
// on the bridge's address, which also lets it delay or cut one node's
// database traffic alone.

// chaosNet is the namespaces, the bridge and the database proxies of one
// run.
type chaosNet struct {
	t      *testing.T
	bridge string
	hostIP string   // the bridge's address: the test and the proxies
	ns     []string // namespace of node i
	ips    []string // address of node i
	veth   []string // node i's interface, inside its namespace
	db     []*dbProxy
}

// chaosNetAvailable reports why this machine cannot build the chaos
// network, or nil: it needs root, ip and iptables.
func chaosNetAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("the chaos suite needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install iproute2 and iptables (Debian: apt-get install iproute2 iptables)", tool)
		}
	}
	probe := fmt.Sprintf("spa-chaos-probe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", probe).Run()
	if out, err := exec.Command("ip", "netns", "exec", probe, "iptables", "-A", "OUTPUT", "-d", "10.0.0.1", "-j", "DROP").CombinedOutput(); err != nil {
		return fmt.Errorf("iptables in a namespace: %v: %s", err, out)
	}
	return nil
}

// sh runs a command, failing the test when it fails.
func (n *chaosNet) sh(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// in runs a command inside node i's namespace.
func (n *chaosNet) in(i int, args ...string) {
	n.t.Helper()
	n.sh(append([]string{"ip", "netns", "exec", n.ns[i]}, args...)...)
}

// newChaosNet builds the network of nodes nodes and a database proxy per
// node to pgAddr (host:port). Everything is removed when t ends.
func newChaosNet(t *testing.T, nodes int, pgAddr string) *chaosNet {
	t.Helper()
	// Names and subnet from the pid, so that two runs on one machine
	// (make chaos beside make test) do not collide.
	id := os.Getpid() % 100000
	sub := fmt.Sprintf("10.213.%d", id%250)
	n := &chaosNet{t: t, bridge: fmt.Sprintf("spx%d", id), hostIP: sub + ".1"}
	t.Cleanup(n.remove)
	n.remove() // leftovers of a killed run with the same pid
	n.sh("ip", "link", "add", n.bridge, "type", "bridge")
	n.sh("ip", "addr", "add", n.hostIP+"/24", "dev", n.bridge)
	n.sh("ip", "link", "set", n.bridge, "up")
	for i := range nodes {
		ns, ip := fmt.Sprintf("spa-chaos-%d-n%d", id, i), fmt.Sprintf("%s.%d", sub, 11+i)
		host, peer := fmt.Sprintf("spx%dh%d", id, i), fmt.Sprintf("spx%dn%d", id, i)
		n.ns, n.ips, n.veth = append(n.ns, ns), append(n.ips, ip), append(n.veth, peer)
		n.sh("ip", "netns", "add", ns)
		n.sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
		n.sh("ip", "link", "set", host, "master", n.bridge, "up")
		n.in(i, "ip", "link", "set", "lo", "up")
		n.in(i, "ip", "addr", "add", ip+"/24", "dev", peer)
		n.in(i, "ip", "link", "set", peer, "up")
		n.db = append(n.db, startDBProxy(t, n.hostIP, pgAddr))
	}
	return n
}

// remove deletes the namespaces (and so the veths in them) and the
// bridge; absent ones are fine.
func (n *chaosNet) remove() {
	for _, ns := range n.ns {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	if n.ns == nil { // before setup: leftovers named like ours
		out, _ := exec.Command("ip", "netns", "list").Output()
		prefix := fmt.Sprintf("spa-chaos-%d-", os.Getpid()%100000)
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}

// wrapper writes the script that starts the spa binary inside the
// namespace named by CHAOS_NETNS. ip netns exec execs (no fork), and so
// does the script: the process the test signals is spa itself.
func (n *chaosNet) wrapper(bin string) string {
	n.t.Helper()
	path := filepath.Join(n.t.TempDir(), "spa-in-netns")
	script := "#!/bin/sh\nexec ip netns exec \"$CHAOS_NETNS\" " + bin + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		n.t.Fatal(err)
	}
	return path
}

// dbURL is base with its host replaced by node i's database proxy.
func (n *chaosNet) dbURL(i int, base string) string {
	n.t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		n.t.Fatal(err)
	}
	u.Host = n.db[i].addr
	return u.String()
}

// Nemeses on the network.

// isolate cuts node i from every other node, both ways.
func (n *chaosNet) isolate(i int) {
	for j, ip := range n.ips {
		if j != i {
			n.in(i, "iptables", "-A", "INPUT", "-s", ip, "-j", "DROP")
			n.in(i, "iptables", "-A", "OUTPUT", "-d", ip, "-j", "DROP")
		}
	}
}

// cutOneWay drops what node from sends to node to; to's packets still
// reach from.
func (n *chaosNet) cutOneWay(from, to int) {
	n.in(from, "iptables", "-A", "OUTPUT", "-d", n.ips[to], "-j", "DROP")
}

// cutDatabase drops node i's packets to its database proxy (and the
// answers), so its connections hang rather than close.
func (n *chaosNet) cutDatabase(i int) {
	port := n.db[i].port()
	n.in(i, "iptables", "-A", "OUTPUT", "-d", n.hostIP, "-p", "tcp", "--dport", port, "-j", "DROP")
	n.in(i, "iptables", "-A", "INPUT", "-s", n.hostIP, "-p", "tcp", "--sport", port, "-j", "DROP")
}

// lossy drops a share (0-1) of the packets between nodes i and j, both
// ways, in i's namespace.
func (n *chaosNet) lossy(i, j int, share float64) {
	p := fmt.Sprintf("%.3f", share)
	n.in(i, "iptables", "-A", "OUTPUT", "-d", n.ips[j], "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP")
	n.in(i, "iptables", "-A", "INPUT", "-s", n.ips[j], "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP")
}

// slowLink shapes what node i sends to rate with a queue of up to
// latency (tbf): packets wait in the queue (added latency) and are
// dropped once it is full. netem is not available on every kernel (not on
// this project's CI machines); tbf is.
func (n *chaosNet) slowLink(i int, rate, latency string) {
	n.in(i, "tc", "qdisc", "add", "dev", n.veth[i], "root", "tbf", "rate", rate, "burst", "16kb", "latency", latency)
}

// heal removes every rule and qdisc of node i and gives its database
// proxy back its normal behaviour.
func (n *chaosNet) heal(i int) {
	n.in(i, "iptables", "-F", "INPUT")
	n.in(i, "iptables", "-F", "OUTPUT")
	_ = exec.Command("ip", "netns", "exec", n.ns[i], "tc", "qdisc", "del", "dev", n.veth[i], "root").Run()
	n.db[i].delay.Store(0)
}

// dbProxy forwards TCP connections to PostgreSQL, delaying each chunk
// of bytes by delay in both directions when it is set: the latency
// nemesis of a node's database link (netem being unavailable).
type dbProxy struct {
	addr  string
	ln    net.Listener
	delay atomic.Int64 // nanoseconds
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func startDBProxy(t *testing.T, host, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c, target) })
		}
	})
	return p
}

func (p *dbProxy) port() string {
	_, port, _ := net.SplitHostPort(p.addr)
	return port
}

func (p *dbProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *dbProxy) serve(client net.Conn, target string) {
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		client.Close()
		server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			k, err := src.Read(buf)
			if k > 0 {
				if d := time.Duration(p.delay.Load()); d > 0 {
					time.Sleep(d)
				}
				if _, werr := dst.Write(buf[:k]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					return
				}
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
		}
	}
	go pipe(server, client)
	go pipe(client, server)
	// Either side gone ends the connection: PostgreSQL does not half-close.
	<-done
	client.Close()
	server.Close()
	<-done
}
