package sqlstore

import (
	"slices"
	"testing"

	"github.com/spa-engine/spa/persistence"
)

func TestRebind(t *testing.T) {
	pg := &txn{flavour: flavourOf(persistence.DialectPostgres)}
	lite := &txn{flavour: flavourOf(persistence.DialectSQLite)}
	for q, want := range map[string]string{
		`SELECT 1`: `SELECT 1`,
		`UPDATE x SET a = ?, b = ? WHERE id = ? AND s = 'what?'`: `UPDATE x SET a = $1, b = $2 WHERE id = $3 AND s = 'what?'`,
		`SELECT 'it''s ?' WHERE a = ? AND ` + pg.contains("d"):   `SELECT 'it''s ?' WHERE a = $1 AND position($2::bytea in d) > 0`,
	} {
		if got := pg.rebind(q); got != want {
			t.Errorf("postgres rebind(%q) = %q, want %q", q, got, want)
		}
		if got := lite.rebind(q); got != q {
			t.Errorf("sqlite rebind(%q) = %q, want it unchanged", q, got)
		}
	}
}

func TestIn(t *testing.T) {
	pg := &txn{flavour: flavourOf(persistence.DialectPostgres)}
	lite := &txn{flavour: flavourOf(persistence.DialectSQLite)}
	vs := []string{"a", "b", "c"}
	if q, args := pg.in("id", vs, []any{1}); q != "id = ANY(?)" || len(args) != 2 || !slices.Equal(args[1].([]string), vs) {
		t.Errorf("postgres: %q %v", q, args)
	}
	if q, args := lite.in("id", vs, []any{1}); q != "id IN (?, ?, ?)" || !slices.Equal(args, []any{1, "a", "b", "c"}) {
		t.Errorf("sqlite: %q %v", q, args)
	}
	if q, args := lite.in("id", nil, nil); q != "id IN ()" || len(args) != 0 {
		t.Errorf("sqlite, no values: %q %v", q, args)
	}
}
