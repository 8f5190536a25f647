package loadgen

import (
	"context"
	"math"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence/pgtest"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/postgres"
	"github.com/spa-engine/spa/persistence/sqlite"
)

func TestZipfSkewsTowardLowRanks(t *testing.T) {
	z := newZipf(mrand.New(mrand.NewPCG(1, 2)), 1.1, 50)
	counts := make([]int, 50)
	const n = 200000
	for range n {
		r := z.next()
		if r < 0 || r >= 50 {
			t.Fatalf("rank %d out of [0, 50)", r)
		}
		counts[r]++
	}
	for i := 1; i < 10; i++ {
		if counts[i] >= counts[i-1] {
			t.Fatalf("rank %d drawn %d times, not fewer than rank %d (%d)", i, counts[i], i-1, counts[i-1])
		}
	}
	// P(rank 0) / P(rank 1) = 2^1.1 ≈ 2.14.
	if r := float64(counts[0]) / float64(counts[1]); math.Abs(r-math.Pow(2, 1.1)) > 0.15 {
		t.Fatalf("rank 0 / rank 1 = %.2f, want about %.2f", r, math.Pow(2, 1.1))
	}
	if counts[49] == 0 {
		t.Fatal("the least popular rank was never drawn")
	}
	if one := newZipf(mrand.New(mrand.NewPCG(1, 2)), 0.5, 1); one.next() != 0 {
		t.Fatal("a single rank must always be 0")
	}
}

func TestOpenLoopSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := arrival(t0, 100, 0); !got.Equal(t0) {
		t.Fatalf("first arrival %v", got)
	}
	if got := arrival(t0, 100, 250); got.Sub(t0) != 2500*time.Millisecond {
		t.Fatalf("arrival 250 at 100/s = %v after start, want 2.5s", got.Sub(t0))
	}
	if got := arrival(t0, 3, 1); got.Sub(t0) != 333333333*time.Nanosecond {
		t.Fatalf("arrival 1 at 3/s = %v", got.Sub(t0))
	}
	for _, tc := range []struct {
		rate float64
		d    time.Duration
		want int64
	}{{100, time.Second, 100}, {100, 1500 * time.Millisecond, 150}, {3, time.Second, 3}, {0.5, 3 * time.Second, 2},
		{1000, 10 * time.Millisecond, 10}, {7, 0, 0}, {0, time.Second, 0}} {
		if got := arrivals(tc.rate, tc.d); got != tc.want {
			t.Errorf("arrivals(%v, %v) = %d, want %d", tc.rate, tc.d, got, tc.want)
		}
		if n := arrivals(tc.rate, tc.d); n > 0 && arrival(t0, tc.rate, n-1).Sub(t0) >= tc.d {
			t.Errorf("arrivals(%v, %v): the last arrival is not inside the run", tc.rate, tc.d)
		}
	}
}

func TestStatsAndSummary(t *testing.T) {
	a, b := newStats(), newStats()
	for i := 1; i <= 100; i++ {
		a.record(OpClaim, "201", time.Duration(i)*time.Millisecond)
	}
	b.record(OpClaim, "409 slot_taken", 5*time.Second)
	b.record(OpAvailability, "200", time.Millisecond)
	b.record(OpClaim, "timeout", 10*time.Minute) // beyond the range: clamped, not lost
	a.merge(b)
	ops := a.ops(10 * time.Second)
	cl := ops[OpClaim]
	if cl.Count != 102 || cl.Outcomes["201"] != 100 || cl.Outcomes["409 slot_taken"] != 1 || cl.Outcomes["timeout"] != 1 {
		t.Fatalf("claim stats: %+v", cl)
	}
	if cl.PerSecond != 10.2 {
		t.Fatalf("per second %v", cl.PerSecond)
	}
	if cl.Latency.P50 < 49 || cl.Latency.P50 > 52 || cl.Latency.Max < 119000 {
		t.Fatalf("latency %+v", cl.Latency)
	}
	res := &Result{Name: "hot", Label: "actors", RunID: "lgx", Scenario: ScenarioHot, Mode: ModeOpen, Workers: 4, TargetRate: 10,
		Achieved: 10.3, Elapsed: 10, Ops: ops, Claims: Claims{Decisions: 101, Successes: 100, Refusals: 1, FreeSlots: 64},
		Correct: Correctness{OK: true, Linearizable: true, ClaimsChecked: 102, Violations: []string{}}}
	var sb strings.Builder
	if err := res.WriteMarkdown(&sb); err != nil {
		t.Fatal(err)
	}
	md := sb.String()
	for _, want := range []string{"## Load run actors / hot", "target 10 ops/s, achieved 10.3 ops/s",
		"| claim | 102 | 10.2 |", "201: 100, 409 slot_taken: 1, timeout: 1", "Free slots at start: 64", "**Correctness: PASS**"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	res.Correct = Correctness{Violations: []string{"database: 2 live appointments overlap"}}
	sb.Reset()
	_ = res.WriteMarkdown(&sb)
	if !strings.Contains(sb.String(), "**Correctness: FAIL**") || !strings.Contains(sb.String(), "- database: 2 live appointments overlap") {
		t.Fatalf("failed summary:\n%s", sb.String())
	}
}

func TestReportAndPlot(t *testing.T) {
	mk := func(label, name string, dps, sps, p99 float64) *Result {
		return &Result{Label: label, Name: name, Scenario: name, Achieved: dps, TargetRate: dps, Idempotency: true,
			Claims: Claims{DecisionsPerSec: dps, SuccessesPerSec: sps, Successes: 64, FreeSlots: 64},
			Ops: map[string]*OpStats{OpClaim: {Count: 1, Outcomes: map[string]int64{"201": 1}, Latency: Latency{P50: p99 / 4, P99: p99}},
				OpAvailability: {Count: 1, Outcomes: map[string]int64{"200": 1}, Latency: Latency{P99: p99}}},
			Correct: Correctness{OK: true, Linearizable: true, Violations: []string{}}}
	}
	rs := []*Result{mk(EngineLabel, "hot", 3000, 10, 40), mk(BaselineLabel, "hot", 600, 10, 200),
		mk(EngineLabel, "spread", 900, 800, 50), mk(BaselineLabel, "spread", 300, 290, 300),
		mk(EngineLabel, "sweep-100", 100, 90, 5), mk(EngineLabel, "sweep-200", 200, 180, 8), mk(BaselineLabel, "sweep-100", 100, 90, 20),
		mk(EngineLabel, "idle", 20, 2, 4), mk(BaselineLabel, "idle", 20, 2, 4),
		mk(EngineLabel, "mixed", 3000, 100, 40), mk(BaselineLabel, "mixed", 1500, 80, 70),
		mk(EngineLabel, MixedLoadRun, 1000, 50, 7), mk(BaselineLabel, MixedLoadRun, 1000, 50, 30)}
	var sb strings.Builder
	if err := WriteReport(&sb, ReportInput{Results: rs, Machine: Machine{CPU: "Test CPU", Cores: 2}, Pinning: "not pinned",
		Commands: "bin/spa loadgen ...", PlotFile: "benchmarks-latency.svg"}); err != nil {
		t.Fatal(err)
	}
	md := sb.String()
	for _, want := range []string{"Test CPU, 2 cores", "| hot | decisions/s (successes + refusals) | 3000 | 600 | 5.00× |",
		"| hot: decisions/s ≥ 20× the lock baseline's | 3000/s | 600/s | 5.0× | **not met** | not run |", "| hot: p99 ≤ ¼ of baseline's | 40.0 ms | 200 ms | met",
		"| spread: confirmed bookings/s ≥ 2× the lock baseline's | 800/s | 290/s | 2.8× | met | not run |",
		"| hot: decisions/s ≥ 25% of the bare-HTTP ceiling | 3000/s | — | — | **not measured** | not run |", "No ceiling run in these results.", "![claim latency versus throughput](benchmarks-latency.svg)",
		"All runs passed.", "bin/spa loadgen ...",
		"| mixed | availability p99 under load (closed loop, saturated) | 40.0 ms | 70.0 ms |",
		"| mixed | availability p99 under load (open loop, 1000 ops/s) | 7.00 ms | 30.0 ms |",
		"| mixed (actors): availability p99 under load (open loop) ≤ 2× idle | 7.00 ms | 4.00 ms idle | met (1.8×) |",
		"| mixed (lock-baseline): availability p99 under load (open loop) ≤ 2× idle | 30.0 ms | 4.00 ms idle | **not met** (7.5×) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	sb.Reset()
	if err := WritePlot(&sb, rs); err != nil {
		t.Fatal(err)
	}
	svg := sb.String()
	if !strings.HasPrefix(svg, "<svg") || strings.Count(svg, "<polyline") != 4 || !strings.Contains(svg, "lock-baseline p99") {
		t.Fatalf("plot:\n%s", svg)
	}
}

// seedOverlaps stores appointments for staff x-a (two overlapping live
// ones, plus an expired hold and a cancelled one overlapping them) and x-b
// (back to back: no overlap), then checks CountOverlaps.
func seedOverlaps(t *testing.T, store persistence.Store, databaseURL, sqlitePath string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	at := now.Add(48 * time.Hour)
	var week [7][]persistence.ClockRange
	if err := store.InTx(ctx, func(tx persistence.Tx) error {
		for _, id := range []string{"x-a", "x-b", "y-a"} {
			if _, err := tx.StaffPut(ctx, persistence.StaffMember{ID: id, Name: id, TimeZone: "UTC", Weekly: week, Active: true}); err != nil {
				return err
			}
		}
		n := 0
		add := func(staff string, start time.Time, status persistence.AppointmentStatus, holdUntil time.Time) error {
			n++
			return tx.AppointmentInsert(ctx, persistence.Appointment{ID: "ap" + string(rune('a'+n)), StaffID: staff, ServiceID: "s", ClientID: "c",
				Start: start, End: start.Add(time.Hour), Status: status, HoldExpiresAt: holdUntil, CreatedAt: now, UpdatedAt: now})
		}
		for _, err := range []error{
			add("x-a", at, persistence.StatusConfirmed, time.Time{}),
			add("x-a", at.Add(30*time.Minute), persistence.StatusHeld, now.Add(time.Hour)),
			add("x-a", at.Add(15*time.Minute), persistence.StatusHeld, now.Add(-time.Minute)), // expired
			add("x-a", at.Add(10*time.Minute), persistence.StatusCancelled, time.Time{}),
			add("x-b", at, persistence.StatusConfirmed, time.Time{}),
			add("x-b", at.Add(time.Hour), persistence.StatusConfirmed, time.Time{}),
			add("y-a", at, persistence.StatusConfirmed, time.Time{}),
			add("y-a", at, persistence.StatusConfirmed, time.Time{}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ov, err := CountOverlaps(ctx, databaseURL, sqlitePath, "x-", now)
	if err != nil {
		t.Fatal(err)
	}
	if ov.Count != 1 || len(ov.Staff) != 1 || ov.Staff[0] != "x-a" {
		t.Fatalf("overlaps of x-: %+v, want one on x-a", ov)
	}
	if ov, err := CountOverlaps(ctx, databaseURL, sqlitePath, "", now); err != nil || ov.Count != 2 {
		t.Fatalf("overlaps of all staff: %+v %v, want 2", ov, err)
	}
	if ov, err := CountOverlaps(ctx, databaseURL, sqlitePath, "x-b", now); err != nil || ov.Count != 0 {
		t.Fatalf("back-to-back appointments: %+v %v", ov, err)
	}
	if ov, err := CountOverlaps(ctx, databaseURL, sqlitePath, "x_", now); err != nil || ov.Count != 0 {
		t.Fatalf("the prefix is literal (no LIKE wildcards): %+v %v", ov, err)
	}
}

func TestCountOverlapsSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa.db")
	store, err := sqlite.Open(t.Context(), path, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	seedOverlaps(t, store, "", path)
	if _, err := CountOverlaps(t.Context(), "", filepath.Join(t.TempDir(), "missing.db"), "", time.Now()); err == nil {
		t.Fatal("a missing SQLite file must be an error, not zero overlaps")
	}
}

func TestCountOverlapsPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.SchemaURL(t, "loadgen")
	store, err := postgres.Open(ctx, url, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	seedOverlaps(t, store, url, "")
}
