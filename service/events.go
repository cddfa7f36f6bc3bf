package service

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/fluxgate/fluxgate"
)

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, fluxgate.Event) error { return nil }

// publish sends a domain event on a topic. The change it announces is
// already in the database, so a bus failure (Redis down) is logged, never
// returned: live updates pause, writes do not fail, and subscribers
// catch up from the database.
func (s *Service) publish(ctx context.Context, topic, typ, projectID string, seq int64, payload any) {
	b, err := json.Marshal(payload)
	if err != nil {
		s.logger.ErrorContext(ctx, "encode event", "type", typ, "err", err)
		return
	}
	ev := fluxgate.Event{Type: typ, ProjectID: projectID, Seq: seq, Payload: b, At: s.now().UTC()}
	if err := s.publisher.Publish(ctx, topic, ev); err != nil {
		s.logger.WarnContext(ctx, "publish event", "topic", topic, "type", typ, "err", err)
	}
}

// RecordFluxEvent stores a Flux event about a managed object and publishes
// it on the project's topic. The object is mapped to its resource (and so
// its project) when the event does not say. Returns ENOTFOUND when no
// project manages the object. A duplicate (same DedupKey) is stored once
// and published once: inserted is false the second time.
func (s *Service) RecordFluxEvent(ctx context.Context, e *fluxgate.FluxEvent) (inserted bool, err error) {
	if e.Kind == "" || e.Name == "" {
		return false, fluxgate.Errorf(fluxgate.EINVALID, "flux event without an involved object")
	}
	if e.ProjectID == "" || e.ResourceID == nil {
		r, err := s.store.FindResourceByObject(ctx, fluxgate.ResourceKind(e.Kind), e.Namespace, e.Name)
		if err != nil {
			if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
				return false, fluxgate.Errorf(fluxgate.ENOTFOUND, "no project manages %s %s/%s", e.Kind, e.Namespace, e.Name)
			}
			return false, err
		}
		e.ProjectID, e.ResourceID = r.ProjectID, &r.ID
	}
	if e.Type == "" {
		e.Type = "Normal"
		if e.Severity == "error" {
			e.Type = "Warning"
		}
	}
	if e.Severity == "" {
		e.Severity = "info"
		if e.Type == "Warning" {
			e.Severity = "error"
		}
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = s.now().UTC()
	}
	if e.DedupKey == "" {
		e.DedupKey = fluxgate.FluxEventDedupKey(e)
	}
	if len(e.Metadata) == 0 {
		e.Metadata = json.RawMessage(`{}`)
	}
	if inserted, err = s.store.CreateFluxEvent(ctx, e); err != nil || !inserted {
		return inserted, err
	}
	s.publish(ctx, fluxgate.ProjectTopic(e.ProjectID), fluxgate.EventFluxEvent, e.ProjectID, e.Seq, e)
	return true, nil
}

// HandleFluxEvent takes an event pushed by notification-controller: it is
// recorded like a watcher event, and what it says about readiness is
// applied to the resource so that replicas without a watcher stay current.
func (s *Service) HandleFluxEvent(ctx context.Context, e *fluxgate.FluxEvent) error {
	inserted, err := s.RecordFluxEvent(ctx, e)
	if err != nil || !inserted || e.ResourceID == nil {
		return err
	}
	r, err := s.store.GetResource(ctx, *e.ResourceID)
	if err != nil {
		return err
	}
	u, ok := statusFromEvent(r, e)
	if !ok {
		return nil
	}
	return s.ApplyResourceStatus(ctx, r.ID, u)
}

// statusFromEvent derives a status update from an event's severity and
// reason; ok is false when the event says nothing about readiness.
func statusFromEvent(r *fluxgate.GitOpsResource, e *fluxgate.FluxEvent) (fluxgate.ResourceStatusUpdate, bool) {
	u := fluxgate.ResourceStatusUpdate{
		Status:                r.Status,
		Suspended:             r.Suspended,
		Conditions:            r.Conditions,
		Inventory:             r.Inventory,
		LastAppliedRevision:   r.LastAppliedRevision,
		LastAttemptedRevision: r.LastAttemptedRevision,
		ObservedGeneration:    r.ObservedGeneration,
		LastReconciledAt:      &e.Timestamp,
	}
	switch {
	case e.Severity == "error":
		u.Status, u.ErrorMessage = fluxgate.ResourceFailed, e.Message
		if e.Revision != "" {
			u.LastAttemptedRevision = e.Revision
		}
	case e.Reason == "Progressing" || strings.HasSuffix(e.Reason, "Progressing"):
		u.Status, u.ErrorMessage = fluxgate.ResourceReconciling, r.ErrorMessage
	case e.Reason == "ReconciliationSucceeded" || e.Reason == "NewArtifact" || e.Reason == "ArtifactUpToDate" ||
		e.Reason == "InstallSucceeded" || e.Reason == "UpgradeSucceeded":
		u.Status = fluxgate.ResourceReady
		if e.Revision != "" {
			u.LastAppliedRevision, u.LastAttemptedRevision = e.Revision, e.Revision
		}
	default:
		return u, false
	}
	if r.Suspended {
		u.Status = fluxgate.ResourceSuspended
	}
	return u, true
}

// ApplyResourceStatus stores what Flux reports about a resource and
// publishes the change on the project's topic.
func (s *Service) ApplyResourceStatus(ctx context.Context, resourceID string, u fluxgate.ResourceStatusUpdate) error {
	if err := s.store.UpdateResourceStatus(ctx, resourceID, u); err != nil {
		return err
	}
	r, err := s.store.GetResource(ctx, resourceID)
	if err != nil {
		return err
	}
	s.publish(ctx, fluxgate.ProjectTopic(r.ProjectID), fluxgate.EventResourceStatus, r.ProjectID, 0, r)
	return nil
}
