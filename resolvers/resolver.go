// Package resolvers implements the GraphQL schema: each resolver reads the
// caller from the context, calls a service and shapes the result. No SQL,
// client-go or go-git here.
package resolvers

import (
	"context"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/graph"
	"github.com/fluxgate/fluxgate/service"
)

// Resolver is the root resolver.
type Resolver struct {
	Service *service.Service
}

var _ graph.ResolverRoot = (*Resolver)(nil)

// Query returns the query resolver.
func (r *Resolver) Query() graph.QueryResolver { return &queryResolver{r} }

// Mutation returns the mutation resolver.
func (r *Resolver) Mutation() graph.MutationResolver { return &mutationResolver{r} }

// Project returns the Project field resolver.
func (r *Resolver) Project() graph.ProjectResolver { return &projectResolver{r} }

// Environment returns the Environment field resolver.
func (r *Resolver) Environment() graph.EnvironmentResolver { return &environmentResolver{r} }

// Repository returns the Repository field resolver.
func (r *Resolver) Repository() graph.RepositoryResolver { return &repositoryResolver{r} }

// ProjectMember returns the ProjectMember field resolver.
func (r *Resolver) ProjectMember() graph.ProjectMemberResolver { return &projectMemberResolver{r} }

// Team returns the Team field resolver.
func (r *Resolver) Team() graph.TeamResolver { return &teamResolver{r} }

// AuditEntry returns the AuditEntry field resolver.
func (r *Resolver) AuditEntry() graph.AuditEntryResolver { return &auditEntryResolver{r} }

type queryResolver struct{ *Resolver }
type mutationResolver struct{ *Resolver }
type projectResolver struct{ *Resolver }
type environmentResolver struct{ *Resolver }
type repositoryResolver struct{ *Resolver }
type projectMemberResolver struct{ *Resolver }
type teamResolver struct{ *Resolver }
type auditEntryResolver struct{ *Resolver }

// page turns connection arguments into a domain page.
func page(first *int, after *string) fluxgate.Page {
	var p fluxgate.Page
	if first != nil {
		p.First = *first
	}
	if after != nil {
		p.After = *after
	}
	return p
}

func pageInfo(pi fluxgate.PageInfo) *fluxgate.PageInfo { return &pi }

// PageInfo returns the PageInfo field resolver.
func (r *Resolver) PageInfo() graph.PageInfoResolver { return &pageInfoResolver{r} }

type pageInfoResolver struct{ *Resolver }

// EndCursor is null rather than "" when the page is empty.
func (r *pageInfoResolver) EndCursor(_ context.Context, obj *fluxgate.PageInfo) (*string, error) {
	if obj.EndCursor == "" {
		return nil, nil
	}
	return &obj.EndCursor, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
