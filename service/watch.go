package service

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
)

// WatchSink turns what the cluster watcher sees into database rows and
// published events. It implements k8s.Sink.
type WatchSink struct{ s *Service }

// WatchSink returns the sink the cluster watcher reports to.
func (s *Service) WatchSink() *WatchSink { return &WatchSink{s: s} }

var (
	_ k8s.Sink         = (*WatchSink)(nil)
	_ k8s.WorkloadSink = (*WatchSink)(nil)
)

// resourceFor finds the row of a cluster object: by the resource id label,
// else by kind/namespace/name. ok is false when fluxgate does not (or no
// longer) manage it.
func (w *WatchSink) resourceFor(ctx context.Context, ref k8s.ResourceRef) (*fluxgate.GitOpsResource, bool, error) {
	if ref.ResourceID != "" {
		r, err := w.s.store.GetResource(ctx, ref.ResourceID)
		switch fluxgate.ErrorCode(err) {
		case "":
			return r, true, nil
		case fluxgate.ENOTFOUND:
		default:
			return nil, false, err
		}
	}
	r, err := w.s.store.FindResourceByObject(ctx, ref.Kind, ref.Namespace, ref.Name)
	switch fluxgate.ErrorCode(err) {
	case "":
		return r, true, nil
	case fluxgate.ENOTFOUND:
		return nil, false, nil
	}
	return nil, false, err
}

// ResourceChanged stores the object's new status and publishes it, and
// passes an environment's GitRepository and Kustomization status to the
// deployment tracker (always: the tracker's state is in memory, and a
// repeated observation changes nothing).
func (w *WatchSink) ResourceChanged(ctx context.Context, ch k8s.ResourceChange) error {
	r, ok, err := w.resourceFor(ctx, ch.ResourceRef)
	if err != nil || !ok {
		return err
	}
	if !sameStatus(r, ch.Status) {
		if err := w.s.ApplyResourceStatus(ctx, r.ID, ch.Status); err != nil {
			return err
		}
	}
	if ch.EnvironmentID == "" && r.EnvironmentID != nil {
		ch.EnvironmentID = *r.EnvironmentID
	}
	return w.observeFlux(ctx, ch)
}

// sameStatus reports whether an update would change nothing.
func sameStatus(r *fluxgate.GitOpsResource, u fluxgate.ResourceStatusUpdate) bool {
	if r.Status != u.Status || r.Suspended != u.Suspended || r.ErrorMessage != u.ErrorMessage ||
		r.LastAppliedRevision != u.LastAppliedRevision || r.LastAttemptedRevision != u.LastAttemptedRevision ||
		r.ObservedGeneration != u.ObservedGeneration || len(r.Conditions) != len(u.Conditions) || len(r.Inventory) != len(u.Inventory) {
		return false
	}
	for i := range r.Conditions {
		a, b := r.Conditions[i], u.Conditions[i]
		if a.Type != b.Type || a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message || !a.LastTransitionTime.Equal(b.LastTransitionTime) {
			return false
		}
	}
	for i := range r.Inventory {
		if r.Inventory[i] != u.Inventory[i] {
			return false
		}
	}
	return true
}

// ResourceDeleted marks a live row whose object disappeared as failed and
// makes the tracker forget the environment's Flux state.
func (w *WatchSink) ResourceDeleted(ctx context.Context, ref k8s.ResourceRef) error {
	if ref.EnvironmentID != "" && (ref.Kind == fluxgate.KindGitRepository || ref.Kind == fluxgate.KindKustomization) {
		w.s.tracker.ForgetEnvironment(ref.EnvironmentID)
	}
	r, ok, err := w.resourceFor(ctx, ref)
	if err != nil || !ok {
		return err
	}
	return w.markMissing(ctx, r)
}

func (w *WatchSink) markMissing(ctx context.Context, r *fluxgate.GitOpsResource) error {
	if r.Status == fluxgate.ResourceFailed && r.ErrorMessage == "missing in cluster" {
		return nil
	}
	return w.s.ApplyResourceStatus(ctx, r.ID, fluxgate.ResourceStatusUpdate{
		Status:                fluxgate.ResourceFailed,
		Suspended:             r.Suspended,
		Conditions:            r.Conditions,
		Inventory:             r.Inventory,
		LastAppliedRevision:   r.LastAppliedRevision,
		LastAttemptedRevision: r.LastAttemptedRevision,
		ErrorMessage:          "missing in cluster",
		ObservedGeneration:    r.ObservedGeneration,
		LastReconciledAt:      r.LastReconciledAt,
	})
}

// FluxEvent records an event a Flux controller wrote about a managed object.
func (w *WatchSink) FluxEvent(ctx context.Context, ev *fluxgate.FluxEvent) error {
	_, err := w.s.RecordFluxEvent(ctx, ev)
	if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
		return nil // an object fluxgate does not manage (any more)
	}
	return err
}

// Resync marks every live row of a watched kind whose object is not in the
// cluster as failed "missing in cluster".
func (w *WatchSink) Resync(ctx context.Context, present []k8s.ResourceRef) error {
	here := make(map[k8s.ObjectKey]bool, len(present))
	for _, ref := range present {
		here[ref.ObjectKey] = true
	}
	page := fluxgate.Page{First: fluxgate.MaxPageSize}
	for {
		rows, pi, err := w.s.store.ListResources(ctx, fluxgate.ResourceFilter{Page: page})
		if err != nil {
			return err
		}
		for _, r := range rows {
			if !here[k8s.KeyOf(r)] {
				if err := w.markMissing(ctx, r); err != nil {
					return err
				}
			}
		}
		if !pi.HasNextPage {
			return nil
		}
		page.After = pi.EndCursor
	}
}

// WorkloadChanged passes a workload's rollout state to the deployment
// tracker, which advances (stores and publishes) the deployments of the
// environments whose Kustomization inventory lists it: HEALTHY, with pod
// counts, as soon as the rollout is done.
func (w *WatchSink) WorkloadChanged(ctx context.Context, obj client.Object) error {
	_, err := w.s.tracker.ObserveWorkloadObject(ctx, obj)
	return err
}

// WorkloadDeleted makes the tracker forget a deleted workload (id is its
// Flux inventory id).
func (w *WatchSink) WorkloadDeleted(_ context.Context, id string) error {
	w.s.tracker.ForgetWorkload(id)
	return nil
}
