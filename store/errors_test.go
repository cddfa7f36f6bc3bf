package store

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fluxgate/fluxgate"
)

// TestDBErrorByType checks that driver errors are mapped by their type and
// code, through wrapping, and never by their text. (SQLite's error type has
// no exported constructor; the conformance suite covers it end to end.)
func TestDBErrorByType(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no rows", sql.ErrNoRows, fluxgate.ENOTFOUND},
		{"wrapped no rows", fmt.Errorf("scan: %w", sql.ErrNoRows), fluxgate.ENOTFOUND},
		{"pg unique", &pgconn.PgError{Code: "23505", Message: "whatever"}, fluxgate.ECONFLICT},
		{"wrapped pg unique", fmt.Errorf("exec: %w", &pgconn.PgError{Code: "23505"}), fluxgate.ECONFLICT},
		{"pg foreign key", &pgconn.PgError{Code: "23503"}, fluxgate.ENOTFOUND},
		{"pg check", &pgconn.PgError{Code: "23514"}, fluxgate.EINVALID},
		{"pg not null", &pgconn.PgError{Code: "23502"}, fluxgate.EINVALID},
		{"pg other", &pgconn.PgError{Code: "40001", Message: "duplicate key value violates unique constraint"}, fluxgate.EINTERNAL},
		{"text only", errors.New("UNIQUE constraint failed: projects.slug (2067)"), fluxgate.EINTERNAL},
		{"domain error kept", fluxgate.InvalidField("spec", "bad"), fluxgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dbError(tt.err, "project \"p\"")
			if code := fluxgate.ErrorCode(got); code != tt.want {
				t.Fatalf("dbError(%v) code = %q, want %q", tt.err, code, tt.want)
			}
			if tt.want == fluxgate.EINTERNAL && !errors.Is(got, tt.err) {
				t.Fatalf("internal error %v does not wrap %v", got, tt.err)
			}
		})
	}
	if dbError(nil, "x") != nil {
		t.Fatal("dbError(nil) != nil")
	}
}
