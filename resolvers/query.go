package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gqltypes"
	"github.com/fluxgate/fluxgate/graph/model"
)

func (r *queryResolver) Viewer(ctx context.Context) (*fluxgate.User, error) {
	u := fluxgate.UserFromContext(ctx)
	if u == nil {
		return nil, fluxgate.Errorf(fluxgate.EUNAUTHENTICATED, "authentication required")
	}
	return u, nil
}

func (r *queryResolver) Node(ctx context.Context, id string) (gqltypes.Node, error) {
	return r.Service.Node(ctx, id)
}

func (r *queryResolver) Projects(ctx context.Context, first *int, after *string) (*model.ProjectConnection, error) {
	items, pi, err := r.Service.Projects(ctx, page(first, after))
	if err != nil {
		return nil, err
	}
	conn := &model.ProjectConnection{PageInfo: pageInfo(pi), Edges: make([]*model.ProjectEdge, len(items))}
	for i, p := range items {
		conn.Edges[i] = &model.ProjectEdge{Cursor: fluxgate.EncodeCursor(p.ID), Node: p}
	}
	return conn, nil
}

func (r *queryResolver) Project(ctx context.Context, id *string, slug *string) (*fluxgate.Project, error) {
	switch {
	case id != nil && slug != nil, id == nil && slug == nil:
		return nil, fluxgate.InvalidField("id", "give exactly one of id and slug")
	case id != nil:
		return r.Service.Project(ctx, *id)
	default:
		return r.Service.ProjectBySlug(ctx, *slug)
	}
}

func (r *queryResolver) Teams(ctx context.Context, first *int, after *string) (*model.TeamConnection, error) {
	items, pi, err := r.Service.Teams(ctx, page(first, after))
	if err != nil {
		return nil, err
	}
	conn := &model.TeamConnection{PageInfo: pageInfo(pi), Edges: make([]*model.TeamEdge, len(items))}
	for i, t := range items {
		conn.Edges[i] = &model.TeamEdge{Cursor: fluxgate.EncodeCursor(t.ID), Node: t}
	}
	return conn, nil
}

func (r *projectResolver) ViewerRole(ctx context.Context, obj *fluxgate.Project) (*fluxgate.Role, error) {
	role, err := r.Service.ViewerRole(ctx, obj.ID)
	if err != nil || role == "" {
		return nil, err
	}
	return &role, nil
}

func (r *projectResolver) Environments(ctx context.Context, obj *fluxgate.Project) ([]*fluxgate.Environment, error) {
	return r.Service.Environments(ctx, obj.ID)
}

func (r *projectResolver) Repositories(ctx context.Context, obj *fluxgate.Project) ([]*fluxgate.Repository, error) {
	return r.Service.Repositories(ctx, obj.ID)
}

func (r *projectResolver) Members(ctx context.Context, obj *fluxgate.Project) ([]*fluxgate.ProjectMember, error) {
	return r.Service.Members(ctx, obj.ID)
}

func (r *projectResolver) AuditLog(ctx context.Context, obj *fluxgate.Project, first *int, after *string) (*model.AuditEntryConnection, error) {
	items, pi, err := r.Service.AuditLog(ctx, obj.ID, page(first, after))
	if err != nil {
		return nil, err
	}
	conn := &model.AuditEntryConnection{PageInfo: pageInfo(pi), Edges: make([]*model.AuditEntryEdge, len(items))}
	for i, e := range items {
		conn.Edges[i] = &model.AuditEntryEdge{Cursor: fluxgate.EncodeCursor(e.ID), Node: e}
	}
	return conn, nil
}

func (r *environmentResolver) Project(ctx context.Context, obj *fluxgate.Environment) (*fluxgate.Project, error) {
	return r.Service.Project(ctx, obj.ProjectID)
}

func (r *repositoryResolver) Project(ctx context.Context, obj *fluxgate.Repository) (*fluxgate.Project, error) {
	return r.Service.Project(ctx, obj.ProjectID)
}

func (r *projectMemberResolver) User(ctx context.Context, obj *fluxgate.ProjectMember) (*fluxgate.User, error) {
	return loadUser(ctx, obj.UserID)
}

func (r *teamResolver) Members(ctx context.Context, obj *fluxgate.Team) ([]*fluxgate.User, error) {
	return r.Service.TeamMembers(ctx, obj.ID)
}

func (r *auditEntryResolver) Actor(ctx context.Context, obj *fluxgate.AuditEntry) (*fluxgate.User, error) {
	if obj.ActorID == "" {
		return nil, nil
	}
	return loadUser(ctx, obj.ActorID)
}
