package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/store"
	"github.com/fluxgate/fluxgate/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) fluxgate.Store { return storetest.MustOpen(t) })
}

func TestPostgres(t *testing.T) {
	storetest.PostgresURL(t) // skip (or fail in CI) early without DATABASE_URL
	storetest.Run(t, func(t *testing.T) fluxgate.Store { return storetest.MustOpenPostgres(t) })
}

// backends runs fn on a fresh migrated store of each backend.
func backends(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, storetest.SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.PostgresDSN(t)) })
}

func TestMigrate(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()

		var out strings.Builder
		if err := db.Migrate(ctx, "status", &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "pending") || !strings.Contains(out.String(), "00001_init.sql") {
			t.Fatalf("status before up:\n%s", out.String())
		}
		// Nothing exists before migrating.
		if _, err := db.GetProject(ctx, "x"); fluxgate.ErrorCode(err) != fluxgate.EINTERNAL {
			t.Fatalf("query before migrating: %v", err)
		}

		out.Reset()
		if err := db.Migrate(ctx, "up", &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "OK") || !strings.Contains(out.String(), "00001_init.sql") {
			t.Fatalf("up output:\n%s", out.String())
		}
		out.Reset()
		if err := db.Migrate(ctx, "up", &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "up to date") {
			t.Fatalf("second up output:\n%s", out.String())
		}
		out.Reset()
		if err := db.Migrate(ctx, "status", &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "pending") || !strings.Contains(out.String(), "applied") {
			t.Fatalf("status after up:\n%s", out.String())
		}
		if err := db.Migrate(ctx, "sideways", nil); err == nil {
			t.Fatal("unknown migrate command accepted")
		}
		if _, err := db.GetProject(ctx, "x"); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
			t.Fatalf("query after migrating: %v", err)
		}
	})
}

// TestConcurrentMigrate starts several replicas migrating one database at
// once: the migration lock lets exactly one apply it.
func TestConcurrentMigrate(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := store.Open(ctx, dsn)
				if err != nil {
					errs[i] = err
					return
				}
				defer db.Close()
				errs[i] = db.Migrate(ctx, "up", nil)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		db := storetest.MustOpenDSN(t, dsn)
		if err := db.CreateProject(ctx, &fluxgate.Project{Slug: "p"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenSQLiteDSNs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "plain.db"),
		"sqlite:" + filepath.Join(dir, "scheme.db"),
		"file:" + filepath.Join(dir, "uri.db") + "?cache=private",
		"sqlite:" + filepath.Join(dir, "data", "dir", "nested.db"), // directory created
		":memory:",
	} {
		t.Run(dsn, func(t *testing.T) {
			db := storetest.MustOpenDSN(t, dsn)
			if db.Dialect() != store.DialectSQLite {
				t.Fatalf("dialect = %s", db.Dialect())
			}
			p := &fluxgate.Project{Slug: "p"}
			if err := db.CreateProject(ctx, p); err != nil {
				t.Fatal(err)
			}
			// Reads outside a transaction (the read pool) see the write.
			if _, err := db.GetProject(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			// Foreign keys are enforced.
			err := db.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p.ID, UserID: "ghost", Role: fluxgate.RoleViewer})
			if fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
				t.Fatalf("foreign key not enforced: %v", err)
			}
		})
	}
	if _, err := store.Open(ctx, ""); err == nil {
		t.Fatal("empty DSN accepted")
	}
}

func TestClock(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := storetest.MustOpenDSN(t, dsn)
		loc := time.FixedZone("UTC+5", 5*3600)
		fixed := time.Date(2030, 1, 2, 8, 4, 5, 123456789, loc)
		db.Now = func() time.Time { return fixed }
		p := &fluxgate.Project{Slug: "p"}
		if err := db.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		want := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
		got, err := db.GetProject(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt != want || got.UpdatedAt != want || p.CreatedAt != want {
			t.Fatalf("CreatedAt = %v (returned %v), want %v", got.CreatedAt, p.CreatedAt, want)
		}
		if err := db.DeleteProject(ctx, p.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentWriters hammers one store with writes and transactions from
// many goroutines: on SQLite the single writer connection must queue them
// instead of failing with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := storetest.MustOpenDSN(t, dsn)
		// A second handle on the same database, like a second process.
		db2 := storetest.MustOpenDSN(t, dsn)
		p := &fluxgate.Project{Slug: "p"}
		if err := db.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := db
				if g%2 == 1 {
					s = db2
				}
				for i := range 15 {
					err := s.InTx(ctx, func(ctx context.Context) error {
						if _, err := s.GetProject(ctx, p.ID); err != nil {
							return err
						}
						e := &fluxgate.AuditEntry{ProjectID: &p.ID, Action: fmt.Sprintf("g%d.%d", g, i)}
						if err := s.CreateAuditEntry(ctx, e); err != nil {
							return err
						}
						_, err := s.CreateFluxEvent(ctx, &fluxgate.FluxEvent{ProjectID: p.ID, Kind: "Kustomization", DedupKey: fmt.Sprintf("g%d.%d", g, i%5)})
						return err
					})
					if err != nil {
						errs <- err
						return
					}
					if _, _, err := s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: p.ID, Page: fluxgate.Page{First: 5}}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		entries, _, err := db.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: p.ID, Page: fluxgate.Page{First: 200}})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 8*15 {
			t.Fatalf("%d audit entries, want %d", len(entries), 8*15)
		}
		events, _, err := db.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID, Page: fluxgate.Page{First: 200}})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 8*5 {
			t.Fatalf("%d flux events after dedup, want %d", len(events), 8*5)
		}
	})
}

// TestPostgresLockAcrossReplicas checks that Lock excludes holders on two
// separate stores sharing a PostgreSQL database, as replicas do, and that a
// lock is released when its holder's session dies.
func TestPostgresLockAcrossReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	a := storetest.MustOpenDSN(t, dsn)
	b, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("push:%d", time.Now().UnixNano())
	unlock, err := a.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if _, err := b.Lock(tctx, key); err == nil {
		t.Fatal("replica b took a lock replica a holds")
	}
	cancel()
	got := make(chan error, 1)
	go func() {
		u, err := b.Lock(ctx, key)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("b got the lock while a held it (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not get the lock after a released it")
	}

	// A replica that dies while holding the lock releases it.
	if _, err := b.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	b.Close()
	tctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := a.Lock(tctx, key)
	if err != nil {
		t.Fatalf("lock of a closed replica not released: %v", err)
	}
	u()
}
