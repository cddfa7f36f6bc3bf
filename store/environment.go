package store

import (
	"context"
	"time"

	"github.com/fluxgate/fluxgate"
)

const environmentCols = `id, project_id, name, type, gitops, approval, health_checks, permissions,
	created_at, updated_at, deleted_at`

func scanEnvironment(row scanner) (*fluxgate.Environment, error) {
	var e fluxgate.Environment
	err := row.Scan(&e.ID, &e.ProjectID, &e.Name, &e.Type, jsonCol{&e.GitOps}, jsonCol{&e.Approval},
		jsonCol{&e.HealthChecks}, jsonCol{&e.Permissions},
		timeCol{&e.CreatedAt}, timeCol{&e.UpdatedAt}, nullTimeCol{&e.DeletedAt})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// environmentJSON encodes the JSON columns of e.
func environmentJSON(e *fluxgate.Environment) (gitops, approval, health, perms string, err error) {
	if gitops, err = jsonArg(e.GitOps); err != nil {
		return
	}
	if approval, err = jsonArg(e.Approval); err != nil {
		return
	}
	if health, err = jsonArg(e.HealthChecks); err != nil {
		return
	}
	perms, err = jsonArg(e.Permissions)
	return
}

// CreateEnvironment stores e, filling in its ID (when empty) and timestamps.
// ENOTFOUND if the project is not live; ECONFLICT if the project has a live
// environment with the same name.
func (db *DB) CreateEnvironment(ctx context.Context, e *fluxgate.Environment) error {
	if e.Name == "" {
		return fluxgate.InvalidField("name", "name is required")
	}
	gitops, approval, health, perms, err := environmentJSON(e)
	if err != nil {
		return err
	}
	if e.ID == "" {
		e.ID = newID()
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.requireLive(ctx, "projects", "project", e.ProjectID); err != nil {
			return err
		}
		now := db.now()
		_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO environments (`+environmentCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
			e.ID, e.ProjectID, e.Name, string(e.Type), gitops, approval, health, perms, now, now)
		if err != nil {
			return dbError(err, "environment "+e.Name)
		}
		e.CreatedAt, e.UpdatedAt, e.DeletedAt = now, now, nil
		return nil
	})
}

// GetEnvironment returns the live environment with id; ENOTFOUND otherwise.
func (db *DB) GetEnvironment(ctx context.Context, id string) (*fluxgate.Environment, error) {
	e, err := scanEnvironment(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+environmentCols+` FROM environments WHERE id = ? AND deleted_at IS NULL`), id))
	if err != nil {
		return nil, dbError(err, "environment "+id)
	}
	return e, nil
}

// GetEnvironmentByName returns the project's live environment called name;
// ENOTFOUND otherwise.
func (db *DB) GetEnvironmentByName(ctx context.Context, projectID, name string) (*fluxgate.Environment, error) {
	e, err := scanEnvironment(db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT `+environmentCols+` FROM environments
		WHERE project_id = ? AND name = ? AND deleted_at IS NULL`), projectID, name))
	if err != nil {
		return nil, dbError(err, "environment "+name)
	}
	return e, nil
}

// ListEnvironments lists the project's live environments in creation order.
func (db *DB) ListEnvironments(ctx context.Context, projectID string) ([]*fluxgate.Environment, error) {
	envs, err := selectAll(ctx, db.r(ctx), db.q(`SELECT `+environmentCols+` FROM environments
		WHERE project_id = ? AND deleted_at IS NULL ORDER BY id`), scanEnvironment, projectID)
	if err != nil {
		return nil, dbError(err, "environments")
	}
	return envs, nil
}

// UpdateEnvironment writes e's name, type, GitOps config, approval policy,
// health checks and permissions, and fills in UpdatedAt. ENOTFOUND if the
// environment is not live; ECONFLICT if the new name is taken.
func (db *DB) UpdateEnvironment(ctx context.Context, e *fluxgate.Environment) error {
	if e.Name == "" {
		return fluxgate.InvalidField("name", "name is required")
	}
	gitops, approval, health, perms, err := environmentJSON(e)
	if err != nil {
		return err
	}
	now := db.now()
	res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE environments SET name = ?, type = ?, gitops = ?,
		approval = ?, health_checks = ?, permissions = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`),
		e.Name, string(e.Type), gitops, approval, health, perms, now, e.ID)
	if err := affectedOne(res, err, "environment "+e.Name); err != nil {
		return err
	}
	e.UpdatedAt = now
	return nil
}

// DeleteEnvironment soft-deletes the environment at time at (now when zero)
// together with its GitOps resources, freeing their names. ENOTFOUND if the
// environment is not live.
func (db *DB) DeleteEnvironment(ctx context.Context, id string, at time.Time) error {
	at = db.at(at)
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.softDelete(ctx, "environments", "environment", id, at); err != nil {
			return err
		}
		_, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE gitops_resources SET deleted_at = ?, updated_at = ?
			WHERE environment_id = ? AND deleted_at IS NULL`), at, at, id)
		return dbError(err, "delete environment "+id)
	})
}
