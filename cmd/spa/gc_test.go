package main

import (
	"runtime/debug"
	"testing"
)

// The node collects less often than Go's default unless GOGC says
// otherwise.
func TestCollectLessOften(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	collectLessOften(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GOGC unset: target %d, want %d", got, gcPercent)
	}
	collectLessOften(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set: target changed to %d, want it left alone", got)
	}
}
