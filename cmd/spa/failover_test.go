//go:build failover

// `make failover` builds this file with -tags failover: a measurement,
// not part of CI, so the suite neither runs nor skips it.

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/persistence/pgtest"
)

// failoverGoal is the fail-over every kill must meet in `make failover`
// (SPA_FAILOVER_GOAL overrides it): all of the dead node's partitions
// owned by survivors, with the tests' 2 s lease TTL. A timing goal, so it
// lives in this measuring target and not in TestCluster.
const failoverGoal = 5 * time.Second

// failoverRun is what one kill took, from the SIGKILL on.
type failoverRun struct {
	victim        string
	ledLeases     bool          // the victim led the lease bucket's Raft group
	ledMembers    bool          // the victim led the membership bucket's
	leaseLeader   time.Duration // the lease bucket has a live leader again
	membersLeader time.Duration
	memberGone    time.Duration // a survivor no longer lists the victim
	owned         time.Duration // every partition owned by a survivor
}

// TestFailoverKills is `make failover`, a measurement and not part of
// CI: three nodes under light load, SPA_FAILOVER_KILLS kills with
// SIGKILL (every other one the lease bucket's Raft leader, the slow
// case, the others a random node), each followed by a restart of the
// victim. It reports each fail-over and where its time went, then min,
// median and max, and fails when any kill took longer than the goal or
// the bookings' history is not linearizable.
func TestFailoverKills(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv("SPA_FAILOVER_KILLS"))
	if kills <= 0 {
		t.Fatal("SPA_FAILOVER_KILLS must be a positive number of kills (make failover runs 20)")
	}
	goal := failoverGoal
	if v := os.Getenv("SPA_FAILOVER_GOAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SPA_FAILOVER_GOAL: %v", err)
		}
		goal = d
	}
	pgtest.BaseURL(t)
	bin := buildBinary(t)
	c := startTestCluster(t, bin, nil)
	s := c.setUp(12)
	js := c.jetStream()
	l := c.startLoad(s, 6)
	var runs []failoverRun
	for k := range kills {
		l.await(t, loadStretch/2, "", "the load to run before kill "+strconv.Itoa(k+1))
		leases, members := c.leader(js, "KV_"+partition.DefaultBucket), c.leader(js, "KV_spa_members")
		victim := c.nodes[rand.N(len(c.nodes))]
		if k%2 == 0 && leases != "" {
			victim = c.byName(leases)
		}
		run := c.killAndMeasure(js, victim)
		run.ledLeases, run.ledMembers = victim.name == leases, victim.name == members
		runs = append(runs, run)
		t.Logf("kill %2d: %s (led leases %v, members %v): lease leader after %v, members leader after %v, member dropped after %v, all partitions owned after %v",
			k+1, run.victim, run.ledLeases, run.ledMembers, ms(run.leaseLeader), ms(run.membersLeader), ms(run.memberGone), ms(run.owned))
		c.restart(victim)
		c.setLive(0, 1, 2)
		c.waitSettled(time.Minute, 0, 1, 2)
	}
	l.await(t, loadStretch, "", "the load to run after the last restart")
	l.finish()
	c.verify(l)

	owned := make([]time.Duration, len(runs))
	var slow []string
	for i, r := range runs {
		owned[i] = r.owned
		if r.owned > goal {
			slow = append(slow, fmt.Sprintf("kill %d (%s, led leases %v): %v", i+1, r.victim, r.ledLeases, ms(r.owned)))
		}
	}
	slices.Sort(owned)
	t.Logf("fail-over over %d kills (lease TTL %v): min %v, median %v, max %v; goal %v",
		len(runs), clusterLeaseTTL, ms(owned[0]), ms(owned[len(owned)/2]), ms(owned[len(owned)-1]), goal)
	if len(slow) > 0 {
		t.Errorf("%d of %d fail-overs over the %v goal:\n%s", len(slow), len(runs), goal, strings.Join(slow, "\n"))
	}
}

func ms(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// killAndMeasure kills victim with SIGKILL and times, on the survivors,
// the new Raft leaders of the cluster buckets, the victim's drop from the
// members and the take-over of every partition (both survivors agree on
// an owner among them).
func (c *testCluster) killAndMeasure(js jetstream.JetStream, victim *clusterProc) failoverRun {
	c.t.Helper()
	var survivors []int
	for i, p := range c.nodes {
		if p != victim {
			survivors = append(survivors, i)
		}
	}
	c.setLive(survivors...)
	run := failoverRun{victim: victim.name}
	logged := map[*clusterProc]int{}
	for _, i := range survivors {
		logged[c.nodes[i]] = len(c.nodes[i].stderr.String())
	}
	killed := time.Now()
	if err := victim.cmd.Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
	<-victim.exited
	alive := func(leader string) bool { return leader != "" && leader != victim.name }
	deadline := killed.Add(time.Minute)
	for run.owned == 0 || run.leaseLeader == 0 || run.membersLeader == 0 || run.memberGone == 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("kill of %s: not recovered after a minute: %+v", victim.name, run)
		}
		since := time.Since(killed)
		if run.leaseLeader == 0 && alive(c.leader(js, "KV_"+partition.DefaultBucket)) {
			run.leaseLeader = since
		}
		if run.membersLeader == 0 && alive(c.leader(js, "KV_spa_members")) {
			run.membersLeader = since
		}
		if v, err := c.view(c.nodes[survivors[0]]); err == nil && run.memberGone == 0 {
			listed := false
			for _, m := range v.Members {
				listed = listed || m.Name == victim.name
			}
			if !listed {
				run.memberGone = since
			}
		}
		if run.owned == 0 && c.survivorsOwnAll(survivors) {
			run.owned = since
		}
		time.Sleep(25 * time.Millisecond)
	}
	if os.Getenv("SPA_FAILOVER_LOGS") != "" {
		// What the survivors said about leases and members meanwhile.
		for p, from := range logged {
			for _, line := range strings.Split(p.stderr.String()[from:], "\n") {
				if strings.Contains(line, "partition") || strings.Contains(line, "member") || strings.Contains(line, "lease") || strings.Contains(line, "watch") {
					c.t.Logf("%s: %s", p.name, line)
				}
			}
		}
	}
	return run
}

// survivorsOwnAll reports whether the survivors agree on an owner among
// them for every partition. A node reports no owner for a lease of its own
// it no longer holds, so a survivor that lost its leases while the bucket
// elected a leader counts only once it holds them again.
func (c *testCluster) survivorsOwnAll(survivors []int) bool {
	_, ok := c.ownersAgreed(survivors, func([]memberView) bool { return true })
	return ok
}

// jetStream connects to the nodes' NATS client ports as the test's own
// client (with the cluster's secret), reconnecting to any node alive.
func (c *testCluster) jetStream() jetstream.JetStream {
	c.t.Helper()
	secret, err := decodeSecret(clusterSecret)
	if err != nil {
		c.t.Fatal(err)
	}
	var urls []string
	for _, p := range c.nodes {
		urls = append(urls, "nats://127.0.0.1:"+p.env["SPA_NATS_PORT"])
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Token(natsSecret(secret)), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.Name("failover-test"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// leader returns the Raft leader of stream as the stream reports it, or
// "" while it has none (or cannot be asked).
func (c *testCluster) leader(js jetstream.JetStream, stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info := st.CachedInfo()
	if info == nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}
