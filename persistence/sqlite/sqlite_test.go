package sqlite_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
	"github.com/spa-engine/spa/persistence/storetest"
)

func TestConformance(t *testing.T) {
	var dirs sync.Map // one database file per subtest, the same on every open
	storetest.Exercise(t, func(t *testing.T, opts persistence.Options) persistence.Store {
		dir, _ := dirs.LoadOrStore(t, t.TempDir())
		s, err := sqlite.Open(t.Context(), filepath.Join(dir.(string), "spa.db"), opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
