package gateway

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/persistence"
)

// TestSlotsJSONMatchesEncodingJSON: the hand-written encoder writes
// byte for byte what encoding/json writes for []slotJSON, for plain ids
// and for ones that need escaping, whole and fractional seconds, any zone.
func TestSlotsJSONMatchesEncodingJSON(t *testing.T) {
	bogota, err := time.LoadLocation("America/Bogota")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, bogota)
	in := []availability.Slot{
		{Start: start, End: start.Add(time.Hour), StaffID: "ana"},
		{Start: start.Add(1500 * time.Millisecond).UTC(), End: start.Add(time.Hour + time.Nanosecond), StaffID: `we"ird<&>\é` + "\n"},
	}
	for _, slots := range [][]availability.Slot{nil, in[:1], in} {
		want := make([]slotJSON, len(slots))
		for i, s := range slots {
			want[i] = slotJSON{s.Start.UTC(), s.End.UTC(), s.StaffID}
		}
		wantJSON, err := json.Marshal(map[string]any{"slots": want})
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(map[string]any{"slots": slotsJSON(slots)})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(wantJSON) {
			t.Fatalf("got  %s\nwant %s", got, wantJSON)
		}
		for _, id := range []string{"massage", `odd"<id>`} {
			want, err := json.Marshal(fiber.Map{"service_id": id, "slots": want})
			if err != nil {
				t.Fatal(err)
			}
			if got := availabilityBody(id, slots); string(got) != string(want) {
				t.Fatalf("availability body\n got %s\nwant %s", got, want)
			}
		}
	}
}

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
