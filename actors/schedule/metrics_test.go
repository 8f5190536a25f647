package schedule

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClaimSeries: each decision counts once in its own (kind, outcome)
// series and its latency histogram, through the looked-up series too.
func TestClaimSeries(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m.claim("hold", "slot_taken", time.Now())
	}
	m.claim("hold", "ok", time.Now())
	m.claim("reschedule", "slot_taken", time.Now())
	for _, c := range []struct {
		kind, outcome string
		want          float64
	}{{"hold", "slot_taken", 3}, {"hold", "ok", 1}, {"reschedule", "slot_taken", 1}, {"reschedule", "ok", 0}} {
		if got := testutil.ToFloat64(m.claims.WithLabelValues(c.kind, c.outcome)); got != c.want {
			t.Errorf("%s/%s: counted %v, want %v", c.kind, c.outcome, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 3 {
		t.Errorf("%d latency series, want 3", n)
	}
}

func TestMemoLookups(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.memoLookup(true)
	m.memoLookup(true)
	m.memoLookup(false)
	if h, miss := testutil.ToFloat64(m.memoHits), testutil.ToFloat64(m.memoMisses); h != 2 || miss != 1 {
		t.Fatalf("hits %v, misses %v; want 2 and 1", h, miss)
	}
	var none *Metrics
	none.memoLookup(true) // no metrics: no panic
}
