package persistence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
)

// ScriptTx is one transaction as the migration runner sees it. The SQL it
// is given takes no parameters, so it is the same for every dialect.
type ScriptTx interface {
	// Exec runs a script of one or more statements.
	Exec(ctx context.Context, script string) error
	// QueryInts runs query and returns the first column of every row.
	QueryInts(ctx context.Context, query string) ([]int64, error)
}

// MigrationDriver is the dialect-specific half of the migration runner that
// RunMigrations drives.
type MigrationDriver struct {
	// FS holds the migrations as NNNN_name.sql files at its root.
	FS fs.FS
	// TableDDL creates schema_migrations(version INT8 PRIMARY KEY, name TEXT,
	// applied_at defaulting to the current time) if it does not exist.
	TableDDL string
	// InTx runs fn in its own transaction and commits it when fn returns
	// nil. Unique violations must come back as ErrConflict.
	InTx func(ctx context.Context, fn func(ScriptTx) error) error
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// migrationFile is one parsed migration with its script.
type migrationFile struct {
	Migration
	script string
}

// ParseMigrations lists the migrations in fsys in version order. Every file
// at its root must be named NNNN_name.sql with a distinct version.
func ParseMigrations(fsys fs.FS) ([]Migration, error) {
	files, err := parseMigrations(fsys)
	ms := make([]Migration, len(files))
	for i, f := range files {
		ms[i] = f.Migration
	}
	return ms, err
}

func parseMigrations(fsys fs.FS) ([]migrationFile, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("persistence: reading migrations: %w", err)
	}
	var files []migrationFile
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("persistence: migration %q is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("persistence: reading migration: %w", err)
		}
		files = append(files, migrationFile{Migration{Version: v, Name: m[2]}, string(b)})
	}
	slices.SortFunc(files, func(a, b migrationFile) int { return a.Version - b.Version })
	for i := 1; i < len(files); i++ {
		if files[i].Version == files[i-1].Version {
			return nil, fmt.Errorf("persistence: duplicate migration version %d", files[i].Version)
		}
	}
	return files, nil
}

// RunMigrations applies, in version order, each migration of d.FS not yet
// recorded in schema_migrations, each in its own transaction together with
// its schema_migrations row, and returns the ones it applied. When another
// process applies the same migration concurrently, the loser's unique
// violation (ErrConflict) means "already applied" and is not an error.
func RunMigrations(ctx context.Context, d MigrationDriver) ([]Migration, error) {
	files, err := parseMigrations(d.FS)
	if err != nil {
		return nil, err
	}
	// Concurrent CREATE TABLE IF NOT EXISTS can still collide on the
	// catalog in PostgreSQL; the second attempt then sees the table.
	for attempt := 0; ; attempt++ {
		err = d.InTx(ctx, func(tx ScriptTx) error { return tx.Exec(ctx, d.TableDDL) })
		if err == nil || !errors.Is(err, ErrConflict) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("persistence: creating schema_migrations: %w", err)
	}
	applied := []Migration{}
	for _, f := range files {
		done, err := applyMigration(ctx, d, f)
		if errors.Is(err, ErrConflict) {
			// Someone else committed it (or a table it creates) first.
			if done, err = migrationApplied(ctx, d, f.Version); err == nil && !done {
				err = fmt.Errorf("persistence: migration %04d conflicts but is not recorded: %w", f.Version, ErrConflict)
			}
			done = false
		}
		if err != nil {
			return applied, fmt.Errorf("persistence: migration %04d_%s: %w", f.Version, f.Name, err)
		}
		if done {
			applied = append(applied, f.Migration)
		}
	}
	return applied, nil
}

// applyMigration applies f unless it is recorded, and reports whether it did.
func applyMigration(ctx context.Context, d MigrationDriver, f migrationFile) (done bool, err error) {
	err = d.InTx(ctx, func(tx ScriptTx) error {
		done = false
		vs, err := tx.QueryInts(ctx, fmt.Sprintf("SELECT version FROM schema_migrations WHERE version = %d", f.Version))
		if err != nil || len(vs) > 0 {
			return err
		}
		if err := tx.Exec(ctx, f.script); err != nil {
			return err
		}
		// Name matches [a-z0-9_]+, so it is safe as a literal.
		err = tx.Exec(ctx, fmt.Sprintf("INSERT INTO schema_migrations (version, name) VALUES (%d, '%s')", f.Version, f.Name))
		done = err == nil
		return err
	})
	return done && err == nil, err
}

func migrationApplied(ctx context.Context, d MigrationDriver, version int) (found bool, err error) {
	err = d.InTx(ctx, func(tx ScriptTx) error {
		vs, err := tx.QueryInts(ctx, fmt.Sprintf("SELECT version FROM schema_migrations WHERE version = %d", version))
		found = len(vs) > 0
		return err
	})
	return found, err
}
