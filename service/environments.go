package service

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxgate/fluxgate"
)

// CreateEnvironmentInput is what createEnvironment takes.
type CreateEnvironmentInput struct {
	ProjectID    string
	Name         string
	Type         fluxgate.EnvironmentType
	GitOps       *fluxgate.EnvironmentGitOps
	Approval     *fluxgate.ApprovalPolicy
	HealthChecks []fluxgate.HealthCheck
	Permissions  []fluxgate.EnvPermission
}

// UpdateEnvironmentInput changes the fields that are set.
type UpdateEnvironmentInput struct {
	ID           string
	Name         *string
	Type         *fluxgate.EnvironmentType
	GitOps       *fluxgate.EnvironmentGitOps
	Approval     *fluxgate.ApprovalPolicy
	HealthChecks *[]fluxgate.HealthCheck
	Permissions  *[]fluxgate.EnvPermission
}

func defaultEnvGitOps(name string) fluxgate.EnvironmentGitOps {
	return fluxgate.EnvironmentGitOps{Enabled: true, AutoSync: true, GitBranch: "main", GitPath: "k8s/overlays/" + name, SyncInterval: "1m"}
}

func (s *Service) validateEnvironment(ctx context.Context, e *fluxgate.Environment) error {
	if err := firstErr(
		validateDNSLabel("name", e.Name),
		validateEnvType(e.Type),
		validateBranch("gitops.gitBranch", e.GitOps.GitBranch),
		validateGitPath("gitops.gitPath", e.GitOps.GitPath),
		validateDuration("gitops.syncInterval", e.GitOps.SyncInterval, 10e9),
		validateProgressTimeout(e.GitOps.ProgressTimeout),
	); err != nil {
		return err
	}
	ap := e.Approval
	if ap.Required && (ap.MinApprovals < 1 || ap.MinApprovals > 10) {
		return fluxgate.InvalidField("approval.minApprovals", "approval.minApprovals must be 1 to 10 when approval is required")
	}
	if !ap.Required && (ap.MinApprovals < 0 || ap.MinApprovals > 10) {
		return fluxgate.InvalidField("approval.minApprovals", "approval.minApprovals must be 0 to 10")
	}
	if len(ap.ApproverIDs) > 100 {
		return fluxgate.InvalidField("approval.approverIds", "at most 100 approvers")
	}
	if ap.Required && len(ap.ApproverIDs) > 0 && len(ap.ApproverIDs) < ap.MinApprovals {
		return fluxgate.InvalidField("approval.approverIds", "approval.approverIds lists fewer approvers than approval.minApprovals")
	}
	if len(ap.ApproverIDs) > 0 {
		users, err := s.store.GetUsers(ctx, ap.ApproverIDs)
		if err != nil {
			return err
		}
		for i, u := range users {
			if u == nil {
				return fluxgate.InvalidField("approval.approverIds", "approver %s does not exist", ap.ApproverIDs[i])
			}
		}
	}
	if len(e.HealthChecks) > 50 {
		return fluxgate.InvalidField("healthChecks", "at most 50 health checks")
	}
	for i, hc := range e.HealthChecks {
		f := fmt.Sprintf("healthChecks[%d]", i)
		if err := firstErr(
			validateLength(f+".apiVersion", hc.APIVersion, 1, 253),
			validateLength(f+".kind", hc.Kind, 1, 63),
			validateDNSSubdomain(f+".name", hc.Name),
		); err != nil {
			return err
		}
		if hc.Namespace != "" {
			if err := validateDNSLabel(f+".namespace", hc.Namespace); err != nil {
				return err
			}
		}
	}
	if len(e.Permissions) > 100 {
		return fluxgate.InvalidField("permissions", "at most 100 permissions")
	}
	for i, p := range e.Permissions {
		f := fmt.Sprintf("permissions[%d]", i)
		if !p.Permission.Valid() {
			return fluxgate.InvalidField(f+".permission", "%s.permission %q is not read, deploy or admin", f, p.Permission)
		}
		switch p.SubjectType {
		case fluxgate.SubjectUser:
			if _, err := s.store.GetUser(ctx, p.SubjectID); err != nil {
				if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
					return fluxgate.InvalidField(f+".subjectId", "user %s does not exist", p.SubjectID)
				}
				return err
			}
		case fluxgate.SubjectTeam:
			if _, err := s.store.GetTeam(ctx, p.SubjectID); err != nil {
				if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
					return fluxgate.InvalidField(f+".subjectId", "team %s does not exist", p.SubjectID)
				}
				return err
			}
		default:
			return fluxgate.InvalidField(f+".subjectType", "%s.subjectType must be user or team", f)
		}
	}
	return nil
}

func validateEnvType(t fluxgate.EnvironmentType) error {
	if !t.Valid() {
		return fluxgate.InvalidField("type", "type %q is not development, staging or production", t)
	}
	return nil
}

// CreateEnvironment adds an environment to a project (needs create).
func (s *Service) CreateEnvironment(ctx context.Context, in CreateEnvironmentInput) (*fluxgate.Environment, error) {
	p, _, err := s.authorizeProject(ctx, in.ProjectID, fluxgate.ActionCreate)
	if err != nil {
		return nil, err
	}
	e := &fluxgate.Environment{
		ProjectID:    p.ID,
		Name:         in.Name,
		Type:         in.Type,
		GitOps:       defaultEnvGitOps(in.Name),
		HealthChecks: in.HealthChecks,
		Permissions:  in.Permissions,
	}
	if in.GitOps != nil {
		e.GitOps = *in.GitOps
	}
	if in.Approval != nil {
		e.Approval = *in.Approval
	}
	normalizeEnv(e)
	if err := s.validateEnvironment(ctx, e); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateEnvironment(ctx, e); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "name", Message: "the project already has an environment named " + e.Name}
			}
			return err
		}
		return s.audit(ctx, p.ID, "environment.created", "environment", e.ID, map[string]any{"name": e.Name, "type": e.Type})
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func normalizeEnv(e *fluxgate.Environment) {
	if e.HealthChecks == nil {
		e.HealthChecks = []fluxgate.HealthCheck{}
	}
	if e.Permissions == nil {
		e.Permissions = []fluxgate.EnvPermission{}
	}
	if e.Approval.ApproverIDs == nil {
		e.Approval.ApproverIDs = []string{}
	}
}

// Environment returns an environment the caller can read.
func (s *Service) Environment(ctx context.Context, id string) (*fluxgate.Environment, error) {
	e, _, _, err := s.authorizeEnvironment(ctx, id, fluxgate.ActionRead)
	return e, err
}

// Environments lists a project's environments the caller can read.
func (s *Service) Environments(ctx context.Context, projectID string) ([]*fluxgate.Environment, error) {
	_, u, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	envs, err := s.store.ListEnvironments(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := envs[:0]
	for _, e := range envs {
		a, err := s.access(ctx, u.ID, projectID, e)
		if err != nil {
			return nil, err
		}
		if a.Allows(fluxgate.ActionRead) {
			out = append(out, e)
		}
	}
	return out, nil
}

// UpdateEnvironment changes an environment (needs update on it).
func (s *Service) UpdateEnvironment(ctx context.Context, in UpdateEnvironmentInput) (*fluxgate.Environment, error) {
	e, p, _, err := s.authorizeEnvironment(ctx, in.ID, fluxgate.ActionUpdate)
	if err != nil {
		return nil, err
	}
	changed := []string{}
	autoSync := e.GitOps.AutoSync
	if in.Name != nil {
		e.Name = *in.Name
		changed = append(changed, "name")
	}
	if in.Type != nil {
		e.Type = *in.Type
		changed = append(changed, "type")
	}
	if in.GitOps != nil {
		e.GitOps = *in.GitOps
		changed = append(changed, "gitops")
	}
	if in.Approval != nil {
		e.Approval = *in.Approval
		changed = append(changed, "approval")
	}
	if in.HealthChecks != nil {
		e.HealthChecks = *in.HealthChecks
		changed = append(changed, "healthChecks")
	}
	if in.Permissions != nil {
		e.Permissions = *in.Permissions
		changed = append(changed, "permissions")
	}
	normalizeEnv(e)
	if err := s.validateEnvironment(ctx, e); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateEnvironment(ctx, e); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "name", Message: "the project already has an environment named " + e.Name}
			}
			return err
		}
		return s.audit(ctx, p.ID, "environment.updated", "environment", e.ID, map[string]any{"fields": changed})
	})
	if err != nil {
		return nil, err
	}
	if e.GitOps.AutoSync != autoSync {
		s.applyAutoSync(ctx, e)
	}
	return s.store.GetEnvironment(ctx, e.ID)
}

// DeleteEnvironment soft-deletes an environment (needs delete on it).
func (s *Service) DeleteEnvironment(ctx context.Context, id string) error {
	e, p, _, err := s.authorizeEnvironment(ctx, id, fluxgate.ActionDelete)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteEnvironment(ctx, e.ID, s.now().UTC()); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "environment.deleted", "environment", e.ID, map[string]any{"name": e.Name})
	})
}

// validateProgressTimeout checks an environment's progress timeout: empty
// (the default) or a duration of 30s to 24h.
func validateProgressTimeout(v string) error {
	if v == "" {
		return nil
	}
	return validateDuration("gitops.progressTimeout", v, 30*time.Second)
}
