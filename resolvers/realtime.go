package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph"
	"github.com/fluxgate/fluxgate/graph/model"
	"github.com/fluxgate/fluxgate/service"
)

// Subscription returns the subscription resolver.
func (r *Resolver) Subscription() graph.SubscriptionResolver { return &subscriptionResolver{r} }

// FluxEvent returns the FluxEvent field resolver.
func (r *Resolver) FluxEvent() graph.FluxEventResolver { return &fluxEventResolver{r} }

type subscriptionResolver struct{ *Resolver }
type fluxEventResolver struct{ *Resolver }

func (r *fluxEventResolver) Cursor(_ context.Context, obj *fluxgate.FluxEvent) (string, error) {
	return service.FluxEventCursor(obj), nil
}

func (r *subscriptionResolver) ResourceStatusChanged(ctx context.Context, projectID string, environmentID *string) (<-chan *fluxgate.GitOpsResource, error) {
	return r.Service.SubscribeResourceStatus(ctx, projectID, deref(environmentID))
}

func (r *subscriptionResolver) FluxEvents(ctx context.Context, projectID string, after *string) (<-chan *fluxgate.FluxEvent, error) {
	return r.Service.SubscribeFluxEvents(ctx, projectID, deref(after))
}

func (r *subscriptionResolver) Presence(ctx context.Context, environmentID string, mode fluxgate.PresenceMode) (<-chan []*fluxgate.PresenceEntry, error) {
	in, err := r.Service.Presence(ctx, environmentID, mode)
	if err != nil {
		return nil, err
	}
	out := make(chan []*fluxgate.PresenceEntry, 1)
	go func() {
		defer close(out)
		for list := range in {
			select {
			case out <- entryPointers(list):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func entryPointers(list []fluxgate.PresenceEntry) []*fluxgate.PresenceEntry {
	out := make([]*fluxgate.PresenceEntry, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

func (r *queryResolver) FluxEvents(ctx context.Context, projectID string, kind *string, severity *string, first *int, after *string) (*model.FluxEventConnection, error) {
	items, pi, err := r.Service.FluxEvents(ctx, projectID, deref(kind), deref(severity), page(first, after))
	if err != nil {
		return nil, err
	}
	conn := &model.FluxEventConnection{PageInfo: pageInfo(pi), Edges: make([]*model.FluxEventEdge, len(items))}
	for i, e := range items {
		conn.Edges[i] = &model.FluxEventEdge{Cursor: service.FluxEventCursor(e), Node: e}
	}
	return conn, nil
}

func (r *mutationResolver) UpdatePresence(ctx context.Context, in model.UpdatePresenceInput) (*model.UpdatePresencePayload, error) {
	list, err := r.Service.UpdatePresence(ctx, in.EnvironmentID, in.Field)
	if err != nil {
		return nil, err
	}
	return &model.UpdatePresencePayload{Present: entryPointers(list)}, nil
}
