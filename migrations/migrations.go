// Package migrations holds fluxgate's SQL schema, one directory per dialect,
// embedded in the binary. The files carry goose annotations
// (-- +goose Up / -- +goose Down); store.(*DB).Migrate applies them with
// goose's Provider.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed postgres/*.sql
var postgres embed.FS

//go:embed sqlite/*.sql
var sqlite embed.FS

// Dialects served by FS.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// FS returns the migrations of dialect ("postgres" or "sqlite"), with the
// .sql files at the root of the returned file system.
func FS(dialect string) (fs.FS, error) {
	switch dialect {
	case Postgres:
		return fs.Sub(postgres, "postgres")
	case SQLite:
		return fs.Sub(sqlite, "sqlite")
	}
	return nil, fmt.Errorf("migrations: unknown dialect %q", dialect)
}
