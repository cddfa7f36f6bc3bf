package service

import (
	"context"

	"github.com/fluxgate/fluxgate"
)

func validateRole(r fluxgate.Role) error {
	if !r.Valid() {
		return fluxgate.InvalidField("role", "role %q is not owner, maintainer, developer or viewer", r)
	}
	return nil
}

// Members lists a project's members.
func (s *Service) Members(ctx context.Context, projectID string) ([]*fluxgate.ProjectMember, error) {
	if _, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead); err != nil {
		return nil, err
	}
	return s.store.ListProjectMembers(ctx, projectID)
}

// AddProjectMember adds a user with a role (owners only).
func (s *Service) AddProjectMember(ctx context.Context, projectID, userID string, role fluxgate.Role) (*fluxgate.ProjectMember, error) {
	p, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionManageMembers)
	if err != nil {
		return nil, err
	}
	if err := validateRole(role); err != nil {
		return nil, err
	}
	if _, err := s.store.GetUser(ctx, userID); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil, fluxgate.InvalidField("userId", "user %s does not exist", userID)
		}
		return nil, err
	}
	m := &fluxgate.ProjectMember{ProjectID: p.ID, UserID: userID, Role: role}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.AddProjectMember(ctx, m); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "userId", Message: "the user is already a member; use setProjectMemberRole"}
			}
			return err
		}
		return s.audit(ctx, p.ID, "project.member.added", "user", userID, map[string]any{"role": role})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// SetProjectMemberRole changes a member's role (owners only); the last
// owner cannot be demoted.
func (s *Service) SetProjectMemberRole(ctx context.Context, projectID, userID string, role fluxgate.Role) (*fluxgate.ProjectMember, error) {
	p, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionManageMembers)
	if err != nil {
		return nil, err
	}
	if err := validateRole(role); err != nil {
		return nil, err
	}
	var m *fluxgate.ProjectMember
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if m, err = s.store.GetProjectMember(ctx, p.ID, userID); err != nil {
			return err
		}
		if m.Role == fluxgate.RoleOwner && role != fluxgate.RoleOwner {
			if err := s.keepAnOwner(ctx, p.ID); err != nil {
				return err
			}
		}
		old := m.Role
		m.Role = role
		if err := s.store.UpdateProjectMember(ctx, m); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "project.member.role_changed", "user", userID, map[string]any{"from": old, "to": role})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RemoveProjectMember removes a member (owners only); the last owner
// cannot be removed.
func (s *Service) RemoveProjectMember(ctx context.Context, projectID, userID string) error {
	p, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionManageMembers)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		m, err := s.store.GetProjectMember(ctx, p.ID, userID)
		if err != nil {
			return err
		}
		if m.Role == fluxgate.RoleOwner {
			if err := s.keepAnOwner(ctx, p.ID); err != nil {
				return err
			}
		}
		if err := s.store.RemoveProjectMember(ctx, p.ID, userID); err != nil {
			return err
		}
		return s.audit(ctx, p.ID, "project.member.removed", "user", userID, map[string]any{"role": m.Role})
	})
}

// keepAnOwner fails when the project has only one owner left.
func (s *Service) keepAnOwner(ctx context.Context, projectID string) error {
	members, err := s.store.ListProjectMembers(ctx, projectID)
	if err != nil {
		return err
	}
	owners := 0
	for _, m := range members {
		if m.Role == fluxgate.RoleOwner {
			owners++
		}
	}
	if owners <= 1 {
		return fluxgate.Errorf(fluxgate.ECONFLICT, "a project must keep at least one owner")
	}
	return nil
}
