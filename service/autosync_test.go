package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/service"
)

// fakeCluster keeps spec.suspend and annotations of the objects fluxgate
// applies; Reconcile refuses suspended objects, as the real client does.
// Methods the tests do not use panic through the nil embedded interface.
type fakeCluster struct {
	service.Cluster
	mu          sync.Mutex
	suspended   map[string]bool
	annotations map[string]map[string]string
	reconciled  map[string]int
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{suspended: map[string]bool{}, annotations: map[string]map[string]string{}, reconciled: map[string]int{}}
}

func (c *fakeCluster) EnsureNamespace(context.Context, string, string) error { return nil }

func (c *fakeCluster) Apply(_ context.Context, r *fluxgate.GitOpsResource) (*k8s.Applied, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.suspended[k8s.KeyOf(r).String()] = r.Suspended
	return &k8s.Applied{Generation: 1}, nil
}

func (c *fakeCluster) Suspend(_ context.Context, key k8s.ObjectKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.suspended[key.String()] = true
	return nil
}

func (c *fakeCluster) Resume(_ context.Context, key k8s.ObjectKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.suspended[key.String()] = false
	c.reconciled[key.String()]++ // resume requests a reconcile, as flux resume does
	return nil
}

func (c *fakeCluster) SetAnnotations(_ context.Context, key k8s.ObjectKey, a map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.annotations[key.String()] == nil {
		c.annotations[key.String()] = map[string]string{}
	}
	for k, v := range a {
		c.annotations[key.String()][k] = v
	}
	return nil
}

func (c *fakeCluster) Reconcile(_ context.Context, key k8s.ObjectKey, _ time.Duration) (*k8s.ReconcileResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suspended[key.String()] {
		return nil, fluxgate.Errorf(fluxgate.ECONFLICT, "%s is suspended", key)
	}
	c.reconciled[key.String()]++
	return &k8s.ReconcileResult{Token: "t"}, nil
}

func (c *fakeCluster) state(r *fluxgate.GitOpsResource) (suspended bool, syncRevision string, reconciles int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := k8s.KeyOf(r).String()
	return c.suspended[k], c.annotations[k][k8s.AnnotationSyncRevision], c.reconciled[k]
}

// observe reports the Kustomization as the watcher would: spec.suspend and
// the sync annotation from the fake cluster, lastAppliedRevision given.
func (c *fakeCluster) observe(t *testing.T, sink *service.WatchSink, r *fluxgate.GitOpsResource, applied string) {
	t.Helper()
	suspended, rev, _ := c.state(r)
	obj := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name}}
	if rev != "" {
		obj.Annotations = map[string]string{k8s.AnnotationSyncRevision: rev}
	}
	obj.Spec.Suspend = suspended
	st := fluxgate.ResourceStatusUpdate{Status: fluxgate.ResourceReady, Suspended: suspended, LastAppliedRevision: applied, LastAttemptedRevision: applied}
	if suspended {
		st.Status = fluxgate.ResourceSuspended
	}
	err := sink.ResourceChanged(context.Background(), k8s.ResourceChange{
		ResourceRef: k8s.ResourceRef{ObjectKey: k8s.KeyOf(r), ProjectID: r.ProjectID, EnvironmentID: *r.EnvironmentID, ResourceID: r.ID},
		Status:      st, Object: obj,
	})
	if err != nil {
		t.Fatalf("ResourceChanged: %v", err)
	}
}

func TestAutoSyncOffKeepsKustomizationsSuspended(t *testing.T) {
	kc := newFakeCluster()
	f := newApprovalFixture(t, 1, service.WithCluster(service.StaticCluster{C: kc}))
	owner := f.as("owner")
	ks := func(name string) *fluxgate.GitOpsResource {
		return must(f.svc.CreateResource(owner, service.ResourceInput{
			ProjectID: f.p.ID, EnvironmentID: f.env.ID, Kind: fluxgate.KindKustomization, Name: name,
			Spec: &fluxgate.KustomizationSpec{SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "shop"}, Path: "./k8s/overlays/prod"},
		}))
	}
	a := ks("shop-a")
	if s, _, _ := kc.state(a); s || a.Suspended {
		t.Fatal("a Kustomization of an autoSync environment was created suspended")
	}

	// autoSync off: suspended now, and new ones are created suspended.
	off := f.env.GitOps
	off.AutoSync = false
	f.env = must(f.svc.UpdateEnvironment(owner, service.UpdateEnvironmentInput{ID: f.env.ID, GitOps: &off}))
	if s, _, _ := kc.state(a); !s {
		t.Fatal("turning autoSync off did not suspend the Kustomization")
	}
	b := ks("shop-b")
	if s, _, _ := kc.state(b); !s || !b.Suspended {
		t.Fatal("a Kustomization created with autoSync off is not suspended")
	}
	if row := must(f.svc.Resource(owner, a.ID)); !row.Suspended {
		t.Fatal("the row of the suspended Kustomization says it is not")
	}

	// An approved deploy resumes them for its commit and asks for a reconcile.
	old := f.head()
	d := f.request("acme/web:6.0.0")
	res, err := f.svc.ApproveDeployment(f.as("m1"), d.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	sha := res.Deployment.CommitSHA
	if sha == "" || sha != f.head() {
		t.Fatalf("approved deploy commit %q, head %s", sha, f.head())
	}
	for _, r := range []*fluxgate.GitOpsResource{a, b} {
		s, rev, n := kc.state(r)
		if s || rev != sha || n < 2 { // Resume and requestReconcile
			t.Fatalf("%s after the approved deploy: suspended=%t sync-revision=%q reconciles=%d", r.Name, s, rev, n)
		}
	}
	// Flux reports the old revision still applied: kept running.
	sink := f.svc.WatchSink()
	kc.observe(t, sink, a, "main@sha1:"+old)
	if s, _, _ := kc.state(a); s {
		t.Fatal("suspended before the approved commit was applied")
	}
	// Applied: suspended again.
	kc.observe(t, sink, a, "main@sha1:"+sha)
	if s, _, _ := kc.state(a); !s {
		t.Fatal("not suspended again after the approved commit was applied")
	}
	if row := must(f.svc.Resource(owner, a.ID)); !row.Suspended {
		t.Fatal("the row does not say suspended after the re-suspension")
	}

	// After a restart nothing is in memory: a running Kustomization whose
	// sync revision is applied, or that names none, is suspended on its
	// first observation.
	restarted := service.New(f.svc.Store(), service.WithCluster(service.StaticCluster{C: kc}))
	kc.observe(t, restarted.WatchSink(), b, "main@sha1:"+sha)
	if s, _, _ := kc.state(b); !s {
		t.Fatal("a resumed Kustomization whose revision is applied stayed running after a restart")
	}
	must(f.svc.SetSuspended(owner, b.ID, false)) // someone resumes it by hand
	if err := kc.SetAnnotations(context.Background(), k8s.KeyOf(b), map[string]string{k8s.AnnotationSyncRevision: ""}); err != nil {
		t.Fatal(err)
	}
	kc.observe(t, restarted.WatchSink(), b, "main@sha1:"+sha)
	if s, _, _ := kc.state(b); !s {
		t.Fatal("a running Kustomization with nothing in flight was not suspended")
	}

	// syncEnvironment: needs sync; resumes for the branch head.
	_, err = f.svc.SyncEnvironment(f.as("viewer"), f.env.ID)
	wantErrCode(t, "viewer syncs", err, fluxgate.EFORBIDDEN)
	moved := f.push("scale", func(s string) string { return s + "\n" })
	sr, err := f.svc.SyncEnvironment(f.as("developer"), f.env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Revision != moved || sr.Resumed != 2 {
		t.Fatalf("syncEnvironment = %+v, want revision %s and 2 resumed", sr, moved)
	}
	_, before, _ := kc.state(a)
	if s, _, _ := kc.state(a); s || before != moved {
		t.Fatalf("after syncEnvironment: suspended=%t sync-revision=%q", s, before)
	}
	kc.observe(t, sink, a, "main@sha1:"+moved)
	if s, _, _ := kc.state(a); !s {
		t.Fatal("not suspended again after the synced revision was applied")
	}

	// autoSync back on: resumed for good, and observations leave it alone.
	on := f.env.GitOps
	on.AutoSync = true
	f.env = must(f.svc.UpdateEnvironment(owner, service.UpdateEnvironmentInput{ID: f.env.ID, GitOps: &on}))
	for _, r := range []*fluxgate.GitOpsResource{a, b} {
		if s, _, _ := kc.state(r); s {
			t.Fatalf("%s still suspended after autoSync was turned on", r.Name)
		}
	}
	kc.observe(t, sink, a, "main@sha1:"+moved)
	if s, _, _ := kc.state(a); s {
		t.Fatal("an autoSync environment's Kustomization was suspended")
	}
}
