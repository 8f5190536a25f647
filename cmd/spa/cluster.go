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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/calwire"
	"github.com/spa-engine/spa/cluster/forward"
	"github.com/spa-engine/spa/cluster/membership"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/sessionwire"
	"github.com/spa-engine/spa/cluster/shopwire"
	"github.com/spa-engine/spa/gateway"
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
	place     *lazyPlacement
	log       *slog.Logger
	members   *membership.Node
	parts     *partition.Manager
	fwd       *forward.Forwarder
	schedule  *route.Router
	resources *route.Router
	inventory *route.Router
	carts     *route.Router
	sessions  *route.Router
	routers   []*route.Router // all of the above, in that order
	// sessionLocal is the session directory once startIdentity made it.
	sessionLocal lateSessions
	metrics      *clusterMetrics
	advertise    map[string]string
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
		n.cluster = &clusterNode{place: &lazyPlacement{}}
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
	place.splitBrain = splitBrain
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
	c.schedule = kind("schedule", n.sched, codecOf(schedule.CalendarID, calwire.EncodeSchedule, calwire.DecodeSchedule,
		calwire.EncodeScheduleReply, calwire.DecodeScheduleReply, scheduleKey))
	c.resources = kind("resource", n.resources, codecOf(resource.CalendarID, calwire.EncodeResource, calwire.DecodeResource,
		calwire.EncodeResourceReply, calwire.DecodeResourceReply, resourceKey))
	c.inventory = kind("inventory", n.shop.invDir, codecOf(inventory.PlacementKey, shopwire.EncodeInventory, shopwire.DecodeInventory,
		shopwire.EncodeInventoryReply, shopwire.DecodeInventoryReply, inventoryKey))
	c.carts = kind("cart", n.shop.cartDir, codecOf(cart.PlacementKey, shopwire.EncodeCart, shopwire.DecodeCart,
		shopwire.EncodeCartReply, shopwire.DecodeCartReply, cartKey))
	// The session actors start after the cluster (startIdentity): until
	// then a forwarded request is answered UNAVAILABLE and retried.
	c.sessions = kind("session", &c.sessionLocal, codecOf(session.PlacementKey, sessionwire.Encode, sessionwire.Decode,
		sessionwire.EncodeReply, sessionwire.DecodeReply, nil))
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
	place.Store(c.parts)
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
	c.log.Info("cluster node started", "members", len(c.members.Members()), "replicas", cc.replicas(), "lease_ttl", cc.LeaseTTL.String())
	return nil
}

// codecOf builds a router's codec from a wire package's functions.
func codecOf[Req, Rep proto.Message](key func(string) string, enc func(string, any) (Req, error), dec func(Req) (string, any, error),
	encReply func(any) (Rep, error), decReply func(Rep) (any, error), idem func(any) string) route.Codec {
	var example Req
	return route.Codec{
		Key:     key,
		Example: example.ProtoReflect().Type().New().Interface(),
		Request: func(id string, msg any) (proto.Message, error) { return enc(id, msg) },
		DecodeRequest: func(m proto.Message) (string, any, error) {
			r, ok := m.(Req)
			if !ok {
				return "", nil, fmt.Errorf("request %T, want %T", m, example)
			}
			return dec(r)
		},
		Reply: func(r any) (proto.Message, error) { return encReply(r) },
		DecodeReply: func(m proto.Message) (any, error) {
			r, ok := m.(Rep)
			if !ok {
				var want Rep
				return nil, fmt.Errorf("reply %T, want %T", m, want)
			}
			return decReply(r)
		},
		IdempotencyKey: idem,
	}
}

// scheduleKey names a schedule request across retries: the appointment
// it concerns (chosen by the caller, stable across its retries) and the
// kind of change.
func scheduleKey(msg any) string {
	switch m := msg.(type) {
	case *schedule.Hold:
		return "hold/" + m.AppointmentID
	case *schedule.Confirm:
		return "confirm/" + m.AppointmentID
	case *schedule.Cancel:
		return "cancel/" + m.AppointmentID
	case *schedule.CheckIn:
		return "checkin/" + m.AppointmentID
	case *schedule.Complete:
		return "complete/" + m.AppointmentID
	case *schedule.NoShow:
		return "noshow/" + m.AppointmentID
	case *schedule.Reschedule:
		return "reschedule/" + m.AppointmentID + "/" + m.Start.UTC().Format(time.RFC3339)
	case *schedule.SlotsQuery:
		return "slots" // a read
	}
	return ""
}

func resourceKey(msg any) string {
	switch m := msg.(type) {
	case *resource.Claim:
		return "claim/" + m.AppointmentID
	case *resource.Release:
		return "release/" + m.AppointmentID
	case *resource.Track:
		return "track/" + m.Appointment.ID + "/" + strconv.FormatInt(m.Appointment.Version, 10)
	case *resource.FullQuery:
		return "full" // a read
	}
	return ""
}

// inventoryKey names an inventory request across retries (the ids are
// the caller's, stable across its retries).
func inventoryKey(msg any) string {
	switch m := msg.(type) {
	case *inventory.Reserve:
		return "reserve/" + m.ReservationID + "/" + strconv.FormatInt(m.Qty, 10)
	case *inventory.Release:
		return "release/" + m.ReservationID
	case *inventory.Consumed:
		return "consumed/" + strings.Join(m.ReservationIDs, ",")
	case *inventory.Move:
		return "move/" + m.Movement.ID
	case *inventory.LevelQuery:
		return "level" // a read
	}
	return ""
}

// cartKey names the cart requests that are safe to apply twice: Create
// and Surrender are not (a second Create is refused as a duplicate; a
// second Surrender finds the cart already emptied), so a timed-out try of
// either is not resent (forward.Request).
func cartKey(msg any) string {
	switch m := msg.(type) {
	case *cart.Checkout:
		return "checkout/" + m.OrderID
	case *cart.Get:
		return "get" // a read (that may refresh reservations)
	case *cart.SetLine:
		return "setline/" + m.VariantID + "/" + strconv.FormatInt(m.Qty, 10) // sets, does not add
	}
	return ""
}

// lateSessions is the session directory, which starts after the cluster
// (route.Local): before, requests are answered UNAVAILABLE (the sender
// retries) and invalidations have nothing to retire.
type lateSessions struct {
	d atomic.Pointer[session.Directory]
}

var errSessionsStarting = &forward.Error{Code: forward.ErrUnavailable.Code, Message: "session actors not started yet"}

func (l *lateSessions) Ask(ctx context.Context, key string, msg any) (any, error) {
	d := l.d.Load()
	if d == nil {
		return nil, errSessionsStarting
	}
	return d.Ask(ctx, key, msg)
}

func (l *lateSessions) Invalidate(key string) {
	if d := l.d.Load(); d != nil {
		d.Invalidate(key)
	}
}

func (l *lateSessions) InvalidateWhere(match func(key string) bool) {
	if d := l.d.Load(); d != nil {
		d.InvalidateWhere(match)
	}
}

func (l *lateSessions) Live() int {
	if d := l.d.Load(); d != nil {
		return d.Live()
	}
	return 0
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

// abort undoes a half-started cluster node without handing anything back.
func (c *clusterNode) abort() {
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

// lazyPlacement forwards to the partition manager once it exists; before,
// nothing is held.
type lazyPlacement struct {
	m          atomic.Pointer[partition.Manager]
	splitBrain bool // the test hook: act as a stale owner of every partition
	// fenced counts activations refused because a later owner's epoch is
	// stored.
	fenced atomic.Int64
}

// errNotOwner refuses an activation on a node that does not hold the
// calendar's partition: the request is retried at the owner.
var errNotOwner = errors.New("cluster: this node does not hold the calendar's partition")

// fence issues a calendar's activation epoch from its partition's lease.
func (l *lazyPlacement) fence(ctx context.Context, tx persistence.Tx, calendarID string) (int64, error) {
	m := l.m.Load()
	if m == nil {
		return 0, errNotOwner
	}
	p := m.PartitionOf(calendarID)
	epoch, ok := m.Holds(p)
	if !ok && l.splitBrain {
		// A stale owner: the epoch it held before the current owner's.
		_, current, _ := m.Owner(p)
		epoch, ok = max(current, 1)-1, true
	}
	if !ok {
		return 0, errNotOwner
	}
	token := m.Token(epoch)
	err := tx.CalendarActivateAt(ctx, calendarID, token)
	if errors.Is(err, persistence.ErrFenced) {
		l.fenced.Add(1)
	}
	return token, err
}

// leaseFence is the activation fence of the fenced kinds (schedule,
// resource, inventory): nil alone (the database issues epochs), the
// partition leases in a cluster.
func (n *node) leaseFence(cfg config) func(context.Context, persistence.Tx, string) (int64, error) {
	if !cfg.Cluster.enabled() {
		return nil
	}
	if n.cluster == nil {
		n.cluster = &clusterNode{place: &lazyPlacement{}}
	}
	return n.cluster.place.fence
}

func (l *lazyPlacement) Store(m *partition.Manager) { l.m.Store(m) }

func (l *lazyPlacement) PartitionOf(key string) int {
	return partition.PartitionOf(key, partition.DefaultPartitions)
}

func (l *lazyPlacement) Holds(p int) (uint64, bool) {
	m := l.m.Load()
	if m == nil {
		return 0, false
	}
	return m.Holds(p)
}

// The multi-node rows join the settings table.
func init() { settings = append(settings, clusterSettings...) }

// ClusterStatus reports this node's view for GET /v1/cluster.
func (c *clusterNode) ClusterStatus() gateway.ClusterStatus {
	self := c.members.Self()
	st := gateway.ClusterStatus{Node: self.Name}
	for _, m := range c.members.Members() {
		st.Members = append(st.Members, gateway.ClusterMember{Name: m.Name, Incarnation: m.Incarnation,
			StartedAt: m.StartedAt, HTTP: m.Meta["http"], Self: m.Name == self.Name && m.Incarnation == self.Incarnation})
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

// whileElecting retries a JetStream request at start-up while it times
// out, for up to a minute: in a cluster, a node restarting while a stream
// or the meta group elects a leader gets no answer for a few seconds. Any
// other error returns at once.
func whileElecting[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	give := time.Now().Add(time.Minute)
	for {
		v, err := f(ctx)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(give) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
