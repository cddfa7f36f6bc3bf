package store

import (
	"context"

	"github.com/fluxgate/fluxgate"
)

const auditCols = `id, project_id, actor_id, action, target_type, target_id, metadata, created_at`

func scanAudit(row scanner) (*fluxgate.AuditEntry, error) {
	var e fluxgate.AuditEntry
	err := row.Scan(&e.ID, nullStrCol{&e.ProjectID}, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID,
		rawJSONCol{&e.Metadata}, timeCol{&e.CreatedAt})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// CreateAuditEntry stores e, filling in its ID (when empty) and CreatedAt.
// Call it with the context of the InTx that makes the change, so that both
// commit or neither. EINVALID without an action or with invalid metadata;
// ENOTFOUND if the project does not exist.
func (db *DB) CreateAuditEntry(ctx context.Context, e *fluxgate.AuditEntry) error {
	if e.Action == "" {
		return fluxgate.InvalidField("action", "action is required")
	}
	metadata, err := rawJSONArg("metadata", e.Metadata)
	if err != nil {
		return err
	}
	if e.ID == "" {
		e.ID = newID()
	}
	now := db.now()
	_, err = db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO audit_logs (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		e.ID, strPtrArg(e.ProjectID), e.ActorID, e.Action, e.TargetType, e.TargetID, metadata, now)
	if err != nil {
		return dbError(err, "audit entry "+e.Action)
	}
	e.CreatedAt = now
	return nil
}

// ListAuditEntries lists audit entries, of one project when f.ProjectID is
// set, newest first (by id), a page at a time.
func (db *DB) ListAuditEntries(ctx context.Context, f fluxgate.AuditFilter) ([]*fluxgate.AuditEntry, fluxgate.PageInfo, error) {
	after, limit, err := pageArgs(f.Page)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	query := `SELECT ` + auditCols + ` FROM audit_logs WHERE 1 = 1`
	var args []any
	if f.ProjectID != "" {
		query += ` AND project_id = ?`
		args = append(args, f.ProjectID)
	}
	if after != "" {
		query += ` AND id < ?`
		args = append(args, after)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	entries, err := selectAll(ctx, db.r(ctx), db.q(query), scanAudit, args...)
	if err != nil {
		return nil, fluxgate.PageInfo{}, dbError(err, "audit entries")
	}
	entries, info := trimPage(entries, limit, func(e *fluxgate.AuditEntry) string { return e.ID })
	return entries, info, nil
}
