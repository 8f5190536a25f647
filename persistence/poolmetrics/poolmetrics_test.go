package poolmetrics

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// TestCollectorReadsThePool: the series follow the pool of a real store
// (a connection held during a transaction shows as acquired).
func TestCollectorReadsThePool(t *testing.T) {
	st := sqlitetest.Open(t, persistence.Options{})
	var src persistence.PoolStatser = st
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(src))
	var during float64
	err := st.InTx(context.Background(), func(persistence.Tx) error {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			if mf.GetName() == "spa_db_pool_acquired_connections" {
				during = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if during < 1 {
		t.Fatalf("acquired connections during a transaction = %v, want >= 1", during)
	}
	want := `
# HELP spa_db_pool_acquired_connections Database connections lent out now.
# TYPE spa_db_pool_acquired_connections gauge
spa_db_pool_acquired_connections 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "spa_db_pool_acquired_connections"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 5 {
		t.Fatalf("series: %d, %v", n, err)
	}
}
