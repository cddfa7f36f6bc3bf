// Package store implements fluxgate.Store with sqlx on PostgreSQL (pgx) and
// SQLite (modernc.org/sqlite, pure Go). Each entity has its own file; the
// schema lives in the migrations package.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/migrations"
)

var _ fluxgate.Store = (*DB)(nil)

// Dialects of a DB.
const (
	DialectPostgres = migrations.Postgres
	DialectSQLite   = migrations.SQLite
)

// sqliteParams configure every SQLite connection: a busy timeout so that
// other processes' writers are waited for, enforced foreign keys, WAL
// (readers never block the writer), BEGIN IMMEDIATE so that a transaction
// takes the write lock up front instead of failing to upgrade later, and a
// fixed text format for times.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"

// DB is a fluxgate.Store on PostgreSQL or SQLite.
//
// On PostgreSQL every statement uses one connection pool. On SQLite there
// are two pools over the same file: a writer pool with exactly one
// connection, used for every write and every transaction (so writers queue
// in the process instead of failing with SQLITE_BUSY), and a read-only pool
// for reads outside transactions (WAL lets them run beside the writer).
type DB struct {
	// Now is the clock used for every timestamp the store assigns. It
	// defaults to time.Now; values are stored in UTC with microsecond
	// precision.
	Now func() time.Time

	dialect string
	db      *sqlx.DB // writes, transactions, everything on PostgreSQL
	rdb     *sqlx.DB // reads outside transactions; == db on PostgreSQL

	locks keyedMutex // Lock on SQLite
	held  heldConns  // Lock on PostgreSQL
}

// Open connects to the database named by dsn. A postgres:// or
// postgresql:// URL selects PostgreSQL (pgx); anything else is SQLite:
// "sqlite:PATH", "file:PATH[?params]" or a plain path (":memory:" gives a
// private in-memory database); the directory of PATH is created if needed.
// Open does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if dsn == "" {
		return nil, fmt.Errorf("open store: empty dsn")
	}
	db := &DB{Now: time.Now}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db.dialect = DialectPostgres
		sdb, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sdb.SetMaxIdleConns(10)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		db.db = sqlx.NewDb(sdb, "pgx")
		db.rdb = db.db
		if err := db.db.PingContext(ctx); err != nil {
			db.db.Close()
			return nil, fmt.Errorf("open postgres: %s", redactDSNError(err, dsn))
		}
		return db, nil
	}

	db.dialect = DialectSQLite
	name, memory := sqliteName(dsn)
	if !memory && !strings.HasPrefix(name, "file:") {
		// Create the data directory on first use.
		if dir := filepath.Dir(strings.SplitN(name, "?", 2)[0]); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("open sqlite: %w", err)
			}
		}
	}
	wdb, err := sql.Open("sqlite", withParams(name, sqliteParams+"&_pragma=journal_mode(WAL)"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	db.db = sqlx.NewDb(wdb, "sqlite")
	if err := db.db.PingContext(ctx); err != nil {
		db.db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", name, err)
	}
	if memory {
		// A private in-memory database exists only on its one connection.
		db.rdb = db.db
		return db, nil
	}
	rdb, err := sql.Open("sqlite", withParams(name, sqliteParams+"&_pragma=query_only(1)"))
	if err != nil {
		db.db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	rdb.SetMaxOpenConns(max(4, runtime.NumCPU()))
	rdb.SetMaxIdleConns(max(4, runtime.NumCPU()))
	db.rdb = sqlx.NewDb(rdb, "sqlite")
	if err := db.rdb.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", name, err)
	}
	return db, nil
}

// sqliteName turns a fluxgate SQLite DSN into a modernc.org/sqlite name and
// reports whether it names an in-memory database.
func sqliteName(dsn string) (name string, memory bool) {
	name = strings.TrimPrefix(dsn, "sqlite://")
	name = strings.TrimPrefix(name, "sqlite:")
	memory = name == ":memory:" || strings.Contains(name, "mode=memory")
	return name, memory
}

func withParams(name, params string) string {
	if strings.Contains(name, "?") {
		return name + "&" + params
	}
	return name + "?" + params
}

// redactDSNError keeps a connection error from echoing the DSN's password.
func redactDSNError(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// Dialect returns DialectPostgres or DialectSQLite.
func (db *DB) Dialect() string { return db.dialect }

// Close releases the locks taken with Lock and closes the connection pools.
func (db *DB) Close() error {
	db.held.releaseAll()
	err := db.db.Close()
	if db.rdb != db.db {
		err = errors.Join(err, db.rdb.Close())
	}
	return err
}

// Ping checks that the database answers (readiness). On SQLite it uses the
// read pool, so that it does not wait behind a long write transaction.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Migrate runs a migration command with goose: "up" applies every pending
// migration, "status" lists each migration as applied or pending. Progress
// is written to w (which may be nil). Replicas never migrate at once: on
// PostgreSQL a session advisory lock keyed by the current schema serializes
// them, on SQLite a lock row (table fluxgate_migration_lock).
func (db *DB) Migrate(ctx context.Context, command string, w io.Writer) error {
	if w == nil {
		w = io.Discard
	}
	fsys, err := migrations.FS(db.dialect)
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithSessionLocker(sqliteMigrationLocker{now: time.Now, lease: 10 * time.Minute}),
	}
	if db.dialect == DialectPostgres {
		dialect = goose.DialectPostgres
		var schema string
		if err := db.db.QueryRowContext(ctx, "SELECT COALESCE(current_schema(), '')").Scan(&schema); err != nil {
			return fmt.Errorf("migrate: current schema: %w", err)
		}
		locker, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(hashKey("fluxgate:migrate:"+schema)),
			lock.WithLockTimeout(1, 600),
		)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		opts = []goose.ProviderOption{goose.WithSessionLocker(locker)}
	}
	// The provider is not closed: Close would close db's pool.
	p, err := goose.NewProvider(dialect, db.db.DB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	switch command {
	case "up":
		results, err := p.Up(ctx)
		for _, r := range results {
			fmt.Fprintln(w, r.String())
		}
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		v, err := p.GetDBVersion(ctx)
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		if len(results) == 0 {
			fmt.Fprintf(w, "database is up to date (%s, version %d)\n", db.dialect, v)
		} else {
			fmt.Fprintf(w, "migrated %s database to version %d\n", db.dialect, v)
		}
		return nil
	case "status":
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		fmt.Fprintf(w, "%-8s %-24s %s\n", "STATE", "APPLIED AT", "MIGRATION")
		for _, s := range statuses {
			at := "-"
			if s.State == goose.StateApplied {
				at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(w, "%-8s %-24s %s\n", s.State, at, s.Source.Path)
		}
		return nil
	}
	return fmt.Errorf("migrate: unknown command %q (want up or status)", command)
}

// txKey is the context key of the current transaction.
type txKey struct{}

type txState struct {
	owner *DB
	tx    *sqlx.Tx
}

// InTx runs fn in a transaction carried by the context fn receives: every
// store method called with that context joins it. It commits when fn
// returns nil and rolls back when fn returns an error or panics. InTx called
// inside InTx joins the outer transaction (the outer call commits).
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if db.txFrom(ctx) != nil {
		return fn(ctx)
	}
	tx, err := db.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{}, &txState{owner: db, tx: tx})); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return dbError(err, "transaction")
	}
	return nil
}

func (db *DB) txFrom(ctx context.Context) *sqlx.Tx {
	if st, ok := ctx.Value(txKey{}).(*txState); ok && st.owner == db {
		return st.tx
	}
	return nil
}

// w returns what writes go through: the context's transaction or the
// writer pool.
func (db *DB) w(ctx context.Context) sqlx.ExtContext {
	if tx := db.txFrom(ctx); tx != nil {
		return tx
	}
	return db.db
}

// r returns what reads go through: the context's transaction (to see its
// own writes) or the read pool.
func (db *DB) r(ctx context.Context) sqlx.ExtContext {
	if tx := db.txFrom(ctx); tx != nil {
		return tx
	}
	return db.rdb
}

// now returns the store clock's time in UTC, at the microsecond precision
// both databases keep.
func (db *DB) now() time.Time {
	return db.Now().UTC().Truncate(time.Microsecond)
}

// at normalizes a caller-supplied deletion time, defaulting to now.
func (db *DB) at(t time.Time) time.Time {
	if t.IsZero() {
		return db.now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// q rewrites ?-placeholders for the dialect.
func (db *DB) q(query string) string { return db.db.Rebind(query) }

// hashKey maps a lock name to an advisory lock key.
func hashKey(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int64(h.Sum64())
}

// newID returns a new UUIDv7 (time-ordered, so keyset pages by id follow
// creation order).
func newID() string {
	return uuidV7()
}

// keyedMutex is an in-process mutex per key whose Lock honours context
// cancellation.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyedLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("lock %q: %w", key, ctx.Err())
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.ch
			release()
		})
	}, nil
}
