package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
)

// RollbackKind marks the Change of a rollback deployment.
const RollbackKind = "rollback"

// RollbackChange is the Change stored (as JSON) with a rollback
// deployment. It holds what is needed to make the rollback commit later,
// when an environment that requires approval held it:
//
//	{"kind":"rollback","targetDeploymentId":"…","targetCommitSha":"…",
//	 "baseRevision":"…","baseDeploymentId":"…","branch":"main",
//	 "path":"k8s/overlays/prod","files":["…"]}
//
// The commit restores the files under Path at TargetCommitSHA with a
// reverse three-way merge onto the branch head, BaseRevision being the
// merge base (gitrepo.Rollback). BaseDeploymentID is the deployment whose
// commit BaseRevision is; empty when nothing was deployed since the target
// and BaseRevision is the head at the time of the request. Files lists the
// paths the commit changed (empty while held).
type RollbackChange struct {
	Kind               string   `json:"kind"`
	TargetDeploymentID string   `json:"targetDeploymentId"`
	TargetCommitSHA    string   `json:"targetCommitSha"`
	BaseRevision       string   `json:"baseRevision"`
	BaseDeploymentID   string   `json:"baseDeploymentId,omitempty"`
	Branch             string   `json:"branch"`
	Path               string   `json:"path"`
	Files              []string `json:"files,omitempty"`
}

// ParseRollbackChange reads the Change of a deployment; ok is false when
// it is not a rollback's.
func ParseRollbackChange(change json.RawMessage) (rc RollbackChange, ok bool) {
	if json.Unmarshal(change, &rc) != nil || rc.Kind != RollbackKind || rc.TargetCommitSHA == "" || rc.BaseRevision == "" {
		return RollbackChange{}, false
	}
	return rc, true
}

// RollbackResult is a rollback deployment and its commit (empty while it
// awaits approval), or the conflicts that kept anything from being
// written.
type RollbackResult struct {
	Deployment *fluxgate.Deployment
	CommitSHA  string
	Message    string
	Conflicts  []gitrepo.Conflict
}

// RollbackDeployment restores the environment's manifests to what the
// target deployment's commit had: a new commit on the environment's branch
// made by a reverse three-way merge onto the head (base: the commit
// deployed now, i.e. the newest deployment after the target that Flux
// applied, else the head). Changes pushed since that do not overlap are
// kept; overlapping ones give Conflicts and nothing is written. It records
// a gitops-ui deployment with RollbackOf = the target and the target's
// version, asks Flux to reconcile and tracks it like a deploy.
// Environments that require approval hold it (AWAITING_APPROVAL, nothing
// committed; Change is a RollbackChange).
//
// Needs sync on the environment. Errors: NOT_FOUND (no such deployment or
// not visible), FORBIDDEN, INVALID_INPUT (the target has no commit, its
// commit is not on the branch, nothing to change), UNAVAILABLE.
func (s *Service) RollbackDeployment(ctx context.Context, deploymentID string) (*RollbackResult, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	notFound := fluxgate.Errorf(fluxgate.ENOTFOUND, "deployment %s not found", deploymentID)
	target, err := s.store.GetDeployment(ctx, deploymentID)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	e, p, u, err := s.authorizeEnvironment(ctx, target.EnvironmentID, fluxgate.ActionSync)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if target.CommitSHA == "" {
		return nil, fluxgate.InvalidField("deploymentId", "%s", noCommitReason(target))
	}
	if !p.GitOpsEnabled {
		return nil, fluxgate.InvalidField("deploymentId", "the project does not use GitOps: there is no Git history to roll back through")
	}
	t, err := s.gitTarget(ctx, e)
	if err != nil {
		return nil, err
	}
	rc, rb, head, err := s.planRollback(ctx, e, t, target, userLabel(u))
	if err != nil {
		return nil, err
	}

	now := s.now().UTC()
	d := &fluxgate.Deployment{
		ProjectID: p.ID, EnvironmentID: e.ID, Strategy: "rolling", Method: fluxgate.MethodGitOpsUI,
		Message: strings.SplitN(rb.Message, "\n", 2)[0], DeployedBy: u.ID, StartedAt: now,
		Version: target.Version, RollbackOf: &target.ID, Steps: pendingSteps(),
	}
	if e.Approval.Required {
		// Check now that the rollback applies, so approvers are not
		// asked for one that cannot be made; it is merged again onto
		// the head of the day it is approved.
		if _, err := rb.Files(head); err != nil {
			return rollbackError(err, e, target)
		}
		d.Status = fluxgate.DeploymentAwaitingApproval
		if d.Change, err = json.Marshal(rc); err != nil {
			return nil, err
		}
		if err := s.recordDeployment(ctx, d, "deploy.rollback"); err != nil {
			return nil, err
		}
		s.publishDeployment(ctx, d)
		return &RollbackResult{Deployment: d, Message: fmt.Sprintf("%s requires approval: the rollback waits for %d approval(s) before it is committed", e.Name, max(e.Approval.MinApprovals, 1))}, nil
	}

	res, err := s.git.Commit(ctx, gitrepo.CommitRequest{
		Remote: t.remote, Branch: t.branch, Dir: t.path,
		Author: gitrepo.Signature{Name: userLabel(u), Email: userEmail(u)},
		Edit:   gitrepo.RollbackEdit(rb),
	})
	if err != nil {
		return rollbackError(err, e, target)
	}
	rc.Files = res.Files
	if d.Change, err = json.Marshal(rc); err != nil {
		return nil, err
	}
	markCommitted(d, res, now)
	if err := s.recordDeployment(ctx, d, "deploy.rollback"); err != nil {
		return nil, err
	}
	s.handToFlux(ctx, e, d)
	return &RollbackResult{Deployment: d, CommitSHA: res.SHA,
		Message: fmt.Sprintf("committed %s to %s, rolling %s back to %s; Flux was asked to apply it now", shortSHA(res.SHA), res.Branch, e.Name, shortSHA(target.CommitSHA))}, nil
}

// rollbackError returns conflicts as data and maps the rest to codes.
func rollbackError(err error, e *fluxgate.Environment, target *fluxgate.Deployment) (*RollbackResult, error) {
	var ce *gitrepo.ConflictError
	switch {
	case errors.As(err, &ce):
		return &RollbackResult{Conflicts: ce.Conflicts}, nil
	case errors.Is(err, gitrepo.ErrNoChange):
		return nil, fluxgate.Errorf(fluxgate.EINVALID, "nothing to change: %s already has the manifests of %s", e.Name, shortSHA(target.CommitSHA))
	}
	return nil, gitError("rollback commit", err)
}

// noCommitReason says why a deployment without a commit cannot be rolled
// back to.
func noCommitReason(d *fluxgate.Deployment) string {
	switch {
	case d.Status == fluxgate.DeploymentAwaitingApproval:
		return fmt.Sprintf("deployment %s awaits approval and has no commit yet: there is nothing to roll back to", d.ID)
	case d.Status == fluxgate.DeploymentRejected:
		return fmt.Sprintf("deployment %s was rejected and never committed: there is nothing to roll back to", d.ID)
	case d.Method == fluxgate.MethodManual:
		return fmt.Sprintf("deployment %s was applied directly to the cluster, without a Git commit: it cannot be rolled back to through Git", d.ID)
	}
	return fmt.Sprintf("deployment %s has no Git commit to roll back to", d.ID)
}

// planRollback chooses the merge base (the commit deployed now, else the
// head) and reads the files of the target, the base and the head.
func (s *Service) planRollback(ctx context.Context, e *fluxgate.Environment, t *gitTarget, target *fluxgate.Deployment, user string) (RollbackChange, gitrepo.Rollback, *gitrepo.Snapshot, error) {
	rc := RollbackChange{Kind: RollbackKind, TargetDeploymentID: target.ID, TargetCommitSHA: target.CommitSHA, Branch: t.branch, Path: t.path}
	head, err := s.git.ReadFiles(ctx, t.remote, t.branch, t.path)
	if err != nil {
		return rc, gitrepo.Rollback{}, nil, gitError("read head", err)
	}
	rc.BaseRevision = head.Revision
	base := head
	deployed, err := s.deployedAfter(ctx, target, t.branch)
	if err != nil {
		return rc, gitrepo.Rollback{}, nil, err
	}
	if deployed != nil {
		snap, err := s.git.ReadFilesAt(ctx, t.remote, t.branch, deployed.CommitSHA, t.path)
		if err == nil {
			rc.BaseRevision, rc.BaseDeploymentID, base = deployed.CommitSHA, deployed.ID, snap
		} else {
			// Not on the branch any more (force-pushed): the head is
			// the best base left.
			s.logger.WarnContext(ctx, "rollback: the deployed commit cannot be read; merging onto the head as base",
				"deployment", deployed.ID, "commit", deployed.CommitSHA, "err", fluxgate.ErrorMessage(gitError("read deployed commit", err)))
		}
	}
	rb, err := s.rollbackOf(ctx, e, t, rc, target.Version, user, base)
	return rc, rb, head, err
}

// rollbackOf turns a RollbackChange into the gitrepo.Rollback to commit on
// t's branch (base: the snapshot at rc.BaseRevision, read when nil). An
// approved held rollback is committed with
//
//	rb, err := s.rollbackOf(ctx, e, t, rc, d.Version, requester, nil)
//	s.git.Commit(ctx, gitrepo.CommitRequest{…, Edit: gitrepo.RollbackEdit(rb)})
func (s *Service) rollbackOf(ctx context.Context, e *fluxgate.Environment, t *gitTarget, rc RollbackChange, version, user string, base *gitrepo.Snapshot) (gitrepo.Rollback, error) {
	ts, err := s.git.ReadFilesAt(ctx, t.remote, t.branch, rc.TargetCommitSHA, t.path)
	var inv *gitrepo.InvalidInputError
	if errors.As(err, &inv) || errors.Is(err, gitrepo.ErrNotFound) {
		return gitrepo.Rollback{}, fluxgate.InvalidField("deploymentId", "commit %s of deployment %s is not on branch %s", shortSHA(rc.TargetCommitSHA), rc.TargetDeploymentID, t.branch)
	}
	if err != nil {
		return gitrepo.Rollback{}, gitError("read target commit", err)
	}
	if base == nil {
		if base, err = s.git.ReadFilesAt(ctx, t.remote, t.branch, rc.BaseRevision, t.path); err != nil {
			return gitrepo.Rollback{}, gitError("read base revision", err)
		}
	}
	return gitrepo.Rollback{Target: ts, Base: base, Message: gitrepo.RollbackMessage(e.Name, rc.TargetCommitSHA, version, user)}, nil
}

// deployedAfter returns the newest deployment of target's environment
// created after target whose commit (on branch) Flux applied, or nil.
func (s *Service) deployedAfter(ctx context.Context, target *fluxgate.Deployment, branch string) (*fluxgate.Deployment, error) {
	page := fluxgate.Page{First: fluxgate.MaxPageSize}
	for {
		list, info, err := s.store.ListDeployments(ctx, fluxgate.DeploymentFilter{ProjectID: target.ProjectID, EnvironmentID: target.EnvironmentID, Page: page})
		if err != nil {
			return nil, err
		}
		for _, d := range list {
			if d.ID <= target.ID { // newest first by id (UUIDv7: creation order)
				return nil, nil
			}
			if d.CommitSHA != "" && (d.Branch == "" || d.Branch == branch) && applied(d) {
				return d, nil
			}
		}
		if !info.HasNextPage {
			return nil, nil
		}
		page.After = info.EndCursor
	}
}

// applied reports whether Flux applied a deployment's commit: it
// succeeded, or its applied step is done (failed health checks, or
// superseded after the apply).
func applied(d *fluxgate.Deployment) bool {
	if d.Status == fluxgate.DeploymentSucceeded {
		return true
	}
	for _, st := range d.Steps {
		if st.Name == fluxgate.StepApplied && st.Status == "done" {
			return true
		}
	}
	return false
}
