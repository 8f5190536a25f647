// Package sqlitetest gives other packages' tests a migrated SQLite store in
// a temporary directory: the one fixture the actor, gateway and relay tests
// share instead of each opening and migrating its own.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
)

// Open returns a migrated store in tb's temporary directory, closed when
// the test ends.
func Open(tb testing.TB, opts persistence.Options) *sqlite.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "spa.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}
