package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/cluster/calwire"
	"github.com/spa-engine/spa/cluster/forward"
	"github.com/spa-engine/spa/cluster/membership"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/cluster/placement"
	"github.com/spa-engine/spa/cluster/quotawire"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/sessionwire"
	"github.com/spa-engine/spa/cluster/shopwire"
	"github.com/spa-engine/spa/gateway"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// clusterConfig is the multi-node part of the configuration. A node is
// one of a cluster when ListenAddr is set; otherwise it runs alone, as
// before, and the other fields are ignored.
type clusterConfig struct {
	NodeName      string   // unique, stable across restarts
	Name          string   // the NATS cluster's name
	ListenAddr    string   // NATS route listener host:port
	Routes        []string // seed routes, nats-route://host:port
	Advertise     string   // route host:port other nodes dial
	HTTPAdvertise string   // URL at which this node's HTTP API is reached
	Replicas      int      // JetStream replication of cluster state; 0: auto
	LeaseTTL      time.Duration
	// TLS files of the routes (PEM: this node's certificate and key, the
	// CA of every node's); all three or none. tls is what they load to.
	TLSCert, TLSKey, TLSCA string
	tls                    *tls.Config
}

// enabled reports multi-node mode.
func (c clusterConfig) enabled() bool { return c.ListenAddr != "" }

// defaultClusterDrain is SPA_SHUTDOWN_DRAIN's "auto" in a cluster: a few
// readiness probes of a load balancer checking every second or so.
const defaultClusterDrain = 2 * time.Second

// splitBrainEnv names the test hook that forces split ownership.
const splitBrainEnv = "SPA_TEST_SPLIT_BRAIN"

// nodeNameRE: a node name is one NATS subject token and a KV key.
var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][-_A-Za-z0-9]{0,62}$`)

// clusterSettings are the multi-node rows of the settings table.
var clusterSettings = []setting{
	{"node-name", "SPA_NODE_NAME", "", "this node's name in a cluster: unique and stable across restarts (letters, digits, - and _)", func(c *config, v string) error {
		if v != "" && !nodeNameRE.MatchString(v) {
			return fmt.Errorf("must be 1-63 letters, digits, - or _, starting with a letter or digit, got %q", v)
		}
		c.Cluster.NodeName = v
		return nil
	}},
	{"cluster-name", "SPA_CLUSTER_NAME", "spa", "name of the NATS cluster the nodes form", func(c *config, v string) error {
		if !nodeNameRE.MatchString(v) {
			return fmt.Errorf("must be letters, digits, - or _, got %q", v)
		}
		c.Cluster.Name = v
		return nil
	}},
	{"cluster-addr", "SPA_CLUSTER_ADDR", "", "NATS route listen address (host:port); set it to run this node as one of a cluster (needs DATABASE_URL)", func(c *config, v string) error {
		if v != "" {
			if _, err := hostPort(v); err != nil {
				return err
			}
		}
		c.Cluster.ListenAddr = v
		return nil
	}},
	{"cluster-routes", "SPA_CLUSTER_ROUTES", "", "comma-separated seed routes of the cluster's nodes (host:port or nats-route://host:port; listing this node too is harmless)", func(c *config, v string) error {
		c.Cluster.Routes = nil
		for _, r := range strings.Split(v, ",") {
			r = strings.TrimSpace(r)
			if r == "" {
				continue
			}
			if !strings.Contains(r, "://") {
				r = "nats-route://" + r
			}
			u, err := url.Parse(r)
			if err != nil || u.Scheme != "nats-route" || u.Host == "" || u.Port() == "" {
				return fmt.Errorf("route %q must look like host:port or nats-route://host:port", r)
			}
			c.Cluster.Routes = append(c.Cluster.Routes, r)
		}
		return nil
	}},
	{"cluster-advertise", "SPA_CLUSTER_ADVERTISE", "", "route host:port the other nodes dial to reach this one (default: the listen address)", func(c *config, v string) error {
		if v != "" {
			if _, err := hostPort(v); err != nil {
				return err
			}
		}
		c.Cluster.Advertise = v
		return nil
	}},
	{"http-advertise", "SPA_HTTP_ADVERTISE", "", "URL at which operators and other nodes reach this node's HTTP API (shown by GET /v1/cluster)", func(c *config, v string) error {
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("must look like http://host:port, got %q", v)
			}
		}
		c.Cluster.HTTPAdvertise = v
		return nil
	}},
	{"cluster-replicas", "SPA_CLUSTER_REPLICAS", "0", "JetStream replication of cluster state and events: 1 or 3; 0 picks 3 when this node and its seed routes name at least three nodes", func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n != 1 && n != 3) {
			return fmt.Errorf("must be 0, 1 or 3, got %q", v)
		}
		c.Cluster.Replicas = n
		return nil
	}},
	{"cluster-tls-cert", "SPA_CLUSTER_TLS_CERT", "", "PEM certificate of this node for the NATS routes (valid for the name other nodes dial); with SPA_CLUSTER_TLS_KEY and SPA_CLUSTER_TLS_CA routes are encrypted and both ends verified", func(c *config, v string) error {
		c.Cluster.TLSCert = v
		return nil
	}},
	{"cluster-tls-key", "SPA_CLUSTER_TLS_KEY", "", "PEM private key of SPA_CLUSTER_TLS_CERT", func(c *config, v string) error {
		c.Cluster.TLSKey = v
		return nil
	}},
	{"cluster-tls-ca", "SPA_CLUSTER_TLS_CA", "", "PEM certificate of the CA that signs every node's route certificate", func(c *config, v string) error {
		c.Cluster.TLSCA = v
		return nil
	}},
	{"cluster-lease-ttl", "SPA_CLUSTER_LEASE_TTL", "6s", "how long a crashed node keeps its partitions and membership: the bound of failover", durationIn(time.Second, time.Minute, func(c *config, d time.Duration) { c.Cluster.LeaseTTL = d })},
}

// validateCluster checks the settings that depend on each other; it runs
// after every setting is parsed.
func validateCluster(c *config) error {
	if c.Mode == modeProduction && c.getenv != nil && c.getenv(splitBrainEnv) != "" {
		return fmt.Errorf("%s: a test hook, refused in production mode", splitBrainEnv)
	}
	cc := &c.Cluster
	if !cc.enabled() {
		return nil
	}
	if c.getenv != nil && c.getenv(tokenSecretEnv) == "" {
		return fmt.Errorf("%s: required in multi-node mode: every node must share it (it signs tokens and keys the cluster's NATS routes)", tokenSecretEnv)
	}
	if c.DatabaseURL == "" {
		return errors.New("SPA_CLUSTER_ADDR: multi-node mode needs a shared database: set DATABASE_URL to CockroachDB or PostgreSQL (the embedded SQLite store serves a single node only)")
	}
	if c.BookingEngine != engineActors {
		return fmt.Errorf("SPA_BOOKING_ENGINE: multi-node mode runs the %q engine only", engineActors)
	}
	if cc.NodeName == "" {
		return errors.New("SPA_NODE_NAME: required in multi-node mode (unique per node, stable across restarts, e.g. spa-0)")
	}
	if c.NATSPort == 0 {
		return errors.New("SPA_NATS_PORT: multi-node mode needs a listening NATS client port (not 0)")
	}
	if cc.Replicas == 0 {
		host, _ := os.Hostname()
		cc.Replicas = membership.Replicas(countNodes(cc, host))
	}
	if set := len(slices.DeleteFunc([]string{cc.TLSCert, cc.TLSKey, cc.TLSCA}, func(f string) bool { return f == "" })); set != 0 && set != 3 {
		return errors.New("SPA_CLUSTER_TLS_CERT, SPA_CLUSTER_TLS_KEY, SPA_CLUSTER_TLS_CA: set all three for TLS routes, or none")
	}
	if cc.TLSCert != "" {
		t, err := natsserver.RouteTLS(cc.TLSCert, cc.TLSKey, cc.TLSCA)
		if err != nil {
			return fmt.Errorf("SPA_CLUSTER_TLS_*: %w", err)
		}
		cc.tls = t
	}
	return nil
}

// countNodes counts the nodes the seed routes name, this one included
// once. A route is this node's own when it is the advertised or listen
// address, or when its host is the node's name or the machine's host name
// (or starts with either and a dot, as k8s pod names do); counting it
// twice would ask two nodes for R3 streams they cannot place.
func countNodes(cc *clusterConfig, hostname string) int {
	self := func(hostPort string) bool {
		if hostPort == cc.Advertise || hostPort == cc.ListenAddr {
			return true
		}
		h, _, err := net.SplitHostPort(hostPort)
		if err != nil {
			return false
		}
		for _, name := range []string{cc.NodeName, hostname} {
			if name != "" && (h == name || strings.HasPrefix(h, name+".")) {
				return true
			}
		}
		return false
	}
	others := map[string]bool{}
	for _, r := range cc.Routes {
		if u, err := url.Parse(r); err == nil && !self(u.Host) {
			others[u.Host] = true
		}
	}
	return 1 + len(others)
}

// natsConfig adds the route settings to the embedded server's config in
// multi-node mode.
func (c clusterConfig) natsConfig(nc natsserver.Config, tokenSecret []byte) natsserver.Config {
	if !c.enabled() {
		return nc
	}
	// Routes and clients authenticate with a secret every node derives
	// from the token secret they already share, so no port of the cluster
	// is open to whoever reaches it.
	nc.Secret = natsSecret(tokenSecret)
	host, port, _ := net.SplitHostPort(c.ListenAddr) // validated by the setting
	p, _ := strconv.Atoi(port)
	if p == 0 {
		p = -1 // a free port, as for the HTTP address
	}
	nc.ServerName = c.NodeName
	nc.ClusterName = c.Name
	nc.ClusterHost = host
	nc.ClusterPort = p
	nc.ClusterAdvertise = c.Advertise
	nc.Routes = c.Routes
	nc.ClusterTLS = c.tls
	nc.ReadyTimeout = time.Minute // JetStream waits for a quorum of its peers
	return nc
}

// natsSecret derives the cluster's NATS secret from the token secret
// (HKDF-SHA256 with its own label, so the token key itself never leaves
// the process).
func natsSecret(tokenSecret []byte) string {
	k, err := hkdf.Key(sha256.New, tokenSecret, nil, "spa nats cluster v1", 32)
	if err != nil {
		panic(err) // unreachable: 32 bytes of SHA-256 output is in range
	}
	return base64.RawURLEncoding.EncodeToString(k)
}

// replicas is the JetStream replication for cluster state (1 alone).
func (c clusterConfig) replicas() int {
	if !c.enabled() || c.Replicas == 0 {
		return 1
	}
	return c.Replicas
}

// clusterNode is this node's part in a cluster: membership, partition
// leases, request forwarding and one router per placed actor kind.
type clusterNode struct {
	place     *placement.Lazy
	log       *slog.Logger
	members   *membership.Node
	parts     *partition.Manager
	fwd       *forward.Forwarder
	schedule  *route.Router
	resources *route.Router
	inventory *route.Router
	carts     *route.Router
	sessions  *route.Router
	quota     *route.Router
	routers   []*route.Router // all of the above, in that order
	// sessionLocal is the session directory once startIdentity made it.
	sessionLocal route.Late
	metrics      *clusterMetrics
	advertise    map[string]string
	// health puts the node on standby while its store is unreachable
	// (membership.WatchHealth); stopHealth ends it.
	stopHealth context.CancelFunc
	health     sync.WaitGroup
}

// calendarDoors returns how the gateway, the waitlist and the resource
// follower reach schedule and resource actors: the node's directories when
// it runs alone; the partition routers in a cluster, which it starts here
// with the routers of the other placed kinds (the shop's doors switch to
// theirs here; the session door in startIdentity).
func (n *node) calendarDoors(ctx context.Context, cfg config, js jetstream.JetStream, reg prometheus.Registerer) (sched, res door.Door, err error) {
	if !cfg.Cluster.enabled() {
		return n.sched, n.resources, nil
	}
	if n.cluster == nil {
		n.cluster = &clusterNode{place: &placement.Lazy{}}
	}
	err = n.cluster.start(ctx, cfg, n, js, reg)
	if err != nil {
		return nil, nil, err
	}
	return n.cluster.schedule, n.cluster.resources, nil
}

func (c *clusterNode) start(ctx context.Context, cfg config, n *node, js jetstream.JetStream, reg prometheus.Registerer) (err error) {
	cc := cfg.Cluster
	c.log = n.log.With("component", "cluster", "node", cc.NodeName)
	defer func() {
		if err != nil {
			c.abort()
		}
	}()
	rm, err := route.NewMetrics(reg)
	if err != nil {
		return err
	}
	c.metrics, err = newClusterMetrics(reg, c)
	if err != nil {
		return err
	}
	c.advertise = map[string]string{"http": cc.HTTPAdvertise, "nats": n.nats.ClientURL(), "routes": n.nats.ClusterAddr()}
	if cc.Advertise != "" {
		c.advertise["routes"] = cc.Advertise
	}
	c.members, err = membership.Join(ctx, js, membership.Config{
		Name: cc.NodeName, Meta: c.advertise, TTL: cc.LeaseTTL, Replicas: cc.replicas(), Logger: n.log,
		OnChange: func(ch membership.Change) {
			for _, m := range ch.Joined {
				c.log.Info("cluster member joined", "member", m.Name, "incarnation", m.Incarnation)
			}
			for _, m := range ch.Left {
				c.log.Info("cluster member left", "member", m.Name, "incarnation", m.Incarnation)
			}
			for _, m := range ch.Changed {
				c.log.Info("cluster member standby changed", "member", m.Name, "standby", m.Standby())
			}
		},
	})
	if err != nil {
		return fmt.Errorf("cluster membership: %w", err)
	}
	// The routers exist before the manager so its hooks find them; they
	// learn the manager (placement) through this indirection.
	place := c.place
	// splitBrain is a test hook: this node decides for every calendar,
	// owner or not, so tests can force split ownership. Never in
	// production (validateCluster refuses it there).
	splitBrain := cfg.getenv != nil && cfg.getenv(splitBrainEnv) == "1"
	place.SplitBrain = splitBrain
	if splitBrain {
		c.log.Warn("TEST HOOK: serving every partition locally regardless of leases", "env", splitBrainEnv)
	}
	// A partition being handed off is no longer renewed: its drain must
	// end well within the lease, or the lease could lapse mid-drain.
	drain := time.Second
	if q := cc.LeaseTTL / 4; q > 0 && q < drain {
		drain = q
	}
	kind := func(name string, local route.Local, codec route.Codec) *route.Router {
		r := route.New(route.Config{Kind: name, Local: local, Placement: place, Metrics: rm, DrainTimeout: drain,
			ServeAll: splitBrain, Codec: codec, Logger: c.log})
		c.routers = append(c.routers, r)
		return r
	}
	c.schedule = kind("schedule", n.sched, calwire.ScheduleCodec())
	c.resources = kind("resource", n.resources, calwire.ResourceCodec())
	c.inventory = kind("inventory", n.shop.invDir, shopwire.InventoryCodec())
	c.carts = kind("cart", n.shop.cartDir, shopwire.CartCodec())
	// The session actors start after the cluster (startIdentity): until
	// then a forwarded request is answered UNAVAILABLE and retried.
	c.sessionLocal.Kind = "session"
	c.sessions = kind("session", &c.sessionLocal, sessionwire.Codec())
	c.quota = kind("quota", n.quota, quotawire.Codec())
	c.parts, err = partition.Start(ctx, js, c.members, partition.Config{
		LeaseTTL: cc.LeaseTTL, Replicas: cc.replicas(), Logger: n.log,
		Hooks: partition.Hooks{
			OnAcquire: func(p int, epoch uint64) {
				for _, r := range c.routers {
					r.Acquired(p, epoch)
				}
				c.metrics.acquired(p, epoch)
			},
			OnRelease: func(p int, epoch uint64, why partition.Reason) {
				// Every kind drains at once: a partition's hand-off waits
				// for its slowest kind, not for their sum.
				var wg sync.WaitGroup
				for _, r := range c.routers {
					wg.Go(func() { r.Released(p, epoch, why) })
				}
				wg.Wait()
				c.metrics.released(p, why)
				c.log.Info("partition released", "partition", p, "epoch", epoch, "reason", why.String())
			},
		},
	})
	if err != nil {
		return fmt.Errorf("cluster partitions: %w", err)
	}
	place.Set(c.parts)
	// A try outlasting a lease means the owner is likely paused or gone:
	// by then its partitions move, and the retry reaches the new owner.
	c.fwd, err = forward.New(forward.Config{Node: cc.NodeName, Conn: n.nats.Conn(), Directory: c.parts, Logger: n.log,
		AttemptTimeout: cc.LeaseTTL})
	if err != nil {
		return fmt.Errorf("cluster forwarding: %w", err)
	}
	for _, r := range c.routers {
		r.Attach(c.fwd)
	}
	n.shop.routeShop(c.inventory, c.carts)
	// A node that cannot reach the database goes on standby, so the other
	// members take its partitions and its calendars keep booking (through
	// them, also for the requests it forwards) instead of answering 503
	// until the database is back.
	reach := n.store.Ping
	if r, ok := n.store.(interface{ Reachable(context.Context) error }); ok {
		reach = r.Reachable
	}
	hctx, stopHealth := context.WithCancel(context.Background())
	c.stopHealth = stopHealth
	c.health.Go(func() { c.members.WatchHealth(hctx, membership.Health{Check: reach}) })
	c.log.Info("cluster node started", "members", len(c.members.Members()), "replicas", cc.replicas(), "lease_ttl", cc.LeaseTTL.String())
	return nil
}

// stop leaves the cluster gracefully: leave the membership first, so the
// other nodes want this node's partitions from now on; then hand every
// partition back (the routers drain and retire their actors, then each
// lease is deleted and its new owner takes it at once); then stop
// answering forwarded requests.
func (c *clusterNode) stop(ctx context.Context) {
	if c == nil {
		return
	}
	c.endHealth()
	if c.parts != nil {
		c.parts.Leave()
	}
	if c.members != nil {
		if err := c.members.Stop(ctx); err != nil {
			c.log.Warn("membership leave incomplete", "err", err)
		}
	}
	if c.parts != nil {
		if err := c.parts.Stop(ctx); err != nil {
			c.log.Warn("partition hand-back incomplete", "err", err)
		}
	}
	if c.fwd != nil {
		_ = c.fwd.Close()
	}
}

// endHealth stops watching the store's health.
func (c *clusterNode) endHealth() {
	if c.stopHealth != nil {
		c.stopHealth()
		c.health.Wait()
	}
}

// abort undoes a half-started cluster node without handing anything back.
func (c *clusterNode) abort() {
	c.endHealth()
	if c.parts != nil {
		c.parts.Abort()
	}
	if c.fwd != nil {
		_ = c.fwd.Close()
	}
	if c.members != nil {
		c.members.Abort()
	}
}

// ready backs the "cluster" readiness check: the node is listed as a
// member. It does not wait for partition owners (requests for a partition
// without one retry until their deadline).
func (c *clusterNode) ready(context.Context) error {
	if c.members == nil || c.parts == nil {
		return errors.New("cluster not started")
	}
	if !slices.ContainsFunc(c.members.Members(), func(m membership.Member) bool { return m.Name == c.members.Self().Name }) {
		return errors.New("not (yet) a listed member")
	}
	return nil
}

// leaseFence is the activation fence of the fenced kinds (schedule,
// resource, inventory): nil alone (the database issues epochs), the
// partition leases in a cluster.
func (n *node) leaseFence(cfg config) func(context.Context, persistence.Tx, string) (int64, error) {
	if !cfg.Cluster.enabled() {
		return nil
	}
	if n.cluster == nil {
		n.cluster = &clusterNode{place: &placement.Lazy{}}
	}
	return n.cluster.place.Fence
}

// The multi-node rows join the settings table.
func init() { settings = append(settings, clusterSettings...) }

// ClusterStatus reports this node's view for GET /v1/cluster.
func (c *clusterNode) ClusterStatus() gateway.ClusterStatus {
	self := c.members.Self()
	st := gateway.ClusterStatus{Node: self.Name}
	for _, m := range c.members.Members() {
		st.Members = append(st.Members, gateway.ClusterMember{Name: m.Name, Incarnation: m.Incarnation,
			StartedAt: m.StartedAt, HTTP: m.Meta["http"], Self: m.Name == self.Name && m.Incarnation == self.Incarnation,
			Standby: m.Standby()})
	}
	for p := range c.parts.Partitions() {
		owner, epoch, _ := c.parts.Owner(p)
		st.Partitions = append(st.Partitions, gateway.ClusterPartition{Partition: p, Owner: owner, Epoch: epoch})
		if owner == self.Name {
			st.Owned++
		}
	}
	for _, r := range c.routers {
		parts, actors := r.Stats()
		st.Kinds = append(st.Kinds, gateway.ClusterKind{Kind: r.Kind(), Partitions: parts, Actors: actors})
	}
	return st
}

// clusterView is the gateway's view of the cluster: nil when alone.
func (n *node) clusterView() gateway.ClusterView {
	if n.cluster == nil {
		return nil
	}
	return n.cluster
}

// clusterChecks are the readiness checks of multi-node mode.
func (n *node) clusterChecks() []gateway.Check {
	if n.cluster == nil {
		return nil
	}
	return []gateway.Check{{Name: "cluster", Check: n.cluster.ready}}
}

// idempotencyHolders is the gateway's idempotency.Holders in a cluster
// (nil alone: the process's own incarnation serves). A key's holder is
// "<node>/<incarnation>" and lives while the member list has that node at
// that incarnation: a crashed node's record expires from the list (the
// membership TTL) and a restarted one comes back as a new incarnation, so
// a retry on any node takes over the keys it held without waiting for
// their lease.
func (n *node) idempotencyHolders() idempotency.Holders {
	if n.cluster == nil || n.cluster.members == nil {
		return nil
	}
	m := n.cluster.members
	return memberHolders{self: m.Self, member: m.Member}
}

type memberHolders struct {
	self   func() membership.Member
	member func(name string) (membership.Member, bool)
}

func (h memberHolders) Self() string {
	s := h.self()
	return s.Name + "/" + s.Incarnation
}

func (h memberHolders) Alive(holder string) bool {
	i := strings.LastIndexByte(holder, '/') // node names may hold '/', incarnations do not
	if i < 0 {
		return true // not a member's: wait for the lease
	}
	m, ok := h.member(holder[:i])
	return ok && m.Incarnation == holder[i+1:]
}
