package store

import (
	"context"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/fluxgate/fluxgate"
)

const deploymentCols = `id, project_id, environment_id, resource_id, version, commit_sha, branch, strategy,
	status, method, message, deployed_by, change, steps, rollback_of, started_at, finished_at,
	created_at, updated_at, commit_author_name, commit_author_email`

func scanDeployment(row scanner) (*fluxgate.Deployment, error) {
	var d fluxgate.Deployment
	err := row.Scan(&d.ID, &d.ProjectID, &d.EnvironmentID, nullStrCol{&d.ResourceID}, &d.Version, &d.CommitSHA,
		&d.Branch, &d.Strategy, &d.Status, &d.Method, &d.Message, &d.DeployedBy, rawJSONCol{&d.Change},
		jsonCol{&d.Steps}, nullStrCol{&d.RollbackOf}, timeCol{&d.StartedAt}, nullTimeCol{&d.FinishedAt},
		timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt}, &d.CommitAuthor.Name, &d.CommitAuthor.Email)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// deploymentStatuses lists every status, to derive the terminal ones.
var deploymentStatuses = []fluxgate.DeploymentStatus{
	fluxgate.DeploymentAwaitingApproval, fluxgate.DeploymentPending, fluxgate.DeploymentInProgress,
	fluxgate.DeploymentSucceeded, fluxgate.DeploymentFailed, fluxgate.DeploymentRejected,
	fluxgate.DeploymentSuperseded,
}

// CreateDeployment stores d, filling in its ID (when empty), timestamps,
// StartedAt (now when zero) and a "pending" status when none is set.
// ENOTFOUND if the environment is not live in d's project, or the resource
// or rolled-back deployment it names does not exist.
func (db *DB) CreateDeployment(ctx context.Context, d *fluxgate.Deployment) error {
	change, err := rawJSONArg("change", d.Change)
	if err != nil {
		return err
	}
	steps, err := jsonArg(d.Steps)
	if err != nil {
		return err
	}
	if d.Status == "" {
		d.Status = fluxgate.DeploymentPending
	}
	if d.ID == "" {
		d.ID = newID()
	}
	return db.InTx(ctx, func(ctx context.Context) error {
		var one int
		err := db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT 1 FROM environments
			WHERE id = ? AND project_id = ? AND deleted_at IS NULL`), d.EnvironmentID, d.ProjectID).Scan(&one)
		if err != nil {
			return dbError(err, "environment "+d.EnvironmentID)
		}
		now := db.now()
		if d.StartedAt.IsZero() {
			d.StartedAt = now
		}
		d.StartedAt = timeArg(d.StartedAt)
		_, err = db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO deployments (`+deploymentCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			d.ID, d.ProjectID, d.EnvironmentID, strPtrArg(d.ResourceID), d.Version, d.CommitSHA, d.Branch,
			d.Strategy, string(d.Status), string(d.Method), d.Message, d.DeployedBy, change, steps,
			strPtrArg(d.RollbackOf), d.StartedAt, timePtrArg(d.FinishedAt), now, now, d.CommitAuthor.Name, d.CommitAuthor.Email)
		if err != nil {
			return dbError(err, "deployment "+d.ID)
		}
		d.CreatedAt, d.UpdatedAt = now, now
		return nil
	})
}

// GetDeployment returns the deployment with id; ENOTFOUND otherwise.
func (db *DB) GetDeployment(ctx context.Context, id string) (*fluxgate.Deployment, error) {
	d, err := scanDeployment(db.r(ctx).QueryRowxContext(ctx,
		db.q(`SELECT `+deploymentCols+` FROM deployments WHERE id = ?`), id))
	if err != nil {
		return nil, dbError(err, "deployment "+id)
	}
	return d, nil
}

// ListDeployments lists deployments matching f, newest first (by id), a page
// at a time. Empty filter fields match everything.
func (db *DB) ListDeployments(ctx context.Context, f fluxgate.DeploymentFilter) ([]*fluxgate.Deployment, fluxgate.PageInfo, error) {
	after, limit, err := pageArgs(f.Page)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	query := `SELECT ` + deploymentCols + ` FROM deployments WHERE 1 = 1`
	var args []any
	if after != "" {
		query += ` AND id < ?`
		args = append(args, after)
	}
	for _, c := range []struct{ col, val string }{
		{"project_id", f.ProjectID}, {"environment_id", f.EnvironmentID}, {"status", string(f.Status)},
	} {
		if c.val != "" {
			query += ` AND ` + c.col + ` = ?`
			args = append(args, c.val)
		}
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	deployments, err := selectAll(ctx, db.r(ctx), db.q(query), scanDeployment, args...)
	if err != nil {
		return nil, fluxgate.PageInfo{}, dbError(err, "deployments")
	}
	deployments, info := trimPage(deployments, limit, func(d *fluxgate.Deployment) string { return d.ID })
	return deployments, info, nil
}

// ListOpenDeployments lists deployments not yet in a terminal status, oldest
// first.
func (db *DB) ListOpenDeployments(ctx context.Context) ([]*fluxgate.Deployment, error) {
	var terminal []string
	var args []any
	for _, s := range deploymentStatuses {
		if s.Terminal() {
			terminal = append(terminal, "?")
			args = append(args, string(s))
		}
	}
	deployments, err := selectAll(ctx, db.r(ctx), db.q(`SELECT `+deploymentCols+` FROM deployments
		WHERE status NOT IN (`+strings.Join(terminal, ", ")+`) ORDER BY id`), scanDeployment, args...)
	if err != nil {
		return nil, dbError(err, "open deployments")
	}
	return deployments, nil
}

// FindDeploymentByCommit returns the newest deployment of commitSHA to the
// environment; ENOTFOUND if there is none.
func (db *DB) FindDeploymentByCommit(ctx context.Context, environmentID, commitSHA string) (*fluxgate.Deployment, error) {
	d, err := scanDeployment(db.r(ctx).QueryRowxContext(ctx, db.q(`SELECT `+deploymentCols+` FROM deployments
		WHERE environment_id = ? AND commit_sha = ? ORDER BY id DESC LIMIT 1`), environmentID, commitSHA))
	if err != nil {
		return nil, dbError(err, "deployment of commit "+commitSHA)
	}
	return d, nil
}

// UpdateDeployment writes every field of d but its project, environment and
// creation time, and fills in UpdatedAt. ENOTFOUND if there is no such
// deployment.
func (db *DB) UpdateDeployment(ctx context.Context, d *fluxgate.Deployment) error {
	n, err := db.updateDeployment(ctx, d, "")
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("deployment %s not found", d.ID)
	}
	return nil
}

// UpdateDeploymentFrom writes every field of d like UpdateDeployment, but
// only while the stored status is from: a compare-and-swap on the status.
// Inside a transaction the updated row stays locked until the transaction
// ends (PostgreSQL row lock; SQLite transactions are serialized), so a
// concurrent caller waits and then sees the new status. ECONFLICT when the
// status is no longer from; ENOTFOUND if there is no such deployment.
func (db *DB) UpdateDeploymentFrom(ctx context.Context, d *fluxgate.Deployment, from fluxgate.DeploymentStatus) error {
	n, err := db.updateDeployment(ctx, d, from)
	if err != nil {
		return err
	}
	if n == 0 {
		cur, err := db.GetDeployment(ctx, d.ID)
		if err != nil {
			return err
		}
		return fluxgate.Errorf(fluxgate.ECONFLICT, "deployment %s is %s, not %s", d.ID, cur.Status, from)
	}
	return nil
}

// updateDeployment writes d, only while its status is from when from is
// set, and returns how many rows it changed (0 or 1).
func (db *DB) updateDeployment(ctx context.Context, d *fluxgate.Deployment, from fluxgate.DeploymentStatus) (int64, error) {
	change, err := rawJSONArg("change", d.Change)
	if err != nil {
		return 0, err
	}
	steps, err := jsonArg(d.Steps)
	if err != nil {
		return 0, err
	}
	now := db.now()
	query := `UPDATE deployments SET resource_id = ?, version = ?,
		commit_sha = ?, branch = ?, strategy = ?, status = ?, method = ?, message = ?, deployed_by = ?,
		change = ?, steps = ?, rollback_of = ?, started_at = ?, finished_at = ?, updated_at = ?,
		commit_author_name = ?, commit_author_email = ?
		WHERE id = ?`
	args := []any{strPtrArg(d.ResourceID), d.Version, d.CommitSHA, d.Branch, d.Strategy, string(d.Status), string(d.Method),
		d.Message, d.DeployedBy, change, steps, strPtrArg(d.RollbackOf), timeArg(d.StartedAt),
		timePtrArg(d.FinishedAt), now, d.CommitAuthor.Name, d.CommitAuthor.Email, d.ID}
	if from != "" {
		query += ` AND status = ?`
		args = append(args, string(from))
	}
	res, err := db.w(ctx).ExecContext(ctx, db.q(query), args...)
	if err != nil {
		return 0, dbError(err, "deployment "+d.ID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError(err, "deployment "+d.ID)
	}
	if n > 0 {
		d.UpdatedAt = now
	}
	return n, nil
}

// CreateApproval stores a, filling in its ID (when empty) and CreatedAt.
// EINVALID for an unknown decision; ENOTFOUND if the deployment or user does
// not exist; ECONFLICT if the user already decided on this deployment.
func (db *DB) CreateApproval(ctx context.Context, a *fluxgate.Approval) error {
	if a.Decision != fluxgate.ApprovalApproved && a.Decision != fluxgate.ApprovalRejected {
		return fluxgate.InvalidField("decision", "decision %q is not approved or rejected", a.Decision)
	}
	if a.ID == "" {
		a.ID = newID()
	}
	now := db.now()
	_, err := db.w(ctx).ExecContext(ctx, db.q(`INSERT INTO approvals
		(id, deployment_id, user_id, decision, comment, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		a.ID, a.DeploymentID, a.UserID, string(a.Decision), a.Comment, now)
	if err != nil {
		return dbError(err, "approval of deployment "+a.DeploymentID+" by "+a.UserID)
	}
	a.CreatedAt = now
	return nil
}

// ListApprovals lists the decisions on a deployment in the order they were
// made.
func (db *DB) ListApprovals(ctx context.Context, deploymentID string) ([]*fluxgate.Approval, error) {
	lists, err := db.ListApprovalsOf(ctx, []string{deploymentID})
	if err != nil {
		return nil, err
	}
	return lists[0], nil
}

// ListApprovalsOf lists the decisions on each of deploymentIDs (a
// dataloader batch), each list in the order they were made; a deployment
// without decisions has an empty list.
func (db *DB) ListApprovalsOf(ctx context.Context, deploymentIDs []string) ([][]*fluxgate.Approval, error) {
	out := make([][]*fluxgate.Approval, len(deploymentIDs))
	if len(deploymentIDs) == 0 {
		return out, nil
	}
	query, args, err := sqlx.In(`SELECT id, deployment_id, user_id, decision, comment, created_at
		FROM approvals WHERE deployment_id IN (?) ORDER BY id`, deploymentIDs)
	if err != nil {
		return nil, err
	}
	approvals, err := selectAll(ctx, db.r(ctx), db.q(query),
		func(row scanner) (*fluxgate.Approval, error) {
			var a fluxgate.Approval
			if err := row.Scan(&a.ID, &a.DeploymentID, &a.UserID, &a.Decision, &a.Comment, timeCol{&a.CreatedAt}); err != nil {
				return nil, err
			}
			return &a, nil
		}, args...)
	if err != nil {
		return nil, dbError(err, "approvals")
	}
	byDeployment := map[string][]*fluxgate.Approval{}
	for _, a := range approvals {
		byDeployment[a.DeploymentID] = append(byDeployment[a.DeploymentID], a)
	}
	for i, id := range deploymentIDs {
		out[i] = byDeployment[id]
		if out[i] == nil {
			out[i] = []*fluxgate.Approval{}
		}
	}
	return out, nil
}
