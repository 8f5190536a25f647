package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spa-engine/spa/cmd/spa/loadgen"
)

// TestLoadgenEndToEnd runs `spa loadgen` briefly against a served node on
// SQLite (actors engine), closed and open loop, and checks the result files
// and the correctness verdict. It asserts no timing.
func TestLoadgenEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	base, _, _ := serveInProcess(t, withoutHoardingCaps(map[string]string{}), dataDir)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"mixed-closed", []string{"--scenario", "mixed", "--workers", "4", "--duration", "2s", "--staff", "3", "--days", "2"}},
		{"spread-open", []string{"--scenario", "spread", "--mode", "open", "--rate", "40", "--workers", "8", "--duration", "1s", "--staff", "5", "--days", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out, summary := filepath.Join(dir, "r.json"), filepath.Join(dir, "s.md")
			args := append([]string{"loadgen", "--url", base, "--data-dir", dataDir, "--out", out, "--summary", summary,
				"--quiet", "--label", "test", "--name", tc.name}, tc.args...)
			var stdout syncBuffer
			if err := run(t.Context(), args, func(string) string { return "" }, &stdout, io.Discard); err != nil {
				t.Fatalf("loadgen: %v\n%s", err, stdout.String())
			}
			res := readResult(t, out)
			v := res.Correct
			if !v.OK || !v.Linearizable || !v.OverlapChecked || v.Overlaps != 0 || len(v.Violations) != 0 {
				t.Fatalf("verdict: %+v", v)
			}
			claims := res.Ops[loadgen.OpClaim]
			// A 200 is a client given back its own hold (the holder
			// rule): no decision, so outside the checked history.
			if claims == nil || claims.Count == 0 || res.Claims.Successes == 0 || v.ClaimsChecked != int(claims.Count-claims.Outcomes["200"]) {
				t.Fatalf("claims: %+v %+v (checked %d)", claims, res.Claims, v.ClaimsChecked)
			}
			if res.Label != "test" || res.Name != tc.name || res.RunID == "" || res.Operations == 0 {
				t.Fatalf("result: %+v", res)
			}
			if tc.name == "mixed-closed" && (res.Ops[loadgen.OpAvailability] == nil || res.Ops[loadgen.OpAvailability].Outcomes["200"] == 0) {
				t.Fatalf("mixed made no availability reads: %+v", res.Ops)
			}
			if tc.name == "spread-open" && (res.TargetRate != 40 || res.Mode != loadgen.ModeOpen || res.Operations != 40) {
				t.Fatalf("open loop: target %v, mode %s, %d operations (want the 40 scheduled)", res.TargetRate, res.Mode, res.Operations)
			}
			md, err := os.ReadFile(summary)
			if err != nil || !strings.Contains(string(md), "**Correctness: PASS**") || !strings.Contains(stdout.String(), "Correctness: PASS") {
				t.Fatalf("summary: %v\n%s", err, md)
			}
		})
	}
}

// TestLockBaselineRefusesSQLite: the baseline needs PostgreSQL and says so.
func TestLockBaselineRefusesSQLite(t *testing.T) {
	dir := t.TempDir()
	var stderr syncBuffer
	err := run(t.Context(), []string{"serve", "--booking-engine", "lock-baseline", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--nats-port", "-1", "--data-dir", dir},
		func(string) string { return "" }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "SPA_BOOKING_ENGINE") || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("serve with lock-baseline on SQLite: %v", err)
	}
	if _, err := parseConfig("serve", []string{"--booking-engine", "locks"}, func(string) string { return "" }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--booking-engine") {
		t.Fatalf("an unknown engine: %v", err)
	}
}

// readResult reads a loadgen result file.
func readResult(t *testing.T, path string) loadgen.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res loadgen.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
