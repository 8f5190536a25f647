package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cmd/spa/loadgen"
)

// startBare runs `spa bare` through run() on a random port and returns its
// base URL; the test's end stops it, as SIGTERM would, and checks that it
// stopped cleanly.
func startBare(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"bare", "--http-addr", "127.0.0.1:0"}, func(string) string { return "" }, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("spa bare: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("spa bare did not stop")
		}
	})
	var base string
	testwait.Until(t, 30*time.Second, "spa bare to listen", func() error {
		select {
		case err := <-done:
			t.Fatalf("spa bare exited early: %v\n%s", err, stderr.String())
		default:
		}
		if base = listeningURL(stdout.String()); base == "" {
			return fmt.Errorf("not listening yet\n%s", stderr.String())
		}
		return nil
	})
	return base
}

// TestBareAnswersEveryClaimWithTheRefusal: whatever the claim, the answer
// is the fixed 409 slot_taken with the table's message and five
// alternatives; /readyz answers for the bench's wait, and anything else is
// the API's JSON error.
func TestBareAnswersEveryClaimWithTheRefusal(t *testing.T) {
	a := api{t, startBare(t)}
	for _, body := range []any{nil, map[string]any{"service_id": "x", "staff_id": "y", "start": "2030-01-01T00:00:00Z"}} {
		code, out := a.call("POST", "/v1/appointments", "any-token", body, "Idempotency-Key", "k1")
		e, _ := out["error"].(map[string]any)
		alts, _ := e["details"].(map[string]any)["alternatives"].([]any)
		if code != 409 || e["code"] != fault.CodeSlotTaken || e["message"] != fault.New(fault.CodeSlotTaken, "").Message ||
			e["request_id"] == "" || len(alts) != 5 {
			t.Fatalf("claim %v: %d %v", body, code, out)
		}
	}
	a.must(200, "GET", "/readyz", "", nil)
	if code, out := a.call("GET", "/v1/appointments", "", nil); code != 405 && code != 404 || out["error"] == nil {
		t.Fatalf("GET /v1/appointments: %d %v, want a JSON error", code, out)
	}
}

// TestBareRefusalHasTheServedShape: the ceiling's refusal has the same
// JSON shape (every key, at every depth, with the same kind of value) as a
// served node's refusal of a taken slot, so the ceiling writes what a
// node writes.
func TestBareRefusalHasTheServedShape(t *testing.T) {
	dataDir := t.TempDir()
	base, _, _ := serveInProcess(t, map[string]string{}, dataDir)
	a := api{t, base}
	admin := issueToken(t, dataDir, "owner", "admin")
	client := issueToken(t, dataDir, "maria", "client")
	week := everyDay("08:00", "18:00")
	a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "skills": []string{"nails"},
		"time_zone": "America/Bogota", "weekly_hours": week, "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/services/nails-15", admin, map[string]any{"name": "Nails", "category": "hands",
		"duration_minutes": 15, "price_minor": 100, "required_skills": []string{"nails"}, "active": true, "version": 0})
	bogota, _ := time.LoadLocation("America/Bogota")
	day := time.Now().In(bogota).AddDate(0, 0, 2)
	start := time.Date(day.Year(), day.Month(), day.Day(), 10, 0, 0, 0, bogota).Format(time.RFC3339)
	claim := map[string]any{"service_id": "nails-15", "staff_id": "ana", "start": start}
	a.must(201, "POST", "/v1/appointments", client, claim)
	rival := issueToken(t, dataDir, "juan", "client") // the holder would get its own hold back
	var served map[string]any
	testwait.Until(t, 10*time.Second, "the slot to be taken and refused", func() error {
		code, out := a.call("POST", "/v1/appointments", rival, claim)
		if code != 409 {
			return fmt.Errorf("claim: %d %v", code, out)
		}
		served = out
		return nil
	})

	bare := api{t, startBare(t)}
	_, ceiling := bare.call("POST", "/v1/appointments", client, claim)
	if got, want := shapeOf(ceiling), shapeOf(served); !slices.Equal(got, want) {
		t.Fatalf("the ceiling's refusal has shape\n%v\nthe served one\n%v\n(served: %v)", got, want, served)
	}
	if e := served["error"].(map[string]any); e["code"] != fault.CodeSlotTaken || e["message"] != ceiling["error"].(map[string]any)["message"] {
		t.Fatalf("served %v, ceiling %v", served, ceiling)
	}
}

// shapeOf lists the paths of v's JSON values with their kinds, an array's
// items all under "[]", sorted: two bodies of one shape list the same.
func shapeOf(v any) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			out = append(out, path+": object")
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			out = append(out, path+": array")
			for _, e := range x {
				walk(path+"[]", e)
			}
		default:
			out = append(out, fmt.Sprintf("%s: %T", path, x))
		}
	}
	walk("", v)
	slices.Sort(out)
	return slices.Compact(out)
}

// TestLoadgenCeilingEndToEnd: `spa loadgen --scenario ceiling` against
// `spa bare` needs no database (no DATABASE_URL, nothing seeded) and
// passes with every keyed claim counted as a decision.
func TestLoadgenCeilingEndToEnd(t *testing.T) {
	base := startBare(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "ceiling.json")
	args := []string{"loadgen", "--url", base, "--data-dir", filepath.Join(dir, "data"), "--scenario", "ceiling", "--idempotency",
		"--workers", "4", "--duration", "1s", "--label", loadgen.CeilingLabel, "--name", "ceiling",
		"--out", out, "--summary", filepath.Join(dir, "ceiling.md"), "--quiet"}
	if err := run(t.Context(), args, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatalf("loadgen --scenario ceiling: %v", err)
	}
	res := readResult(t, out)
	cl := res.Ops[loadgen.OpClaim]
	if !res.Correct.OK || res.Correct.Unchecked == "" || cl == nil || cl.Count == 0 || cl.Outcomes["409 slot_taken"] != cl.Count ||
		res.Claims.Decisions != cl.Count || !res.Idempotency {
		t.Fatalf("ceiling result: %+v, claims %+v", res.Correct, cl)
	}
}
