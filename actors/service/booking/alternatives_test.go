package booking

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// TestAskedOthers: a refusal asks every other qualified staff member when
// there are few, else othersAsked distinct ones, never the refused one,
// and which ones moves with the start.
func TestAskedOthers(t *testing.T) {
	var team []persistence.StaffMember
	for i := range 30 {
		team = append(team, persistence.StaffMember{ID: fmt.Sprintf("s%02d", i)})
	}
	at := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	if got := askedOthers(team[:5], "s01", at); len(got) != 4 || slices.ContainsFunc(got, func(m persistence.StaffMember) bool { return m.ID == "s01" }) {
		t.Fatalf("few staff: %v", got)
	}
	seen := map[string]bool{}
	for k := range 40 {
		start := at.Add(time.Duration(k) * 15 * time.Minute)
		got := askedOthers(team, "s03", start)
		ids := map[string]bool{}
		for _, m := range got {
			if m.ID == "s03" || ids[m.ID] {
				t.Fatalf("start %v: asked %v", start, got)
			}
			ids[m.ID], seen[m.ID] = true, true
		}
		if len(ids) != othersAsked {
			t.Fatalf("start %v: asked %d, want %d", start, len(ids), othersAsked)
		}
	}
	if len(seen) != len(team)-1 {
		t.Fatalf("over many starts only %d of %d others were ever asked", len(seen), len(team)-1)
	}
}
