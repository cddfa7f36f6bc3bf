package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"
)

// Lock takes the exclusive lock named key and returns the function that
// releases it (safe to call more than once). It waits until the lock is free
// or ctx is done.
//
// On PostgreSQL it is a session advisory lock (pg_advisory_lock on a hash of
// key) held on a dedicated connection, so it excludes every replica sharing
// the database; if the connection dies the lock is released with it. On
// SQLite, which a single process owns, it is an in-process mutex per key.
func (db *DB) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if db.dialect != DialectPostgres {
		return db.locks.lock(ctx, key)
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	id := hashKey("fluxgate:lock:" + key)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
		// The lock may have been granted as the wait was cancelled: discard
		// the session so that it is released whatever happened.
		discard(conn)
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	db.held.add(conn)
	var once sync.Once
	return func() {
		once.Do(func() {
			if !db.held.remove(conn) {
				return // Close released it
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var released bool
			err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", id).Scan(&released)
			if err != nil || !released {
				discard(conn)
				return
			}
			_ = conn.Close()
		})
	}, nil
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn interface {
	Raw(func(any) error) error
	Close() error
}) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// heldConns tracks the connections holding advisory locks, so that Close
// releases them.
type heldConns struct {
	mu    sync.Mutex
	conns map[*sql.Conn]struct{}
}

func (h *heldConns) add(c *sql.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns == nil {
		h.conns = make(map[*sql.Conn]struct{})
	}
	h.conns[c] = struct{}{}
}

// remove reports whether c was held.
func (h *heldConns) remove(c *sql.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.conns[c]
	delete(h.conns, c)
	return ok
}

// releaseAll ends the sessions of every held lock.
func (h *heldConns) releaseAll() {
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for c := range conns {
		discard(c)
	}
}
