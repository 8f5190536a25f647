package booking

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/schedule"
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
	if got := askedOthers(team[:5], persistence.Service{}, "s01", at, nil); len(got) != 4 || slices.ContainsFunc(got, func(m persistence.StaffMember) bool { return m.ID == "s01" }) {
		t.Fatalf("few staff: %v", got)
	}
	seen := map[string]bool{}
	for k := range 40 {
		start := at.Add(time.Duration(k) * 15 * time.Minute)
		got := askedOthers(team, persistence.Service{}, "s03", start, nil)
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

// TestAskedOthersPicksAsTheCopyingWayDid: the allocation-free pick asks the
// same members in the same order as filtering the qualified ones into a
// list and taking othersAsked of it from the start's place: for teams with
// and without the skill, every size around othersAsked, and many starts.
func TestAskedOthersPicksAsTheCopyingWayDid(t *testing.T) {
	reference := func(active []persistence.StaffMember, sv persistence.Service, staffID string, start time.Time) []string {
		var others []string
		for _, m := range qualifiedStaff(active, sv, "") {
			if m.ID != staffID {
				others = append(others, m.ID)
			}
		}
		if len(others) <= othersAsked {
			return others
		}
		from := int(uint64(start.Unix()/60) % uint64(len(others)))
		var picked []string
		for i := range othersAsked {
			picked = append(picked, others[(from+i)%len(others)])
		}
		return picked
	}
	sv := persistence.Service{RequiredSkills: []string{"hot-stone"}}
	at := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	for size := range 24 {
		var team []persistence.StaffMember
		for i := range size {
			m := persistence.StaffMember{ID: fmt.Sprintf("s%02d", i)}
			if i%3 != 1 {
				m.Skills = []string{"massage", "hot-stone"}
			}
			team = append(team, m)
		}
		for k := range 50 {
			start := at.Add(time.Duration(k) * 15 * time.Minute)
			for _, refused := range []string{"s00", "s01", "s05", "nobody"} {
				var got []string
				for _, m := range askedOthers(team, sv, refused, start, nil) {
					got = append(got, m.ID)
				}
				if want := reference(team, sv, refused, start); !slices.Equal(got, want) {
					t.Fatalf("team of %d, %s refused at %v: asked %v, want %v", size, refused, start, got, want)
				}
			}
		}
	}
}

// TestAskedOthersPrefersThisNode: in a cluster the others whose actors
// live on this node are asked first, rotating among them as among all; the
// rest only when too few are local.
func TestAskedOthersPrefersThisNode(t *testing.T) {
	var team []persistence.StaffMember
	for i := range 30 {
		team = append(team, persistence.StaffMember{ID: fmt.Sprintf("s%02d", i)})
	}
	at := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	for _, locals := range []int{0, 3, 12, 30} {
		local := func(id string) bool { var n int; fmt.Sscanf(id, "s%d", &n); return n < locals }
		seen := map[string]bool{}
		for k := range 40 {
			start := at.Add(time.Duration(k) * 15 * time.Minute)
			got := askedOthers(team, persistence.Service{}, "s01", start, local)
			if len(got) != othersAsked {
				t.Fatalf("%d local: asked %d, want %d", locals, len(got), othersAsked)
			}
			near, ids := 0, map[string]bool{}
			for _, m := range got {
				if m.ID == "s01" || ids[m.ID] {
					t.Fatalf("%d local, start %v: asked %v", locals, start, got)
				}
				ids[m.ID] = true
				if local(m.ID) {
					near++
					seen[m.ID] = true
				}
			}
			wantNear := min(othersAsked, max(locals-1, 0)) // s01 is never asked
			if near != wantNear {
				t.Fatalf("%d local, start %v: %d local asked, want %d (%v)", locals, start, near, wantNear, got)
			}
		}
		if wantSeen := max(locals-1, 0); len(seen) != wantSeen {
			t.Fatalf("%d local: over many starts %d local others asked, want all %d", locals, len(seen), wantSeen)
		}
	}
}

// TestInWaves: the others are asked in order, each wave no larger than the
// free slots still wanted, until enough are free or all were asked; a
// failed wave ends the asking with the answers so far.
func TestInWaves(t *testing.T) {
	var team []persistence.StaffMember
	for i := range othersAsked {
		team = append(team, persistence.StaffMember{ID: fmt.Sprintf("s%02d", i)})
	}
	at := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		free      func(i int) bool
		failAfter int // asks answered before one fails (0: none fails)
		want      int
		asked     []int // wave sizes
		found     int
	}{
		{"all free", func(int) bool { return true }, 0, 2, []int{2}, 2},
		{"every other free", func(i int) bool { return i%2 == 1 }, 0, 2, []int{2, 1, 1}, 2},
		{"nobody free", func(int) bool { return false }, 0, 5, []int{5, 3}, 0},
		{"room for none", func(int) bool { return true }, 0, 0, nil, 0},
		{"a wave fails", func(i int) bool { return i == 0 }, 1, 3, []int{3, 2}, 1},
	}
	for _, c := range cases {
		var waves []int
		asked := 0
		replies := inWaves(team, c.want, func(wave []persistence.StaffMember) ([]*schedule.SlotsReply, error) {
			waves = append(waves, len(wave))
			if c.failAfter > 0 && len(waves) > c.failAfter {
				return nil, errors.New("unreachable")
			}
			var rs []*schedule.SlotsReply
			for _, m := range wave {
				if m.ID != team[asked].ID {
					t.Fatalf("%s: asked %s, want %s (in order)", c.name, m.ID, team[asked].ID)
				}
				r := &schedule.SlotsReply{}
				if c.free(asked) {
					r.Slots = []availability.Slot{{StaffID: m.ID, Start: at}}
				}
				rs = append(rs, r)
				asked++
			}
			return rs, nil
		})
		found := len(fairOrder(replies))
		if !slices.Equal(waves, c.asked) || found != c.found {
			t.Errorf("%s: waves %v, found %d; want %v, %d", c.name, waves, found, c.asked, c.found)
		}
	}
}
