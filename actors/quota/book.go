package quota

import (
	"cmp"
	"container/heap"
	"slices"
)

// book is one key's live leases, indexed so that a decision costs
// O(log n) however many the key holds: a busy address's hold cap holds
// thousands in a load test, and scanning them on every grant was a sixth
// of the server's CPU in make bench's spread scenario.
type book struct {
	named map[string]lease // by ID
	anon  []lease          // the merged anonymous events of a window: at most 61
	total int64            // units of every lease held
	// due orders the named leases by expiry for pruning. It is lazy: a
	// lease set again leaves its earlier entry behind, skipped when popped
	// (its Until no longer matches), and the heap is rebuilt when such
	// entries outnumber the live ones.
	due dueHeap
}

// newBook indexes stored leases.
func newBook(ls []lease) *book {
	b := &book{named: make(map[string]lease, len(ls))}
	for _, l := range ls {
		if l.ID == "" {
			b.anon = append(b.anon, l)
			b.total += l.Units
		} else {
			b.set(l.ID, l.Units, l.Until)
		}
	}
	return b
}

// prune drops the leases that lapsed by now (Unix microseconds).
func (b *book) prune(now int64) {
	for len(b.due) > 0 && b.due[0].until <= now {
		d := heap.Pop(&b.due).(due)
		if l, ok := b.named[d.id]; ok && l.Until == d.until {
			delete(b.named, d.id)
			b.total -= l.Units
		}
	}
	b.anon = slices.DeleteFunc(b.anon, func(l lease) bool {
		if l.Until <= now {
			b.total -= l.Units
			return true
		}
		return false
	})
}

// units is what the named lease holds (0 when absent).
func (b *book) units(id string) int64 { return b.named[id].Units }

// set makes the named lease hold units until until; 0 units removes it.
func (b *book) set(id string, units, until int64) {
	b.total -= b.named[id].Units
	if units == 0 {
		delete(b.named, id)
		return
	}
	b.named[id] = lease{ID: id, Units: units, Until: until}
	b.total += units
	heap.Push(&b.due, due{until: until, id: id})
	if len(b.due) > 2*len(b.named)+64 {
		b.due = b.due[:0]
		for id, l := range b.named {
			b.due = append(b.due, due{until: l.Until, id: id})
		}
		heap.Init(&b.due)
	}
}

// addAnon counts units as an anonymous event until until, merged with the
// event of the same expiry.
func (b *book) addAnon(units, until int64) {
	b.total += units
	if i := slices.IndexFunc(b.anon, func(l lease) bool { return l.Until == until }); i >= 0 {
		b.anon[i].Units += units
		return
	}
	b.anon = append(b.anon, lease{Units: units, Until: until})
}

// release removes the named leases, reporting whether any was held.
func (b *book) release(ids []string) bool {
	changed := false
	for _, id := range ids {
		if _, ok := b.named[id]; ok && id != "" {
			b.set(id, 0, 0)
			changed = true
		}
	}
	return changed
}

// leases lists every lease, by expiry then ID: the persisted form, and
// what a refusal's wait is computed from.
func (b *book) leases() []lease {
	ls := make([]lease, 0, len(b.named)+len(b.anon))
	ls = append(ls, b.anon...)
	for _, l := range b.named {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(x, y lease) int {
		return cmp.Or(cmp.Compare(x.Until, y.Until), cmp.Compare(x.ID, y.ID))
	})
	return ls
}

// due is a named lease's expiry in the heap.
type due struct {
	until int64
	id    string
}

type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
