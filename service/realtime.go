package service

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/hub"
)

func (s *Service) realtime() error {
	if s.hub == nil {
		return fluxgate.Errorf(fluxgate.EUNAVAILABLE, "live updates are not configured")
	}
	return nil
}

// FluxEventCursor is the cursor of a Flux event (its sequence).
func FluxEventCursor(e *fluxgate.FluxEvent) string {
	return fluxgate.EncodeCursor(strconv.FormatInt(e.Seq, 10))
}

func parseSeqCursor(field, c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	key, ok := fluxgate.DecodeCursor(c)
	seq, err := strconv.ParseInt(key, 10, 64)
	if !ok || err != nil || seq < 0 {
		return 0, fluxgate.InvalidField(field, "%s is not a valid cursor", field)
	}
	return seq, nil
}

// FluxEvents lists a project's Flux events, newest first.
func (s *Service) FluxEvents(ctx context.Context, projectID, kind, severity string, page fluxgate.Page) ([]*fluxgate.FluxEvent, fluxgate.PageInfo, error) {
	if _, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	if severity != "" && severity != "info" && severity != "error" {
		return nil, fluxgate.PageInfo{}, fluxgate.InvalidField("severity", "severity must be info or error")
	}
	if page.First < 0 || page.First > fluxgate.MaxPageSize {
		return nil, fluxgate.PageInfo{}, fluxgate.InvalidField("first", "first must be between 0 and %d", fluxgate.MaxPageSize)
	}
	if _, err := parseSeqCursor("after", page.After); err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	return s.store.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: projectID, Kind: kind, Severity: severity, Page: page})
}

// SubscribeFluxEvents streams a project's Flux events. With after (a
// cursor), the events recorded after it are replayed from the database
// first; the hub drops duplicates at the seam and backfills after a bus
// outage.
func (s *Service) SubscribeFluxEvents(ctx context.Context, projectID, after string) (<-chan *fluxgate.FluxEvent, error) {
	if err := s.realtime(); err != nil {
		return nil, err
	}
	if _, _, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead); err != nil {
		return nil, err
	}
	afterSeq, err := parseSeqCursor("after", after)
	if err != nil {
		return nil, err
	}
	if afterSeq == 0 {
		// No cursor: start from the newest event, so that a bus outage is
		// backfilled from there rather than from the beginning of time.
		newest, _, err := s.store.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: projectID, Page: fluxgate.Page{First: 1}})
		if err != nil {
			return nil, err
		}
		if len(newest) > 0 {
			afterSeq = newest[0].Seq
		}
	}
	// Replay serves the resume from a cursor and the hub's backfill after a
	// bus outage, from the last event each subscriber saw.
	stream, err := hub.Subscribe(ctx, s.hub, hub.Request{
		Topic: fluxgate.ProjectTopic(projectID), Replay: hub.FluxEventReplay(s.store, projectID), After: afterSeq,
	}, hub.DecodeFluxEvent)
	if err != nil {
		return nil, err
	}
	return stream.C(), nil
}

// SubscribeResourceStatus streams status changes of a project's resources,
// limited to one environment when environmentID is set, and always to the
// environments the caller may read.
func (s *Service) SubscribeResourceStatus(ctx context.Context, projectID, environmentID string) (<-chan *fluxgate.GitOpsResource, error) {
	readable, err := s.projectStreamScope(ctx, projectID, environmentID)
	if err != nil {
		return nil, err
	}
	stream, err := hub.Subscribe(ctx, s.hub, hub.Request{Topic: fluxgate.ProjectTopic(projectID)},
		func(ev fluxgate.Event) (*fluxgate.GitOpsResource, bool) {
			if ev.Type != fluxgate.EventResourceStatus {
				return nil, false
			}
			var r fluxgate.GitOpsResource
			if err := json.Unmarshal(ev.Payload, &r); err != nil || r.ProjectID != projectID {
				return nil, false
			}
			env := ""
			if r.EnvironmentID != nil {
				env = *r.EnvironmentID
			}
			if environmentID != "" && env != environmentID {
				return nil, false
			}
			if readable != nil && !readable[env] {
				return nil, false
			}
			return &r, true
		})
	if err != nil {
		return nil, err
	}
	return stream.C(), nil
}

// SubscribeDeployments streams every change of the project's deployments
// (optionally one environment's) as it is stored: new deployments, whatever
// made them (a UI deploy, a push Flux fetched, an approval), and each step
// they reach. Needs read; environment grants narrow it as for the list.
func (s *Service) SubscribeDeployments(ctx context.Context, projectID, environmentID string) (<-chan *fluxgate.Deployment, error) {
	readable, err := s.projectStreamScope(ctx, projectID, environmentID)
	if err != nil {
		return nil, err
	}
	stream, err := hub.Subscribe(ctx, s.hub, hub.Request{Topic: fluxgate.ProjectTopic(projectID)},
		func(ev fluxgate.Event) (*fluxgate.Deployment, bool) {
			if ev.Type != fluxgate.EventDeploymentProgress {
				return nil, false
			}
			var d fluxgate.Deployment
			if err := json.Unmarshal(ev.Payload, &d); err != nil || d.ProjectID != projectID {
				return nil, false
			}
			if environmentID != "" && d.EnvironmentID != environmentID {
				return nil, false
			}
			if readable != nil && !readable[d.EnvironmentID] {
				return nil, false
			}
			return &d, true
		})
	if err != nil {
		return nil, err
	}
	return stream.C(), nil
}

// projectStreamScope authorizes a subscription to a project's stream
// (read; environmentID, when set, must be one of the project's
// environments) and returns the environments the caller may read, nil for
// all of them.
func (s *Service) projectStreamScope(ctx context.Context, projectID, environmentID string) (map[string]bool, error) {
	if err := s.realtime(); err != nil {
		return nil, err
	}
	_, u, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	if environmentID != "" {
		env, _, _, err := s.authorizeEnvironment(ctx, environmentID, fluxgate.ActionRead)
		if err != nil {
			return nil, err
		}
		if env.ProjectID != projectID {
			return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "environment %s not found in the project", environmentID)
		}
	}
	return s.readableEnvironments(ctx, u.ID, projectID)
}

// readableEnvironments returns nil when the caller is a project member (may
// read everything), else the set of environment ids it was granted.
func (s *Service) readableEnvironments(ctx context.Context, userID, projectID string) (map[string]bool, error) {
	a, err := s.access(ctx, userID, projectID, nil)
	if err != nil || a.Role != "" {
		return nil, err
	}
	envs, err := s.store.ListEnvironments(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range envs {
		if a, err := s.access(ctx, userID, projectID, e); err == nil && a.Allows(fluxgate.ActionRead) {
			out[e.ID] = true
		}
	}
	return out, nil
}

// Presence marks the caller present on an environment while ctx lives and
// streams the full list of people present on every change.
func (s *Service) Presence(ctx context.Context, environmentID string, mode fluxgate.PresenceMode) (<-chan []fluxgate.PresenceEntry, error) {
	if err := s.realtime(); err != nil {
		return nil, err
	}
	if !mode.Valid() {
		return nil, fluxgate.InvalidField("mode", "mode must be VIEWING or EDITING")
	}
	env, _, u, err := s.authorizeEnvironment(ctx, environmentID, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	stream, err := s.hub.Presence(ctx, s.presence, hub.PresenceRequest{
		EnvironmentID: env.ID,
		Entry:         fluxgate.PresenceEntry{UserID: u.ID, Name: u.Name, AvatarURL: u.AvatarURL, Mode: mode},
	})
	if err != nil {
		return nil, err
	}
	return stream.C(), nil
}

// UpdatePresence records which field the caller edits on an environment.
// Returns ENOTFOUND when the caller has no open presence subscription.
func (s *Service) UpdatePresence(ctx context.Context, environmentID, field string) ([]fluxgate.PresenceEntry, error) {
	if err := s.realtime(); err != nil {
		return nil, err
	}
	if err := validateLength("field", field, 0, 200); err != nil {
		return nil, err
	}
	env, _, u, err := s.authorizeEnvironment(ctx, environmentID, fluxgate.ActionRead)
	if err != nil {
		return nil, err
	}
	if err := s.presence.UpdateField(ctx, env.ID, u.ID, field); err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "you are not present on this environment: open a presence subscription first")
		}
		return nil, err
	}
	return s.presence.List(ctx, env.ID)
}
