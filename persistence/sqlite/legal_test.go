package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
)

// TestOneActiveLegalVersionIsAConstraint: the database itself refuses a
// second active version of a slug, whatever the code above it does.
func TestOneActiveLegalVersionIsAConstraint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa.db")
	s, err := sqlite.Open(t.Context(), path, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insert := `INSERT INTO legal_documents (slug, version, title, body, active, created_by, created_at)
		VALUES ('terms', ?, 't', 'b', ?, 'admin', 0)`
	for _, v := range []struct{ version, active int }{{1, 1}, {2, 0}} {
		if _, err := db.Exec(insert, v.version, v.active); err != nil {
			t.Fatalf("insert %d: %v", v.version, err)
		}
	}
	_, err = db.Exec(`UPDATE legal_documents SET active = 1 WHERE slug = 'terms' AND version = 2`)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("second active version: got %v, want a unique violation", err)
	}
	if _, err := db.Exec(insert, 3, 1); err == nil {
		t.Fatal("inserting a second active version succeeded")
	}
	if _, err := db.Exec(insert, 4, 2); err == nil {
		t.Fatal("active = 2 passed the check constraint")
	}
}
