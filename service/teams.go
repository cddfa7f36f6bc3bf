package service

import (
	"context"

	"github.com/fluxgate/fluxgate"
)

// CreateTeam creates a team with the caller as its first member.
func (s *Service) CreateTeam(ctx context.Context, slug, name string) (*fluxgate.Team, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, err
	}
	if err := firstErr(validateDNSLabel("slug", slug), validateLength("name", name, 1, 100)); err != nil {
		return nil, err
	}
	t := &fluxgate.Team{Slug: slug, Name: name}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateTeam(ctx, t); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "slug", Message: "a team with slug " + slug + " already exists"}
			}
			return err
		}
		if err := s.store.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: t.ID, UserID: u.ID}); err != nil {
			return err
		}
		return s.audit(ctx, "", "team.created", "team", t.ID, map[string]any{"slug": slug})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Team returns a team (teams are visible to every signed-in user).
func (s *Service) Team(ctx context.Context, id string) (*fluxgate.Team, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	return s.store.GetTeam(ctx, id)
}

// Teams lists teams.
func (s *Service) Teams(ctx context.Context, page fluxgate.Page) ([]*fluxgate.Team, fluxgate.PageInfo, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	if _, err := page.Validate(); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	return s.store.ListTeams(ctx, page)
}

// TeamMembers lists a team's users.
func (s *Service) TeamMembers(ctx context.Context, teamID string) ([]*fluxgate.User, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	ms, err := s.store.ListTeamMembers(ctx, teamID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	users, err := s.store.GetUsers(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := users[:0]
	for _, u := range users {
		if u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// authorizeTeam checks that the caller is a member of the team.
func (s *Service) authorizeTeam(ctx context.Context, teamID string) (*fluxgate.Team, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.store.GetTeam(ctx, teamID)
	if err != nil {
		return nil, err
	}
	ids, err := s.store.TeamIDsForUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if id == t.ID {
			return t, nil
		}
	}
	return nil, fluxgate.Errorf(fluxgate.EFORBIDDEN, "only members of team %s can change its members", t.Slug)
}

// AddTeamMember adds a user to a team (team members only).
func (s *Service) AddTeamMember(ctx context.Context, teamID, userID string) (*fluxgate.Team, error) {
	t, err := s.authorizeTeam(ctx, teamID)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.GetUser(ctx, userID); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil, fluxgate.InvalidField("userId", "user %s does not exist", userID)
		}
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: t.ID, UserID: userID}); err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ECONFLICT {
				return &fluxgate.Error{Code: fluxgate.ECONFLICT, Field: "userId", Message: "the user is already in the team"}
			}
			return err
		}
		return s.audit(ctx, "", "team.member.added", "team", t.ID, map[string]any{"userId": userID})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// RemoveTeamMember removes a user from a team (team members only).
func (s *Service) RemoveTeamMember(ctx context.Context, teamID, userID string) (*fluxgate.Team, error) {
	t, err := s.authorizeTeam(ctx, teamID)
	if err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.RemoveTeamMember(ctx, t.ID, userID); err != nil {
			return err
		}
		return s.audit(ctx, "", "team.member.removed", "team", t.ID, map[string]any{"userId": userID})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
