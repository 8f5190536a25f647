// Package sqlitetest gives other packages' tests a migrated SQLite store in
// a temporary directory: the one fixture the actor, gateway and relay tests
// share instead of each opening and migrating its own.
package sqlitetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
)

// Open returns a migrated store in tb's temporary directory, closed when
// the test ends. Its database starts as a copy of one migrated once per
// test binary (image): under the race detector the migrations cost about
// half a second of CPU each time (the transpiled SQLite pays for every
// pointer check), and were two thirds of the gateway tests' CPU. Migrate
// still runs on the copy, finding every migration applied.
func Open(tb testing.TB, opts persistence.Options) *sqlite.Store {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "spa.db")
	WriteMigrated(tb, path)
	st, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return st
}

// WriteMigrated writes a migrated database at path, for sqlite.Open: a
// copy of the image.
func WriteMigrated(tb testing.TB, path string) {
	tb.Helper()
	files, err := image()
	if err != nil {
		tb.Fatal(err)
	}
	for suffix, b := range files {
		if err := os.WriteFile(path+suffix, b, sqlite.FileMode); err != nil {
			tb.Fatal(err)
		}
	}
}

var migrated struct {
	once  sync.Once
	files map[string][]byte // by suffix of the database's path: "" and, if left, "-wal"
	err   error
}

// image is a freshly migrated database's files, made on first use.
func image() (map[string][]byte, error) {
	migrated.once.Do(func() { migrated.files, migrated.err = migrate() })
	return migrated.files, migrated.err
}

func migrate() (map[string][]byte, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlitetest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "spa.db")
	st, err := sqlite.Open(ctx, path, persistence.Options{})
	if err != nil {
		return nil, err
	}
	_, err = st.Migrate(ctx)
	// Closed before it is read: the last connection's close checkpoints
	// the write-ahead log into the database file.
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitetest: migrate the image: %w", err)
	}
	files := map[string][]byte{}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		switch {
		case os.IsNotExist(err) && suffix != "":
		case err != nil:
			return nil, fmt.Errorf("sqlitetest: read the image: %w", err)
		default:
			files[suffix] = b
		}
	}
	return files, nil
}
