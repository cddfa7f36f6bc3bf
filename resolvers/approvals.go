package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph"
	"github.com/fluxgate/fluxgate/graph/model"
	"github.com/fluxgate/fluxgate/service"
)

// Approval returns the Approval field resolver.
func (r *Resolver) Approval() graph.ApprovalResolver { return &approvalResolver{r} }

type approvalResolver struct{ *Resolver }

func (r *approvalResolver) User(ctx context.Context, obj *fluxgate.Approval) (*fluxgate.User, error) {
	return loadUser(ctx, obj.UserID)
}

func (r *deploymentResolver) Approvals(ctx context.Context, obj *fluxgate.Deployment) ([]*fluxgate.Approval, error) {
	l, err := loaders(ctx)
	if err != nil {
		return nil, err
	}
	return l.approvals.Load(ctx, obj.ID)
}

func (r *deploymentResolver) RequiredApprovals(ctx context.Context, obj *fluxgate.Deployment) (int, error) {
	l, err := loaders(ctx)
	if err != nil {
		return 0, err
	}
	return l.required.Load(ctx, service.ApprovalsNeeded{EnvironmentID: obj.EnvironmentID, Held: obj.Status == fluxgate.DeploymentAwaitingApproval})
}

func (r *mutationResolver) ApproveDeployment(ctx context.Context, id string, comment *string) (model.ApproveDeploymentResult, error) {
	res, err := r.Service.ApproveDeployment(ctx, id, deref(comment))
	if err != nil {
		return nil, err
	}
	if len(res.Conflicts) > 0 {
		return &model.ApprovalConflict{Approval: res.Approval, Deployment: res.Deployment, Conflicts: conflicts(res.Conflicts)}, nil
	}
	return &model.DeploymentApproval{Approval: res.Approval, Deployment: res.Deployment}, nil
}

func (r *mutationResolver) RejectDeployment(ctx context.Context, id string, reason string) (*model.RejectDeploymentPayload, error) {
	d, err := r.Service.RejectDeployment(ctx, id, reason)
	if err != nil {
		return nil, err
	}
	return &model.RejectDeploymentPayload{Deployment: d}, nil
}

func (r *mutationResolver) SyncEnvironment(ctx context.Context, environmentID string) (*model.SyncEnvironmentPayload, error) {
	res, err := r.Service.SyncEnvironment(ctx, environmentID)
	if err != nil {
		return nil, err
	}
	return &model.SyncEnvironmentPayload{Environment: res.Environment, Revision: res.Revision, ResumedKustomizations: res.Resumed}, nil
}
