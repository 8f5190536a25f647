package loadgen

import (
	"strings"
	"testing"
)

// TestReportNotifications: the fan-out's result file becomes its own
// section; without one there is none.
func TestReportNotifications(t *testing.T) {
	if md := report(t, resultDir(t, benchRuns())); strings.Contains(md, "Notifications fan-out") {
		t.Fatal("a fan-out section without a fan-out result")
	}
	n := &Result{Label: EngineLabel, Name: "notifications", Scenario: ScenarioNotifications, Mode: "burst",
		Correct:       Correctness{OK: true, Unchecked: "duplicates counted at the provider", Violations: []string{}},
		Notifications: &Notifications{Events: 10000, PerSec: 812.5, P50Ms: 4100, P99Ms: 9800, Duplicates: 0, Driver: "postgres"}}
	md := report(t, resultDir(t, append(benchRuns(), n)))
	wantLines(t, md,
		"## Notifications fan-out",
		"10000 appointment confirmations published to the event stream at once",
		"(recorded in postgres)",
		"| 10000 | 812 | 4100 ms | 9800 ms | 0 |",
		"All runs passed.",
	)
}
