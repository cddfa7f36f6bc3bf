package store

import (
	"context"
	"time"

	"github.com/fluxgate/fluxgate"
)

const repositoryCols = `id, project_id, provider, full_name, clone_url, default_branch, gitops,
	flux_sync_status, flux_last_commit, flux_last_sync_at, flux_sync_error,
	created_at, updated_at, deleted_at`

func scanRepository(row scanner) (*fluxgate.Repository, error) {
	var r fluxgate.Repository
	err := row.Scan(&r.ID, &r.ProjectID, &r.Provider, &r.FullName, &r.CloneURL, &r.DefaultBranch,
		jsonCol{&r.GitOps}, &r.FluxSyncStatus, &r.FluxLastCommit, nullTimeCol{&r.FluxLastSyncAt}, &r.FluxSyncError,
		timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}, nullTimeCol{&r.DeletedAt})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateRepository stores r, filling in its ID (when empty) and timestamps.
// ENOTFOUND if the project is not live; ECONFLICT if the project has a live
// repository with the same full name.
func (db *DB) CreateRepository(ctx context.Context, r *fluxgate.Repository) error {
	if r.FullName == "" {
		return fluxgate.InvalidField("fullName", "full name is required")
	}
	gitops, err := jsonArg(r.GitOps)
	if err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = newID()
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.requireLive(ctx, "projects", "project", r.ProjectID); err != nil {
			return err
		}
		now := db.now()
		_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO repositories (`+repositoryCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
			r.ID, r.ProjectID, r.Provider, r.FullName, r.CloneURL, r.DefaultBranch, gitops,
			r.FluxSyncStatus, r.FluxLastCommit, timePtrArg(r.FluxLastSyncAt), r.FluxSyncError, now, now)
		if err != nil {
			return dbError(err, "repository "+r.FullName)
		}
		r.CreatedAt, r.UpdatedAt, r.DeletedAt = now, now, nil
		return nil
	})
}

// GetRepository returns the live repository with id; ENOTFOUND otherwise.
func (db *DB) GetRepository(ctx context.Context, id string) (*fluxgate.Repository, error) {
	r, err := scanRepository(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+repositoryCols+` FROM repositories WHERE id = ? AND deleted_at IS NULL`), id))
	if err != nil {
		return nil, dbError(err, "repository "+id)
	}
	return r, nil
}

// ListRepositories lists the project's live repositories in creation order.
func (db *DB) ListRepositories(ctx context.Context, projectID string) ([]*fluxgate.Repository, error) {
	repos, err := selectAll(ctx, db.r(ctx), db.q(`SELECT `+repositoryCols+` FROM repositories
		WHERE project_id = ? AND deleted_at IS NULL ORDER BY id`), scanRepository, projectID)
	if err != nil {
		return nil, dbError(err, "repositories")
	}
	return repos, nil
}

// UpdateRepository writes every field of r but its project and creation
// time (connection details, GitOps config, Flux sync status), and fills in
// UpdatedAt. ENOTFOUND if the repository is not live; ECONFLICT if the new
// full name is taken.
func (db *DB) UpdateRepository(ctx context.Context, r *fluxgate.Repository) error {
	if r.FullName == "" {
		return fluxgate.InvalidField("fullName", "full name is required")
	}
	gitops, err := jsonArg(r.GitOps)
	if err != nil {
		return err
	}
	now := db.now()
	res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE repositories SET provider = ?, full_name = ?,
		clone_url = ?, default_branch = ?, gitops = ?, flux_sync_status = ?, flux_last_commit = ?,
		flux_last_sync_at = ?, flux_sync_error = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`),
		r.Provider, r.FullName, r.CloneURL, r.DefaultBranch, gitops, r.FluxSyncStatus, r.FluxLastCommit,
		timePtrArg(r.FluxLastSyncAt), r.FluxSyncError, now, r.ID)
	if err := affectedOne(res, err, "repository "+r.FullName); err != nil {
		return err
	}
	r.UpdatedAt = now
	return nil
}

// DeleteRepository soft-deletes the repository at time at (now when zero),
// freeing its full name. GitOps resources that referenced it are kept.
// ENOTFOUND if the repository is not live.
func (db *DB) DeleteRepository(ctx context.Context, id string, at time.Time) error {
	return db.softDelete(ctx, "repositories", "repository", id, db.at(at))
}

// SetRepositoryCredentials stores the sealed push credentials of a live
// repository (nil clears them). The store never sees them in the clear.
// ENOTFOUND if the repository is not live.
func (db *DB) SetRepositoryCredentials(ctx context.Context, id string, sealed []byte) error {
	var arg any
	if len(sealed) > 0 {
		arg = sealed
	}
	res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE repositories SET push_credentials = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`), arg, db.now(), id)
	return affectedOne(res, err, "repository "+id)
}

// GetRepositoryCredentials returns the sealed push credentials of a live
// repository, nil when none are stored. ENOTFOUND if the repository is not
// live.
func (db *DB) GetRepositoryCredentials(ctx context.Context, id string) ([]byte, error) {
	var sealed []byte
	err := db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT push_credentials FROM repositories
		WHERE id = ? AND deleted_at IS NULL`), id).Scan(&sealed)
	if err != nil {
		return nil, dbError(err, "repository "+id)
	}
	if len(sealed) == 0 {
		return nil, nil
	}
	return sealed, nil
}
