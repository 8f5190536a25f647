package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Cluster is what a cluster's routers did during a run: requests to
// placed actors answered on the node that took them, or forwarded to the
// owning node (spa_cluster_requests_total by path).
type Cluster struct {
	Nodes     int   `json:"nodes"`
	Local     int64 `json:"local"`
	Forwarded int64 `json:"forwarded"`
}

// ForwardedShare is the share of requests forwarded, in [0, 1].
func (c *Cluster) ForwardedShare() float64 {
	if c == nil || c.Local+c.Forwarded == 0 {
		return 0
	}
	return float64(c.Forwarded) / float64(c.Local+c.Forwarded)
}

type routed struct{ local, forwarded int64 }

// scrapeRouted sums spa_cluster_requests_total by path over the nodes'
// /metrics (Prometheus text format).
func scrapeRouted(ctx context.Context, urls []string) (routed, error) {
	var r routed
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return r, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return r, err
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			return r, fmt.Errorf("%s: %s", u, res.Status)
		}
		local, forwarded, err := parseRouted(bufio.NewScanner(res.Body))
		res.Body.Close()
		if err != nil {
			return r, fmt.Errorf("%s: %w", u, err)
		}
		r.local += local
		r.forwarded += forwarded
	}
	return r, nil
}

func parseRouted(sc *bufio.Scanner) (local, forwarded int64, err error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "spa_cluster_requests_total{") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%q: %w", line, err)
		}
		switch {
		case strings.Contains(line, `path="local"`):
			local += int64(v)
		case strings.Contains(line, `path="forwarded"`):
			forwarded += int64(v)
		}
	}
	return local, forwarded, sc.Err()
}

// ClusterLabel labels the runs through a three-node cluster (make bench).
const ClusterLabel = "cluster"

// writeCluster sets the cluster's spread beside the single node's: CPU
// per confirmed booking (issue 20: at most 1.5× the single node's) and
// the share of requests forwarded.
func writeCluster(b *strings.Builder, rs []*Result) {
	c, single := find(rs, ClusterLabel, ScenarioSpread), find(rs, EngineLabel, ScenarioSpread)
	if c == nil {
		return
	}
	b.WriteString("\n### Scale-out: `spread` through a three-node cluster\n\n")
	b.WriteString("Three `spa serve` nodes on this machine (`deploy/local-cluster.sh`, one PostgreSQL), the generator's workers spread over them round robin, so about two requests in three reach a node that does not own the staff member's partition and are forwarded. Same claims, keys and workers as the single node's keyed `spread`.\n\n")
	b.WriteString("| run | confirmed/s | CPU per confirmed booking | forwarded |\n|---|---:|---:|---:|\n")
	cpu := func(r *Result) string {
		if r == nil || r.CPU == nil {
			return "—"
		}
		return num(r.CPU.PerSuccessMs, "ms")
	}
	fwd := func(r *Result) string {
		if r == nil || r.Cluster == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f%% of %d", 100*r.Cluster.ForwardedShare(), r.Cluster.Local+r.Cluster.Forwarded)
	}
	fmt.Fprintf(b, "| single node (actors) | %s | %s | %s |\n", rate(successesPerSec(single)), cpu(single), fwd(single))
	fmt.Fprintf(b, "| three nodes | %s | %s | %s |\n", rate(successesPerSec(c)), cpu(c), fwd(c))
	if single != nil && single.CPU != nil && c.CPU != nil && single.CPU.PerSuccessMs > 0 {
		ratio := c.CPU.PerSuccessMs / single.CPU.PerSuccessMs
		fmt.Fprintf(b, "\nGoal (issue 20): CPU per confirmed booking through the cluster at most 1.5× the single node's: %s (%.2f×).\n", verdict(ratio <= 1.5), ratio)
	}
}
