package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/fluxgate/fluxgate"
)

const fluxEventCols = `seq, id, project_id, resource_id, kind, name, namespace, reason, message, type,
	severity, revision, metadata, source, dedup_key, timestamp, created_at`

func scanFluxEvent(row scanner) (*fluxgate.FluxEvent, error) {
	var e fluxgate.FluxEvent
	err := row.Scan(&e.Seq, &e.ID, &e.ProjectID, nullStrCol{&e.ResourceID}, &e.Kind, &e.Name, &e.Namespace,
		&e.Reason, &e.Message, &e.Type, &e.Severity, &e.Revision, rawJSONCol{&e.Metadata}, &e.Source,
		&e.DedupKey, timeCol{&e.Timestamp}, timeCol{&e.CreatedAt})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// fluxEventLock is the advisory lock that serializes flux event inserts on
// PostgreSQL.
var fluxEventLock = hashKey("fluxgate:flux_events")

// CreateFluxEvent stores e and fills in Seq, ID (when empty), CreatedAt and
// Timestamp (now when zero). When an event with the same non-empty DedupKey
// is already stored, nothing is written, inserted is false and e.Seq is the
// stored event's sequence number.
//
// Sequence numbers are assigned in commit order: subscribers that resume
// "after seq N" can never miss an event that committed later with a lower
// number. On PostgreSQL inserts take a transaction-scoped advisory lock
// (held until the surrounding transaction ends); on SQLite the single writer
// connection serializes them.
func (db *DB) CreateFluxEvent(ctx context.Context, e *fluxgate.FluxEvent) (inserted bool, err error) {
	metadata, err := rawJSONArg("metadata", e.Metadata)
	if err != nil {
		return false, err
	}
	if e.ID == "" {
		e.ID = newID()
	}
	err = db.InTx(ctx, func(ctx context.Context) error {
		if db.dialect == DialectPostgres {
			if _, err := db.w(ctx).ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, fluxEventLock); err != nil {
				return dbError(err, "lock flux events")
			}
		}
		now := db.now()
		ts := e.Timestamp
		if ts.IsZero() {
			ts = now
		}
		var seq int64
		err := db.w(ctx).QueryRowxContext(ctx, db.q(`INSERT INTO flux_events (id, project_id, resource_id, kind,
			name, namespace, reason, message, type, severity, revision, metadata, source, dedup_key, timestamp,
			created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (dedup_key) WHERE dedup_key <> '' DO NOTHING
			RETURNING seq`),
			e.ID, e.ProjectID, strPtrArg(e.ResourceID), e.Kind, e.Name, e.Namespace, e.Reason, e.Message, e.Type,
			e.Severity, e.Revision, metadata, e.Source, e.DedupKey, timeArg(ts), now).Scan(&seq)
		switch {
		case err == nil:
			e.Seq, e.Timestamp, e.CreatedAt = seq, timeArg(ts), now
			inserted = true
			return nil
		case errors.Is(err, sql.ErrNoRows) && e.DedupKey != "":
			// ON CONFLICT DO NOTHING returned no row: a duplicate.
			err := db.w(ctx).QueryRowxContext(ctx, db.q(`SELECT seq FROM flux_events WHERE dedup_key = ?`),
				e.DedupKey).Scan(&e.Seq)
			return dbError(err, "flux event "+e.DedupKey)
		default:
			return dbError(err, "flux event "+e.ID)
		}
	})
	return inserted, err
}

// ListFluxEvents lists events matching f (empty fields match everything):
// newest first by sequence, or, when f.AfterSeq > 0, oldest first from the
// event after AfterSeq on (replay for a resuming subscriber). Cursors name
// a sequence number.
func (db *DB) ListFluxEvents(ctx context.Context, f fluxgate.FluxEventFilter) ([]*fluxgate.FluxEvent, fluxgate.PageInfo, error) {
	after, limit, err := pageArgs(f.Page)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	var afterSeq int64
	if after != "" {
		afterSeq, err = strconv.ParseInt(after, 10, 64)
		if err != nil || afterSeq < 0 {
			return nil, fluxgate.PageInfo{}, fluxgate.InvalidField("after", "after is not a valid cursor")
		}
	}
	query := `SELECT ` + fluxEventCols + ` FROM flux_events WHERE 1 = 1`
	var args []any
	for _, c := range []struct{ col, val string }{
		{"project_id", f.ProjectID}, {"kind", f.Kind}, {"severity", f.Severity},
	} {
		if c.val != "" {
			query += ` AND ` + c.col + ` = ?`
			args = append(args, c.val)
		}
	}
	if f.AfterSeq > 0 {
		query += ` AND seq > ? ORDER BY seq LIMIT ?`
		args = append(args, max(f.AfterSeq, afterSeq), limit+1)
	} else {
		if after != "" {
			query += ` AND seq < ?`
			args = append(args, afterSeq)
		}
		query += ` ORDER BY seq DESC LIMIT ?`
		args = append(args, limit+1)
	}
	events, err := selectAll(ctx, db.r(ctx), db.q(query), scanFluxEvent, args...)
	if err != nil {
		return nil, fluxgate.PageInfo{}, dbError(err, "flux events")
	}
	events, info := trimPage(events, limit, func(e *fluxgate.FluxEvent) string { return strconv.FormatInt(e.Seq, 10) })
	return events, info, nil
}
