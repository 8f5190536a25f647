package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/cluster/route"
)

// exportedMetrics is every metric family name a node can export: what a
// single node registers on its admin listener's registry (described, so
// vectors without a series yet count too, plus whatever it gathers), and
// the cluster's families, registered the way a cluster node does.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	cfg, err := parseConfig("serve", []string{"--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--nats-port", "-1", "--data-dir", t.TempDir()}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, err := startNode(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	defer n.shutdown()
	names := map[string]bool{}
	describe(t, n.reg, names)
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		names[f.GetName()] = true
	}
	cluster := prometheus.NewRegistry()
	if _, err := route.NewMetrics(cluster); err != nil {
		t.Fatal(err)
	}
	if _, err := newClusterMetrics(cluster, &clusterNode{}); err != nil {
		t.Fatal(err)
	}
	describe(t, cluster, names)
	return names
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func describe(t *testing.T, c prometheus.Collector, names map[string]bool) {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := fqNameRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
}

// TestDashboards: every dashboard in deploy/grafana/dashboards parses,
// has a unique uid and title, and every query (panels, rows' panels,
// template variables) names only metrics the node exports, so a renamed
// metric breaks this test rather than a panel nobody looks at until an
// incident.
func TestDashboards(t *testing.T) {
	files, err := filepath.Glob("../../deploy/grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	exported := exportedMetrics(t)
	uids, titles := map[string]string{}, map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardJSON
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(f)
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q, title %q: both required", name, d.UID, d.Title)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q is also %s's", name, d.UID, other)
		}
		uids[d.UID] = name
		if other, dup := titles[d.Title]; dup {
			t.Errorf("%s: title %q is also %s's", name, d.Title, other)
		}
		titles[d.Title] = name
		queries := d.queries()
		if len(queries) == 0 {
			t.Errorf("%s: no queries", name)
		}
		for _, q := range queries {
			metrics := metricNames(q.expr)
			if len(metrics) == 0 {
				t.Errorf("%s: %s: no metric in %q", name, q.where, q.expr)
			}
			for _, m := range metrics {
				if !exportedName(exported, m) {
					t.Errorf("%s: %s: %s is not exported by a node (query %q)", name, q.where, m, q.expr)
				}
			}
		}
	}
}

// dashboardJSON is the part of Grafana's dashboard model the test reads.
type dashboardJSON struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panelJSON struct {
	Title   string      `json:"title"`
	Panels  []panelJSON `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type query struct{ where, expr string }

func (d dashboardJSON) queries() []query {
	var out []query
	var walk func([]panelJSON)
	walk = func(ps []panelJSON) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{"panel " + strconv.Quote(p.Title), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// The query is a string or {"query": "..."}, by Grafana version.
		var s string
		if json.Unmarshal(v.Query, &s) != nil {
			var o struct{ Query string }
			_ = json.Unmarshal(v.Query, &o)
			s = o.Query
		}
		// label_values(metric, label): the metric is the first argument.
		s = strings.TrimSuffix(strings.TrimPrefix(s, "label_values("), ")")
		if metric, _, ok := strings.Cut(s, ","); ok {
			s = metric
		}
		out = append(out, query{"variable " + v.Name, s})
	}
	return out
}

// exportedName: a histogram's or summary's series (_bucket, _sum,
// _count) are exported when their family is.
func exportedName(exported map[string]bool, m string) bool {
	if exported[m] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(m, suffix); ok && exported[base] {
			return true
		}
	}
	return false
}

var (
	promStringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchersRE = regexp.MustCompile(`\{[^{}]*\}`)
	promRangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	// Label lists of aggregations and vector matching.
	promLabelListRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdentRE     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords    = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames are the metric names a PromQL expression selects: what is
// left once strings, label matchers, ranges and label lists are gone, minus
// function names (followed by "(") and keywords. Grafana's $variables
// are taken out first.
func metricNames(expr string) []string {
	s := regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`).ReplaceAllString(expr, "")
	s = promStringRE.ReplaceAllString(s, `""`)
	s = promMatchersRE.ReplaceAllString(s, " ")
	s = promRangeRE.ReplaceAllString(s, " ")
	s = promLabelListRE.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdentRE.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(word)] {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // a number's exponent or unit: 1e3, 0.5
		}
		out = append(out, word)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (area) (label_replace(rate(spa_http_requests_total{instance=~"$instance",status=~"5.."}[$__rate_interval]), "area", "$1", "route", "/v1/([^/]+).*"))`: "spa_http_requests_total",
		`histogram_quantile(0.95, sum by (le, kind) (rate(spa_x_bucket{a="b"}[5m])))`:                                                                                 "spa_x_bucket",
		`spa_a{x="1"} / on(instance) group_left(version) spa_b > 0.5 * 1e3 and bool spa_c`:                                                                            "spa_a spa_b spa_c",
		`max(go_gc_duration_seconds{quantile="1"}) offset 5m`:                                                                                                         "go_gc_duration_seconds",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
