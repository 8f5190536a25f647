package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRun is a result as a run would have written it: dps decisions/s
// and sps successes/s, keyed or not.
func fakeRun(label, name, scenario string, keyed bool, dps, sps, p99 float64) *Result {
	return &Result{Label: label, Name: name, Scenario: scenario, Mode: ModeClosed, Idempotency: keyed, Achieved: dps,
		Started: time.Date(2026, 12, 5, 19, 0, 0, 0, time.UTC),
		Claims:  Claims{DecisionsPerSec: dps, SuccessesPerSec: sps, Successes: 64, FreeSlots: 64},
		Ops: map[string]*OpStats{OpClaim: {Count: 10, Outcomes: map[string]int64{"409 slot_taken": 10},
			Latency: Latency{P50: p99 / 4, P99: p99, P999: p99 * 2}}},
		Correct: Correctness{OK: true, Linearizable: true, OverlapChecked: true, ClaimsChecked: 10, Violations: []string{}}}
}

// resultDir writes rs as a bench's result directory and reads it back
// as `spa loadgen report` does.
func resultDir(t *testing.T, rs []*Result) []*Result {
	t.Helper()
	dir := t.TempDir()
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.Label+"-"+r.Name+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loaded, err := LoadResults(dir)
	if err != nil || len(loaded) != len(rs) {
		t.Fatalf("LoadResults: %d results, %v", len(loaded), err)
	}
	return loaded
}

func report(t *testing.T, rs []*Result) string {
	t.Helper()
	var sb strings.Builder
	if err := WriteReport(&sb, ReportInput{Results: rs, Machine: Machine{CPU: "Test CPU", Cores: 2}, Pinning: "not pinned"}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func wantLines(t *testing.T, md string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(md, l) {
			t.Errorf("report lacks %q", l)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// benchRuns is a bench's worth of hot and spread runs, keyed and not, and
// its ceiling.
func benchRuns() []*Result {
	ceiling := fakeRun(CeilingLabel, "ceiling", ScenarioCeiling, true, 80000, 0, 1)
	ceiling.Correct = Correctness{OK: true, Unchecked: ceilingUnchecked, Violations: []string{}}
	return []*Result{ceiling,
		fakeRun(EngineLabel, "hot", ScenarioHot, true, 24000, 3, 8),
		fakeRun(BaselineLabel, "hot", ScenarioHot, true, 1000, 3, 90),
		fakeRun(EngineLabel, "hot-unkeyed", ScenarioHot, false, 30000, 3, 6),
		fakeRun(BaselineLabel, "hot-unkeyed", ScenarioHot, false, 1200, 3, 80),
		fakeRun(EngineLabel, "spread", ScenarioSpread, true, 1500, 900, 70),
		fakeRun(BaselineLabel, "spread", ScenarioSpread, true, 600, 500, 250),
		fakeRun(EngineLabel, "spread-unkeyed", ScenarioSpread, false, 1700, 1000, 60),
		fakeRun(BaselineLabel, "spread-unkeyed", ScenarioSpread, false, 500, 400, 240),
	}
}

// TestReportKeyedUnkeyedAndCeiling: from result files, the report sets
// keyed beside unkeyed runs with the actors/baseline ratio of each, gives
// each hot run as a share of the bare-HTTP ceiling, and judges issue 14's
// checks on the keyed runs only: here hot passes both and spread fails
// (1.8× where 2× is asked) although its unkeyed run would pass.
func TestReportKeyedUnkeyedAndCeiling(t *testing.T) {
	md := report(t, resultDir(t, benchRuns()))
	wantLines(t, md,
		// keyed versus unkeyed, both engines, the ratio of each
		"| hot | decisions/s (successes + refusals) | keyed | 24000 | 1000 | 24.00× |",
		"| hot | decisions/s (successes + refusals) | unkeyed | 30000 | 1200 | 25.00× |",
		"| hot | claim p99 | unkeyed | 6.00 ms | 80.0 ms | 0.07× |",
		"| spread | confirmed bookings/s (successes) | keyed | 900 | 500 | 1.80× |",
		"| spread | confirmed bookings/s (successes) | unkeyed | 1000 | 400 | 2.50× |",
		// the ceiling
		"| bare-HTTP ceiling | keyed | 80000 | 0.25 ms | 1.00 ms | 100.0% |",
		"| actors hot | keyed | 24000 | 2.00 ms | 8.00 ms | 30.0% |",
		"| actors hot | unkeyed | 30000 | 1.50 ms | 6.00 ms | 37.5% |",
		"| lock-baseline hot | keyed | 1000 | 22.5 ms | 90.0 ms | 1.2% |",
		"The actors' keyed `hot` run decided 30.0% of the bare-HTTP ceiling's rate (24000/s of 80000/s).",
		// the verdicts, unkeyed beside them
		"| hot: decisions/s ≥ 20× the lock baseline's | 24000/s | 1000/s | 24.0× | met | 30000/s against 1200/s: 25.0× |",
		"| hot: decisions/s ≥ 25% of the bare-HTTP ceiling | 24000/s | 80000/s | 30.0% | met | 30000/s against 80000/s: 37.5% |",
		"| spread: confirmed bookings/s ≥ 2× the lock baseline's | 900/s | 500/s | 1.8× | **not met** | 1000/s against 400/s: 2.5× |",
		// every run's checks, the unkeyed ones and the ceiling's too
		"| actors | hot-unkeyed | unkeyed | 10 | true | 0 | 0 (0) | PASS |",
		"| lock-baseline | spread-unkeyed | unkeyed | 10 | true | 0 | 0 (0) | PASS |",
		"| bare-http | ceiling | keyed | — | n/a | n/a | n/a | PASS (fixed answers: no history or database to check) |",
		"All runs passed.",
	)
}

// TestReportVerdictEdges: a goal falls below its bar by the ratio alone;
// a "keyed" run that sent no keys is not measured rather than judged; an
// unkeyed run's failed check fails the bench like any other.
func TestReportVerdictEdges(t *testing.T) {
	rs := benchRuns()
	for _, r := range rs {
		switch {
		case r.Scenario == ScenarioCeiling:
			r.Claims.DecisionsPerSec = 100000 // the actors' hot is now 24%
		case r.Label == EngineLabel && r.Name == "spread":
			r.Idempotency = false
		case r.Label == BaselineLabel && r.Name == "spread-unkeyed":
			r.Correct = Correctness{ClaimsChecked: 10, OverlapChecked: true, Overlaps: 2,
				Violations: []string{"database: 2 live appointments overlap another of the same staff member (s1)"}}
		}
	}
	md := report(t, resultDir(t, rs))
	wantLines(t, md,
		"| hot: decisions/s ≥ 25% of the bare-HTTP ceiling | 24000/s | 100000/s | 24.0% | **not met** | 30000/s against 100000/s: 30.0% |",
		"| hot: decisions/s ≥ 20× the lock baseline's | 24000/s | 1000/s | 24.0× | met |",
		"| spread: confirmed bookings/s ≥ 2× the lock baseline's | 900/s | 500/s | 1.8× | **not measured** (the run sent no Idempotency-Key) |",
		"| lock-baseline | spread-unkeyed | unkeyed | 10 | false | 2 | 0 (0) | **FAIL**: database: 2 live appointments overlap",
		"**Some runs failed a correctness check.**",
	)
}

// paymentsRun is a webhooks run as it would have written its result:
// 5 000 events for 2 000 intents, each applied once.
func paymentsRun() *Result {
	return &Result{Label: EngineLabel, Name: ScenarioWebhooks, Scenario: ScenarioWebhooks, Mode: ModeClosed, Workers: 64,
		Started: time.Date(2026, 12, 5, 19, 30, 0, 0, time.UTC), Elapsed: 4, Operations: 5000, Achieved: 1250,
		Ops: map[string]*OpStats{OpWebhook: {Count: 5000, PerSecond: 1250,
			Outcomes: map[string]int64{"200 applied": 2000, "200 replay": 1000, "200 stale": 1000, "200 already_applied": 1000},
			Latency:  Latency{P50: 3.5, P99: 42, P999: 80}}},
		Payments: &Payments{Intents: 2000, Events: 5000, Duplicates: 1000, OutOfOrder: 2000, Applied: 2000, AppliesPerSec: 500,
			EventsPerSec: 1250, Check: PaymentsCheck{Checked: true, Intents: 2000, ApprovedOnce: 2000}},
		Correct: Correctness{OK: true, Violations: []string{}}}
}

// TestReportPayments: a webhooks run gets its own Payments section
// (events, duplicates, applies/s, p50/p99, double applies, verdict) and
// stays out of the booking runs' Correctness table, which reads as it did.
func TestReportPayments(t *testing.T) {
	md := report(t, resultDir(t, append(benchRuns(), paymentsRun())))
	wantLines(t, md,
		"## Payments",
		"| engine | run | events sent | duplicates | out of order | intents | applies | applies/s | events/s | webhook p50 | webhook p99 | not 200 | double applies | ledger sum | verdict |",
		"| actors | webhooks | 5000 | 1000 | 2000 | 2000 | 2000 | 500 | 1250 | 3.50 ms | 42.0 ms | 0 | 0 | 0 | PASS |",
		"All runs passed.",
	)
	if strings.Contains(md, "| actors | webhooks | keyed") || strings.Contains(md, "| actors | webhooks | unkeyed") {
		t.Errorf("the payments run is in the booking Correctness table:\n%s", md)
	}
	if got, want := strings.Index(md, "## Correctness"), strings.Index(md, "## Payments"); got < 0 || want < got {
		t.Errorf("Payments should follow Correctness (at %d, %d)", got, want)
	}

	// Without a payments run the section says so; the rest is unchanged.
	without := report(t, resultDir(t, benchRuns()))
	wantLines(t, without, "## Payments\n\nNo payments run in these results.")
	if strings.Replace(without, "\n## Payments\n\nNo payments run in these results.\n", "", 1) !=
		strings.Replace(md, md[strings.Index(md, "\n## Payments"):], "", 1) {
		t.Errorf("a payments run changed the other sections")
	}
}

// TestReportPaymentsFail: a double apply found in the database fails the
// payments line, with the violation shown.
func TestReportPaymentsFail(t *testing.T) {
	r := paymentsRun()
	r.Payments.Check.DoubleApplies, r.Payments.Check.ApprovedOnce = 1, 1999
	r.Correct = Correctness{Violations: []string{"payments: 1 intents applied more than once: p1 (2 approvals, paid 2 times)"}}
	md := report(t, resultDir(t, []*Result{r}))
	wantLines(t, md,
		"| actors | webhooks | 5000 | 1000 | 2000 | 2000 | 2000 | 500 | 1250 | 3.50 ms | 42.0 ms | 0 | 1 | 0 | **FAIL**: payments: 1 intents applied more than once: p1 (2 approvals, paid 2 times) |",
	)
}

// TestReportTailGoal: issue 20's light-load tail is judged at every rate
// from 150 to 1,200 claims/s both engines ran, and nowhere else.
func TestReportTailGoal(t *testing.T) {
	run := func(label string, rate, p99 float64) *Result {
		return &Result{Label: label, Name: fmt.Sprintf("sweep-%.0f", rate), TargetRate: rate,
			Ops: map[string]*OpStats{OpClaim: {Count: 1, Latency: Latency{P99: p99}}}}
	}
	for _, c := range []struct {
		name string
		rs   []*Result
		want string
	}{
		{"met", []*Result{run(EngineLabel, 150, 6), run(BaselineLabel, 150, 12), run(EngineLabel, 1200, 30), run(BaselineLabel, 1200, 900),
			run(EngineLabel, 2400, 500), run(BaselineLabel, 2400, 100), run(EngineLabel, 100, 9), run(BaselineLabel, 100, 1)},
			"1,200 claims/s: met (150/s: 6.00 ms against 12.0 ms; 1200/s: 30.0 ms against 900 ms)."},
		{"missed", []*Result{run(EngineLabel, 150, 20), run(BaselineLabel, 150, 7), run(EngineLabel, 300, 6), run(BaselineLabel, 300, 10)},
			"1,200 claims/s: **not met** (150/s: 20.0 ms against 7.00 ms; 300/s: 6.00 ms against 10.0 ms)."},
		{"no baseline", []*Result{run(EngineLabel, 150, 6)}, "1,200 claims/s: not measured."},
	} {
		var b strings.Builder
		writeTailGoal(&b, c.rs)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("%s: %q lacks %q", c.name, b.String(), c.want)
		}
	}
}
