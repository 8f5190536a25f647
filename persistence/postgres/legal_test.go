package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spa-engine/spa/persistence"
)

// TestOneActiveLegalVersionIsAConstraint: the database itself refuses a
// second active version of a slug, whatever the code above it does.
func TestOneActiveLegalVersionIsAConstraint(t *testing.T) {
	u := freshSchema(t)
	if _, err := open(t, u, persistence.Options{}).Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	insert := `INSERT INTO legal_documents (slug, version, title, body, active, created_by, created_at)
		VALUES ('terms', $1, 't', 'b', $2, 'admin', now())`
	for _, v := range []struct {
		version int
		active  bool
	}{{1, true}, {2, false}, {3, false}} {
		if _, err := c.Exec(ctx, insert, v.version, v.active); err != nil {
			t.Fatalf("insert %d: %v", v.version, err)
		}
	}
	_, err = c.Exec(ctx, `UPDATE legal_documents SET active = true WHERE slug = 'terms' AND version = 2`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("second active version: got %v, want a unique violation", err)
	}
	if _, err := c.Exec(ctx, insert, 4, true); err == nil {
		t.Fatal("inserting a second active version succeeded")
	}
}
