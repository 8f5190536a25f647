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
	var mu sync.Mutex
	paths := map[*testing.T]string{} // one database file per subtest
	storetest.Exercise(t, func(t *testing.T, opts persistence.Options) persistence.Store {
		mu.Lock()
		path, ok := paths[t]
		if !ok {
			path = filepath.Join(t.TempDir(), "spa.db")
			paths[t] = path
		}
		mu.Unlock()
		s, err := sqlite.Open(t.Context(), path, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
