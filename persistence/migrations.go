package persistence

import (
	"embed"
	"io/fs"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// MigrationsFS returns the embedded migrations of dialect d, with the
// NNNN_name.sql files at the root.
func MigrationsFS(d Dialect) fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations/"+string(d))
	if err != nil {
		panic(err) // unreachable: the directories are embedded
	}
	return sub
}
