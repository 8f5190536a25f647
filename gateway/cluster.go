package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

// ClusterView reports this node's view of its cluster for GET /v1/cluster;
// Deps.Cluster nil means the node runs alone.
type ClusterView interface {
	ClusterStatus() ClusterStatus
}

// ClusterStatus is the body of GET /v1/cluster.
type ClusterStatus struct {
	Mode       string             `json:"mode"` // "single" or "cluster"
	Node       string             `json:"node"`
	Owned      int                `json:"owned"`
	Members    []ClusterMember    `json:"members"`
	Partitions []ClusterPartition `json:"partitions"`
	// Kinds are the actor kinds placed by partition, as this node serves
	// them.
	Kinds []ClusterKind `json:"kinds"`
}

// ClusterKind is one actor kind placed by partition (schedule, resource,
// inventory, cart, session) on this node.
type ClusterKind struct {
	Kind string `json:"kind"`
	// Partitions this node serves the kind's actors of.
	Partitions int `json:"partitions"`
	// Actors of the kind live on this node now.
	Actors int `json:"actors"`
}

// ClusterMember is one live node.
type ClusterMember struct {
	Name        string    `json:"name"`
	Incarnation string    `json:"incarnation"`
	StartedAt   time.Time `json:"started_at"`
	HTTP        string    `json:"http"`
	Self        bool      `json:"self"`
	// Standby: the member cannot reach the database and owns no
	// partition while another member can (docs/cluster.md).
	Standby bool `json:"standby"`
}

// ClusterPartition is one partition's lease as this node last saw it.
type ClusterPartition struct {
	Partition int    `json:"partition"`
	Owner     string `json:"owner"`
	Epoch     uint64 `json:"epoch"`
}

// getCluster serves GET /v1/cluster.
func (s *server) getCluster(c *fiber.Ctx) error {
	if s.deps.Cluster == nil {
		return c.JSON(ClusterStatus{Mode: "single", Members: []ClusterMember{}, Partitions: []ClusterPartition{}, Kinds: []ClusterKind{}})
	}
	st := s.deps.Cluster.ClusterStatus()
	st.Mode = "cluster"
	if st.Members == nil {
		st.Members = []ClusterMember{}
	}
	if st.Partitions == nil {
		st.Partitions = []ClusterPartition{}
	}
	if st.Kinds == nil {
		st.Kinds = []ClusterKind{}
	}
	return c.JSON(st)
}
