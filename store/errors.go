package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fluxgate/fluxgate"
)

// PostgreSQL SQLSTATE codes mapped to fluxgate codes.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgNotNullViolation    = "23502"
	pgCheckViolation      = "23514"
	pgInvalidText         = "22P02"
)

// dbError turns a driver error into a fluxgate error, deciding by the
// error's type and code, never by its text. what names the row for the
// message ("project \"demo\""). Errors that are already *fluxgate.Error,
// context errors and unknown errors are returned wrapped but unchanged in
// kind.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	var fe *fluxgate.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fluxgate.Errorf(fluxgate.ENOTFOUND, "%s not found", what)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgUniqueViolation:
			return fluxgate.Errorf(fluxgate.ECONFLICT, "%s already exists", what)
		case pgForeignKeyViolation:
			return fluxgate.Errorf(fluxgate.ENOTFOUND, "%s refers to something that does not exist", what)
		case pgNotNullViolation, pgCheckViolation, pgInvalidText:
			return fluxgate.Errorf(fluxgate.EINVALID, "%s is not valid", what)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fluxgate.Errorf(fluxgate.ECONFLICT, "%s already exists", what)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fluxgate.Errorf(fluxgate.ENOTFOUND, "%s refers to something that does not exist", what)
		case sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_CHECK:
			return fluxgate.Errorf(fluxgate.EINVALID, "%s is not valid", what)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func notFound(format string, args ...any) error {
	return fluxgate.Errorf(fluxgate.ENOTFOUND, format, args...)
}
