package loadgen

import (
	"context"
	"strings"
	"testing"
)

func TestRunRepeatedTakesTheMedianTry(t *testing.T) {
	rates := []float64{1200, 700, 1000}
	i := 0
	run := func(context.Context, Options) (*Result, error) {
		r := &Result{RunID: string(rune('a' + i)), Scenario: ScenarioHot, Correct: Correctness{OK: true}}
		r.Claims.DecisionsPerSec = rates[i]
		i++
		return r, nil
	}
	got, err := runRepeated(context.Background(), Options{}, 3, run)
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != "c" || got.Claims.DecisionsPerSec != 1000 {
		t.Fatalf("median try = %s at %v/s, want c at 1000/s", got.RunID, got.Claims.DecisionsPerSec)
	}
	if len(got.Repeats) != 3 || got.Repeats[0].Headline != 1200 || got.Repeats[1].RunID != "b" {
		t.Fatalf("repeats = %+v, want the three tries in order", got.Repeats)
	}
	if s := repeatList(got.Repeats); s != "1200/s, 700/s, 1000/s" {
		t.Fatalf("repeatList = %q", s)
	}
}

func TestRunRepeatedStopsAtAViolation(t *testing.T) {
	calls := 0
	run := func(context.Context, Options) (*Result, error) {
		calls++
		r := &Result{RunID: "bad", Scenario: ScenarioSpread}
		r.Claims.SuccessesPerSec = 5000
		return r, ErrViolation
	}
	got, err := runRepeated(context.Background(), Options{}, 3, run)
	if err != ErrViolation || got == nil || got.RunID != "bad" || calls != 1 {
		t.Fatalf("got %v, %v after %d tries; want the violating try at once", got, err, calls)
	}
}

func TestReportListsRepeatedTries(t *testing.T) {
	a := &Result{Label: EngineLabel, Name: ScenarioHot, Scenario: ScenarioHot, Idempotency: true,
		Repeats: []Repeat{{Headline: 900, OK: true}, {Headline: 1000, OK: true}, {Headline: 1100, OK: true}}}
	a.Claims.DecisionsPerSec = 1000
	var b strings.Builder
	writeRepeats(&b, []*Result{a})
	if n := strings.Count(b.String(), "actors `hot`: 900/s, 1000/s, 1100/s"); n != 1 {
		t.Fatalf("report lists the tries %d times, want once:\n%s", n, b.String())
	}
}
