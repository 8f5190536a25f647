package sqlite_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
	"github.com/spa-engine/spa/persistence/storetest"
)

func TestConformance(t *testing.T) {
	var paths sync.Map // one database file per subtest, the same on every open
	opener := func(seeded bool) storetest.Opener {
		return func(t *testing.T, opts persistence.Options) persistence.Store {
			path := filepath.Join(t.TempDir(), "spa.db")
			if p, loaded := paths.LoadOrStore(t, path); loaded {
				path = p.(string)
			} else if seeded {
				sqlitetest.WriteMigrated(t, path)
			}
			s, err := sqlite.Open(t.Context(), path, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	storetest.Exercise(t, opener(false), opener(true))
}
