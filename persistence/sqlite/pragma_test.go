package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/spa-engine/spa/persistence"
)

// TestPragmas checks the durability and locking settings on a pooled
// connection.
func TestPragmas(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "spa.db"), persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000",
		"secure_delete": "1", // deleted rows are overwritten, not left in free pages
	} {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}

// TestFilesArePrivate checks that the database file and its -wal and -shm
// files are readable by the server's user only, also for a file created
// before with the old 0644.
func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spa.db")
	for _, p := range []string{path, path + "-wal"} { // as an older release left them
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(t.Context(), path, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), st.Mode().Perm())
		}
	}
}

// TestSecureDeleteLeavesNoBytes checks that a deleted value is not left
// in the database file's free pages after a checkpoint.
func TestSecureDeleteLeavesNoBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spa.db")
	s, err := Open(t.Context(), path, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	secret := bytes.Repeat([]byte("Zoraida-secret-"), 300) // spans pages
	ctx := t.Context()
	for _, q := range []string{"CREATE TABLE t (v BLOB)", "INSERT INTO t VALUES (?)", "PRAGMA wal_checkpoint(TRUNCATE)",
		"DELETE FROM t", "PRAGMA wal_checkpoint(TRUNCATE)"} {
		var args []any
		if q == "INSERT INTO t VALUES (?)" {
			args = []any{secret}
		}
		if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(q, err)
		}
	}
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("Zoraida-secret-")) {
			t.Errorf("%s still holds the deleted bytes", filepath.Base(p))
		}
	}
}
