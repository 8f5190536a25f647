package main

import (
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

func clusterEnv(extra map[string]string) map[string]string {
	e := map[string]string{
		"SPA_MODE":           "production", // routes on every interface: a real host
		"DATABASE_URL":       "postgres://u@db/spa",
		"SPA_NODE_NAME":      "spa-0",
		"SPA_CLUSTER_ADDR":   "0.0.0.0:6222",
		"SPA_CLUSTER_ROUTES": "spa-0.spa:6222,spa-1.spa:6222,nats-route://spa-2.spa:6222",
		"SPA_TOKEN_SECRET":   secret32,
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func TestClusterConfigSingleNodeByDefault(t *testing.T) {
	c, err := parseConfig("serve", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.enabled() || c.Cluster.replicas() != 1 || c.Cluster.LeaseTTL != 6*time.Second || c.Cluster.Name != "spa" {
		t.Fatalf("defaults: %+v", c.Cluster)
	}
	nc := c.Cluster.natsConfig(natsserver.Config{Host: "127.0.0.1", Port: 4250}, c.TokenSecret)
	if nc.ClusterName != "" || nc.Routes != nil || nc.Secret != "" {
		t.Fatalf("single node got routes: %+v", nc)
	}
}

func TestClusterConfigMultiNode(t *testing.T) {
	c, err := parseConfig("serve", []string{"--cluster-advertise", "spa-0.spa:6222"}, env(clusterEnv(nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cc := c.Cluster
	if !cc.enabled() || cc.NodeName != "spa-0" || len(cc.Routes) != 3 || cc.Routes[0] != "nats-route://spa-0.spa:6222" {
		t.Fatalf("cluster: %+v", cc)
	}
	if cc.replicas() != 3 {
		t.Fatalf("three nodes named: replicas %d, want 3", cc.replicas())
	}
	nc := cc.natsConfig(natsserver.Config{Host: "0.0.0.0", Port: 4250}, c.TokenSecret)
	if nc.ServerName != "spa-0" || nc.ClusterName != "spa" || nc.ClusterHost != "0.0.0.0" || nc.ClusterPort != 6222 ||
		nc.ClusterAdvertise != "spa-0.spa:6222" || len(nc.Routes) != 3 {
		t.Fatalf("nats config: %+v", nc)
	}
	// Routes and clients authenticate with a secret derived from the
	// shared token secret: the same on every node, never the key itself.
	other := cc.natsConfig(natsserver.Config{}, []byte("another token secret of 32 bytes!"))
	if nc.Secret == "" || nc.Secret != cc.natsConfig(natsserver.Config{}, c.TokenSecret).Secret ||
		other.Secret == nc.Secret || strings.Contains(nc.Secret, secret32) {
		t.Fatalf("nats secret %q (other %q)", nc.Secret, other.Secret)
	}
	// Two nodes: no quorum for R3, so R1.
	c, err = parseConfig("serve", nil, env(clusterEnv(map[string]string{"SPA_CLUSTER_ROUTES": "127.0.0.1:6223"})), io.Discard)
	if err != nil || c.Cluster.replicas() != 1 {
		t.Fatalf("two nodes: replicas %d, err %v", c.Cluster.replicas(), err)
	}
	c, err = parseConfig("serve", nil, env(clusterEnv(map[string]string{"SPA_CLUSTER_ROUTES": "127.0.0.1:6223", "SPA_CLUSTER_REPLICAS": "3"})), io.Discard)
	if err != nil || c.Cluster.replicas() != 3 {
		t.Fatalf("explicit replicas: %d, err %v", c.Cluster.replicas(), err)
	}
}

func TestClusterConfigRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"sqlite":          {map[string]string{"DATABASE_URL": ""}, "needs a shared database"},
		"no token secret": {map[string]string{"SPA_TOKEN_SECRET": ""}, "SPA_TOKEN_SECRET: required in multi-node mode"},
		"no node name":    {map[string]string{"SPA_NODE_NAME": ""}, "SPA_NODE_NAME: required"},
		"bad node name":   {map[string]string{"SPA_NODE_NAME": "spa.0"}, "SPA_NODE_NAME"},
		"bad route":       {map[string]string{"SPA_CLUSTER_ROUTES": "http://x:1"}, "SPA_CLUSTER_ROUTES"},
		"route no port":   {map[string]string{"SPA_CLUSTER_ROUTES": "spa-1"}, "SPA_CLUSTER_ROUTES"},
		"bad addr":        {map[string]string{"SPA_CLUSTER_ADDR": "6222"}, "SPA_CLUSTER_ADDR"},
		"bad replicas":    {map[string]string{"SPA_CLUSTER_REPLICAS": "2"}, "SPA_CLUSTER_REPLICAS"},
		"short lease":     {map[string]string{"SPA_CLUSTER_LEASE_TTL": "100ms"}, "SPA_CLUSTER_LEASE_TTL"},
		"baseline":        {map[string]string{"SPA_BOOKING_ENGINE": "lock-baseline"}, "SPA_BOOKING_ENGINE"},
		"in-process nats": {map[string]string{"SPA_NATS_PORT": "0"}, "SPA_NATS_PORT"},
		"bad advertise":   {map[string]string{"SPA_HTTP_ADVERTISE": "spa-0:8080"}, "SPA_HTTP_ADVERTISE"},
		"tls half set":    {map[string]string{"SPA_CLUSTER_TLS_CERT": "node.crt"}, "set all three"},
		"tls missing files": {map[string]string{"SPA_CLUSTER_TLS_CERT": "/nonexistent/node.crt", "SPA_CLUSTER_TLS_KEY": "/nonexistent/node.key",
			"SPA_CLUSTER_TLS_CA": "/nonexistent/ca.pem"}, "SPA_CLUSTER_TLS_*: natsserver: route certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig("serve", nil, env(clusterEnv(tc.env)), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestClusterConfigRouteTLS: the three TLS files load into the routes'
// TLS configuration, which verifies peers against the CA.
func TestClusterConfigRouteTLS(t *testing.T) {
	ca := natstest.NewCA(t, "routes-ca")
	cert, key := ca.Issue(t, "spa-0")
	c, err := parseConfig("serve", nil, env(clusterEnv(map[string]string{
		"SPA_CLUSTER_TLS_CERT": cert, "SPA_CLUSTER_TLS_KEY": key, "SPA_CLUSTER_TLS_CA": ca.File})), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Cluster.natsConfig(natsserver.Config{}, c.TokenSecret).ClusterTLS
	if tc == nil || len(tc.Certificates) != 1 || tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.RootCAs == nil || tc.ClientCAs == nil {
		t.Fatalf("route TLS: %+v", tc)
	}
	// Without the files, routes are plain (authenticated by the secret).
	c, err = parseConfig("serve", nil, env(clusterEnv(nil)), io.Discard)
	if err != nil || c.Cluster.natsConfig(natsserver.Config{}, c.TokenSecret).ClusterTLS != nil {
		t.Fatalf("no TLS files: %v", err)
	}
}

// TestCountNodesCountsThisNodeOnce: however a node's own route appears in
// the seed list, it is counted once, so two nodes never ask for R3.
func TestCountNodesCountsThisNodeOnce(t *testing.T) {
	routes := func(hosts ...string) []string {
		var out []string
		for _, h := range hosts {
			out = append(out, "nats-route://"+h)
		}
		return out
	}
	for name, tc := range map[string]struct {
		cc       clusterConfig
		hostname string
		want     int
	}{
		"others only":        {clusterConfig{NodeName: "a", ListenAddr: "0.0.0.0:6222", Routes: routes("b:6222", "c:6222")}, "", 3},
		"self by node name":  {clusterConfig{NodeName: "a", ListenAddr: "0.0.0.0:6222", Routes: routes("a:6222", "b:6222")}, "", 2},
		"self by pod name":   {clusterConfig{NodeName: "spa-0", ListenAddr: "0.0.0.0:6222", Routes: routes("spa-0.spa-routes:6222", "spa-1.spa-routes:6222")}, "", 2},
		"self by hostname":   {clusterConfig{NodeName: "n1", ListenAddr: "0.0.0.0:6222", Routes: routes("box1:6222", "box2:6222")}, "box1", 2},
		"self by advertise":  {clusterConfig{NodeName: "n1", ListenAddr: "0.0.0.0:6222", Advertise: "10.0.0.1:6222", Routes: routes("10.0.0.1:6222", "10.0.0.2:6222", "10.0.0.3:6222")}, "", 3},
		"self by listen":     {clusterConfig{NodeName: "n1", ListenAddr: "127.0.0.1:6222", Routes: routes("127.0.0.1:6222", "127.0.0.1:6223")}, "", 2},
		"duplicates":         {clusterConfig{NodeName: "a", ListenAddr: "0.0.0.0:6222", Routes: routes("b:6222", "b:6222")}, "", 2},
		"a name prefix only": {clusterConfig{NodeName: "spa-1", ListenAddr: "0.0.0.0:6222", Routes: routes("spa-10:6222", "spa-11:6222")}, "", 3},
	} {
		if got := countNodes(&tc.cc, tc.hostname); got != tc.want {
			t.Errorf("%s: %d nodes, want %d", name, got, tc.want)
		}
	}
}

// TestShutdownDrainAuto: SPA_SHUTDOWN_DRAIN's auto keeps a lone node's
// stop immediate and gives a cluster node's load balancer time to see
// its 503; a value set is taken as it is, and a bad one names the setting.
func TestShutdownDrainAuto(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want time.Duration
	}{
		{"alone", nil, 0},
		{"cluster", clusterEnv(nil), defaultClusterDrain},
		{"cluster, set", clusterEnv(map[string]string{"SPA_SHUTDOWN_DRAIN": "7s"}), 7 * time.Second},
		{"cluster, off", clusterEnv(map[string]string{"SPA_SHUTDOWN_DRAIN": "0s"}), 0},
		{"alone, set", map[string]string{"SPA_SHUTDOWN_DRAIN": "3s"}, 3 * time.Second},
	} {
		c, err := parseConfig("serve", nil, env(tc.env), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.ShutdownDrain != tc.want {
			t.Errorf("%s: drain %v, want %v", tc.name, c.ShutdownDrain, tc.want)
		}
	}
	if _, err := parseConfig("serve", nil, env(map[string]string{"SPA_SHUTDOWN_DRAIN": "soon"}), io.Discard); err == nil || !strings.Contains(err.Error(), "SPA_SHUTDOWN_DRAIN") {
		t.Fatalf("a bad drain: %v", err)
	}
}
