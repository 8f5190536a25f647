package persistence_test

import (
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/spa-engine/spa/persistence"
)

func TestParseMigrations(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	got, err := persistence.ParseMigrations(fstest.MapFS{"0002_second.sql": file, "0001_first.sql": file, "0010_tenth.sql": file})
	want := []persistence.Migration{{1, "first"}, {2, "second"}, {10, "tenth"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseMigrations = %v, %v; want %v", got, err, want)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":          {"1_first.sql": file},
		"bad extension":     {"0001_first.txt": file},
		"duplicate version": {"0001_first.sql": file, "0001_again.sql": file},
	} {
		if _, err := persistence.ParseMigrations(fsys); err == nil {
			t.Errorf("%s: ParseMigrations succeeded", name)
		}
	}
	for _, d := range []persistence.Dialect{persistence.DialectSQLite, persistence.DialectPostgres} {
		ms, err := persistence.ParseMigrations(persistence.MigrationsFS(d))
		if err != nil || len(ms) == 0 || ms[0] != (persistence.Migration{Version: 1, Name: "foundation"}) {
			t.Errorf("embedded %s migrations = %v, %v", d, ms, err)
		}
	}
}
