package loadgen

import (
	"bufio"
	"strings"
	"testing"
)

// TestParseRouted: only spa_cluster_requests_total counts, by its path
// label, whatever the other labels.
func TestParseRouted(t *testing.T) {
	text := `# HELP spa_cluster_requests_total Requests to placed actors.
# TYPE spa_cluster_requests_total counter
spa_cluster_requests_total{kind="schedule",outcome="ok",path="local"} 120
spa_cluster_requests_total{kind="schedule",outcome="ok",path="forwarded"} 230
spa_cluster_requests_total{kind="session",outcome="error",path="forwarded"} 5
spa_cluster_request_seconds_count{kind="schedule",path="local"} 999
spa_other_total{path="local"} 7
`
	local, forwarded, err := parseRouted(bufio.NewScanner(strings.NewReader(text)))
	if err != nil || local != 120 || forwarded != 235 {
		t.Fatalf("parseRouted = %d local, %d forwarded, %v; want 120, 235", local, forwarded, err)
	}
	if _, _, err := parseRouted(bufio.NewScanner(strings.NewReader(`spa_cluster_requests_total{path="local"} x`))); err == nil {
		t.Fatal("a value that is not a number was read")
	}
}

// TestClientNodes: workers are spread over the nodes round robin; seeding
// uses the first.
func TestClientNodes(t *testing.T) {
	c := newClient(Options{BaseURL: "http://a:1,http://b:2,http://c:3", Workers: 4})
	if c.base != "http://a:1" {
		t.Fatalf("seeding base %q", c.base)
	}
	for i, want := range []string{"http://a:1", "http://b:2", "http://c:3", "http://a:1"} {
		if got := c.node(i).base; got != want {
			t.Fatalf("worker %d on %q, want %q", i, got, want)
		}
	}
	if c.node(1).http != c.http {
		t.Fatal("a worker's client does not share the connections")
	}
}

// TestReportCluster: the cluster's spread beside the single node's, with
// the forwarded share and the 1.5× CPU goal.
func TestReportCluster(t *testing.T) {
	rs := benchRuns()
	for _, r := range rs {
		if r.Label == EngineLabel && r.Name == ScenarioSpread {
			r.CPU = &CPUUse{ServerSeconds: 6, DatabaseSeconds: 3, PerSuccessMs: 0.5}
		}
	}
	c := fakeRun(ClusterLabel, ScenarioSpread, ScenarioSpread, true, 1200, 700, 90)
	c.CPU = &CPUUse{ServerSeconds: 12, DatabaseSeconds: 4, PerSuccessMs: 0.9}
	c.Cluster = &Cluster{Nodes: 3, Local: 400, Forwarded: 600}
	md := report(t, resultDir(t, append(rs, c)))
	wantLines(t, md,
		"### Scale-out: `spread` through a three-node cluster",
		"| single node (actors) | 900/s | 0.50 ms | — |",
		"| three nodes | 700/s | 0.90 ms | 60% of 1000 |",
		"Goal (issue 20): CPU per confirmed booking through the cluster at most 1.5× the single node's: **not met** (1.80×).",
	)
}
