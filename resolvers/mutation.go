package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph/model"
	"github.com/fluxgate/fluxgate/service"
)

func (r *mutationResolver) CreateProject(ctx context.Context, in model.CreateProjectInput) (*model.CreateProjectPayload, error) {
	p, err := r.Service.CreateProject(ctx, service.CreateProjectInput{
		Slug:           in.Slug,
		Name:           in.Name,
		Description:    deref(in.Description),
		Namespace:      deref(in.Namespace),
		GitOpsEnabled:  in.GitopsEnabled,
		DeploymentMode: deref(in.DeploymentMode),
	})
	if err != nil {
		return nil, err
	}
	return &model.CreateProjectPayload{Project: p}, nil
}

func (r *mutationResolver) UpdateProject(ctx context.Context, in model.UpdateProjectInput) (*model.UpdateProjectPayload, error) {
	p, err := r.Service.UpdateProject(ctx, service.UpdateProjectInput{
		ID:             in.ID,
		Name:           in.Name,
		Description:    in.Description,
		Namespace:      in.Namespace,
		GitOpsEnabled:  in.GitopsEnabled,
		DeploymentMode: in.DeploymentMode,
	})
	if err != nil {
		return nil, err
	}
	return &model.UpdateProjectPayload{Project: p}, nil
}

func (r *mutationResolver) DeleteProject(ctx context.Context, in model.DeleteProjectInput) (*model.DeleteProjectPayload, error) {
	if err := r.Service.DeleteProject(ctx, in.ID); err != nil {
		return nil, err
	}
	return &model.DeleteProjectPayload{DeletedID: in.ID}, nil
}

func envGitOps(in *model.EnvironmentGitOpsInput) *fluxgate.EnvironmentGitOps {
	if in == nil {
		return nil
	}
	return &fluxgate.EnvironmentGitOps{Enabled: in.Enabled, AutoSync: in.AutoSync, GitBranch: in.GitBranch, GitPath: in.GitPath, SyncInterval: in.SyncInterval, ProgressTimeout: deref(in.ProgressTimeout)}
}

func approval(in *model.ApprovalPolicyInput) *fluxgate.ApprovalPolicy {
	if in == nil {
		return nil
	}
	return &fluxgate.ApprovalPolicy{Required: in.Required, MinApprovals: in.MinApprovals, ApproverIDs: in.ApproverIds}
}

func healthChecks(in []*fluxgate.HealthCheck) []fluxgate.HealthCheck {
	if in == nil {
		return nil
	}
	out := make([]fluxgate.HealthCheck, len(in))
	for i, h := range in {
		out[i] = *h
	}
	return out
}

func permissions(in []*model.EnvironmentPermissionInput) []fluxgate.EnvPermission {
	if in == nil {
		return nil
	}
	out := make([]fluxgate.EnvPermission, len(in))
	for i, p := range in {
		out[i] = fluxgate.EnvPermission{SubjectType: p.SubjectType, SubjectID: p.SubjectID, Permission: p.Permission}
	}
	return out
}

func (r *mutationResolver) CreateEnvironment(ctx context.Context, in model.CreateEnvironmentInput) (*model.CreateEnvironmentPayload, error) {
	e, err := r.Service.CreateEnvironment(ctx, service.CreateEnvironmentInput{
		ProjectID:    in.ProjectID,
		Name:         in.Name,
		Type:         in.Type,
		GitOps:       envGitOps(in.Gitops),
		Approval:     approval(in.Approval),
		HealthChecks: healthChecks(in.HealthChecks),
		Permissions:  permissions(in.Permissions),
	})
	if err != nil {
		return nil, err
	}
	return &model.CreateEnvironmentPayload{Environment: e}, nil
}

func (r *mutationResolver) UpdateEnvironment(ctx context.Context, in model.UpdateEnvironmentInput) (*model.UpdateEnvironmentPayload, error) {
	up := service.UpdateEnvironmentInput{
		ID:       in.ID,
		Name:     in.Name,
		Type:     in.Type,
		GitOps:   envGitOps(in.Gitops),
		Approval: approval(in.Approval),
	}
	if in.HealthChecks != nil {
		hc := healthChecks(in.HealthChecks)
		up.HealthChecks = &hc
	}
	if in.Permissions != nil {
		ps := permissions(in.Permissions)
		up.Permissions = &ps
	}
	e, err := r.Service.UpdateEnvironment(ctx, up)
	if err != nil {
		return nil, err
	}
	return &model.UpdateEnvironmentPayload{Environment: e}, nil
}

func (r *mutationResolver) DeleteEnvironment(ctx context.Context, in model.DeleteEnvironmentInput) (*model.DeleteEnvironmentPayload, error) {
	if err := r.Service.DeleteEnvironment(ctx, in.ID); err != nil {
		return nil, err
	}
	return &model.DeleteEnvironmentPayload{DeletedID: in.ID}, nil
}

func repoGitOps(in *model.RepositoryGitOpsInput) *service.RepositoryGitOpsInput {
	if in == nil {
		return nil
	}
	return &service.RepositoryGitOpsInput{
		Enabled:          in.Enabled,
		FluxNamespace:    deref(in.FluxNamespace),
		FluxResourceName: deref(in.FluxResourceName),
		SyncInterval:     deref(in.SyncInterval),
		SecretRef:        deref(in.SecretRef),
		Timeout:          deref(in.Timeout),
	}
}

func (r *mutationResolver) ConnectRepository(ctx context.Context, in model.ConnectRepositoryInput) (*model.ConnectRepositoryPayload, error) {
	repo, err := r.Service.ConnectRepository(ctx, service.ConnectRepositoryInput{
		ProjectID:     in.ProjectID,
		Provider:      deref(in.Provider),
		FullName:      deref(in.FullName),
		CloneURL:      in.CloneURL,
		DefaultBranch: deref(in.DefaultBranch),
		GitOps:        repoGitOps(in.Gitops),
	})
	if err != nil {
		return nil, err
	}
	return &model.ConnectRepositoryPayload{Repository: repo}, nil
}

func (r *mutationResolver) UpdateRepository(ctx context.Context, in model.UpdateRepositoryInput) (*model.UpdateRepositoryPayload, error) {
	repo, err := r.Service.UpdateRepository(ctx, service.UpdateRepositoryInput{
		ID:            in.ID,
		CloneURL:      in.CloneURL,
		DefaultBranch: in.DefaultBranch,
		GitOps:        repoGitOps(in.Gitops),
	})
	if err != nil {
		return nil, err
	}
	return &model.UpdateRepositoryPayload{Repository: repo}, nil
}

func (r *mutationResolver) DisconnectRepository(ctx context.Context, in model.DisconnectRepositoryInput) (*model.DisconnectRepositoryPayload, error) {
	if err := r.Service.DisconnectRepository(ctx, in.ID); err != nil {
		return nil, err
	}
	return &model.DisconnectRepositoryPayload{DeletedID: in.ID}, nil
}

func (r *mutationResolver) AddProjectMember(ctx context.Context, in model.AddProjectMemberInput) (*model.AddProjectMemberPayload, error) {
	m, err := r.Service.AddProjectMember(ctx, in.ProjectID, in.UserID, in.Role)
	if err != nil {
		return nil, err
	}
	return &model.AddProjectMemberPayload{Member: m}, nil
}

func (r *mutationResolver) SetProjectMemberRole(ctx context.Context, in model.SetProjectMemberRoleInput) (*model.SetProjectMemberRolePayload, error) {
	m, err := r.Service.SetProjectMemberRole(ctx, in.ProjectID, in.UserID, in.Role)
	if err != nil {
		return nil, err
	}
	return &model.SetProjectMemberRolePayload{Member: m}, nil
}

func (r *mutationResolver) RemoveProjectMember(ctx context.Context, in model.RemoveProjectMemberInput) (*model.RemoveProjectMemberPayload, error) {
	if err := r.Service.RemoveProjectMember(ctx, in.ProjectID, in.UserID); err != nil {
		return nil, err
	}
	return &model.RemoveProjectMemberPayload{RemovedUserID: in.UserID}, nil
}

func (r *mutationResolver) CreateTeam(ctx context.Context, in model.CreateTeamInput) (*model.CreateTeamPayload, error) {
	t, err := r.Service.CreateTeam(ctx, in.Slug, in.Name)
	if err != nil {
		return nil, err
	}
	return &model.CreateTeamPayload{Team: t}, nil
}

func (r *mutationResolver) AddTeamMember(ctx context.Context, in model.AddTeamMemberInput) (*model.AddTeamMemberPayload, error) {
	t, err := r.Service.AddTeamMember(ctx, in.TeamID, in.UserID)
	if err != nil {
		return nil, err
	}
	return &model.AddTeamMemberPayload{Team: t}, nil
}

func (r *mutationResolver) RemoveTeamMember(ctx context.Context, in model.RemoveTeamMemberInput) (*model.RemoveTeamMemberPayload, error) {
	t, err := r.Service.RemoveTeamMember(ctx, in.TeamID, in.UserID)
	if err != nil {
		return nil, err
	}
	return &model.RemoveTeamMemberPayload{Team: t}, nil
}
