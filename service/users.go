package service

import (
	"context"
	"strings"

	"github.com/fluxgate/fluxgate"
)

// Identity is what a verified token says about its bearer.
type Identity struct {
	Subject   string
	Name      string
	Email     string
	AvatarURL string
}

// SignIn upserts the user behind a verified identity (first sight creates
// it; later sights refresh name, e-mail and avatar).
func (s *Service) SignIn(ctx context.Context, id Identity) (*fluxgate.User, error) {
	if strings.TrimSpace(id.Subject) == "" {
		return nil, fluxgate.Errorf(fluxgate.EUNAUTHENTICATED, "token has no subject")
	}
	u := &fluxgate.User{Subject: id.Subject, Name: id.Name, Email: id.Email, AvatarURL: id.AvatarURL}
	if u.Name == "" {
		u.Name = id.Subject
	}
	if err := s.store.UpsertUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Users returns users by id in the order of ids (nil for unknown ids); the
// dataloader batches through it.
func (s *Service) Users(ctx context.Context, ids []string) ([]*fluxgate.User, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	return s.store.GetUsers(ctx, ids)
}

// Node resolves a global id to the object it names, if the caller may see
// it. Ids are UUIDs unique across all tables.
func (s *Service) Node(ctx context.Context, id string) (any, error) {
	if _, err := currentUser(ctx); err != nil {
		return nil, err
	}
	lookups := []func() (any, error){
		func() (any, error) { return s.Project(ctx, id) },
		func() (any, error) { return s.Environment(ctx, id) },
		func() (any, error) { return s.Repository(ctx, id) },
		func() (any, error) { return s.Team(ctx, id) },
		func() (any, error) { return s.store.GetUser(ctx, id) },
		func() (any, error) { return s.Deployment(ctx, id) },
	}
	for _, f := range lookups {
		v, err := f()
		switch fluxgate.ErrorCode(err) {
		case "":
			return v, nil
		case fluxgate.ENOTFOUND:
			continue
		default:
			return nil, err
		}
	}
	return nil, nil
}
