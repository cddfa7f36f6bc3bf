// Package service holds fluxgate's application services. Every edge
// (GraphQL queries, mutations, subscriptions, webhooks) goes through it, so
// validation, RBAC and audit happen here once.
package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/tracker"
)

// Service implements fluxgate's use cases over a Store.
type Service struct {
	store     fluxgate.Store
	now       func() time.Time
	logger    *slog.Logger
	publisher fluxgate.Publisher
	hub       *hub.Hub
	presence  fluxgate.PresenceStore

	clusters   ClusterSource
	admins     map[string]bool
	fluxBundle []byte

	git              *gitrepo.Workspace
	sealer           *gitrepo.Sealer
	allowFileRemotes bool

	tracker *tracker.Tracker
}

// Option configures a Service.
type Option func(*Service)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.logger = l } }

// WithPublisher sets where domain events go (the event bus). Without it
// events are recorded in the database only.
func WithPublisher(p fluxgate.Publisher) Option { return func(s *Service) { s.publisher = p } }

// WithRealtime sets the hub that serves subscriptions and the presence
// store.
func WithRealtime(h *hub.Hub, p fluxgate.PresenceStore) Option {
	return func(s *Service) { s.hub, s.presence = h, p }
}

// New returns a Service over store.
func New(store fluxgate.Store, opts ...Option) *Service {
	s := &Service{store: store, now: time.Now, logger: slog.Default(), publisher: nopPublisher{}, admins: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	s.tracker = s.newTracker()
	return s
}

// Store returns the underlying store (for adapters wired beside the service).
func (s *Service) Store() fluxgate.Store { return s.store }

// currentUser returns the authenticated caller or UNAUTHENTICATED.
func currentUser(ctx context.Context) (*fluxgate.User, error) {
	u := fluxgate.UserFromContext(ctx)
	if u == nil || u.ID == "" {
		return nil, fluxgate.Errorf(fluxgate.EUNAUTHENTICATED, "authentication required")
	}
	return u, nil
}

// access computes what the caller has in a project and, when env is not
// nil, in that environment.
func (s *Service) access(ctx context.Context, userID string, projectID string, env *fluxgate.Environment) (fluxgate.Access, error) {
	var a fluxgate.Access
	m, err := s.store.GetProjectMember(ctx, projectID, userID)
	switch fluxgate.ErrorCode(err) {
	case "":
		a.Role = m.Role
	case fluxgate.ENOTFOUND:
	default:
		return a, err
	}
	if env == nil || len(env.Permissions) == 0 {
		return a, nil
	}
	a.EnvRestricted = true
	var teams map[string]bool
	for _, p := range env.Permissions {
		switch p.SubjectType {
		case fluxgate.SubjectUser:
			if p.SubjectID == userID {
				a.EnvLevel = fluxgate.StrongerEnvLevel(a.EnvLevel, p.Permission)
			}
		case fluxgate.SubjectTeam:
			if teams == nil {
				ids, err := s.store.TeamIDsForUser(ctx, userID)
				if err != nil {
					return a, err
				}
				teams = make(map[string]bool, len(ids))
				for _, id := range ids {
					teams[id] = true
				}
			}
			if teams[p.SubjectID] {
				a.EnvLevel = fluxgate.StrongerEnvLevel(a.EnvLevel, p.Permission)
			}
		}
	}
	return a, nil
}

// authorizeProject loads a project and checks act for the caller. A caller
// with no access at all gets NOT_FOUND, so projects stay invisible to
// outsiders; a member lacking the right gets FORBIDDEN.
func (s *Service) authorizeProject(ctx context.Context, projectID string, act fluxgate.Action) (*fluxgate.Project, *fluxgate.User, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.store.GetProject(ctx, projectID)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.access(ctx, u.ID, p.ID, nil)
	if err != nil {
		return nil, nil, err
	}
	if a.Role == "" {
		if !s.hasAnyEnvGrant(ctx, u.ID, p.ID) {
			return nil, nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "project %s not found", projectID)
		}
		if act == fluxgate.ActionRead {
			return p, u, nil
		}
	}
	if !a.Allows(act) {
		return nil, nil, forbidden(act, "project")
	}
	return p, u, nil
}

// hasAnyEnvGrant reports whether a non-member is named by a permission of
// any environment of the project (then the project is visible to them).
func (s *Service) hasAnyEnvGrant(ctx context.Context, userID, projectID string) bool {
	envs, err := s.store.ListEnvironments(ctx, projectID)
	if err != nil {
		return false
	}
	for _, e := range envs {
		a, err := s.access(ctx, userID, projectID, e)
		if err == nil && a.EnvLevel != "" {
			return true
		}
	}
	return false
}

// authorizeEnvironment loads an environment and its project and checks act
// with the environment's permissions applied.
func (s *Service) authorizeEnvironment(ctx context.Context, envID string, act fluxgate.Action) (*fluxgate.Environment, *fluxgate.Project, *fluxgate.User, error) {
	u, err := currentUser(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	e, err := s.store.GetEnvironment(ctx, envID)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := s.store.GetProject(ctx, e.ProjectID)
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := s.access(ctx, u.ID, p.ID, e)
	if err != nil {
		return nil, nil, nil, err
	}
	if a.Role == "" && a.EnvLevel == "" {
		return nil, nil, nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "environment %s not found", envID)
	}
	if !a.Allows(act) {
		return nil, nil, nil, forbidden(act, "environment")
	}
	return e, p, u, nil
}

func forbidden(act fluxgate.Action, what string) error {
	return fluxgate.Errorf(fluxgate.EFORBIDDEN, "your role does not allow %s on this %s", act, what)
}

// audit records a change in the same transaction as the change (ctx must be
// the InTx context).
func (s *Service) audit(ctx context.Context, projectID, action, targetType, targetID string, metadata any) error {
	var pid *string
	if projectID != "" {
		pid = &projectID
	}
	md, err := json.Marshal(metadata)
	if err != nil {
		return err
	}
	return s.store.CreateAuditEntry(ctx, &fluxgate.AuditEntry{
		ProjectID:  pid,
		ActorID:    fluxgate.UserIDFromContext(ctx),
		Action:     action,
		TargetType: targetType,
		TargetID:   targetID,
		Metadata:   md,
		CreatedAt:  s.now().UTC(),
	})
}
