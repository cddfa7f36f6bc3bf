package service

import (
	"context"

	"github.com/fluxgate/fluxgate"
)

// CreateProjectInput is what createProject takes.
type CreateProjectInput struct {
	Slug           string
	Name           string
	Description    string
	Namespace      string // default derived from the slug
	GitOpsEnabled  *bool  // default true
	DeploymentMode fluxgate.DeploymentMode
}

// UpdateProjectInput changes the fields that are set.
type UpdateProjectInput struct {
	ID             string
	Name           *string
	Description    *string
	Namespace      *string
	GitOpsEnabled  *bool
	DeploymentMode *fluxgate.DeploymentMode
}

func validateProject(p *fluxgate.Project) error {
	return firstErr(
		validateDNSLabel("slug", p.Slug),
		validateLength("name", p.Name, 1, 100),
		validateLength("description", p.Description, 0, 2000),
		validateDNSLabel("namespace", p.Namespace),
		validateMode(p.DeploymentMode),
	)
}

func validateMode(m fluxgate.DeploymentMode) error {
	if !m.Valid() {
		return fluxgate.InvalidField("deploymentMode", "deploymentMode %q is not one of ui-first, git-first, hybrid", m)
	}
	return nil
}

// CreateProject creates a project and makes the caller its owner.
func (s *Service) CreateProject(ctx context.Context, in CreateProjectInput) (*fluxgate.Project, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, err
	}
	p := &fluxgate.Project{
		Slug:           in.Slug,
		Name:           in.Name,
		Description:    in.Description,
		Namespace:      in.Namespace,
		GitOpsEnabled:  in.GitOpsEnabled == nil || *in.GitOpsEnabled,
		DeploymentMode: in.DeploymentMode,
		CreatedBy:      u.ID,
	}
	if p.Namespace == "" {
		p.Namespace = "fg-" + p.Slug
		if len(p.Namespace) > 63 {
			p.Namespace = p.Namespace[:63]
		}
	}
	if p.DeploymentMode == "" {
		p.DeploymentMode = fluxgate.DeploymentModeHybrid
	}
	if err := validateProject(p); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateProject(ctx, p); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "slug", Message: "a project with slug " + p.Slug + " already exists"}
			}
			return err
		}
		if err := s.store.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p.ID, UserID: u.ID, Role: fluxgate.RoleOwner}); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "project.created", "project", p.ID, map[string]any{"slug": p.Slug, "name": p.Name})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Project returns a project the caller can read.
func (s *Service) Project(ctx context.Context, id string) (*fluxgate.Project, error) {
	p, _, err := s.authorizeProject(ctx, id, fluxgate.ActionRead)
	return p, err
}

// ProjectBySlug returns a project the caller can read.
func (s *Service) ProjectBySlug(ctx context.Context, slug string) (*fluxgate.Project, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	p, err := s.store.GetProjectBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	return s.Project(ctx, p.ID)
}

// Projects lists the projects the caller is a member of.
func (s *Service) Projects(ctx context.Context, page fluxgate.Page) ([]*fluxgate.Project, fluxgate.PageInfo, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	if _, err := page.Validate(); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	return s.store.ListProjects(ctx, fluxgate.ProjectFilter{MemberUserID: u.ID, Page: page})
}

// ViewerRole returns the caller's role in a project, "" if not a member.
func (s *Service) ViewerRole(ctx context.Context, projectID string) (fluxgate.Role, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return "", err
	}
	m, err := s.store.GetProjectMember(ctx, projectID, u.ID)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return m.Role, nil
}

// UpdateProject changes a project (needs update).
func (s *Service) UpdateProject(ctx context.Context, in UpdateProjectInput) (*fluxgate.Project, error) {
	p, _, err := s.authorizeProject(ctx, in.ID, fluxgate.ActionUpdate)
	if err != nil {
		return nil, err
	}
	changed := map[string]any{}
	if in.Name != nil {
		p.Name, changed["name"] = *in.Name, *in.Name
	}
	if in.Description != nil {
		p.Description, changed["description"] = *in.Description, *in.Description
	}
	if in.Namespace != nil {
		p.Namespace, changed["namespace"] = *in.Namespace, *in.Namespace
	}
	if in.GitOpsEnabled != nil {
		p.GitOpsEnabled, changed["gitopsEnabled"] = *in.GitOpsEnabled, *in.GitOpsEnabled
	}
	if in.DeploymentMode != nil {
		p.DeploymentMode, changed["deploymentMode"] = *in.DeploymentMode, *in.DeploymentMode
	}
	if err := validateProject(p); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateProject(ctx, p); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "project.updated", "project", p.ID, changed)
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetProject(ctx, p.ID)
}

// DeleteProject soft-deletes a project (owners only).
func (s *Service) DeleteProject(ctx context.Context, id string) error {
	p, _, err := s.authorizeProject(ctx, id, fluxgate.ActionDelete)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteProject(ctx, p.ID, s.now().UTC()); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "project.deleted", "project", p.ID, map[string]any{"slug": p.Slug})
	})
}

// AuditLog lists a project's audit entries, newest first.
func (s *Service) AuditLog(ctx context.Context, projectID string, page fluxgate.Page) ([]*fluxgate.AuditEntry, fluxgate.PageInfo, error) {
	if _, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	if _, err := page.Validate(); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	return s.store.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: projectID, Page: page})
}
