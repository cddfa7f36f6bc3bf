package k8s_test

// Integration tests on a real kube-apiserver + etcd (envtest, binaries from
// the local cluster's cache). They skip when the binaries are not built,
// and fail instead under FLUXGATE_REQUIRE_CLUSTER=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
)

var env *k8stest.Env

func TestMain(m *testing.M) { os.Exit(k8stest.Run(m, &env)) }

// recorder is a Sink that records every call.
type recorder struct {
	mu       sync.Mutex
	changes  []k8s.ResourceChange
	deleted  []k8s.ResourceRef
	events   []*fluxgate.FluxEvent
	resyncs  [][]k8s.ResourceRef
	calls    int
	notify   chan struct{}
	failNext int // fail that many ResourceChanged calls
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) ResourceChanged(_ context.Context, ch k8s.ResourceChange) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.poke()
	r.calls++
	if r.failNext > 0 {
		r.failNext--
		return fmt.Errorf("database down")
	}
	ch.Object = nil // cached object: do not keep it
	r.changes = append(r.changes, ch)
	return nil
}

func (r *recorder) ResourceDeleted(_ context.Context, ref k8s.ResourceRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.poke()
	r.calls++
	r.deleted = append(r.deleted, ref)
	return nil
}

func (r *recorder) FluxEvent(_ context.Context, ev *fluxgate.FluxEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.poke()
	r.calls++
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) Resync(_ context.Context, present []k8s.ResourceRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.poke()
	r.calls++
	r.resyncs = append(r.resyncs, present)
	return nil
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// waitFor polls cond (under the recorder's lock) until it holds or the
// timeout passes.
func (r *recorder) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s; changes=%d deleted=%v events=%d resyncs=%d", what, len(r.changes), r.deleted, len(r.events), len(r.resyncs))
		}
	}
}

// lastChange returns the last change of name (call with r.mu held).
func (r *recorder) lastChange(kind fluxgate.ResourceKind, name string) *k8s.ResourceChange {
	for i := len(r.changes) - 1; i >= 0; i-- {
		if r.changes[i].Kind == kind && r.changes[i].Name == name {
			return &r.changes[i]
		}
	}
	return nil
}

func newClient(t *testing.T, e *k8stest.Env) *k8s.Client {
	t.Helper()
	c, err := k8s.New(e.Config, k8s.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func res(t testing.TB, ns string, kind fluxgate.ResourceKind, name string, spec any) *fluxgate.GitOpsResource {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	env := "env-1"
	return &fluxgate.GitOpsResource{ID: "id-" + name, ProjectID: "proj-1", EnvironmentID: &env, Kind: kind, Name: name, Namespace: ns, Spec: b}
}

func gitRepo(t testing.TB, ns, name string) *fluxgate.GitOpsResource {
	return res(t, ns, fluxgate.KindGitRepository, name, fluxgate.GitRepositorySpec{URL: "https://git.example.com/org/" + name + ".git", Ref: fluxgate.GitRef{Branch: "main"}})
}

func kustomization(t testing.TB, ns, name string) *fluxgate.GitOpsResource {
	return res(t, ns, fluxgate.KindKustomization, name, fluxgate.KustomizationSpec{
		SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "app"}, Path: "./k8s", Prune: true, Interval: "1m",
	})
}

func startWatcher(t *testing.T, cfgEnv *k8stest.Env, sink k8s.Sink, opts k8s.WatcherOptions) (*k8s.Watcher, context.CancelFunc) {
	t.Helper()
	w, err := k8s.NewWatcher(cfgEnv.Config, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !w.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return w, stop
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func TestApplyUpdateDeleteEveryKind(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "apply")
	c := newClient(t, e)
	f := false
	specs := []struct {
		kind   fluxgate.ResourceKind
		spec   any
		update any
	}{
		{fluxgate.KindGitRepository,
			fluxgate.GitRepositorySpec{URL: "https://git.example.com/org/app.git", Ref: fluxgate.GitRef{Branch: "main"}, SecretRef: "creds"},
			fluxgate.GitRepositorySpec{URL: "https://git.example.com/org/app.git", Ref: fluxgate.GitRef{Tag: "v1.2.0"}, Interval: "30s"}},
		{fluxgate.KindHelmRepository,
			fluxgate.HelmRepositorySpec{URL: "https://stefanprodan.github.io/podinfo"},
			fluxgate.HelmRepositorySpec{URL: "oci://ghcr.io/stefanprodan/charts", Type: "oci"}},
		{fluxgate.KindImageRepository,
			fluxgate.ImageRepositorySpec{Image: "ghcr.io/org/app"},
			fluxgate.ImageRepositorySpec{Image: "ghcr.io/org/app", Interval: "1m", ExclusionList: []string{"^.*\\.sig$"}}},
		{fluxgate.KindKustomization,
			fluxgate.KustomizationSpec{SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "app"}, Path: "./k8s/overlays/dev", Prune: true,
				HealthChecks: []fluxgate.HealthCheck{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: ns}},
				DependsOn:    []fluxgate.DependsOn{{Name: "infra"}}, Timeout: "2m", RetryInterval: "20s", TargetNamespace: ns, Wait: true},
			fluxgate.KustomizationSpec{SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "app"}, Path: "./k8s/overlays/prod", Prune: false}},
		{fluxgate.KindHelmRelease,
			fluxgate.HelmReleaseSpec{Chart: "podinfo", Version: "6.x", SourceKind: "HelmRepository", SourceName: "podinfo",
				Values: json.RawMessage(`{"replicaCount":2}`), ValuesFrom: []fluxgate.ValuesReference{{Kind: "Secret", Name: "vals"}},
				Install: &fluxgate.HelmInstall{RemediationRetries: 3, CreateNamespace: true},
				Upgrade: &fluxgate.HelmUpgrade{RemediationRetries: 2, RemediateLastFailure: &f, CleanupOnFail: true}},
			fluxgate.HelmReleaseSpec{Chart: "podinfo", Version: "6.5.x", SourceKind: "HelmRepository", SourceName: "podinfo", Values: json.RawMessage(`{"replicaCount":3}`)}},
		{fluxgate.KindImagePolicy,
			fluxgate.ImagePolicySpec{ImageRepository: "app", Policy: "semver", Range: ">=1.0.0"},
			fluxgate.ImagePolicySpec{ImageRepository: "app", Policy: "alphabetical", Order: "desc", FilterTags: &fluxgate.TagFilter{Pattern: "^main-(?P<ts>.*)", Extract: "$ts"}}},
	}
	for _, s := range specs {
		t.Run(string(s.kind), func(t *testing.T) {
			r := res(t, ns, s.kind, "app", s.spec)
			a, err := c.Apply(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if a.UID == "" || a.Generation != 1 || a.Status.Status != fluxgate.ResourcePending {
				t.Fatalf("applied = uid %q gen %d status %s", a.UID, a.Generation, a.Status.Status)
			}
			obj, _, err := c.Get(ctx, k8s.KeyOf(r))
			if err != nil {
				t.Fatal(err)
			}
			if obj.GetLabels()[k8s.LabelProject] != "proj-1" || obj.GetLabels()[k8s.LabelResourceID] != "id-app" {
				t.Fatalf("labels = %v", obj.GetLabels())
			}
			if mf := obj.GetManagedFields(); len(mf) != 1 || mf[0].Manager != "fluxgate" || mf[0].Operation != metav1.ManagedFieldsOperationApply {
				t.Fatalf("managed fields = %+v", mf)
			}
			// Update: same object, new generation.
			b, _ := json.Marshal(s.update)
			r.Spec = b
			a2, err := c.Apply(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if a2.UID != a.UID || a2.Generation != 2 {
				t.Fatalf("update: uid %q→%q gen %d", a.UID, a2.UID, a2.Generation)
			}
			// Re-applying the same spec is a no-op.
			a3, err := c.Apply(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if a3.Generation != 2 {
				t.Fatalf("idempotent apply bumped generation to %d", a3.Generation)
			}
			dr, err := c.Delete(ctx, k8s.KeyOf(r), k8s.DeleteOptions{Wait: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if !dr.Gone {
				t.Fatalf("delete = %+v", dr)
			}
			if _, _, err := c.Get(ctx, k8s.KeyOf(r)); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
				t.Fatalf("get after delete: %v", err)
			}
		})
	}
	t.Run("prune honoured", func(t *testing.T) {
		r := kustomization(t, ns, "pruned")
		if _, err := c.Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
		// Flux's finalizer: deletion waits until Flux has pruned.
		var ks kustomizev1.Kustomization
		key := types.NamespacedName{Namespace: ns, Name: "pruned"}
		if err := e.Client.Get(ctx, key, &ks); err != nil {
			t.Fatal(err)
		}
		ks.Finalizers = []string{kustomizev1.KustomizationFinalizer}
		if err := e.Client.Update(ctx, &ks); err != nil {
			t.Fatal(err)
		}
		no := false
		dr, err := c.Delete(ctx, k8s.KeyOf(r), k8s.DeleteOptions{Prune: &no, Wait: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if dr.Gone || !slices.Contains(dr.Finalizers, kustomizev1.KustomizationFinalizer) {
			t.Fatalf("delete = %+v", dr)
		}
		if err := e.Client.Get(ctx, key, &ks); err != nil {
			t.Fatal(err)
		}
		if ks.Spec.Prune || ks.DeletionTimestamp == nil {
			t.Fatalf("prune=%t deleting=%v: Flux must see prune=false before it finalizes", ks.Spec.Prune, ks.DeletionTimestamp)
		}
		// Flux orphans the objects and removes its finalizer.
		ks.Finalizers = nil
		if err := e.Client.Update(ctx, &ks); err != nil {
			t.Fatal(err)
		}
		if dr, err := c.Delete(ctx, k8s.KeyOf(r), k8s.DeleteOptions{Wait: 5 * time.Second}); err != nil || !dr.Gone {
			t.Fatalf("delete after finalizer = %+v, %v", dr, err)
		}
	})
}

func TestCRDSchemaRejectsInvalidSpecs(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "schema")
	c := newClient(t, e)

	// Valid for fluxgate's own checks, rejected by the CRD (maxItems 25).
	var many []string
	for i := range 30 {
		many = append(many, fmt.Sprintf("^tag-%d$", i))
	}
	_, err := c.Apply(ctx, res(t, ns, fluxgate.KindImageRepository, "many", fluxgate.ImageRepositorySpec{Image: "ghcr.io/org/app", ExclusionList: many}))
	if fluxgate.ErrorCode(err) != fluxgate.EINVALID || fluxgate.ErrorField(err) != "exclusionList" {
		t.Fatalf("apply = %v (code %s field %q), want EINVALID on exclusionList", err, fluxgate.ErrorCode(err), fluxgate.ErrorField(err))
	}

	// Objects written without fluxgate's validation are rejected by the
	// schema too.
	bad := []struct {
		name string
		obj  map[string]any
		want string
	}{
		{"interval pattern", map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
			"spec": map[string]any{"url": "https://x.io/a", "interval": "soon"}}, "spec.interval"},
		{"url pattern", map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
			"spec": map[string]any{"url": "git@github.com:org/a", "interval": "1m"}}, "spec.url"},
		{"missing sourceRef", map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
			"spec": map[string]any{"interval": "1m", "prune": true}}, "spec.sourceRef"},
		{"source kind enum", map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
			"spec": map[string]any{"interval": "1m", "prune": true, "sourceRef": map[string]any{"kind": "ConfigMap", "name": "x"}}}, "spec.sourceRef.kind"},
		{"chart or chartRef", map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
			"spec": map[string]any{"interval": "1m"}}, "spec"},
		{"policy order enum", map[string]any{"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
			"spec": map[string]any{"imageRepositoryRef": map[string]any{"name": "a"}, "policy": map[string]any{"alphabetical": map[string]any{"order": "sideways"}}}}, "spec.policy.alphabetical.order"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			u := unstructuredObj(b.obj, ns, "bad")
			err := e.Client.Create(ctx, u)
			if err == nil {
				t.Fatal("the API server accepted an invalid object")
			}
			if !strings.Contains(err.Error(), b.want) {
				t.Fatalf("error %v does not name %s", err, b.want)
			}
		})
	}
}

func TestWatcherStatusEventsAndMetrics(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "watch")
	other := e.Namespace(t, "other")
	c := newClient(t, e)
	reg := prometheus.NewRegistry()
	metrics, err := k8s.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	w, _ := startWatcher(t, e, rec, k8s.WatcherOptions{Namespaces: []string{ns}, Metrics: metrics})
	rec.waitFor(t, "initial resync", 10*time.Second, func() bool { return len(rec.resyncs) == 1 && len(rec.resyncs[0]) == 0 })

	if _, err := c.Apply(ctx, gitRepo(t, ns, "app")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, kustomization(t, ns, "app")); err != nil {
		t.Fatal(err)
	}
	// Not watched: another namespace, and an object fluxgate does not manage.
	if _, err := c.Apply(ctx, gitRepo(t, other, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	unmanaged := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "flux-own", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{URL: "https://x.io/a", Interval: metav1.Duration{Duration: time.Minute}}}
	if err := e.Client.Create(ctx, unmanaged); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "pending objects", 10*time.Second, func() bool {
		g, k := rec.lastChange(fluxgate.KindGitRepository, "app"), rec.lastChange(fluxgate.KindKustomization, "app")
		return g != nil && k != nil && g.Status.Status == fluxgate.ResourcePending && k.Status.Status == fluxgate.ResourcePending
	})
	rec.mu.Lock()
	g := rec.lastChange(fluxgate.KindGitRepository, "app")
	if g.ProjectID != "proj-1" || g.ResourceID != "id-app" || g.EnvironmentID != "env-1" || g.Generation != 1 {
		t.Fatalf("ref = %+v", g.ResourceRef)
	}
	for _, ch := range rec.changes {
		if ch.Name == "elsewhere" || ch.Name == "flux-own" {
			t.Fatalf("watcher reported an unwatched object: %+v", ch.ResourceRef)
		}
	}
	rec.mu.Unlock()

	// Flux (this test) reports progress, then a stored artifact.
	var repo sourcev1.GitRepository
	key := types.NamespacedName{Namespace: ns, Name: "app"}
	if err := e.Client.Get(ctx, key, &repo); err != nil {
		t.Fatal(err)
	}
	repo.Status.ObservedGeneration = 1
	repo.Status.Conditions = []metav1.Condition{{Type: "Reconciling", Status: "True", Reason: "Progressing", Message: "building artifact",
		LastTransitionTime: metav1.Now(), ObservedGeneration: 1},
		{Type: "Ready", Status: "Unknown", Reason: "Progressing", Message: "reconciliation in progress", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	if err := e.Client.Status().Update(ctx, &repo); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "reconciling", 10*time.Second, func() bool {
		g := rec.lastChange(fluxgate.KindGitRepository, "app")
		return g.Status.Status == fluxgate.ResourceReconciling
	})
	var fixture sourcev1.GitRepository
	readJSON(t, "testdata/objects/gitrepository-ready.json", &fixture)
	if err := e.Client.Get(ctx, key, &repo); err != nil {
		t.Fatal(err)
	}
	repo.Status = fixture.Status
	if err := e.Client.Status().Update(ctx, &repo); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "git repository ready", 10*time.Second, func() bool {
		g := rec.lastChange(fluxgate.KindGitRepository, "app")
		return g.Status.Status == fluxgate.ResourceReady && g.Status.LastAppliedRevision == "main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192"
	})
	// Reads come from the watcher's cache.
	if obj, u, ok := w.Get(k8s.ObjectKey{Kind: fluxgate.KindGitRepository, Namespace: ns, Name: "app"}); !ok || u.Status != fluxgate.ResourceReady || obj.GetLabels()[k8s.LabelResourceID] != "id-app" {
		t.Fatalf("cache read = %v %+v", ok, u)
	}
	if _, _, ok := w.Get(k8s.ObjectKey{Kind: fluxgate.KindGitRepository, Namespace: other, Name: "elsewhere"}); ok {
		t.Fatal("cache holds an unwatched namespace")
	}
	if v := counterValue(t, reg, "flux_git_repository_sync_total", map[string]string{"status": "success"}); v != 1 {
		t.Fatalf("sync success = %v", v)
	}
	if v := counterValue(t, reg, "flux_git_repository_sync_duration_seconds", nil); v != 1 {
		t.Fatalf("sync duration samples = %v", v)
	}
	if v := counterValue(t, reg, "flux_resources_ready", map[string]string{"kind": "GitRepository"}); v != 1 {
		t.Fatalf("ready gauge = %v", v)
	}

	// Kustomization: applied with inventory, then a failed health check.
	var ks kustomizev1.Kustomization
	var ksFixture kustomizev1.Kustomization
	readJSON(t, "testdata/objects/kustomization-ready.json", &ksFixture)
	if err := e.Client.Get(ctx, key, &ks); err != nil {
		t.Fatal(err)
	}
	ks.Status = ksFixture.Status
	if err := e.Client.Status().Update(ctx, &ks); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "kustomization ready", 10*time.Second, func() bool {
		k := rec.lastChange(fluxgate.KindKustomization, "app")
		return k.Status.Status == fluxgate.ResourceReady && len(k.Status.Inventory) == 2
	})
	if err := e.Client.Get(ctx, key, &ks); err != nil {
		t.Fatal(err)
	}
	readJSON(t, "testdata/objects/kustomization-healthcheckfailed-conditions.json", &ks.Status.Conditions)
	if err := e.Client.Status().Update(ctx, &ks); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "kustomization failed", 10*time.Second, func() bool {
		k := rec.lastChange(fluxgate.KindKustomization, "app")
		return k.Status.Status == fluxgate.ResourceFailed && strings.HasPrefix(k.Status.ErrorMessage, "health check failed")
	})
	if v := counterValue(t, reg, "flux_errors_total", map[string]string{"kind": "Kustomization", "reason": "HealthCheckFailed"}); v != 1 {
		t.Fatalf("errors = %v", v)
	}
	if v := counterValue(t, reg, "flux_kustomization_apply_total", map[string]string{"status": "failure"}); v != 1 {
		t.Fatalf("apply failures = %v", v)
	}
	if v := counterValue(t, reg, "flux_resources_ready", map[string]string{"kind": "Kustomization"}); v != 0 {
		t.Fatalf("kustomization ready gauge = %v", v)
	}

	// Events: from the captured flux-system events, retargeted at our
	// objects; one about an unmanaged object is not reported.
	var events corev1.EventList
	readJSON(t, "testdata/objects/flux-system-events.json", &events)
	for i, name := range []string{"app", "app", "flux-own"} {
		ev := events.Items[i].DeepCopy()
		ev.ObjectMeta = metav1.ObjectMeta{Name: fmt.Sprintf("ev-%d", i), Namespace: ns, Annotations: ev.Annotations}
		ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.InvolvedObject.UID = ns, name, ""
		if name == "flux-own" {
			ev.InvolvedObject.Kind, ev.InvolvedObject.APIVersion = "GitRepository", "source.toolkit.fluxcd.io/v1"
		}
		if err := e.Client.Create(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitFor(t, "flux events", 10*time.Second, func() bool { return len(rec.events) >= 2 })
	time.Sleep(300 * time.Millisecond)
	rec.mu.Lock()
	if len(rec.events) != 2 {
		t.Fatalf("events = %d, want 2 (the unmanaged object's is dropped)", len(rec.events))
	}
	ev0 := rec.events[0]
	rec.mu.Unlock()
	if ev0.ProjectID != "proj-1" || ev0.ResourceID == nil || *ev0.ResourceID != "id-app" || ev0.Revision == "" || ev0.DedupKey == "" || ev0.Namespace != ns {
		t.Fatalf("event = %+v", ev0)
	}

	// Delete: reported with its ids.
	if _, err := c.Delete(ctx, k8s.ObjectKey{Kind: fluxgate.KindKustomization, Namespace: ns, Name: "app"}, k8s.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "deleted", 10*time.Second, func() bool {
		return len(rec.deleted) == 1 && rec.deleted[0].Kind == fluxgate.KindKustomization && rec.deleted[0].ResourceID == "id-app"
	})
}

func TestReconcileAndSuspendOnAPIServer(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "reconcile")
	c := newClient(t, e)
	r := kustomization(t, ns, "app")
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	key := k8s.KeyOf(r)

	// Nobody handles it: bounded, not an error.
	start := time.Now()
	out, err := c.Reconcile(ctx, key, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if out.Handled || time.Since(start) > 3*time.Second {
		t.Fatalf("unhandled = %+v after %v", out, time.Since(start))
	}

	// The test plays kustomize-controller.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for fctx.Err() == nil {
			var ks kustomizev1.Kustomization
			if err := e.Client.Get(fctx, types.NamespacedName{Namespace: ns, Name: "app"}, &ks); err == nil {
				tok := ks.Annotations[meta.ReconcileRequestAnnotation]
				if tok != "" && tok != out.Token && ks.Status.LastHandledReconcileAt != tok {
					ks.Status.LastHandledReconcileAt = tok
					ks.Status.ObservedGeneration = ks.Generation
					ks.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "True", Reason: "ReconciliationSucceeded",
						Message: "Applied revision: main@sha1:1234", LastTransitionTime: metav1.Now(), ObservedGeneration: ks.Generation}}
					ks.Status.LastAppliedRevision = "main@sha1:1234"
					_ = e.Client.Status().Update(fctx, &ks)
				}
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	out, err = c.Reconcile(ctx, key, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Handled || out.Status.Status != fluxgate.ResourceReady || out.Status.LastAppliedRevision != "main@sha1:1234" {
		t.Fatalf("reconcile = %+v", out)
	}

	if err := c.Suspend(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, u, err := c.Get(ctx, key)
	if err != nil || u.Status != fluxgate.ResourceSuspended {
		t.Fatalf("after suspend: %+v %v", u, err)
	}
	if _, err := c.Reconcile(ctx, key, 0); fluxgate.ErrorCode(err) != fluxgate.ECONFLICT {
		t.Fatalf("reconcile while suspended: %v", err)
	}
	// A spec update through Apply keeps the object suspended only if the
	// resource says so: the database is the source of truth.
	r.Suspended = true
	if a, err := c.Apply(ctx, r); err != nil || !a.Status.Suspended {
		t.Fatalf("apply suspended: %+v %v", a, err)
	}
	if err := c.Resume(ctx, key); err != nil {
		t.Fatal(err)
	}
	obj, u, err := c.Get(ctx, key)
	if err != nil || u.Suspended || u.Status == fluxgate.ResourceSuspended {
		t.Fatalf("after resume: %+v %v", u, err)
	}
	if obj.GetAnnotations()[meta.ReconcileRequestAnnotation] == out.Token {
		t.Fatal("resume did not request a reconcile")
	}
}

func TestGitCredentialsOnAPIServer(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := "proj-creds-" + k8stest.Suffix()
	c := newClient(t, e)
	if err := c.EnsureNamespace(ctx, ns, "proj-1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
	var nsObj corev1.Namespace
	if err := e.Client.Get(ctx, types.NamespacedName{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels[k8s.LabelProject] != "proj-1" || nsObj.Labels[k8s.LabelManagedBy] != "fluxgate" {
		t.Fatalf("namespace labels = %v", nsObj.Labels)
	}
	info, err := c.ApplyGitCredentials(ctx, ns, "git-basic", k8s.GitCredentials{Basic: &k8s.BasicAuth{Username: "bot", Password: "pw-1"}}, map[string]string{k8s.LabelProject: "proj-1"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "git-basic" || info.Type != k8s.CredentialBasicAuth || info.SecretType != "Opaque" {
		t.Fatalf("info = %+v", info)
	}
	// Rotation replaces the data; switching to a token drops the old keys.
	if _, err := c.ApplyGitCredentials(ctx, ns, "git-basic", k8s.GitCredentials{Token: &k8s.TokenAuth{Token: "tok-2"}}, nil); err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "git-basic"}, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["bearerToken"]) != "tok-2" || len(s.Data) != 1 || s.Type != corev1.SecretTypeOpaque || s.Labels[k8s.LabelCredentialType] != k8s.CredentialToken {
		t.Fatalf("secret = type %s labels %v keys %v", s.Type, s.Labels, keys(s.Data))
	}
	// A GitRepository using it diagnoses as fine for an https URL.
	r := res(t, ns, fluxgate.KindGitRepository, "app", fluxgate.GitRepositorySpec{URL: "https://git.example.com/org/app.git", SecretRef: "git-basic"})
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	d, err := c.DiagnoseGitRepository(ctx, ns, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range d.Issues {
		if i.Severity == k8s.SeverityError {
			t.Fatalf("unexpected issue %+v", i)
		}
	}
	if err := c.DeleteGitCredentials(ctx, ns, "git-basic"); err != nil {
		t.Fatal(err)
	}
	d, err = c.DiagnoseGitRepository(ctx, ns, "app")
	if err != nil {
		t.Fatal(err)
	}
	if d.Healthy || d.Issues[0].Code != "secret_missing" {
		t.Fatalf("diagnosis = %+v", d)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// unstructuredObj is obj with metadata.name/namespace set.
func unstructuredObj(obj map[string]any, ns, name string) client.Object {
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestNotificationWebhookOnAPIServer(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "notify")
	c := newClient(t, e)
	wh := k8s.NotificationWebhook{Namespace: ns, Address: "https://fluxgate.example.com/webhooks/flux", HMACKey: "hmac-key-1"}
	if err := c.ApplyNotificationWebhook(ctx, wh); err != nil {
		t.Fatal(err)
	}
	var provider notificationv1beta3.Provider
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "fluxgate"}, &provider); err != nil {
		t.Fatal(err)
	}
	if provider.Spec.Type != "generic-hmac" || provider.Spec.SecretRef.Name != "fluxgate" {
		t.Fatalf("provider = %+v", provider.Spec)
	}
	var alert notificationv1beta3.Alert
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "fluxgate"}, &alert); err != nil {
		t.Fatal(err)
	}
	if len(alert.Spec.EventSources) != 6 || alert.Spec.EventSources[0].Name != "*" || alert.Spec.EventSeverity != "info" {
		t.Fatalf("alert = %+v", alert.Spec)
	}
	var s corev1.Secret
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "fluxgate"}, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["token"]) != "hmac-key-1" || string(s.Data["address"]) != wh.Address {
		t.Fatalf("secret keys = %v", keys(s.Data))
	}
	wh.Address = "ftp://nope"
	if err := c.ApplyNotificationWebhook(ctx, wh); fluxgate.ErrorField(err) != "address" {
		t.Fatalf("bad address: %v", err)
	}
}

func TestWatcherRetriesFailingSink(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "retry")
	c := newClient(t, e)
	rec := newRecorder()
	rec.failNext = 2 // the database is down for two calls
	startWatcher(t, e, rec, k8s.WatcherOptions{Namespaces: []string{ns}, NoEvents: true})
	if _, err := c.Apply(ctx, gitRepo(t, ns, "app")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "change delivered after retries", 10*time.Second, func() bool {
		return len(rec.changes) == 1 && rec.calls >= 3
	})
}
