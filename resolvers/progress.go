package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph/model"
)

func (r *queryResolver) Deployments(ctx context.Context, projectID string, environmentID *string, status *fluxgate.DeploymentStatus, first *int, after *string) (*model.DeploymentConnection, error) {
	var st fluxgate.DeploymentStatus
	if status != nil {
		st = *status
	}
	items, pi, err := r.Service.Deployments(ctx, projectID, deref(environmentID), st, page(first, after))
	if err != nil {
		return nil, err
	}
	conn := &model.DeploymentConnection{PageInfo: pageInfo(pi), Edges: make([]*model.DeploymentEdge, len(items))}
	for i, d := range items {
		conn.Edges[i] = &model.DeploymentEdge{Cursor: fluxgate.EncodeCursor(d.ID), Node: d}
	}
	return conn, nil
}

func (r *subscriptionResolver) DeploymentProgress(ctx context.Context, deploymentID string) (<-chan *fluxgate.Deployment, error) {
	return r.Service.SubscribeDeploymentProgress(ctx, deploymentID)
}

func (r *subscriptionResolver) DeploymentsChanged(ctx context.Context, projectID string, environmentID *string) (<-chan *fluxgate.Deployment, error) {
	return r.Service.SubscribeDeployments(ctx, projectID, deref(environmentID))
}
