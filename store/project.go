package store

import (
	"context"
	"time"

	"github.com/fluxgate/fluxgate"
)

const projectCols = `id, slug, name, description, namespace, gitops_enabled, deployment_mode,
	created_by, created_at, updated_at, deleted_at`

func scanProject(row scanner) (*fluxgate.Project, error) {
	var p fluxgate.Project
	err := row.Scan(&p.ID, &p.Slug, &p.Name, &p.Description, &p.Namespace, &p.GitOpsEnabled,
		&p.DeploymentMode, &p.CreatedBy, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}, nullTimeCol{&p.DeletedAt})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateProject stores p, filling in its ID (when empty) and timestamps.
// ECONFLICT if a live project has the same slug.
func (db *DB) CreateProject(ctx context.Context, p *fluxgate.Project) error {
	if p.Slug == "" {
		return fluxgate.InvalidField("slug", "slug is required")
	}
	if p.ID == "" {
		p.ID = newID()
	}
	now := db.now()
	_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO projects (`+projectCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`),
		p.ID, p.Slug, p.Name, p.Description, p.Namespace, p.GitOpsEnabled, string(p.DeploymentMode),
		p.CreatedBy, now, now)
	if err != nil {
		return dbError(err, "project "+p.Slug)
	}
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = now, now, nil
	return nil
}

// GetProject returns the live project with id; ENOTFOUND otherwise.
func (db *DB) GetProject(ctx context.Context, id string) (*fluxgate.Project, error) {
	p, err := scanProject(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+projectCols+` FROM projects WHERE id = ? AND deleted_at IS NULL`), id))
	if err != nil {
		return nil, dbError(err, "project "+id)
	}
	return p, nil
}

// GetProjectBySlug returns the live project with slug; ENOTFOUND otherwise.
func (db *DB) GetProjectBySlug(ctx context.Context, slug string) (*fluxgate.Project, error) {
	p, err := scanProject(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+projectCols+` FROM projects WHERE slug = ? AND deleted_at IS NULL`), slug))
	if err != nil {
		return nil, dbError(err, "project "+slug)
	}
	return p, nil
}

// ListProjects lists live projects by id (creation order), a page at a
// time, only those where f.MemberUserID is a member when it is set.
func (db *DB) ListProjects(ctx context.Context, f fluxgate.ProjectFilter) ([]*fluxgate.Project, fluxgate.PageInfo, error) {
	after, limit, err := pageArgs(f.Page)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	query := `SELECT ` + projectCols + ` FROM projects WHERE deleted_at IS NULL AND id > ?`
	args := []any{after}
	if f.MemberUserID != "" {
		query += ` AND EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = projects.id AND m.user_id = ?)`
		args = append(args, f.MemberUserID)
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, limit+1)
	projects, err := selectAll(ctx, db.r(ctx), db.q(query), scanProject, args...)
	if err != nil {
		return nil, fluxgate.PageInfo{}, dbError(err, "projects")
	}
	projects, info := trimPage(projects, limit, func(p *fluxgate.Project) string { return p.ID })
	return projects, info, nil
}

// UpdateProject writes p's slug, name, description, namespace, GitOps flag
// and deployment mode, and fills in UpdatedAt. ENOTFOUND if the project is
// not live; ECONFLICT if the new slug is taken.
func (db *DB) UpdateProject(ctx context.Context, p *fluxgate.Project) error {
	if p.Slug == "" {
		return fluxgate.InvalidField("slug", "slug is required")
	}
	now := db.now()
	res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE projects SET slug = ?, name = ?, description = ?,
		namespace = ?, gitops_enabled = ?, deployment_mode = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`),
		p.Slug, p.Name, p.Description, p.Namespace, p.GitOpsEnabled, string(p.DeploymentMode), now, p.ID)
	if err := affectedOne(res, err, "project "+p.Slug); err != nil {
		return err
	}
	p.UpdatedAt = now
	return nil
}

// DeleteProject soft-deletes the project at time at (now when zero) together
// with its environments, repositories and GitOps resources, freeing their
// unique names. ENOTFOUND if the project is not live.
func (db *DB) DeleteProject(ctx context.Context, id string, at time.Time) error {
	at = db.at(at)
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.softDelete(ctx, "projects", "project", id, at); err != nil {
			return err
		}
		for _, table := range []string{"gitops_resources", "environments", "repositories"} {
			_, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE `+table+` SET deleted_at = ?, updated_at = ?
				WHERE project_id = ? AND deleted_at IS NULL`), at, at, id)
			if err != nil {
				return dbError(err, "delete project "+id)
			}
		}
		return nil
	})
}

const memberCols = `m.project_id, m.user_id, m.role, m.created_at, m.updated_at`

func scanMember(row scanner) (*fluxgate.ProjectMember, error) {
	var m fluxgate.ProjectMember
	if err := row.Scan(&m.ProjectID, &m.UserID, &m.Role, timeCol{&m.CreatedAt}, timeCol{&m.UpdatedAt}); err != nil {
		return nil, err
	}
	return &m, nil
}

// AddProjectMember gives m.UserID the role m.Role in m.ProjectID. EINVALID
// for an unknown role; ENOTFOUND if the project is not live or the user does
// not exist; ECONFLICT if the user is already a member.
func (db *DB) AddProjectMember(ctx context.Context, m *fluxgate.ProjectMember) error {
	if !m.Role.Valid() {
		return fluxgate.InvalidField("role", "role %q is not one of owner, maintainer, developer, viewer", m.Role)
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		if err := db.requireLive(ctx, "projects", "project", m.ProjectID); err != nil {
			return err
		}
		now := db.now()
		_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO project_members
			(project_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`),
			m.ProjectID, m.UserID, string(m.Role), now, now)
		if err != nil {
			return dbError(err, "member "+m.UserID+" of project "+m.ProjectID)
		}
		m.CreatedAt, m.UpdatedAt = now, now
		return nil
	})
}

// GetProjectMember returns the user's membership of a live project;
// ENOTFOUND if there is none.
func (db *DB) GetProjectMember(ctx context.Context, projectID, userID string) (*fluxgate.ProjectMember, error) {
	m, err := scanMember(db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT `+memberCols+` FROM project_members m
		JOIN projects p ON p.id = m.project_id AND p.deleted_at IS NULL
		WHERE m.project_id = ? AND m.user_id = ?`), projectID, userID))
	if err != nil {
		return nil, dbError(err, "member "+userID+" of project "+projectID)
	}
	return m, nil
}

// ListProjectMembers lists the members of a live project in the order they
// joined (empty for a missing or deleted project).
func (db *DB) ListProjectMembers(ctx context.Context, projectID string) ([]*fluxgate.ProjectMember, error) {
	members, err := selectAll(ctx, db.r(ctx), db.q(`SELECT `+memberCols+` FROM project_members m
		JOIN projects p ON p.id = m.project_id AND p.deleted_at IS NULL
		WHERE m.project_id = ? ORDER BY m.created_at, m.user_id`), scanMember, projectID)
	if err != nil {
		return nil, dbError(err, "project members")
	}
	return members, nil
}

// UpdateProjectMember changes a member's role and fills in UpdatedAt.
// EINVALID for an unknown role; ENOTFOUND if the user is not a member.
func (db *DB) UpdateProjectMember(ctx context.Context, m *fluxgate.ProjectMember) error {
	if !m.Role.Valid() {
		return fluxgate.InvalidField("role", "role %q is not one of owner, maintainer, developer, viewer", m.Role)
	}
	now := db.now()
	res, err := db.w(ctx).ExecContext(ctx, db.q(`UPDATE project_members SET role = ?, updated_at = ?
		WHERE project_id = ? AND user_id = ?`), string(m.Role), now, m.ProjectID, m.UserID)
	if err := affectedOne(res, err, "member "+m.UserID+" of project "+m.ProjectID); err != nil {
		return err
	}
	m.UpdatedAt = now
	return nil
}

// RemoveProjectMember removes the user from the project; ENOTFOUND if the
// user was not a member.
func (db *DB) RemoveProjectMember(ctx context.Context, projectID, userID string) error {
	res, err := db.w(ctx).ExecContext(ctx, db.q(`DELETE FROM project_members WHERE project_id = ? AND user_id = ?`),
		projectID, userID)
	return affectedOne(res, err, "member "+userID+" of project "+projectID)
}
