package k8s_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
	"github.com/fluxgate/fluxgate/tracker"
)

// workloadRecorder is a recorder that is also a WorkloadSink.
type workloadRecorder struct {
	*recorder
	wchanged []client.Object // deep copies
	wdeleted []string
}

func newWorkloadRecorder() *workloadRecorder { return &workloadRecorder{recorder: newRecorder()} }

func (r *workloadRecorder) WorkloadChanged(_ context.Context, obj client.Object) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.poke()
	r.calls++
	r.wchanged = append(r.wchanged, obj.DeepCopyObject().(client.Object))
	return nil
}

func (r *workloadRecorder) WorkloadDeleted(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.poke()
	r.calls++
	r.wdeleted = append(r.wdeleted, id)
	return nil
}

// reports returns the reported states of kind ns/name (call with r.mu held).
func (r *workloadRecorder) reports(kind, ns, name string) []client.Object {
	var out []client.Object
	for _, o := range r.wchanged {
		if o.GetObjectKind().GroupVersionKind().Kind == kind && o.GetNamespace() == ns && o.GetName() == name {
			out = append(out, o)
		}
	}
	return out
}

// last returns the last reported state of kind ns/name as kstatus sees it
// (call with r.mu held).
func (r *workloadRecorder) last(t *testing.T, kind, ns, name string) (tracker.Workload, bool) {
	t.Helper()
	rs := r.reports(kind, ns, name)
	if len(rs) == 0 {
		return tracker.Workload{}, false
	}
	w, err := tracker.WorkloadFromObject(rs[len(rs)-1])
	if err != nil {
		t.Fatalf("workload of the reported %s %s/%s: %v", kind, ns, name, err)
	}
	return w, true
}

func (r *workloadRecorder) deletedID(id string) bool {
	for _, d := range r.wdeleted {
		if d == id {
			return true
		}
	}
	return false
}

// rolledOutDeployment is the captured Deployment (testdata/objects), in ns
// as name, labelled by kustomize-controller unless unlabelled, without its
// status.
func rolledOutDeployment(t *testing.T, ns, name string, labelled bool) (*appsv1.Deployment, appsv1.DeploymentStatus) {
	t.Helper()
	var d appsv1.Deployment
	readJSON(t, "testdata/objects/deployment-rolled-out.json", &d)
	st := d.Status
	lbl := map[string]string{"app": d.Labels["app"]}
	if labelled {
		lbl[k8s.LabelKustomizeName] = d.Labels[k8s.LabelKustomizeName]
		lbl["kustomize.toolkit.fluxcd.io/namespace"] = d.Labels["kustomize.toolkit.fluxcd.io/namespace"]
	}
	d.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl}
	d.Status = appsv1.DeploymentStatus{}
	return &d, st
}

func setDeploymentStatus(t *testing.T, e *k8stest.Env, ns, name string, mutate func(d *appsv1.Deployment)) {
	t.Helper()
	var d appsv1.Deployment
	if err := e.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	mutate(&d)
	if err := e.Client.Status().Update(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
}

func podSpec() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.28.0"}}},
	}
}

// TestWatcherReportsWorkloads runs the watcher with a WorkloadSink: labelled
// Deployments, StatefulSets and DaemonSets are reported (initial list and
// watch) with the status kstatus and the tracker read, their deletion by
// Flux inventory id; unlabelled ones are not, nor label-only changes.
func TestWatcherReportsWorkloads(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "workloads")
	c := e.Client

	web, rolledOut := rolledOutDeployment(t, ns, "webapp", true)
	marker, _ := rolledOutDeployment(t, ns, "marker", true)
	other, _ := rolledOutDeployment(t, ns, "other", false)
	for _, d := range []*appsv1.Deployment{web, marker, other} {
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	rec := newWorkloadRecorder()
	// One worker: the queue is processed in order, so that a change that
	// must not be reported is known to be processed once a later one was.
	// Workloads are watched in all namespaces (the default).
	startWatcher(t, e, rec, k8s.WatcherOptions{Namespaces: []string{ns}, NoEvents: true, Workers: 1})

	// The initial list: a new Deployment, not rolled out.
	rec.waitFor(t, "initial workload list", 30*time.Second, func() bool {
		return len(rec.reports("Deployment", ns, "webapp")) == 1 && len(rec.reports("Deployment", ns, "marker")) == 1
	})
	rec.mu.Lock()
	first := rec.reports("Deployment", ns, "webapp")[0].(*appsv1.Deployment)
	w, _ := rec.last(t, "Deployment", ns, "webapp")
	rec.mu.Unlock()
	if len(first.Spec.Template.Spec.Containers) != 0 || first.ManagedFields != nil {
		t.Errorf("cached Deployment keeps its pod template or managed fields")
	}
	if first.APIVersion != "apps/v1" || first.Kind != "Deployment" {
		t.Errorf("reported Deployment has apiVersion %q kind %q, want apps/v1 Deployment", first.APIVersion, first.Kind)
	}
	if w.ID != ns+"_webapp_apps_Deployment" || w.RolledOut() || w.TotalPods != 2 || w.ReadyPods != 0 {
		t.Errorf("new Deployment reported as %+v, want %s_webapp_apps_Deployment in progress, 0/2 pods", w, ns)
	}

	// Rolling out: one of two replicas updated and ready.
	setDeploymentStatus(t, e, ns, "webapp", func(d *appsv1.Deployment) {
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	})
	rec.waitFor(t, "rollout in progress", 10*time.Second, func() bool {
		w, ok := rec.last(t, "Deployment", ns, "webapp")
		return ok && w.ReadyPods == 1 && w.TotalPods == 2 && w.Status == status.InProgressStatus
	})
	// Rolled out: the captured status.
	setDeploymentStatus(t, e, ns, "webapp", func(d *appsv1.Deployment) {
		d.Status = rolledOut
		d.Status.ObservedGeneration = d.Generation
	})
	rec.waitFor(t, "rolled out", 10*time.Second, func() bool {
		w, ok := rec.last(t, "Deployment", ns, "webapp")
		return ok && w.RolledOut() && w.ReadyPods == 2 && w.TotalPods == 2 && w.ID == ns+"_webapp_apps_Deployment"
	})

	// A label-only change is not reported: with one worker, once the
	// later marker change is reported the webapp change was processed.
	rec.mu.Lock()
	n := len(rec.reports("Deployment", ns, "webapp"))
	rec.mu.Unlock()
	var d appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "webapp"}, &d); err != nil {
		t.Fatal(err)
	}
	// A label (an annotation would bump a Deployment's generation).
	d.Labels["example.com/note"] = "metadata-only"
	if err := c.Update(ctx, &d); err != nil {
		t.Fatal(err)
	}
	setDeploymentStatus(t, e, ns, "marker", func(d *appsv1.Deployment) {
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1}
	})
	rec.waitFor(t, "marker change", 10*time.Second, func() bool {
		w, ok := rec.last(t, "Deployment", ns, "marker")
		return ok && w.ReadyPods == 1
	})
	rec.mu.Lock()
	if m := len(rec.reports("Deployment", ns, "webapp")); m != n {
		t.Errorf("a label-only change was reported (%d reports, want %d)", m, n)
	}
	rec.mu.Unlock()

	// Created while watching: a StatefulSet and a DaemonSet.
	one := int32(1)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: map[string]string{k8s.LabelKustomizeName: "web"}},
		Spec:       appsv1.StatefulSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, Template: podSpec()},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent", Labels: map[string]string{k8s.LabelKustomizeName: "web"}},
		Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, Template: podSpec()},
	}
	for _, o := range []client.Object{sts, ds} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitFor(t, "statefulset and daemonset", 10*time.Second, func() bool {
		s, ok1 := rec.last(t, "StatefulSet", ns, "db")
		d, ok2 := rec.last(t, "DaemonSet", ns, "agent")
		return ok1 && ok2 && s.ID == ns+"_db_apps_StatefulSet" && d.ID == ns+"_agent_apps_DaemonSet"
	})

	// The label removed from marker: gone from the watch, reported deleted.
	// The label added to other: reported.
	relabel := func(name string, set bool) {
		var d appsv1.Deployment
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		if set {
			d.Labels[k8s.LabelKustomizeName] = "web"
		} else {
			delete(d.Labels, k8s.LabelKustomizeName)
		}
		if err := c.Update(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	if len(rec.reports("Deployment", ns, "other")) != 0 {
		t.Error("an unlabelled Deployment was reported")
	}
	rec.mu.Unlock()
	relabel("marker", false)
	relabel("other", true)
	rec.waitFor(t, "relabelled", 10*time.Second, func() bool {
		return rec.deletedID(ns+"_marker_apps_Deployment") && len(rec.reports("Deployment", ns, "other")) == 1
	})

	// Deleted.
	if err := c.Delete(ctx, sts); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "statefulset deleted", 10*time.Second, func() bool {
		return rec.deletedID(ns + "_db_apps_StatefulSet")
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, id := range rec.wdeleted {
		if strings.HasPrefix(id, ns+"_") && id != ns+"_marker_apps_Deployment" && id != ns+"_db_apps_StatefulSet" {
			t.Errorf("unexpected deletion %s", id)
		}
	}
	if k8s.WorkloadID(ns, "db", "StatefulSet") != tracker.InventoryID(ns, "db", "apps", "StatefulSet") {
		t.Error("k8s.WorkloadID and tracker.InventoryID differ")
	}
}

// logRecorder is a slog.Handler that keeps the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level start with msg, by their "kind"
// attribute.
func (h *logRecorder) count(level slog.Level, msg string) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, r := range h.recs {
		if r.Level != level || !strings.HasPrefix(r.Message, msg) {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "kind" {
				out[a.Value.String()]++
			}
			return true
		})
	}
	return out
}

// TestWorkloadWatchForbidden runs the watcher as a user that may watch
// Kustomizations but not workloads: the watcher runs and reports the Flux
// objects, the forbidden workload list is logged once per kind (not at every
// retry), and once the permission is granted the workloads are reported.
func TestWorkloadWatchForbidden(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "wl-rbac")
	c := e.Client
	user := "fluxgate-watcher-" + k8stest.Suffix()
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	create := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flux"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"kustomize.toolkit.fluxcd.io"}, Resources: []string{"kustomizations"}, Verbs: []string{"get", "list", "watch"},
	}}})
	create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flux"}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "flux"}})
	if _, err := newClient(t, e).Apply(ctx, kustomization(t, ns, "app")); err != nil {
		t.Fatal(err)
	}
	web, _ := rolledOutDeployment(t, ns, "webapp", true)
	create(web)

	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	logs := &logRecorder{}
	rec := newWorkloadRecorder()
	startWatcher(t, &k8stest.Env{Config: cfg, Client: e.Client}, rec, k8s.WatcherOptions{
		Namespaces: []string{ns}, Kinds: []fluxgate.ResourceKind{fluxgate.KindKustomization}, NoEvents: true,
		Logger: slog.New(logs),
	})
	rec.waitFor(t, "kustomization reported", 10*time.Second, func() bool {
		return rec.lastChange(fluxgate.KindKustomization, "app") != nil
	})
	kinds := []string{"Deployment", "StatefulSet", "DaemonSet"}
	waitLogs := func(what string, level slog.Level, msg string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := logs.count(level, msg)
			if got[kinds[0]] > 0 && got[kinds[1]] > 0 && got[kinds[2]] > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %v", what, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLogs("forbidden warnings", slog.LevelWarn, "workload watch forbidden")
	waitLogs("retries still forbidden", slog.LevelDebug, "workload watch still forbidden")
	for _, k := range kinds {
		if n := logs.count(slog.LevelWarn, "workload watch forbidden")[k]; n != 1 {
			t.Errorf("forbidden %s list warned %d times, want once", k, n)
		}
	}

	// Granted: the informers' retry lists and reports the Deployment.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"list", "watch"},
	}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}}
	create(role)
	t.Cleanup(func() { _ = c.Delete(context.Background(), role) })
	create(binding)
	t.Cleanup(func() { _ = c.Delete(context.Background(), binding) })
	rec.waitFor(t, "workload reported after the grant", 60*time.Second, func() bool {
		return len(rec.reports("Deployment", ns, "webapp")) == 1
	})
}
