package quota

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestBookMatchesAPlainList drives the indexed book and a plain list of
// leases with the same random operations: after each, both hold the same
// leases and the same total.
func TestBookMatchesAPlainList(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := newBook(nil)
	var model []lease
	now := int64(0)
	for step := range 20000 {
		id := fmt.Sprint("l", rng.IntN(40))
		switch op := rng.IntN(10); {
		case op < 5: // set, 0 units sometimes (a release by Take)
			units, until := int64(rng.IntN(4)), now+int64(1+rng.IntN(500))
			b.set(id, units, until)
			model = slices.DeleteFunc(model, func(l lease) bool { return l.ID == id })
			if units > 0 {
				model = append(model, lease{ID: id, Units: units, Until: until})
			}
		case op < 7:
			until := now + int64(rng.IntN(5))*100 + 100
			b.addAnon(1, until)
			if i := slices.IndexFunc(model, func(l lease) bool { return l.ID == "" && l.Until == until }); i >= 0 {
				model[i].Units++
			} else {
				model = append(model, lease{Units: 1, Until: until})
			}
		case op < 8:
			ids := []string{id, "absent"}
			held := slices.ContainsFunc(model, func(l lease) bool { return l.ID == id })
			if got := b.release(ids); got != held {
				t.Fatalf("step %d: release(%s) = %v, held %v", step, id, got, held)
			}
			model = slices.DeleteFunc(model, func(l lease) bool { return l.ID == id })
		default:
			now += int64(rng.IntN(50))
			b.prune(now)
			model = slices.DeleteFunc(model, func(l lease) bool { return l.Until <= now })
		}
		var total int64
		for _, l := range model {
			total += l.Units
		}
		if b.total != total {
			t.Fatalf("step %d: total %d, want %d", step, b.total, total)
		}
		if got, want := b.leases(), sortedLeases(model); !slices.Equal(got, want) {
			t.Fatalf("step %d: leases\n%v\nwant\n%v", step, got, want)
		}
		if len(b.due) > 2*len(b.named)+65 {
			t.Fatalf("step %d: %d expiries kept for %d leases", step, len(b.due), len(b.named))
		}
	}
}

func sortedLeases(ls []lease) []lease {
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(x, y lease) int {
		if x.Until != y.Until {
			return int(x.Until - y.Until)
		}
		return strings.Compare(x.ID, y.ID)
	})
	return ls
}
