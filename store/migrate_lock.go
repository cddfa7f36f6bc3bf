package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteMigrationLocker is a goose lock.SessionLocker for SQLite (it runs on
// goose's connection: the writer pool has only one): a single row in
// fluxgate_migration_lock, so that two processes (or two handles) migrating
// one file at once take turns instead of both applying a migration. A lock
// older than the lease (a migrator that died) is taken over.
type sqliteMigrationLocker struct {
	now   func() time.Time
	lease time.Duration
}

func (l sqliteMigrationLocker) SessionLock(ctx context.Context, db *sql.Conn) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS fluxgate_migration_lock (
		id INTEGER PRIMARY KEY CHECK (id = 1), locked_at TIMESTAMP NOT NULL)`); err != nil {
		return fmt.Errorf("create migration lock table: %w", err)
	}
	for {
		now := l.now().UTC()
		_, err := db.ExecContext(ctx, `INSERT INTO fluxgate_migration_lock (id, locked_at) VALUES (1, ?)`, now)
		if err == nil {
			return nil
		}
		var sqErr *sqlite.Error
		if !errors.As(err, &sqErr) || sqErr.Code() != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM fluxgate_migration_lock WHERE locked_at < ?`, now.Add(-l.lease)); err != nil {
			return fmt.Errorf("expire migration lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("take migration lock: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l sqliteMigrationLocker) SessionUnlock(ctx context.Context, db *sql.Conn) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM fluxgate_migration_lock`); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	return nil
}
