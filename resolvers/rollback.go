package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph/model"
)

func (r *mutationResolver) RollbackDeployment(ctx context.Context, deploymentID string) (model.RollbackResult, error) {
	res, err := r.Service.RollbackDeployment(ctx, deploymentID)
	if err != nil {
		return nil, err
	}
	if len(res.Conflicts) > 0 {
		return &model.ConfigConflict{Conflicts: conflicts(res.Conflicts)}, nil
	}
	return &model.RollbackStarted{Deployment: res.Deployment, CommitSha: res.CommitSHA, Message: res.Message}, nil
}

// RollbackOf is the deployment rolled back to; null when there is none or
// the caller can no longer see it.
func (r *deploymentResolver) RollbackOf(ctx context.Context, obj *fluxgate.Deployment) (*fluxgate.Deployment, error) {
	if obj.RollbackOf == nil || *obj.RollbackOf == "" {
		return nil, nil
	}
	d, err := r.Service.Deployment(ctx, *obj.RollbackOf)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return nil, nil
	}
	return d, err
}
