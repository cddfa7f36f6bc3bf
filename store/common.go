package store

import (
	"context"
	"database/sql"
	"time"
)

// softDelete marks the live row id of table deleted at time at; ENOTFOUND if
// there is no live row.
func (db *DB) softDelete(ctx context.Context, table, what, id string, at time.Time) error {
	res, err := db.w(ctx).ExecContext(ctx,
		db.q(`UPDATE `+table+` SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`), at, at, id)
	return affectedOne(res, err, what+" "+id)
}

// requireLive returns ENOTFOUND unless table has a live (not soft-deleted)
// row id.
func (db *DB) requireLive(ctx context.Context, table, what, id string) error {
	var one int
	err := db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT 1 FROM `+table+` WHERE id = ? AND deleted_at IS NULL`), id).Scan(&one)
	return dbError(err, what+" "+id)
}

// affectedOne maps the result of an UPDATE or DELETE of one row: an error
// through dbError, no row affected to ENOTFOUND.
func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return dbError(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(err, what)
	}
	if n == 0 {
		return notFound("%s not found", what)
	}
	return nil
}
