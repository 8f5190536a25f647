package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirIsPrivate starts a node on SQLite in a data dir an older
// release left world-readable (0755, spa.db 0644) and checks that the
// directory, the NATS store, the database with its -wal and -shm and the
// dev secrets are the server user's only.
func TestDataDirIsPrivate(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, sqliteFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base, stop, _ := serveInProcess(t, map[string]string{}, dataDir)
	a := api{t, base}
	a.must(200, "GET", "/healthz", "", nil)
	want := map[string]os.FileMode{
		dataDir:                                   0o700,
		filepath.Join(dataDir, "nats"):            0o700,
		filepath.Join(dataDir, sqliteFile):        0o600,
		filepath.Join(dataDir, sqliteFile+"-wal"): 0o600,
		filepath.Join(dataDir, sqliteFile+"-shm"): 0o600,
		filepath.Join(dataDir, devSecretsFile):    0o600,
	}
	for p, mode := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", filepath.Base(p), st.Mode().Perm(), mode)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
