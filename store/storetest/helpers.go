package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create schemas

	"github.com/fluxgate/fluxgate/store"
)

// Environment variables the helpers read.
const (
	// DatabaseURLEnv names the PostgreSQL server tests may use, e.g.
	// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
	DatabaseURLEnv = "DATABASE_URL"
	// RequirePostgresEnv, set to 1, turns "DATABASE_URL is not set" from a
	// skip into a failure (CI sets it).
	RequirePostgresEnv = "FLUXGATE_REQUIRE_POSTGRES"
)

// PostgresDSN returns the DSN of a new, empty PostgreSQL schema on the server
// named by DATABASE_URL: the connection's search_path is the schema, so
// everything created through the DSN (tables, goose's version table) lands
// there and parallel tests never collide. The schema is dropped when the
// test ends.
//
// Without DATABASE_URL the test is skipped, or fails when
// FLUXGATE_REQUIRE_POSTGRES=1.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s is not a postgres:// URL", DatabaseURLEnv)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open %s: %v", DatabaseURLEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresURL returns DATABASE_URL. Without it the test is skipped, or
// fails when FLUXGATE_REQUIRE_POSTGRES=1.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(DatabaseURLEnv)
	if base == "" {
		if os.Getenv(RequirePostgresEnv) == "1" {
			tb.Fatalf("%s is not set but %s=1: PostgreSQL tests are required", DatabaseURLEnv, RequirePostgresEnv)
		}
		tb.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run them", DatabaseURLEnv)
	}
	return base
}

// SQLiteDSN returns the DSN of a new SQLite database file in a temporary
// directory removed when the test ends.
func SQLiteDSN(tb testing.TB) string {
	tb.Helper()
	return "sqlite:" + filepath.Join(tb.TempDir(), "fluxgate.db")
}

// MustOpenDSN opens the store at dsn, migrates it up and closes it when the
// test ends; any error fails the test at once.
func MustOpenDSN(tb testing.TB, dsn string) *store.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	var out strings.Builder
	if err := db.Migrate(ctx, "up", &out); err != nil {
		tb.Fatalf("migrate store: %v\n%s", err, out.String())
	}
	return db
}

// MustOpen opens a migrated store on a new SQLite file (see MustOpenDSN).
func MustOpen(tb testing.TB) *store.DB {
	tb.Helper()
	return MustOpenDSN(tb, SQLiteDSN(tb))
}

// MustOpenPostgres opens a migrated store in a new PostgreSQL schema (see
// PostgresDSN: skipped or failed without DATABASE_URL).
func MustOpenPostgres(tb testing.TB) *store.DB {
	tb.Helper()
	return MustOpenDSN(tb, PostgresDSN(tb))
}

// MustOpenEnv opens a migrated store on PostgreSQL when DATABASE_URL is set
// and on a new SQLite file otherwise.
func MustOpenEnv(tb testing.TB) *store.DB {
	tb.Helper()
	if os.Getenv(DatabaseURLEnv) != "" {
		return MustOpenPostgres(tb)
	}
	return MustOpen(tb)
}
