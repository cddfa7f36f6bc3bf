package store

import (
	"context"
	"time"

	"github.com/fluxgate/fluxgate"
)

const resourceCols = `id, project_id, environment_id, repository_id, kind, name, namespace, spec, status,
	suspended, conditions, inventory, last_applied_revision, last_attempted_revision, error_message,
	observed_generation, last_reconciled_at, created_by, created_at, updated_at, deleted_at`

func scanResource(row scanner) (*fluxgate.GitOpsResource, error) {
	var r fluxgate.GitOpsResource
	err := row.Scan(&r.ID, &r.ProjectID, nullStrCol{&r.EnvironmentID}, nullStrCol{&r.RepositoryID},
		&r.Kind, &r.Name, &r.Namespace, rawJSONCol{&r.Spec}, &r.Status, &r.Suspended,
		jsonCol{&r.Conditions}, jsonCol{&r.Inventory}, &r.LastAppliedRevision, &r.LastAttemptedRevision,
		&r.ErrorMessage, &r.ObservedGeneration, nullTimeCol{&r.LastReconciledAt}, &r.CreatedBy,
		timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}, nullTimeCol{&r.DeletedAt})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// checkResourceRefs returns ENOTFOUND unless r's environment and repository,
// when set, are live and belong to r's project.
func (db *DB) checkResourceRefs(ctx context.Context, r *fluxgate.GitOpsResource) error {
	for _, ref := range []struct {
		table, what string
		id          *string
	}{{"environments", "environment", r.EnvironmentID}, {"repositories", "repository", r.RepositoryID}} {
		if ref.id == nil || *ref.id == "" {
			continue
		}
		var one int
		err := db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT 1 FROM `+ref.table+`
			WHERE id = ? AND project_id = ? AND deleted_at IS NULL`), *ref.id, r.ProjectID).Scan(&one)
		if err != nil {
			return dbError(err, ref.what+" "+*ref.id)
		}
	}
	return nil
}

// CreateResource stores r, filling in its ID (when empty), timestamps and a
// "pending" status when none is set. ENOTFOUND if the project, or the
// environment or repository it names, is not live (or belongs to another
// project); ECONFLICT if a live resource has the same project, environment,
// kind and name.
func (db *DB) CreateResource(ctx context.Context, r *fluxgate.GitOpsResource) error {
	if r.Name == "" {
		return fluxgate.InvalidField("name", "name is required")
	}
	if r.Kind == "" {
		return fluxgate.InvalidField("kind", "kind is required")
	}
	spec, err := rawJSONArg("spec", r.Spec)
	if err != nil {
		return err
	}
	conditions, err := jsonArg(r.Conditions)
	if err != nil {
		return err
	}
	inventory, err := jsonArg(r.Inventory)
	if err != nil {
		return err
	}
	if r.Status == "" {
		r.Status = fluxgate.ResourcePending
	}
	if r.ID == "" {
		r.ID = newID()
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.requireLive(ctx, "projects", "project", r.ProjectID); err != nil {
			return err
		}
		if err := db.checkResourceRefs(ctx, r); err != nil {
			return err
		}
		now := db.now()
		_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO gitops_resources (`+resourceCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
			r.ID, r.ProjectID, strPtrArg(r.EnvironmentID), strPtrArg(r.RepositoryID), string(r.Kind), r.Name,
			r.Namespace, spec, string(r.Status), r.Suspended, conditions, inventory, r.LastAppliedRevision,
			r.LastAttemptedRevision, r.ErrorMessage, r.ObservedGeneration, timePtrArg(r.LastReconciledAt),
			r.CreatedBy, now, now)
		if err != nil {
			return dbError(err, string(r.Kind)+" "+r.Name)
		}
		r.CreatedAt, r.UpdatedAt, r.DeletedAt = now, now, nil
		return nil
	})
}

// GetResource returns the live resource with id; ENOTFOUND otherwise.
func (db *DB) GetResource(ctx context.Context, id string) (*fluxgate.GitOpsResource, error) {
	r, err := scanResource(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+resourceCols+` FROM gitops_resources WHERE id = ? AND deleted_at IS NULL`), id))
	if err != nil {
		return nil, dbError(err, "resource "+id)
	}
	return r, nil
}

// FindResourceByObject returns the live resource that manages the cluster
// object kind namespace/name (the oldest, should several projects claim
// it); ENOTFOUND if none does.
func (db *DB) FindResourceByObject(ctx context.Context, kind fluxgate.ResourceKind, namespace, name string) (*fluxgate.GitOpsResource, error) {
	r, err := scanResource(db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT `+resourceCols+` FROM gitops_resources
		WHERE kind = ? AND namespace = ? AND name = ? AND deleted_at IS NULL ORDER BY id LIMIT 1`),
		string(kind), namespace, name))
	if err != nil {
		return nil, dbError(err, string(kind)+" "+namespace+"/"+name)
	}
	return r, nil
}

// ListResources lists live resources matching f by id (creation order), a
// page at a time. Empty filter fields match everything.
func (db *DB) ListResources(ctx context.Context, f fluxgate.ResourceFilter) ([]*fluxgate.GitOpsResource, fluxgate.PageInfo, error) {
	after, limit, err := pageArgs(f.Page)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	query := `SELECT ` + resourceCols + ` FROM gitops_resources WHERE deleted_at IS NULL AND id > ?`
	args := []any{after}
	for _, c := range []struct{ col, val string }{
		{"project_id", f.ProjectID}, {"environment_id", f.EnvironmentID},
		{"kind", string(f.Kind)}, {"status", string(f.Status)},
	} {
		if c.val != "" {
			query += ` AND ` + c.col + ` = ?`
			args = append(args, c.val)
		}
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit+1)
	resources, err := selectAll(ctx, db.r(ctx), db.q(query), scanResource, args...)
	if err != nil {
		return nil, fluxgate.PageInfo{}, dbError(err, "resources")
	}
	resources, info := trimPage(resources, limit, func(r *fluxgate.GitOpsResource) string { return r.ID })
	return resources, info, nil
}

// UpdateResource writes r's configuration (environment, repository, kind,
// name, namespace, spec, suspended) and then reloads r from the database, so
// that status fields the watcher wrote meanwhile are not overwritten.
// ENOTFOUND if the resource is not live (or a reference is not);
// ECONFLICT if the new name is taken.
func (db *DB) UpdateResource(ctx context.Context, r *fluxgate.GitOpsResource) error {
	if r.Name == "" {
		return fluxgate.InvalidField("name", "name is required")
	}
	spec, err := rawJSONArg("spec", r.Spec)
	if err != nil {
		return err
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.checkResourceRefs(ctx, r); err != nil {
			return err
		}
		now := db.now()
		res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE gitops_resources SET environment_id = ?,
			repository_id = ?, kind = ?, name = ?, namespace = ?, spec = ?, suspended = ?, updated_at = ?
			WHERE id = ? AND project_id = ? AND deleted_at IS NULL`),
			strPtrArg(r.EnvironmentID), strPtrArg(r.RepositoryID), string(r.Kind), r.Name, r.Namespace, spec,
			r.Suspended, now, r.ID, r.ProjectID)
		if err := affectedOne(res, err, string(r.Kind)+" "+r.Name); err != nil {
			return err
		}
		got, err := db.GetResource(ctx, r.ID)
		if err != nil {
			return err
		}
		*r = *got
		return nil
	})
}

// UpdateResourceStatus writes what the watcher learned about a resource.
// ENOTFOUND if the resource is not live.
func (db *DB) UpdateResourceStatus(ctx context.Context, id string, u fluxgate.ResourceStatusUpdate) error {
	conditions, err := jsonArg(u.Conditions)
	if err != nil {
		return err
	}
	inventory, err := jsonArg(u.Inventory)
	if err != nil {
		return err
	}
	res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE gitops_resources SET status = ?, suspended = ?,
		conditions = ?, inventory = ?, last_applied_revision = ?, last_attempted_revision = ?,
		error_message = ?, observed_generation = ?, last_reconciled_at = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`),
		string(u.Status), u.Suspended, conditions, inventory, u.LastAppliedRevision, u.LastAttemptedRevision,
		u.ErrorMessage, u.ObservedGeneration, timePtrArg(u.LastReconciledAt), db.now(), id)
	return affectedOne(res, err, "resource "+id)
}

// DeleteResource soft-deletes the resource at time at (now when zero),
// freeing its name. ENOTFOUND if the resource is not live.
func (db *DB) DeleteResource(ctx context.Context, id string, at time.Time) error {
	return db.softDelete(ctx, "gitops_resources", "resource", id, db.at(at))
}
