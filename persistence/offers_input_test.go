package persistence_test

import (
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

func TestVoucherCode(t *testing.T) {
	for in, want := range map[string]string{
		"SPA-2025": "SPA-2025", " spa-2025\n": "SPA-2025", "Spa 2025": "SPA 2025", "": "",
	} {
		if got := persistence.NormalizeVoucherCode(in); got != want {
			t.Errorf("NormalizeVoucherCode(%q) = %q, want %q", in, got, want)
		}
	}
	// sha256("SPA-2025")
	const want = "9ecdadb543b53b9e67c90a5c4f157e586c1ffc8673c2b25b6352adcc13051260"
	for _, code := range []string{"SPA-2025", "\tspa-2025 ", "Spa-2025"} {
		if got := persistence.HashVoucherCode(code); got != want {
			t.Errorf("HashVoucherCode(%q) = %s, want %s", code, got, want)
		}
	}
	if persistence.HashVoucherCode("SPA-2026") == want {
		t.Error("different codes hash alike")
	}
}

func TestWaitlistWindows(t *testing.T) {
	h := func(hour int) time.Time { return time.Date(2025, 3, 14, hour, 0, 0, 0, time.UTC) }
	e := persistence.WaitlistEntry{From: h(9), To: h(12)}
	for _, c := range []struct {
		start, end int
		want       bool
	}{{9, 12, true}, {10, 11, true}, {8, 10, false}, {11, 13, false}} {
		if got := e.Contains(h(c.start), h(c.end)); got != c.want {
			t.Errorf("[9, 12) contains [%d, %d) = %v, want %v", c.start, c.end, got, c.want)
		}
	}
	for _, c := range []struct {
		from, to int
		want     bool
	}{{12, 14, false}, {7, 9, false}, {11, 14, true}, {7, 10, true}, {10, 11, true}, {8, 13, true}} {
		o := persistence.WaitlistEntry{From: h(c.from), To: h(c.to)}
		if got := e.Overlaps(o); got != c.want {
			t.Errorf("[9, 12) overlaps [%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	for _, s := range persistence.OpenWaitlistStatuses() {
		if !s.Open() || !s.Valid() {
			t.Errorf("open status %q: Open %v, Valid %v", s, s.Open(), s.Valid())
		}
	}
}
