package sqlstore

import (
	"math/bits"
	"strings"
)

// Insert is the shape of a one-row INSERT the pipeline may send together
// with other held inserts of the same shape, as one INSERT of many rows:
// a group commit of forty holds then costs PostgreSQL four statements (an
// idempotency record, an appointment, a transition and an outbox event
// each), not a hundred and sixty, and the per-statement work (bind, plan,
// executor start, a protocol message each way) was most of what
// PostgreSQL spent per booking.
type Insert struct {
	table string
	refs  []string // the tables its rows reference (foreign keys)
	head  string   // INSERT INTO t (columns) VALUES
	row   string   // one row's (?, ?, ...)
	tail  string   // after the rows: ON CONFLICT ..., or nothing
	one   string   // head + row + tail
}

// newInsert describes the one-row INSERT head+row+tail into table, whose
// rows reference the tables refs. Only row has placeholders: a merged
// statement's arguments are its rows', one after the other.
func newInsert(table, head, row, tail string, refs ...string) *Insert {
	if strings.Contains(head+tail, "?") {
		panic("sqlstore: a merged insert's placeholders belong in its row")
	}
	return &Insert{table: table, refs: refs, head: head, row: row, tail: tail, one: head + row + tail}
}

// maxParams bounds a merged statement's parameters (PostgreSQL's protocol
// counts them in 16 bits).
const maxParams = 65535

// merge folds the held one-row inserts of stmts (Stmt.Insert set, no Row
// callback) into multi-row ones, spelling each merged query with rebind.
// A group of inserts stays where its first one was, so an insert joining
// it moves earlier, past the statements in between; it may pass inserts
// into other tables, but neither an insert into its own table or a table
// it references (then it starts a group of its own after them) nor any
// other statement (a read, an update, a delete: the inserts after one
// never join a group before it). So every statement still follows what
// it depends on, and a transaction that commits writes the same rows.
//
// A merged statement's Affected, when any of its inserts has one, tells
// each of them 1 when every row was written (an upsert's WHERE can skip
// one), else tells each 0: which row was skipped is unknown, as a
// pipelined error's statement is (the batch writer then writes every job
// alone). Two rows of one merged upsert with the same key fail it
// (PostgreSQL updates a row once per statement): the same, in effect.
func merge(stmts []Stmt, rebind func(string) string) []Stmt {
	type group struct {
		insert  *Insert
		members []Stmt
	}
	var slots []*group           // in order; a plain statement is a group of one without rows
	open := map[*Insert]int{}    // the latest group of each shape since the last barrier
	lastInto := map[string]int{} // the latest slot holding an insert into each table, since then
	merged := false
	for _, s := range stmts {
		if s.Insert == nil || s.Row != nil {
			slots = append(slots, &group{members: []Stmt{s}})
			clear(open)
			clear(lastInto)
			continue
		}
		at, ok := open[s.Insert]
		if ok {
			g := slots[at]
			ok = (len(g.members)+1)*len(s.Args) <= maxParams && lastInto[s.Insert.table] <= at
			for _, ref := range s.Insert.refs {
				ok = ok && lastInto[ref] <= at
			}
		}
		if ok {
			slots[at].members = append(slots[at].members, s)
			merged = true
		} else {
			at = len(slots)
			slots = append(slots, &group{insert: s.Insert, members: []Stmt{s}})
			open[s.Insert] = at
		}
		lastInto[s.Insert.table] = max(lastInto[s.Insert.table], at)
	}
	if !merged {
		return stmts
	}
	out := make([]Stmt, 0, len(slots))
	for _, g := range slots {
		// In runs of a power of two rows: a shape is then spelled a few
		// ways, not one per batch size, so every connection's cache of
		// prepared statements keeps them all (a statement not in it costs
		// a round trip more to prepare).
		for m := g.members; len(m) > 0; {
			k := 1 << (bits.Len(uint(len(m))) - 1)
			if k == 1 {
				out = append(out, m[0])
			} else {
				out = append(out, g.insert.merged(m[:k], rebind))
			}
			m = m[k:]
		}
	}
	return out
}

// merged is one INSERT of members' rows.
func (r *Insert) merged(members []Stmt, rebind func(string) string) Stmt {
	var q strings.Builder
	q.Grow(len(r.head) + len(members)*(len(r.row)+2) + len(r.tail))
	q.WriteString(r.head)
	n := 0
	for i, m := range members {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(r.row)
		n += len(m.Args)
	}
	q.WriteString(r.tail)
	args := make([]any, 0, n)
	told := false
	for _, m := range members {
		args = append(args, m.Args...)
		told = told || m.Affected != nil
	}
	s := Stmt{Query: rebind(q.String()), Args: args}
	if told {
		s.Affected = func(affected int64) error {
			each := int64(0)
			if affected == int64(len(members)) {
				each = 1
			}
			var first error
			for _, m := range members {
				if m.Affected != nil {
					if err := m.Affected(each); err != nil && first == nil {
						first = err
					}
				}
			}
			return first
		}
	}
	return s
}
