// Package pgtest gives a test a PostgreSQL of its own: a fresh schema in the
// database TEST_DATABASE_URL names, dropped when the test ends.
//
// Where PostgreSQL is required (CI=true, or SPA_REQUIRE_POSTGRES=1, both
// set by `make test` under CI) an unset TEST_DATABASE_URL fails the test
// instead of skipping it: a green run without PostgreSQL coverage would be
// a hidden failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/postgres"
)

// Required reports whether a missing PostgreSQL must fail the run.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SPA_REQUIRE_POSTGRES") == "1"
}

// Wanted reports whether the PostgreSQL variants of tests are to run:
// TEST_DATABASE_URL is set, or PostgreSQL is required (then an unset URL
// fails the test that opens it).
func Wanted() bool { return os.Getenv("TEST_DATABASE_URL") != "" || Required() }

// Available reports whether the PostgreSQL variants of a test run. When
// they must (Required) and TEST_DATABASE_URL is unset, it fails t.
func Available(t testing.TB) bool {
	t.Helper()
	if os.Getenv("TEST_DATABASE_URL") != "" {
		return true
	}
	if Required() {
		t.Fatal("TEST_DATABASE_URL is unset but PostgreSQL is required here (CI=true or SPA_REQUIRE_POSTGRES=1): run `make test`, which starts PostgreSQL, or set TEST_DATABASE_URL=postgres://user:pass@127.0.0.1:5432/test?sslmode=disable")
	}
	t.Log("TEST_DATABASE_URL unset: the PostgreSQL variants do not run")
	return false
}

// BaseURL is TEST_DATABASE_URL; without it the test skips (or fails where
// PostgreSQL is required). For tests that only exist on PostgreSQL.
func BaseURL(t testing.TB) string {
	t.Helper()
	if !Available(t) {
		t.Skip("TEST_DATABASE_URL unset: this test runs on PostgreSQL only")
	}
	return os.Getenv("TEST_DATABASE_URL")
}

// SchemaURL creates a randomly named schema (name starts with prefix),
// dropped when t ends, and returns the base URL with search_path set to it.
func SchemaURL(t testing.TB, prefix string) string {
	t.Helper()
	base := BaseURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if err := execSQL(base, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := execSQL(base, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	if !strings.Contains(base, "://") {
		return base + " search_path=" + name // key=value DSN
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens and migrates a store in a fresh schema, closed when t ends.
func Open(t testing.TB, prefix string, opts persistence.Options) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), SchemaURL(t, prefix), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func execSQL(base, sql string) error {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}
