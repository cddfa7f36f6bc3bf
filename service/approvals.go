package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
)

// Approvals (SPEC §11, docs/approvals.md). A deploy or config change to an
// environment whose approval policy is required is stored as a deployment
// awaiting approval, holding the change in Deployment.Change; nothing is
// committed. Each eligible approver decides once. A rejection ends it; the
// approval that reaches the required count claims it (awaiting approval →
// pending, compare-and-swap in the same transaction as the approval) and
// commits the held change onto the current head of the branch, as the
// requester.

// heldConfig is a config change held for approval (Deployment.Change).
// A held deploy is the DeployInput itself.
type heldConfig struct {
	Kind         string                   `json:"kind"` // "config"
	BaseRevision string                   `json:"baseRevision"`
	Files        map[string]*string       `json:"files"` // null deletes the file
	Structured   *yamledit.DeploymentEdit `json:"structured,omitempty"`
	Message      string                   `json:"message"`
	Description  string                   `json:"description,omitempty"`
}

const heldConfigKind = "config"

// RequiredApprovals is how many approvals a deployment to e needs: the
// policy's minApprovals, at least 1; 0 when the environment does not
// require approval and d is not held.
func RequiredApprovals(e *fluxgate.Environment, d *fluxgate.Deployment) int {
	return requiredApprovals(e, d.Status == fluxgate.DeploymentAwaitingApproval)
}

func requiredApprovals(e *fluxgate.Environment, held bool) int {
	if !e.Approval.Required && !held {
		return 0
	}
	return max(e.Approval.MinApprovals, 1)
}

// holdConfigChange records a config change to an environment that
// requires approval: a deployment awaiting approval holding the files made
// on the base revision; nothing is committed.
func (s *Service) holdConfigChange(ctx context.Context, e *fluxgate.Environment, p *fluxgate.Project, u *fluxgate.User, in ConfigChangeInput, cc gitrepo.ConfigChange) (*CommitConfigResult, error) {
	if err := gitrepo.ValidateFiles(cc.Base.Dir, cc.Files); err != nil {
		return nil, gitError("validate config", err)
	}
	if unchanged(cc) {
		return nil, gitError("hold config change", gitrepo.ErrNoChange)
	}
	held := heldConfig{
		Kind: heldConfigKind, BaseRevision: cc.Base.Revision, Files: map[string]*string{},
		Structured: in.Change, Message: strings.TrimSpace(in.Message), Description: in.Description,
	}
	for path, content := range cc.Files {
		if content == nil {
			held.Files[path] = nil
			continue
		}
		c := string(content)
		held.Files[path] = &c
	}
	change, err := json.Marshal(held)
	if err != nil {
		return nil, err
	}
	d := &fluxgate.Deployment{
		ProjectID: p.ID, EnvironmentID: e.ID, Strategy: "rolling", Method: fluxgate.MethodGitOpsUI,
		Status: fluxgate.DeploymentAwaitingApproval, Message: held.Message, DeployedBy: u.ID, Change: change,
		StartedAt: s.now().UTC(), Steps: pendingSteps(),
	}
	if err := s.recordDeployment(ctx, d, "config.requested"); err != nil {
		return nil, err
	}
	s.publishDeployment(ctx, d)
	return &CommitConfigResult{Deployment: d}, nil
}

// unchanged reports whether a config change leaves every file as it is on
// its base revision.
func unchanged(cc gitrepo.ConfigChange) bool {
	for path, content := range cc.Files {
		f, ok := cc.Base.Get(path)
		if ok != (content != nil) || (ok && !bytes.Equal(f.Content, content)) {
			return false
		}
	}
	return true
}

// ApprovalsOf lists the decisions on each of deploymentIDs — deployments
// the caller has read (the dataloader of Deployment.approvals) — each in
// the order they were made.
func (s *Service) ApprovalsOf(ctx context.Context, deploymentIDs []string) ([][]*fluxgate.Approval, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	return s.store.ListApprovalsOf(ctx, deploymentIDs)
}

// ApprovalsNeeded is what Deployment.requiredApprovals depends on.
type ApprovalsNeeded struct {
	EnvironmentID string
	Held          bool // the deployment awaits approval
}

// RequiredApprovalsOf is RequiredApprovals for deployments the caller has
// read (the dataloader of Deployment.requiredApprovals): each environment
// is read once.
func (s *Service) RequiredApprovalsOf(ctx context.Context, keys []ApprovalsNeeded) ([]int, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	envs := map[string]*fluxgate.Environment{}
	out := make([]int, len(keys))
	for i, k := range keys {
		e, ok := envs[k.EnvironmentID]
		if !ok {
			var err error
			if e, err = s.store.GetEnvironment(ctx, k.EnvironmentID); err != nil {
				return nil, err
			}
			envs[k.EnvironmentID] = e
		}
		out[i] = requiredApprovals(e, k.Held)
	}
	return out, nil
}

// decider loads a deployment for a decision and checks that the caller is
// an eligible approver: one of the environment's approverIds when it
// lists any, else a maintainer or owner of the project. Callers who cannot
// read the deployment get NOT_FOUND; others who are not eligible get
// FORBIDDEN.
func (s *Service) decider(ctx context.Context, id string) (*fluxgate.Deployment, *fluxgate.Environment, *fluxgate.User, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := s.store.GetDeployment(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	e, err := s.store.GetEnvironment(ctx, d.EnvironmentID)
	if err != nil {
		return nil, nil, nil, err
	}
	if slices.Contains(e.Approval.ApproverIDs, u.ID) {
		return d, e, u, nil
	}
	if _, _, _, err := s.authorizeEnvironment(ctx, e.ID, fluxgate.ActionRead); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil, nil, nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "deployment %s not found", id)
		}
		return nil, nil, nil, err
	}
	if len(e.Approval.ApproverIDs) > 0 {
		return nil, nil, nil, fluxgate.Errorf(fluxgate.EFORBIDDEN, "only the approvers listed on environment %s may decide on its deployments", e.Name)
	}
	m, err := s.store.GetProjectMember(ctx, e.ProjectID, u.ID)
	if err != nil && fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
		return nil, nil, nil, err
	}
	if m == nil || (m.Role != fluxgate.RoleOwner && m.Role != fluxgate.RoleMaintainer) {
		return nil, nil, nil, fluxgate.Errorf(fluxgate.EFORBIDDEN, "only the project's maintainers and owners may decide on deployments to %s", e.Name)
	}
	return d, e, u, nil
}

// notAwaiting is the error for a decision on a deployment that no longer
// waits for one.
func notAwaiting(d *fluxgate.Deployment) error {
	return fluxgate.Errorf(fluxgate.ECONFLICT, "deployment %s is %s: only deployments awaiting approval can be approved or rejected", d.ID, d.Status)
}

// lockAwaiting locks a deployment awaiting approval for the rest of the
// transaction (a status swap that keeps the status), so concurrent
// decisions are serialized, and returns its current state. ECONFLICT when
// it no longer awaits approval.
func (s *Service) lockAwaiting(ctx context.Context, d *fluxgate.Deployment) (*fluxgate.Deployment, error) {
	if err := s.store.UpdateDeploymentFrom(ctx, d, fluxgate.DeploymentAwaitingApproval); err != nil {
		if fluxgate.ErrorCode(err) != fluxgate.ECONFLICT {
			return nil, err
		}
		if cur, gerr := s.store.GetDeployment(ctx, d.ID); gerr == nil {
			return nil, notAwaiting(cur)
		}
		return nil, err
	}
	return s.store.GetDeployment(ctx, d.ID)
}

// decide records u's decision on d (ECONFLICT when u decided already).
func (s *Service) decide(ctx context.Context, d *fluxgate.Deployment, u *fluxgate.User, decision fluxgate.ApprovalDecision, comment string) (*fluxgate.Approval, error) {
	a := &fluxgate.Approval{DeploymentID: d.ID, UserID: u.ID, Decision: decision, Comment: comment}
	if err := s.store.CreateApproval(ctx, a); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
			return nil, fluxgate.Errorf(fluxgate.ECONFLICT, "you already decided on deployment %s; each approver decides once", d.ID)
		}
		return nil, err
	}
	return a, nil
}

// ApprovalResult is what ApproveDeployment did: the approval recorded and
// the deployment — still awaiting approval, committed (pending, with its
// commit) or failed because the held change could not be committed, in
// which case Conflicts lists the fields the branch changed too.
type ApprovalResult struct {
	Approval   *fluxgate.Approval
	Deployment *fluxgate.Deployment
	Conflicts  []gitrepo.Conflict
}

// ApproveDeployment records the caller's approval of a deployment awaiting
// approval. The approval that reaches the required number commits the
// held change onto the current head of the environment's branch (author:
// the requester), asks Flux to apply it (resuming an environment whose
// autoSync is off until it is applied) and hands it to the tracker; a
// change that cannot be committed (conflicts with the branch, Deployment
// gone) fails the deployment, and nothing is written.
//
// Errors: NOT_FOUND (no such deployment, or the caller cannot see it),
// FORBIDDEN (not an eligible approver, or the caller requested it),
// CONFLICT (the caller decided already, or the deployment does not await
// approval any more).
func (s *Service) ApproveDeployment(ctx context.Context, id, comment string) (*ApprovalResult, error) {
	d, e, u, err := s.decider(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.DeployedBy == u.ID {
		return nil, fluxgate.Errorf(fluxgate.EFORBIDDEN, "you requested this deployment: someone else must approve it")
	}
	if d.Status != fluxgate.DeploymentAwaitingApproval {
		return nil, notAwaiting(d)
	}
	need := max(e.Approval.MinApprovals, 1)
	var (
		a       *fluxgate.Approval
		release bool
	)
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.lockAwaiting(ctx, d)
		if err != nil {
			return err
		}
		if a, err = s.decide(ctx, cur, u, fluxgate.ApprovalApproved, comment); err != nil {
			return err
		}
		all, err := s.store.ListApprovals(ctx, cur.ID)
		if err != nil {
			return err
		}
		approved := 0
		for _, x := range all {
			if x.Decision == fluxgate.ApprovalApproved {
				approved++
			}
		}
		if err := s.audit(ctx, cur.ProjectID, "deploy.approved", "deployment", cur.ID, map[string]any{
			"environmentId": cur.EnvironmentID, "comment": comment, "approvals": approved, "required": need,
		}); err != nil {
			return err
		}
		if approved >= need {
			// Claim it: only this transaction moves it on, so the
			// change is committed once.
			release = true
			cur.Status = fluxgate.DeploymentPending
			cur.Steps = pendingSteps()
			cur.Steps[0].Message = fmt.Sprintf("approved (%d of %d); committing", approved, need)
			if err := s.store.UpdateDeploymentFrom(ctx, cur, fluxgate.DeploymentAwaitingApproval); err != nil {
				return err
			}
		}
		d = cur
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.publishDeployment(ctx, d)
	res := &ApprovalResult{Approval: a, Deployment: d}
	if release {
		// The claim is taken: finish even if the caller goes away.
		res.Conflicts, err = s.commitApproved(context.WithoutCancel(ctx), e, d)
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// RejectDeployment records the caller's rejection of a deployment awaiting
// approval: it becomes REJECTED (finished), with the reason on the
// decision and on its first step. The requester may withdraw their own
// request this way. Errors as ApproveDeployment, and INVALID_INPUT for an
// empty reason.
func (s *Service) RejectDeployment(ctx context.Context, id, reason string) (*fluxgate.Deployment, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, fluxgate.InvalidField("reason", "give a reason for the rejection")
	}
	if len(reason) > 2000 {
		return nil, fluxgate.InvalidField("reason", "the reason is longer than 2000 characters")
	}
	d, _, u, err := s.decider(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status != fluxgate.DeploymentAwaitingApproval {
		return nil, notAwaiting(d)
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.lockAwaiting(ctx, d)
		if err != nil {
			return err
		}
		if _, err := s.decide(ctx, cur, u, fluxgate.ApprovalRejected, reason); err != nil {
			return err
		}
		now := s.now().UTC()
		cur.Status, cur.FinishedAt = fluxgate.DeploymentRejected, &now
		cur.Steps = pendingSteps()
		cur.Steps[0] = fluxgate.DeploymentStep{Name: fluxgate.StepCommitted, Status: "failed", At: &now, Message: "rejected by " + userLabel(u) + ": " + reason}
		if err := s.store.UpdateDeploymentFrom(ctx, cur, fluxgate.DeploymentAwaitingApproval); err != nil {
			return err
		}
		d = cur
		return s.audit(ctx, cur.ProjectID, "deploy.rejected", "deployment", cur.ID, map[string]any{
			"environmentId": cur.EnvironmentID, "reason": reason,
		})
	})
	if err != nil {
		return nil, err
	}
	s.publishDeployment(ctx, d)
	return d, nil
}

// commitApproved commits the held change of a claimed deployment onto the
// head of the branch, as its requester, then stores it as committed (or
// failed) with its audit entry and hands it to Flux. It returns the
// conflicts when the held config change overlaps the branch.
func (s *Service) commitApproved(ctx context.Context, e *fluxgate.Environment, d *fluxgate.Deployment) ([]gitrepo.Conflict, error) {
	p, err := s.store.GetProject(ctx, d.ProjectID)
	if err != nil {
		return nil, err
	}
	if !p.GitOpsEnabled && !isHeldConfig(d) {
		return nil, s.applyApproved(ctx, p, d)
	}
	res, err := s.pushHeld(ctx, e, d)
	if err != nil {
		var ce *gitrepo.ConflictError
		var conflicts []gitrepo.Conflict
		msg := "the approved change could not be committed: " + fluxgate.ErrorMessage(gitError("commit approved change", err))
		if errors.As(err, &ce) {
			conflicts = ce.Conflicts
			msg = "the approved change conflicts with what changed on the branch since it was requested; nothing was committed: " + ce.Error()
		} else if fluxgate.ErrorCode(gitError("", err)) == fluxgate.EINTERNAL {
			s.logger.ErrorContext(ctx, "commit approved change", "deployment", d.ID, "err", err)
		}
		return conflicts, s.failDeployment(ctx, d, msg, conflicts)
	}
	now := s.now().UTC()
	markCommitted(d, res, now)
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateDeploymentFrom(ctx, d, fluxgate.DeploymentPending); err != nil {
			return err
		}
		return s.audit(ctx, d.ProjectID, "deploy.committed", "deployment", d.ID, map[string]any{
			"environmentId": d.EnvironmentID, "commitSha": d.CommitSHA, "branch": d.Branch,
		})
	})
	if err != nil {
		return nil, err
	}
	s.handToFlux(ctx, e, d)
	return nil, nil
}

// pushHeld commits a deployment's held change: a deploy input re-applied
// to the head of the branch, or a config change merged from its base
// revision onto the head.
func (s *Service) pushHeld(ctx context.Context, e *fluxgate.Environment, d *fluxgate.Deployment) (*gitrepo.CommitResult, error) {
	requester, err := s.store.GetUser(ctx, d.DeployedBy)
	if err != nil {
		return nil, err
	}
	t, err := s.gitTarget(ctx, e)
	if err != nil {
		return nil, err
	}
	var edit gitrepo.EditFunc
	if rc, ok := ParseRollbackChange(d.Change); ok {
		// A held rollback: the reverse merge is redone on today's head.
		rb, err := s.rollbackOf(ctx, e, t, rc, d.Version, userLabel(requester), nil)
		if err != nil {
			return nil, err
		}
		edit = gitrepo.RollbackEdit(rb)
	} else if isHeldConfig(d) {
		var held heldConfig
		if err := json.Unmarshal(d.Change, &held); err != nil {
			return nil, fmt.Errorf("decode held config change of deployment %s: %w", d.ID, err)
		}
		base, err := s.git.ReadFilesAt(ctx, t.remote, t.branch, held.BaseRevision, t.path)
		if err != nil {
			return nil, err
		}
		files := make(map[string][]byte, len(held.Files))
		for path, c := range held.Files {
			if c == nil {
				files[path] = nil
			} else {
				files[path] = []byte(*c)
			}
		}
		edit = gitrepo.ConfigEdit(gitrepo.ConfigChange{Base: base, Files: files, Message: held.Message, Description: held.Description})
	} else {
		var in DeployInput
		if err := json.Unmarshal(d.Change, &in); err != nil {
			return nil, fmt.Errorf("decode held deploy of deployment %s: %w", d.ID, err)
		}
		edit = gitrepo.DeployEdit(gitrepo.DeployRequest{
			Deployment: in.Deployment, Container: in.Container, Image: in.Image, Replicas: in.Replicas,
			Env: in.Env, RemoveEnv: in.RemoveEnv, User: userLabel(requester),
		})
	}
	return s.git.Commit(ctx, gitrepo.CommitRequest{
		Remote: t.remote, Branch: t.branch, Dir: t.path,
		Author: gitrepo.Signature{Name: userLabel(requester), Email: userEmail(requester)},
		Edit:   edit,
	})
}

// isHeldConfig reports whether d holds a config change (else a deploy).
func isHeldConfig(d *fluxgate.Deployment) bool {
	var kind struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(d.Change, &kind) == nil && kind.Kind == heldConfigKind
}

// applyApproved applies an approved deploy of a project without GitOps
// directly to the cluster, as deployWithGitOps does for such projects.
func (s *Service) applyApproved(ctx context.Context, p *fluxgate.Project, d *fluxgate.Deployment) error {
	var in DeployInput
	if err := json.Unmarshal(d.Change, &in); err != nil {
		return fmt.Errorf("decode held deploy of deployment %s: %w", d.ID, err)
	}
	if err := s.applyDirect(ctx, p, d, in); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.EINTERNAL {
			s.logger.ErrorContext(ctx, "apply approved deploy", "deployment", d.ID, "err", err)
		}
		return s.failDeployment(ctx, d, "the approved change could not be applied: "+fluxgate.ErrorMessage(err), nil)
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateDeploymentFrom(ctx, d, fluxgate.DeploymentPending); err != nil {
			return err
		}
		return s.audit(ctx, d.ProjectID, "deploy.applied", "deployment", d.ID, map[string]any{
			"environmentId": d.EnvironmentID, "method": d.Method,
		})
	})
	if err != nil {
		return err
	}
	s.publishDeployment(ctx, d)
	return nil
}

// failDeployment ends a claimed deployment whose change was not committed.
func (s *Service) failDeployment(ctx context.Context, d *fluxgate.Deployment, msg string, conflicts []gitrepo.Conflict) error {
	now := s.now().UTC()
	d.Status, d.FinishedAt = fluxgate.DeploymentFailed, &now
	d.Steps = pendingSteps()
	d.Steps[0] = fluxgate.DeploymentStep{Name: fluxgate.StepCommitted, Status: "failed", At: &now, Message: msg}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateDeploymentFrom(ctx, d, fluxgate.DeploymentPending); err != nil {
			return err
		}
		return s.audit(ctx, d.ProjectID, "deploy.failed", "deployment", d.ID, map[string]any{
			"environmentId": d.EnvironmentID, "message": msg, "conflicts": conflicts,
		})
	})
	if err != nil {
		return err
	}
	s.publishDeployment(ctx, d)
	return nil
}
