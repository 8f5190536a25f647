package sqlstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestMerge: held one-row inserts of a shape become one statement where
// their group stood, with their arguments in order; an insert never passes
// one into its own table of another shape, one into a table it
// references, or any other statement; a lone insert is left as it is.
func TestMerge(t *testing.T) {
	parent := newInsert("parent", "INSERT INTO parent (id) VALUES ", "(?)", "")
	child := newInsert("child", "INSERT INTO child (id, parent) VALUES ", "(?, ?)", "", "parent")
	log := newInsert("log", "INSERT INTO log (id) VALUES ", "(?)", " ON CONFLICT DO NOTHING")
	log2 := newInsert("log", "INSERT INTO log (id, x) VALUES ", "(?, ?)", "")
	ins := func(i *Insert, args ...any) Stmt { return Stmt{Query: i.one, Insert: i, Args: args} }
	read := Stmt{Query: "SELECT 1", Row: func(Row) error { return nil }}
	update := Stmt{Query: "UPDATE parent SET x = 1"}
	show := func(stmts []Stmt) string {
		var b strings.Builder
		for _, s := range stmts {
			fmt.Fprintf(&b, "%s %v\n", s.Query, s.Args)
		}
		return b.String()
	}
	cases := []struct {
		name string
		in   []Stmt
		want string
	}{
		{"two jobs", []Stmt{read, read, ins(log, "l1"), ins(parent, "p1"), ins(child, "c1", "p1"), ins(log, "l2"), ins(parent, "p2"), ins(child, "c2", "p2")},
			"SELECT 1 []\nSELECT 1 []\nINSERT INTO log (id) VALUES (?), (?) ON CONFLICT DO NOTHING [l1 l2]\nINSERT INTO parent (id) VALUES (?), (?) [p1 p2]\nINSERT INTO child (id, parent) VALUES (?, ?), (?, ?) [c1 p1 c2 p2]\n"},
		{"a child before its parent's group", []Stmt{ins(child, "c0", "p0"), ins(parent, "p1"), ins(child, "c1", "p1"), ins(parent, "p2")},
			"INSERT INTO child (id, parent) VALUES (?, ?) [c0 p0]\nINSERT INTO parent (id) VALUES (?), (?) [p1 p2]\nINSERT INTO child (id, parent) VALUES (?, ?) [c1 p1]\n"},
		{"another shape into the same table", []Stmt{ins(log, "l1"), ins(log2, "m1", 1), ins(log, "l2")},
			"INSERT INTO log (id) VALUES (?) ON CONFLICT DO NOTHING [l1]\nINSERT INTO log (id, x) VALUES (?, ?) [m1 1]\nINSERT INTO log (id) VALUES (?) ON CONFLICT DO NOTHING [l2]\n"},
		{"an update between", []Stmt{ins(parent, "p1"), update, ins(parent, "p2"), ins(parent, "p3")},
			"INSERT INTO parent (id) VALUES (?) [p1]\nUPDATE parent SET x = 1 []\nINSERT INTO parent (id) VALUES (?), (?) [p2 p3]\n"},
		{"nothing to merge", []Stmt{ins(parent, "p1"), read, ins(parent, "p2")},
			"INSERT INTO parent (id) VALUES (?) [p1]\nSELECT 1 []\nINSERT INTO parent (id) VALUES (?) [p2]\n"},
	}
	same := func(q string) string { return q }
	for _, c := range cases {
		if got := show(merge(c.in, same)); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, got, c.want)
		}
	}

	// The parameters of one statement stay within PostgreSQL's limit.
	wide := newInsert("wide", "INSERT INTO wide VALUES ", "(?, ?, ?)", "")
	var many []Stmt
	for i := range 30000 {
		many = append(many, ins(wide, i, i, i))
	}
	out := merge(many, same)
	total := 0
	for _, s := range out {
		if len(s.Args) > maxParams || strings.Count(s.Query, "?") != len(s.Args) {
			t.Fatalf("a statement of %d arguments, %d placeholders", len(s.Args), strings.Count(s.Query, "?"))
		}
		total += len(s.Args)
	}
	if total != 90000 {
		t.Fatalf("30000 rows of 3: %d arguments", total)
	}

	// Rows go in runs of a power of two: 13 rows are 8, 4 and 1.
	var thirteen []Stmt
	for i := range 13 {
		thirteen = append(thirteen, ins(parent, i))
	}
	var runs []int
	for _, s := range merge(thirteen, same) {
		runs = append(runs, len(s.Args))
	}
	if !slices.Equal(runs, []int{8, 4, 1}) {
		t.Fatalf("13 rows sent in runs of %v", runs)
	}
}

// TestMergedAffected: a merged upsert tells each of its inserts 1 when
// every row was written, else 0 to each (which one was skipped is not
// known); inserts without a check are not told.
func TestMergedAffected(t *testing.T) {
	up := newInsert("keys", "INSERT INTO keys (k) VALUES ", "(?)", " ON CONFLICT (k) DO UPDATE SET k = excluded.k WHERE false")
	var told []int64
	held := errors.New("held")
	claim := func(k string) Stmt {
		return Stmt{Insert: up, Query: up.one, Args: []any{k}, Affected: func(n int64) error {
			told = append(told, n)
			if n != 1 {
				return held
			}
			return nil
		}}
	}
	plain := Stmt{Insert: up, Query: up.one, Args: []any{"x"}}
	out := merge([]Stmt{claim("a"), plain, claim("b"), plain}, func(q string) string { return q })
	if len(out) != 1 || out[0].Affected == nil {
		t.Fatalf("merged into %d statements", len(out))
	}
	if err := out[0].Affected(4); err != nil || !slices.Equal(told, []int64{1, 1}) {
		t.Fatalf("all written: %v, told %v", err, told)
	}
	told = nil
	if err := out[0].Affected(3); !errors.Is(err, held) || !slices.Equal(told, []int64{0, 0}) {
		t.Fatalf("one skipped: %v, told %v", err, told)
	}
}
