package k8s

import (
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// Flux condition types and reasons the status mapping looks at.
const (
	conditionReady       = meta.ReadyCondition       // "Ready"
	conditionReconciling = meta.ReconcilingCondition // "Reconciling"
	conditionStalled     = meta.StalledCondition     // "Stalled"
)

// waitingReasons are Ready=False reasons that mean "not yet", not "failed".
func waitingReason(reason string) bool {
	switch reason {
	case meta.DependencyNotReadyReason, meta.ProgressingReason, meta.ProgressingWithRetryReason:
		return true
	}
	return false
}

// StatusOf maps a typed Flux object to the domain status: conditions,
// revisions, inventory and observed generation. Objects of other types get
// ResourcePending.
func StatusOf(obj client.Object) fluxgate.ResourceStatusUpdate {
	var (
		u      fluxgate.ResourceStatusUpdate
		conds  []metav1.Condition
		obsGen int64
	)
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		conds, obsGen = o.Status.Conditions, o.Status.ObservedGeneration
		if a := o.Status.Artifact; a != nil {
			u.LastAppliedRevision = a.Revision
			u.LastAttemptedRevision = a.Revision
		}
	case *sourcev1.HelmRepository:
		conds, obsGen = o.Status.Conditions, o.Status.ObservedGeneration
		if a := o.Status.Artifact; a != nil {
			u.LastAppliedRevision = a.Revision
			u.LastAttemptedRevision = a.Revision
		}
	case *kustomizev1.Kustomization:
		conds, obsGen = o.Status.Conditions, o.Status.ObservedGeneration
		u.LastAppliedRevision = o.Status.LastAppliedRevision
		u.LastAttemptedRevision = o.Status.LastAttemptedRevision
		if inv := o.Status.Inventory; inv != nil {
			u.Inventory = make([]fluxgate.InventoryEntry, 0, len(inv.Entries))
			for _, e := range inv.Entries {
				u.Inventory = append(u.Inventory, fluxgate.InventoryEntry{ID: e.ID, Version: e.Version})
			}
		}
		if len(o.Status.History) > 0 {
			t := o.Status.History[0].LastReconciled.Time
			u.LastReconciledAt = &t
		}
	case *helmv2.HelmRelease:
		conds, obsGen = o.Status.Conditions, o.Status.ObservedGeneration
		u.LastAttemptedRevision = o.Status.LastAttemptedRevision
		if latest := o.Status.History.Latest(); latest != nil {
			if latest.Status == "deployed" || latest.Status == "superseded" {
				u.LastAppliedRevision = latest.ChartVersion
			}
			if !latest.LastDeployed.IsZero() {
				t := latest.LastDeployed.Time
				u.LastReconciledAt = &t
			}
		}
		if inv := o.Status.Inventory; inv != nil {
			u.Inventory = make([]fluxgate.InventoryEntry, 0, len(inv.Entries))
			for _, e := range inv.Entries {
				u.Inventory = append(u.Inventory, fluxgate.InventoryEntry{ID: e.ID, Version: e.Version})
			}
		}
	case *imagev1.ImageRepository:
		conds, obsGen = o.Status.Conditions, o.Status.ObservedGeneration
		if r := o.Status.LastScanResult; r != nil {
			u.LastAppliedRevision = r.Revision
			u.LastAttemptedRevision = r.Revision
			if !r.ScanTime.IsZero() {
				t := r.ScanTime.Time
				u.LastReconciledAt = &t
			}
		}
	case *imagev1.ImagePolicy:
		conds, obsGen = o.Status.Conditions, o.Status.ObservedGeneration
		if ref := o.Status.LatestRef; ref != nil {
			u.LastAppliedRevision = ref.Name + ":" + ref.Tag
			u.LastAttemptedRevision = u.LastAppliedRevision
		}
	default:
		u.Status = fluxgate.ResourcePending
		return u
	}
	u.Suspended = specSuspend(obj)
	u.ObservedGeneration = obsGen
	u.Conditions = domainConditions(conds)
	u.Status, u.ErrorMessage = MapConditions(conds, u.Suspended, obj.GetGeneration(), obsGen)
	if u.LastReconciledAt == nil {
		if c := findCondition(conds, conditionReady); c != nil && !c.LastTransitionTime.IsZero() {
			t := c.LastTransitionTime.Time
			u.LastReconciledAt = &t
		}
	}
	return u
}

// MapConditions maps Flux conditions to a domain status and, for
// ResourceFailed, the message to show:
//
//   - spec.suspend → suspended (whatever the conditions say);
//   - no conditions → pending;
//   - Stalled=True, or Ready=False for a failure reason (BuildFailed,
//     HealthCheckFailed, ArtifactFailed, …) → failed with the message;
//   - Ready=Unknown, Reconciling=True, Ready=False while waiting on a
//     dependency, or a Ready condition older than the object's generation →
//     reconciling;
//   - Ready=True → ready.
func MapConditions(conds []metav1.Condition, suspended bool, generation, observedGeneration int64) (fluxgate.ResourceStatus, string) {
	if suspended {
		return fluxgate.ResourceSuspended, ""
	}
	if len(conds) == 0 {
		return fluxgate.ResourcePending, ""
	}
	if c := findCondition(conds, conditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		return fluxgate.ResourceFailed, c.Message
	}
	ready := findCondition(conds, conditionReady)
	if ready != nil && ready.Status == metav1.ConditionFalse && !waitingReason(ready.Reason) {
		return fluxgate.ResourceFailed, ready.Message
	}
	if ready == nil || ready.Status != metav1.ConditionTrue {
		return fluxgate.ResourceReconciling, ""
	}
	if c := findCondition(conds, conditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		return fluxgate.ResourceReconciling, ""
	}
	// Ready=True but for an older spec: Flux has not acted on the change yet.
	stale := observedGeneration
	if ready.ObservedGeneration > 0 {
		stale = ready.ObservedGeneration
	}
	if generation > 0 && stale > 0 && stale < generation {
		return fluxgate.ResourceReconciling, ""
	}
	return fluxgate.ResourceReady, ""
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func domainConditions(conds []metav1.Condition) []fluxgate.Condition {
	out := make([]fluxgate.Condition, 0, len(conds))
	for _, c := range conds {
		out = append(out, fluxgate.Condition{
			Type:               c.Type,
			Status:             string(c.Status),
			Reason:             c.Reason,
			Message:            c.Message,
			LastTransitionTime: c.LastTransitionTime.Time.UTC(),
			ObservedGeneration: c.ObservedGeneration,
		})
	}
	return out
}

// lastHandledReconcileAt returns status.lastHandledReconcileAt of a Flux object.
func lastHandledReconcileAt(obj client.Object) string {
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		return o.Status.LastHandledReconcileAt
	case *sourcev1.HelmRepository:
		return o.Status.LastHandledReconcileAt
	case *kustomizev1.Kustomization:
		return o.Status.LastHandledReconcileAt
	case *helmv2.HelmRelease:
		return o.Status.LastHandledReconcileAt
	case *imagev1.ImageRepository:
		return o.Status.LastHandledReconcileAt
	case *imagev1.ImagePolicy:
		return o.Status.LastHandledReconcileAt
	}
	return ""
}
