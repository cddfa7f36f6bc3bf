package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// LabelKustomizeName is the label kustomize-controller sets on every object
// it applies (the Kustomization's name). The watcher watches the workloads
// that carry it.
const LabelKustomizeName = "kustomize.toolkit.fluxcd.io/name"

// WorkloadSink is implemented by a Sink that also wants the rollout state
// of the workloads Flux applied: apps/v1 Deployments, StatefulSets and
// DaemonSets labelled LabelKustomizeName, in WatcherOptions.WorkloadNamespaces.
// The Watcher checks for it with a type assertion, so a Sink without these
// methods runs no workload informers. The calls follow the Sink rules
// (never concurrent for one workload; an error is retried with backoff).
type WorkloadSink interface {
	// WorkloadChanged: a workload was added, or its generation, spec or
	// status changed (a change of labels alone is not reported). obj is the
	// watcher's cached *appsv1.Deployment, *appsv1.StatefulSet or
	// *appsv1.DaemonSet, apiVersion/kind set, without its pod template
	// and volume claim templates: read it, never modify it.
	WorkloadChanged(ctx context.Context, obj client.Object) error
	// WorkloadDeleted: a workload reported before is gone from the
	// cluster, or no longer carries the label. id is its Flux inventory id
	// (WorkloadID).
	WorkloadDeleted(ctx context.Context, id string) error
}

// WorkloadKinds are the apps/v1 kinds the watcher watches for a WorkloadSink.
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet"}

// WorkloadID is the Flux inventory id of an apps/v1 workload,
// "<namespace>_<name>_apps_<kind>" (as in a Kustomization's
// status.inventory and tracker.InventoryID).
func WorkloadID(namespace, name, kind string) string {
	return namespace + "_" + name + "_" + appsv1.GroupName + "_" + kind
}

func newWorkloadList(kind string) client.ObjectList {
	switch kind {
	case "Deployment":
		return &appsv1.DeploymentList{}
	case "StatefulSet":
		return &appsv1.StatefulSetList{}
	default:
		return &appsv1.DaemonSetList{}
	}
}

func newWorkload(kind string) client.Object {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}
	case "StatefulSet":
		return &appsv1.StatefulSet{}
	default:
		return &appsv1.DaemonSet{}
	}
}

// workloadState is what a run remembers of the workloads it watches.
type workloadState struct {
	sink      WorkloadSink
	informers map[informerKey]toolscache.SharedIndexInformer
	// guarded by watchRun.mu:
	sent   map[ObjectKey]uint64 // workloadHash last reported
	lists  map[informerKey]int
	denied map[informerKey]bool // the last list was forbidden (logged once)
}

// addWorkloadInformers creates the informers of the workload kinds in each
// of the workload namespaces. They are started by startWorkloads.
func (r *watchRun) addWorkloadInformers(ctx context.Context) error {
	w := r.w
	ws := &workloadState{
		sink:      w.workloads,
		informers: map[informerKey]toolscache.SharedIndexInformer{},
		sent:      map[ObjectKey]uint64{},
		lists:     map[informerKey]int{},
		denied:    map[informerKey]bool{},
	}
	req, err := labels.NewRequirement(LabelKustomizeName, selection.Exists, nil)
	if err != nil {
		return fmt.Errorf("workload selector: %w", err)
	}
	sel := labels.NewSelector().Add(*req)
	for _, kind := range workloadKinds {
		for _, ns := range w.opts.WorkloadNamespaces {
			k := informerKey{kind: fluxgate.ResourceKind(kind), namespace: ns}
			listOpts := func(raw *metav1.ListOptions) *client.ListOptions {
				return &client.ListOptions{Namespace: ns, LabelSelector: sel, Raw: raw}
			}
			lw := &listWatch{toolscache.ListWatch{
				ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
					list := newWorkloadList(kind)
					if err := w.c.List(ctx, list, listOpts(&opts)); err != nil {
						return nil, err
					}
					if opts.Continue == "" {
						r.workloadListed(ctx, k)
					}
					return list, nil
				},
				WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
					return w.c.Watch(ctx, newWorkloadList(kind), listOpts(&opts))
				},
			}}
			inf := toolscache.NewSharedIndexInformerWithOptions(lw, newWorkload(kind), toolscache.SharedIndexInformerOptions{
				ObjectDescription: fmt.Sprintf("%s in %q", kind, ns),
			})
			if err := inf.SetTransform(stripWorkloadForCache); err != nil {
				return fmt.Errorf("workload informer transform: %w", err)
			}
			enqueue := func(obj any) {
				if o, ok := tombstoned(obj).(client.Object); ok {
					r.queue.Add(item{typ: itemWorkload, key: ObjectKey{Kind: k.kind, Namespace: o.GetNamespace(), Name: o.GetName()}})
				}
			}
			if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc:    enqueue,
				UpdateFunc: func(_, obj any) { enqueue(obj) },
				DeleteFunc: enqueue,
			}); err != nil {
				return fmt.Errorf("workload informer handler: %w", err)
			}
			if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *toolscache.Reflector, err error) {
				r.workloadWatchFailed(ctx, k, err)
			}); err != nil {
				return fmt.Errorf("workload informer error handler: %w", err)
			}
			ws.informers[k] = inf
		}
	}
	r.wl = ws
	return nil
}

// startWorkloads runs the workload informers without waiting for their
// initial list: a cluster that forbids listing them (RBAC) or answers
// slowly must not keep the Flux watcher from running.
func (r *watchRun) startWorkloads(ctx context.Context, wg *sync.WaitGroup) {
	for _, inf := range r.wl.informers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inf.RunWithContext(ctx)
		}()
	}
}

// workloadListed records a successful LIST of a workload informer.
func (r *watchRun) workloadListed(ctx context.Context, k informerKey) {
	r.mu.Lock()
	r.wl.lists[k]++
	n := r.wl.lists[k]
	wasDenied := r.wl.denied[k]
	r.wl.denied[k] = false
	r.mu.Unlock()
	if wasDenied {
		r.w.opts.Logger.InfoContext(ctx, "workload watch: listing is allowed now", "kind", k.kind, "namespace", k.namespace)
	}
	if n > 1 {
		if m := r.w.opts.Metrics; m != nil {
			m.Relists.WithLabelValues(string(k.kind)).Inc()
		}
	}
}

// workloadWatchFailed logs a failed list or watch; the informer retries
// with backoff. A forbidden list (no RBAC on apps/v1) is logged once as a
// warning until a list succeeds: deployments then reach HEALTHY from the
// Kustomization's Ready condition instead.
func (r *watchRun) workloadWatchFailed(ctx context.Context, k informerKey, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	log := r.w.opts.Logger
	if apierrors.IsForbidden(err) {
		r.mu.Lock()
		first := !r.wl.denied[k]
		r.wl.denied[k] = true
		r.mu.Unlock()
		if first {
			log.WarnContext(ctx, "workload watch forbidden; deployments become healthy from the Kustomization's Ready condition instead (grant list/watch on apps/v1 deployments, statefulsets, daemonsets)",
				"kind", k.kind, "namespace", k.namespace, "err", err)
		} else {
			log.DebugContext(ctx, "workload watch still forbidden", "kind", k.kind, "namespace", k.namespace, "err", err)
		}
		return
	}
	log.WarnContext(ctx, "workload watch failed; relisting", "kind", k.kind, "namespace", k.namespace, "err", err)
}

// stripWorkloadForCache drops what neither kstatus nor the pod counts read,
// the pod template above all, and sets apiVersion/kind (a typed decode
// leaves them empty).
func stripWorkloadForCache(obj any) (any, error) {
	obj, _ = stripForCache(obj)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Template = corev1.PodTemplateSpec{}
		o.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	case *appsv1.StatefulSet:
		o.Spec.Template = corev1.PodTemplateSpec{}
		o.Spec.VolumeClaimTemplates = nil
		o.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
	case *appsv1.DaemonSet:
		o.Spec.Template = corev1.PodTemplateSpec{}
		o.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DaemonSet"))
	}
	return obj, nil
}

// workloadHash fingerprints what a workload's rollout state depends on:
// generation, deletion, spec (without the pod template) and status.
func workloadHash(obj client.Object) uint64 {
	var spec, st any
	switch o := obj.(type) {
	case *appsv1.Deployment:
		spec, st = o.Spec, o.Status
	case *appsv1.StatefulSet:
		spec, st = o.Spec, o.Status
	case *appsv1.DaemonSet:
		spec, st = o.Spec, o.Status
	}
	h := fnv.New64a()
	_ = json.NewEncoder(h).Encode(struct {
		Generation int64
		Deleting   bool
		Spec       any
		Status     any
	}{obj.GetGeneration(), obj.GetDeletionTimestamp() != nil, spec, st})
	return h.Sum64()
}

func (r *watchRun) getWorkload(key ObjectKey) (client.Object, bool) {
	return lookup(r.wl.informers, key)
}

// syncWorkload reports a workload's new state, or its deletion, to the
// WorkloadSink. A state already reported is not reported again.
func (r *watchRun) syncWorkload(ctx context.Context, key ObjectKey) error {
	obj, present := r.getWorkload(key)
	r.mu.Lock()
	last, known := r.wl.sent[key]
	r.mu.Unlock()
	if !present {
		if !known {
			return nil
		}
		if err := r.wl.sink.WorkloadDeleted(ctx, WorkloadID(key.Namespace, key.Name, string(key.Kind))); err != nil {
			return err
		}
		r.mu.Lock()
		delete(r.wl.sent, key)
		r.mu.Unlock()
		return nil
	}
	sum := workloadHash(obj)
	if known && sum == last {
		return nil
	}
	if err := r.wl.sink.WorkloadChanged(ctx, obj); err != nil {
		return err
	}
	r.mu.Lock()
	r.wl.sent[key] = sum
	r.mu.Unlock()
	return nil
}
