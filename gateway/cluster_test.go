package gateway

import (
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
)

type fakeCluster struct{ st ClusterStatus }

func (f fakeCluster) ClusterStatus() ClusterStatus { return f.st }

func TestClusterSingleNode(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/cluster", "", "Authorization", "Bearer "+e.token("op", auth.RoleAdmin))
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if m := r.json(t); m["mode"] != "single" || len(m["members"].([]any)) != 0 {
		t.Fatalf("single node view: %v", m)
	}
}

func TestClusterView(t *testing.T) {
	started := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(d *Deps) {
		d.Cluster = fakeCluster{ClusterStatus{Node: "n1", Owned: 1,
			Members: []ClusterMember{
				{Name: "n1", Incarnation: "a", StartedAt: started, HTTP: "http://n1:8080", Self: true},
				{Name: "n2", Incarnation: "b", StartedAt: started},
			},
			Partitions: []ClusterPartition{{Partition: 0, Owner: "n1", Epoch: 42}, {Partition: 1}},
			Kinds:      []ClusterKind{{Kind: "inventory", Partitions: 1, Actors: 3}},
		}}
	})
	if r := e.do("GET", "/v1/cluster", "", "Authorization", "Bearer "+e.token("c", auth.RoleClient)); r.status != 403 {
		t.Fatalf("a client got %d", r.status)
	}
	if r := e.do("GET", "/v1/cluster", ""); r.status != 401 && r.status != 403 {
		t.Fatalf("anonymous got %d", r.status)
	}
	r := e.do("GET", "/v1/cluster", "", "Authorization", "Bearer "+e.token("op", auth.RoleAdmin))
	m := r.json(t)
	if r.status != 200 || m["mode"] != "cluster" || m["node"] != "n1" || m["owned"] != float64(1) {
		t.Fatalf("cluster view: %d %v", r.status, m)
	}
	parts := m["partitions"].([]any)
	if len(parts) != 2 || parts[0].(map[string]any)["epoch"] != float64(42) || parts[1].(map[string]any)["owner"] != "" {
		t.Fatalf("partitions: %v", parts)
	}
	if mem := m["members"].([]any); len(mem) != 2 || mem[0].(map[string]any)["self"] != true {
		t.Fatalf("members: %v", mem)
	}
	if k := m["kinds"].([]any); len(k) != 1 || k[0].(map[string]any)["kind"] != "inventory" || k[0].(map[string]any)["actors"] != float64(3) {
		t.Fatalf("kinds: %v", k)
	}
}
