package sqlstore

import (
	"strconv"
	"strings"
	"sync"

	"github.com/spa-engine/spa/persistence"
)

// flavour is the SQL spelling of one dialect kind, for the few things
// PostgreSQL/CockroachDB and SQLite write differently. Everything else is
// written once in the subset both accept.
type flavour struct {
	// numbered: placeholders are $1, $2, ... instead of ?.
	numbered bool
	// arrays: a list is one array argument (= ANY($n)) instead of one
	// argument per element (IN (?, ?, ...)).
	arrays bool
	// contains is a condition true when the byte column %s contains the
	// bytes of the one argument.
	contains string
}

func flavourOf(k persistence.Dialect) flavour {
	if k == persistence.DialectPostgres {
		return flavour{numbered: true, arrays: true, contains: "position(?::bytea in %s) > 0"}
	}
	return flavour{contains: "instr(%s, ?) > 0"}
}

// rebound caches numbered spellings by query text: queries are constants
// (lists are one array argument where placeholders are numbered), so the
// cache is bounded and the hot path rebinds each statement once per process.
var rebound sync.Map // string → string

// rebind turns the ? placeholders of query (outside quoted literals) into
// the dialect's own.
func (t *txn) rebind(query string) string {
	if !t.flavour.numbered || !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	q := numbered(query)
	rebound.Store(query, q)
	return q
}

// numbered spells query's ? placeholders (outside quoted literals) $1, $2...
func numbered(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// in is the condition "column is one of vs" and the arguments it takes,
// appended to args.
func (t *txn) in(column string, vs []string, args []any) (string, []any) {
	if t.flavour.arrays {
		return column + " = ANY(?)", append(args, vs)
	}
	for _, v := range vs {
		args = append(args, v)
	}
	return column + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(vs)), ", ") + ")", args
}

// contains is the condition "the byte column contains the argument".
func (t *txn) contains(column string) string {
	return strings.Replace(t.flavour.contains, "%s", column, 1)
}
