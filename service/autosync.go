package service

import (
	"context"
	"fmt"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/tracker"
)

// Auto-sync (SPEC §11, docs/approvals.md). An environment with
// gitops.autoSync off keeps its Kustomizations suspended, so Flux does not
// apply new revisions on its own. A sync (SyncEnvironment) or an approved
// deploy resumes them to apply one revision, named on each Kustomization
// by the k8s.AnnotationSyncRevision annotation; when the watcher reports
// that revision applied (or failed), they are suspended again. The
// annotation lives on the object, so any replica — also after a restart —
// knows what is in flight; an unsuspended Kustomization with nothing in
// flight is suspended on its next observation.

// environmentKustomizations lists the environment's Kustomizations.
func (s *Service) environmentKustomizations(ctx context.Context, e *fluxgate.Environment) ([]*fluxgate.GitOpsResource, error) {
	rows, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{
		ProjectID: e.ProjectID, EnvironmentID: e.ID, Kind: fluxgate.KindKustomization, Page: fluxgate.Page{First: 200},
	})
	return rows, err
}

// setKustomizationSuspended suspends or resumes one Kustomization in the
// cluster and in its row, with an audit entry naming why. revision, when
// resuming, is the commit the resume is for (the sync annotation).
func (s *Service) setKustomizationSuspended(ctx context.Context, c Cluster, r *fluxgate.GitOpsResource, suspend bool, revision, why string) error {
	action := "gitops.resource.resumed"
	if suspend {
		action = "gitops.resource.suspended"
	}
	key := k8s.KeyOf(r)
	return s.store.InTx(ctx, func(ctx context.Context) error {
		r.Suspended = suspend
		if err := s.store.UpdateResource(ctx, r); err != nil {
			return err
		}
		var err error
		if suspend {
			err = c.Suspend(ctx, key)
		} else {
			if err = c.SetAnnotations(ctx, key, map[string]string{k8s.AnnotationSyncRevision: revision}); err == nil {
				err = c.Resume(ctx, key)
			}
		}
		if err != nil {
			return clusterError(action, err)
		}
		return s.audit(ctx, r.ProjectID, action, "gitops_resource", r.ID, map[string]any{
			"kind": r.Kind, "name": r.Name, "reason": why, "revision": revision,
		})
	})
}

// resumeForSync resumes every Kustomization of an environment whose
// autoSync is off, to apply revision, and reports how many it resumed.
func (s *Service) resumeForSync(ctx context.Context, e *fluxgate.Environment, revision, why string) (int, error) {
	c, err := s.cluster()
	if err != nil {
		return 0, err
	}
	rows, err := s.environmentKustomizations(ctx, e)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		if err := s.setKustomizationSuspended(ctx, c, r, false, revision, why); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// syncOnce lets Flux apply a commit made through fluxgate (a deploy, a
// config change, a rollback, an approved change) to an environment whose
// autoSync is off; errors are logged (the commit is what matters, and a
// sync can be requested again).
func (s *Service) syncOnce(ctx context.Context, e *fluxgate.Environment, sha string) {
	if e.GitOps.AutoSync {
		return
	}
	if _, err := s.resumeForSync(ctx, e, sha, "deploy through fluxgate"); err != nil {
		s.logger.WarnContext(ctx, "resume Kustomizations for a deploy", "environment", e.ID, "err", fluxgate.ErrorMessage(err))
	}
}

// applyAutoSync suspends (autoSync off) or resumes (on) every Kustomization
// of an environment whose autoSync setting changed. Errors are logged: the
// watcher's observation suspends what stayed running.
func (s *Service) applyAutoSync(ctx context.Context, e *fluxgate.Environment) {
	c, err := s.cluster()
	if err != nil {
		return
	}
	rows, err := s.environmentKustomizations(ctx, e)
	if err != nil {
		s.logger.ErrorContext(ctx, "list Kustomizations for autoSync", "environment", e.ID, "err", err)
		return
	}
	for _, r := range rows {
		if r.Suspended == !e.GitOps.AutoSync {
			continue
		}
		why := "autoSync turned off"
		if e.GitOps.AutoSync {
			why = "autoSync turned on"
		}
		if err := s.setKustomizationSuspended(ctx, c, r, !e.GitOps.AutoSync, "", why); err != nil {
			s.logger.WarnContext(ctx, "apply autoSync", "environment", e.ID, "object", k8s.KeyOf(r).String(), "err", fluxgate.ErrorMessage(err))
		}
	}
}

// suspendedAtCreation reports whether a new resource starts suspended: a
// Kustomization of an environment whose autoSync is off.
func (s *Service) suspendedAtCreation(ctx context.Context, in ResourceInput) (bool, error) {
	if in.Kind != fluxgate.KindKustomization || in.EnvironmentID == "" {
		return false, nil
	}
	e, err := s.store.GetEnvironment(ctx, in.EnvironmentID)
	if err != nil {
		return false, err
	}
	return !e.GitOps.AutoSync, nil
}

// SyncEnvironmentResult is what SyncEnvironment did.
type SyncEnvironmentResult struct {
	Environment *fluxgate.Environment
	// Revision is the commit Flux is asked to apply ("" when unknown).
	Revision string
	// Resumed counts the Kustomizations resumed to apply it (autoSync off).
	Resumed int
}

// SyncEnvironment asks Flux to apply the head of an environment's branch
// now (needs sync). With autoSync off its Kustomizations are resumed until
// that revision is applied, then suspended again. The revision is the
// branch head when Git editing is configured, else what the environment's
// GitRepository last fetched. Errors: NOT_FOUND, FORBIDDEN, UNAVAILABLE (no
// cluster).
func (s *Service) SyncEnvironment(ctx context.Context, envID string) (*SyncEnvironmentResult, error) {
	e, p, _, err := s.authorizeEnvironment(ctx, envID, fluxgate.ActionSync)
	if err != nil {
		return nil, err
	}
	if _, err := s.cluster(); err != nil {
		return nil, err
	}
	rev, err := s.headRevision(ctx, e)
	if err != nil {
		return nil, err
	}
	if err := s.store.InTx(ctx, func(ctx context.Context) error {
		return s.audit(ctx, p.ID, "environment.sync.requested", "environment", e.ID, map[string]any{"revision": rev, "autoSync": e.GitOps.AutoSync})
	}); err != nil {
		return nil, err
	}
	out := &SyncEnvironmentResult{Environment: e, Revision: rev}
	if !e.GitOps.AutoSync {
		if out.Resumed, err = s.resumeForSync(ctx, e, rev, "sync requested"); err != nil {
			return nil, err
		}
	}
	s.requestReconcile(ctx, e)
	return out, nil
}

// headRevision is the commit a sync applies: the branch head, else the
// environment's GitRepository's last artifact.
func (s *Service) headRevision(ctx context.Context, e *fluxgate.Environment) (string, error) {
	if s.git != nil {
		t, err := s.gitTarget(ctx, e)
		if err == nil {
			snap, err := s.git.ReadFiles(ctx, t.remote, t.branch, t.path)
			if err == nil {
				return snap.Revision, nil
			}
			s.logger.WarnContext(ctx, "read the branch head to sync", "environment", e.ID, "err", fluxgate.ErrorMessage(gitError("read head", err)))
		}
	}
	srcs, _, err := s.store.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: e.ProjectID, EnvironmentID: e.ID, Kind: fluxgate.KindGitRepository, Page: fluxgate.Page{First: 200}})
	if err != nil {
		return "", err
	}
	for _, r := range srcs {
		if sha := tracker.SHAOf(r.LastAppliedRevision); sha != "" {
			return sha, nil
		}
	}
	return "", nil
}

// keepSuspended is called for every observed Kustomization: one of an
// environment whose autoSync is off that is not suspended is suspended
// again once the revision it was resumed for is applied (or failed), or at
// once when it was resumed for nothing known (a restart lost nothing: the
// revision is on the object).
func (w *WatchSink) keepSuspended(ctx context.Context, ch k8s.ResourceChange) error {
	if ch.Kind != fluxgate.KindKustomization || ch.EnvironmentID == "" || ch.Status.Suspended || ch.Object == nil {
		return nil
	}
	s := w.s
	e, err := s.store.GetEnvironment(ctx, ch.EnvironmentID)
	if err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil
		}
		return err
	}
	if e.GitOps.AutoSync {
		return nil
	}
	target := ch.Object.GetAnnotations()[k8s.AnnotationSyncRevision]
	done := target == "" || tracker.RevisionHas(ch.Status.LastAppliedRevision, target) ||
		(tracker.RevisionHas(ch.Status.LastAttemptedRevision, target) && ch.Status.Status == fluxgate.ResourceFailed)
	if !done {
		return nil
	}
	r, ok, err := w.resourceFor(ctx, ch.ResourceRef)
	if err != nil || !ok {
		return err
	}
	c, err := s.cluster()
	if err != nil {
		return nil // nothing to suspend with; the next observation retries
	}
	why := "autoSync is off; nothing to apply"
	if target != "" {
		why = fmt.Sprintf("autoSync is off; revision %s applied", shortSHA(target))
	}
	return s.setKustomizationSuspended(ctx, c, r, true, "", why)
}
