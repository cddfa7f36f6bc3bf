package k8s_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
)

// TestWatcherRelistAfterLostWatch cuts the watcher's connection, changes the
// cluster behind its back, and checks that once the connection is back the
// watcher relists (its old resourceVersion is compacted away: the API server
// answers 410 Gone), reports the changes, reports the vanished object and
// calls Resync with what is present.
func TestWatcherRelistAfterLostWatch(t *testing.T) {
	env.Require(t)
	// A dedicated control plane: watches served by etcd (no watch cache)
	// and compacted every second, so a watch resumed from an old
	// resourceVersion gets 410 Gone.
	e := k8stest.StartForTest(t, k8stest.Options{APIServerArgs: map[string][]string{
		"watch-cache":              {"false"},
		"etcd-compaction-interval": {"1s"},
	}})
	ctx := context.Background()
	ns := e.Namespace(t, "relist")
	c := newClient(t, e)
	for _, name := range []string{"gone", "changed", "same"} {
		if _, err := c.Apply(ctx, kustomization(t, ns, name)); err != nil {
			t.Fatal(err)
		}
	}
	proxy, viaProxy := e.NewProxy(t)
	reg := prometheus.NewRegistry()
	metrics, err := k8s.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	proxied := &k8stest.Env{Config: viaProxy, Client: e.Client}
	startWatcher(t, proxied, rec, k8s.WatcherOptions{Namespaces: []string{ns}, Metrics: metrics, NoEvents: true, RepairDelay: 200 * time.Millisecond})
	rec.waitFor(t, "initial resync", 10*time.Second, func() bool { return len(rec.resyncs) == 1 && len(rec.resyncs[0]) == 3 })
	rec.waitFor(t, "initial changes", 10*time.Second, func() bool { return len(rec.changes) == 3 })

	proxy.Cut()
	if _, err := c.Delete(ctx, k8s.ObjectKey{Kind: fluxgate.KindKustomization, Namespace: ns, Name: "gone"}, k8s.DeleteOptions{Wait: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var ks kustomizev1.Kustomization
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "changed"}, &ks); err != nil {
		t.Fatal(err)
	}
	ks.Status.ObservedGeneration = 1
	ks.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "False", Reason: "BuildFailed", Message: "kustomization path not found",
		LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	if err := e.Client.Status().Update(ctx, &ks); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, kustomization(t, ns, "new")); err != nil {
		t.Fatal(err)
	}
	// Let the API server compact past the watcher's resourceVersion.
	time.Sleep(3 * time.Second)
	proxy.Restore()

	rec.waitFor(t, "resync after relist", 60*time.Second, func() bool {
		if len(rec.resyncs) < 2 {
			return false
		}
		var names []string
		for _, r := range rec.resyncs[len(rec.resyncs)-1] {
			names = append(names, r.Name)
		}
		slices.Sort(names)
		return slices.Equal(names, []string{"changed", "new", "same"})
	})
	rec.waitFor(t, "changes after relist", 10*time.Second, func() bool {
		ch, nw := rec.lastChange(fluxgate.KindKustomization, "changed"), rec.lastChange(fluxgate.KindKustomization, "new")
		return ch != nil && ch.Status.Status == fluxgate.ResourceFailed && ch.Status.ErrorMessage == "kustomization path not found" && nw != nil
	})
	rec.waitFor(t, "vanished object reported", 10*time.Second, func() bool {
		return len(rec.deleted) == 1 && rec.deleted[0].Name == "gone" && rec.deleted[0].ResourceID == "id-gone"
	})
	if v := counterValue(t, reg, "fluxgate_watcher_relists_total", map[string]string{"kind": "Kustomization"}); v < 1 {
		t.Fatalf("relists = %v, want a relist", v)
	}
	// The repair pass reports "same" again although it did not change (it
	// is queued with the others; wait for it rather than count at once).
	rec.waitFor(t, "unchanged object reported again after the relist", 10*time.Second, func() bool {
		n := 0
		for _, ch := range rec.changes {
			if ch.Name == "same" {
				n++
			}
		}
		return n >= 2
	})
}

// TestLeaderElectionOneWriter runs two replicas' watchers behind one Lease:
// only the holder reports; when it stops, the other takes over.
func TestLeaderElectionOneWriter(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	ns := e.Namespace(t, "lease")
	c := newClient(t, e)
	type replica struct {
		rec     *recorder
		elector *k8s.Elector
		cancel  context.CancelFunc
		done    chan error
	}
	start := func(id string) *replica {
		rec := newRecorder()
		el, err := k8s.NewElector(e.Config, k8s.LeaderOptions{Namespace: ns, Name: "watcher", Identity: id,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		w, err := k8s.NewWatcher(e.Config, rec, k8s.WatcherOptions{Namespaces: []string{ns}, NoEvents: true})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- el.Run(rctx, w.Run) }()
		r := &replica{rec: rec, elector: el, cancel: cancel, done: done}
		t.Cleanup(func() { r.cancel(); <-r.done })
		return r
	}
	a, b := start("replica-a"), start("replica-b")
	var leader, follower *replica
	deadline := time.Now().Add(20 * time.Second)
	for leader == nil {
		switch {
		case a.elector.IsLeader():
			leader, follower = a, b
		case b.elector.IsLeader():
			leader, follower = b, a
		case time.Now().After(deadline):
			t.Fatal("nobody acquired the lease")
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
	leader.rec.waitFor(t, "leader resync", 20*time.Second, func() bool { return len(leader.rec.resyncs) == 1 })
	for i := range 3 {
		if _, err := c.Apply(ctx, kustomization(t, ns, fmt.Sprintf("app-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	leader.rec.waitFor(t, "leader sees objects", 10*time.Second, func() bool { return len(leader.rec.changes) == 3 })
	time.Sleep(500 * time.Millisecond)
	if n := follower.rec.callCount(); n != 0 {
		t.Fatalf("the follower's sink was called %d times", n)
	}
	if follower.elector.IsLeader() || follower.elector.Leader() != leader.elector.Identity() {
		t.Fatalf("follower sees leader %q", follower.elector.Leader())
	}

	// The leader stops (shutdown): it releases the lease after its watcher
	// returned, and the follower takes over and repairs.
	stopAt := time.Now()
	leader.cancel()
	if err := <-leader.done; err != nil {
		t.Fatal(err)
	}
	leader.done <- nil // for Cleanup
	calls := leader.rec.callCount()
	follower.rec.waitFor(t, "takeover", 20*time.Second, func() bool {
		return len(follower.rec.resyncs) == 1 && len(follower.rec.resyncs[0]) == 3 && len(follower.rec.changes) == 3
	})
	t.Logf("takeover after %v", time.Since(stopAt).Round(time.Millisecond))
	if _, err := c.Apply(ctx, kustomization(t, ns, "app-3")); err != nil {
		t.Fatal(err)
	}
	follower.rec.waitFor(t, "new leader sees a new object", 10*time.Second, func() bool { return len(follower.rec.changes) == 4 })
	if n := leader.rec.callCount(); n != calls {
		t.Fatalf("the old leader's sink was called after it stopped (%d → %d)", calls, n)
	}
}

func TestInstallFluxAndHealthOnAPIServer(t *testing.T) {
	e := env.Require(t)
	ctx := context.Background()
	fluxNS := "flux-" + k8stest.Suffix()
	bundle := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: source-controller
  namespace: %[1]s
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets%[2]s.example.fluxgate.dev
spec:
  group: example.fluxgate.dev
  names: {kind: Widget%[2]s, plural: widgets%[2]s, singular: widget%[2]s, listKind: Widget%[2]sList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: example.fluxgate.dev/v1
kind: Widget%[2]s
metadata:
  name: needs-its-crd
  namespace: %[1]s
`, fluxNS, k8stest.Suffix())
	for _, name := range []string{"source-controller", "kustomize-controller", "helm-controller", "notification-controller"} {
		bundle += fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
      - name: manager
        image: ghcr.io/fluxcd/%[1]s:v1
`, name, fluxNS)
	}
	c, err := k8s.New(e.Config, k8s.Options{FluxNamespace: fluxNS, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}}) })

	// Playing kube-controller-manager: roll the Deployments out once they exist.
	var wg sync.WaitGroup
	pctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			var list appsv1.DeploymentList
			if err := e.Client.List(pctx, &list); err == nil {
				for i := range list.Items {
					d := &list.Items[i]
					if d.Namespace != fluxNS || d.Status.ReadyReplicas == 1 {
						continue
					}
					d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
					_ = e.Client.Status().Update(pctx, d)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	out, err := c.InstallFlux(ctx, []byte(bundle), k8s.InstallOptions{Wait: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Applied) != 8 || out.Applied[0].Kind != "Namespace" || out.Applied[1].Kind != "CustomResourceDefinition" {
		t.Fatalf("applied = %+v", out.Applied)
	}
	h := out.Health
	if !h.Installed || !h.Ready {
		t.Fatalf("health = %+v", h)
	}
	for _, crd := range h.CRDs {
		if crd.Required && (!crd.Present || !crd.Established || len(crd.Versions) == 0) {
			t.Fatalf("crd %+v", crd)
		}
		if crd.Name == "kustomizations.kustomize.toolkit.fluxcd.io" && crd.Storage != "v1" {
			t.Fatalf("kustomization storage version %q", crd.Storage)
		}
	}
	// Re-applying the bundle is idempotent.
	if _, err := c.InstallFlux(ctx, []byte(bundle), k8s.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
}
