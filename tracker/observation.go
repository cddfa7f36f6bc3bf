package tracker

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/fluxgate/fluxgate"
)

// Observation is what is known about one environment's Flux objects and
// workloads at a moment: the GitRepository that fetches the environment's
// branch, the Kustomization that applies it, and the workloads that
// Kustomization applied. A nil Source or Apply means "not known".
type Observation struct {
	Source *SourceStatus
	Apply  *ApplyStatus
	// Workloads are the rolled-out state of workloads (Deployments,
	// StatefulSets, DaemonSets). Only those listed in Apply.Inventory count
	// for the environment; others are ignored. Advance takes them as the
	// state after Flux applied what Apply shows: the Tracker passes only
	// states seen since it saw the apply.
	Workloads []Workload
	// Timeout is the environment's progress timeout: a deployment that
	// reaches no new step for that long fails. Zero means DefaultTimeout.
	// The Tracker fills it in from its options.
	Timeout time.Duration
}

// SourceStatus is the state of the environment's GitRepository.
type SourceStatus struct {
	// ArtifactRevision is status.artifact.revision, e.g.
	// "main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192".
	ArtifactRevision string
	Conditions       []fluxgate.Condition
}

// ApplyStatus is the state of the environment's Kustomization.
type ApplyStatus struct {
	LastAppliedRevision   string
	LastAttemptedRevision string
	Conditions            []fluxgate.Condition
	Inventory             []fluxgate.InventoryEntry
}

// Workload is the rollout state of one workload, computed with kstatus.
type Workload struct {
	// ID is the object's Flux inventory id:
	// "<namespace>_<name>_<group>_<kind>", e.g. "default_webapp_apps_Deployment".
	ID string
	// Status is kstatus' verdict: Current means rolled out (observed
	// generation current, every replica updated, ready and available).
	Status  status.Status
	Message string
	// ReadyPods counts updated replicas that are ready; TotalPods the
	// desired replicas.
	ReadyPods int
	TotalPods int
}

// RolledOut reports whether kstatus found the workload Current.
func (w Workload) RolledOut() bool { return w.Status == status.CurrentStatus }

// SourceFromStatus builds the source part of an observation from the
// watcher's mapped status of a GitRepository (k8s.StatusOf puts
// status.artifact.revision in LastAppliedRevision).
func SourceFromStatus(u fluxgate.ResourceStatusUpdate) *SourceStatus {
	return &SourceStatus{ArtifactRevision: u.LastAppliedRevision, Conditions: u.Conditions}
}

// ApplyFromStatus builds the apply part of an observation from the
// watcher's mapped status of a Kustomization.
func ApplyFromStatus(u fluxgate.ResourceStatusUpdate) *ApplyStatus {
	return &ApplyStatus{
		LastAppliedRevision:   u.LastAppliedRevision,
		LastAttemptedRevision: u.LastAttemptedRevision,
		Conditions:            u.Conditions,
		Inventory:             u.Inventory,
	}
}

// InventoryID is the Flux inventory id of an object.
func InventoryID(namespace, name, group, kind string) string {
	return namespace + "_" + name + "_" + group + "_" + kind
}

// workloadKind reports whether objects of group/kind are workloads whose
// rollout decides HEALTHY.
func workloadKind(group, kind string) bool {
	if group != "apps" {
		return false
	}
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		return true
	}
	return false
}

// isWorkloadID reports whether an inventory id names a workload kind.
func isWorkloadID(id string) bool {
	parts := strings.Split(id, "_")
	if len(parts) != 4 {
		return false
	}
	return workloadKind(parts[2], parts[3])
}

// WorkloadOf computes the rollout state of a Deployment, StatefulSet or
// DaemonSet with kstatus. Any other kind is an error.
func WorkloadOf(u *unstructured.Unstructured) (Workload, error) {
	gvk := u.GroupVersionKind()
	if !workloadKind(gvk.Group, gvk.Kind) {
		return Workload{}, fmt.Errorf("workload %s/%s: kind %s is not a Deployment, StatefulSet or DaemonSet", u.GetNamespace(), u.GetName(), gvk.GroupKind())
	}
	res, err := status.Compute(u)
	if err != nil {
		return Workload{}, fmt.Errorf("compute status of %s %s/%s: %w", gvk.Kind, u.GetNamespace(), u.GetName(), err)
	}
	w := Workload{
		ID:      InventoryID(u.GetNamespace(), u.GetName(), gvk.Group, gvk.Kind),
		Status:  res.Status,
		Message: res.Message,
	}
	w.ReadyPods, w.TotalPods = podCounts(u)
	return w, nil
}

// WorkloadFromObject is WorkloadOf for an object as an informer hands it
// over: a typed *appsv1.Deployment, *appsv1.StatefulSet or
// *appsv1.DaemonSet (whose TypeMeta informers leave empty), or an
// *unstructured.Unstructured.
func WorkloadFromObject(obj runtime.Object) (Workload, error) {
	var kind string
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return WorkloadOf(o)
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	case *appsv1.DaemonSet:
		kind = "DaemonSet"
	default:
		return Workload{}, fmt.Errorf("workload: unsupported object %T", obj)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return Workload{}, fmt.Errorf("workload to unstructured: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(kind))
	return WorkloadOf(u)
}

// podCounts returns the updated-and-ready and desired pods of a workload.
func podCounts(u *unstructured.Unstructured) (ready, total int) {
	num := func(fields ...string) (int, bool) {
		v, ok, err := unstructured.NestedInt64(u.Object, fields...)
		if err != nil || !ok {
			return 0, false
		}
		return int(v), true
	}
	if u.GetKind() == "DaemonSet" {
		total, _ = num("status", "desiredNumberScheduled")
		ready, _ = num("status", "numberReady")
		if updated, ok := num("status", "updatedNumberScheduled"); ok {
			ready = min(ready, updated)
		} else {
			ready = 0
		}
		return ready, total
	}
	total, ok := num("spec", "replicas")
	if !ok {
		total = 1 // the API server's default
	}
	ready, _ = num("status", "readyReplicas")
	updated, _ := num("status", "updatedReplicas")
	ready = min(ready, updated)
	// Before the controller has seen the new spec, nothing counts as updated.
	if gen, obs := u.GetGeneration(), observedGeneration(u); gen > 0 && obs < gen {
		ready = 0
	}
	return ready, total
}

func observedGeneration(u *unstructured.Unstructured) int64 {
	v, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return v
}
