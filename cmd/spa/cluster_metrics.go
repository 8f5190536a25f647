package main

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/cluster/partition"
)

// clusterMetrics are a node's cluster series. Forwarded requests and their
// latency are route's (spa_cluster_requests_total,
// spa_cluster_request_seconds, by kind: schedule, resource, inventory,
// cart, session); what each kind's router serves is
// spa_cluster_kind_partitions and spa_cluster_kind_actors; live actors per
// kind and fenced writes are the actor packages' (spa_schedule_actors,
// spa_resource_actors, spa_inventory_actors, spa_session_actors,
// spa_*_fenced_writes_total).
type clusterMetrics struct {
	epochs     *prometheus.GaugeVec
	rebalances *prometheus.CounterVec
}

func newClusterMetrics(reg prometheus.Registerer, c *clusterNode) (*clusterMetrics, error) {
	m := &clusterMetrics{
		epochs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spa_cluster_partition_epoch",
			Help: "Lease epoch (fencing token) of each partition this node owns.",
		}, []string{"partition"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_cluster_rebalances_total",
			Help: "Partition ownership changes on this node: acquire, and release by reason (handoff, shutdown, lost).",
		}, []string{"event"}),
	}
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_cluster_members",
		Help: "Live cluster members as this node sees them.",
	}, func() float64 {
		if c.members == nil {
			return 0
		}
		return float64(len(c.members.Members()))
	})
	owned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_cluster_partitions_owned",
		Help: "Partitions whose lease this node holds.",
	}, func() float64 {
		if c.parts == nil {
			return 0
		}
		return float64(len(c.parts.Owned()))
	})
	standby := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_cluster_standby",
		Help: "1 while this node is on standby: it cannot reach the database and hands its partitions to the other members.",
	}, func() float64 {
		if c.members == nil || !c.members.Self().Standby() {
			return 0
		}
		return 1
	})
	fenced := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "spa_cluster_fenced_activations_total",
		Help: "Calendar activations refused because a later partition owner's epoch is stored (a stale owner).",
	}, func() float64 { return float64(c.place.Fenced()) })
	if err := actors.Register(reg, m.epochs, m.rebalances, members, owned, standby, fenced, kindsCollector{c}); err != nil {
		return nil, fmt.Errorf("cluster metrics: %w", err)
	}
	return m, nil
}

func (m *clusterMetrics) acquired(p int, epoch uint64) {
	m.epochs.WithLabelValues(strconv.Itoa(p)).Set(float64(epoch))
	m.rebalances.WithLabelValues("acquire").Inc()
}

func (m *clusterMetrics) released(p int, why partition.Reason) {
	m.epochs.DeleteLabelValues(strconv.Itoa(p))
	m.rebalances.WithLabelValues(why.String()).Inc()
}

var (
	kindPartitionsDesc = prometheus.NewDesc("spa_cluster_kind_partitions",
		"Partitions whose actors of this kind this node serves.", []string{"kind"}, nil)
	kindActorsDesc = prometheus.NewDesc("spa_cluster_kind_actors",
		"Live actors of this kind on this node.", []string{"kind"}, nil)
)

// kindsCollector reports each router's partitions and actors at scrape
// time (the routers exist only once the node has joined).
type kindsCollector struct{ c *clusterNode }

func (k kindsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- kindPartitionsDesc
	ch <- kindActorsDesc
}

func (k kindsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range k.c.routers {
		parts, n := r.Stats()
		ch <- prometheus.MustNewConstMetric(kindPartitionsDesc, prometheus.GaugeValue, float64(parts), r.Kind())
		ch <- prometheus.MustNewConstMetric(kindActorsDesc, prometheus.GaugeValue, float64(n), r.Kind())
	}
}
