package server_test

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// TestAutoSyncOffOnRealAPIServer: an environment with autoSync off has its
// Kustomization suspended; syncEnvironment resumes it for the branch head
// and requests a reconcile; when the Kustomization's status (written like
// kustomize-controller would) says that revision is applied, the watcher's
// report makes fluxgate suspend it again.
func TestAutoSyncOffOnRealAPIServer(t *testing.T) {
	kc, kube := kubeClient(t)
	db := storetest.MustOpen(t)
	s := startDeployStack(t, db, kc)
	ctx := context.Background()
	alice, dave := s.token("alice", "Alice"), s.token("dave", "Dave")
	slug := "autosync-" + k8stest.Suffix()
	pid := s.createProject(alice, slug)
	ns := "fg-" + slug
	s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "userId": s.viewerID(dave), "role": "DEVELOPER"}}, nil)
	bare := seedRemote(t)
	repoID := s.connectRepo(alice, pid, "file://"+bare)
	gitops := map[string]any{"enabled": true, "autoSync": false, "gitBranch": "main", "gitPath": "k8s/overlays/dev", "syncInterval": "1m"}
	envID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT", "gitops": gitops})
	s.must(alice, gitRepoMutation, map[string]any{"in": map[string]any{
		"projectId": pid, "environmentId": envID, "repositoryId": repoID, "name": "web-dev",
		"spec": map[string]any{"url": "https://github.com/acme/web.git", "ref": map[string]any{"branch": "main"}, "interval": "1m"},
	}}, nil)
	s.must(alice, `mutation($in: CreateKustomizationInput!) { createKustomization(input: $in) { resource { id } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "environmentId": envID, "name": "web-dev", "spec": map[string]any{
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "web-dev"}, "path": "./k8s/overlays/dev", "prune": true,
		}}}, nil)
	key := client.ObjectKey{Namespace: ns, Name: "web-dev"}
	get := func() *kustomizev1.Kustomization {
		t.Helper()
		var ks kustomizev1.Kustomization
		if err := kube.Get(ctx, key, &ks); err != nil {
			t.Fatal(err)
		}
		return &ks
	}
	if ks := get(); !ks.Spec.Suspend {
		t.Fatal("the Kustomization of an environment with autoSync off was created running")
	}

	// The leader's watcher reports to a service on the same database.
	leader := service.New(db, service.WithCluster(service.StaticCluster{C: kc}))
	w, err := k8s.NewWatcher(kubeEnv.Config, leader.WatchSink(), k8s.WatcherOptions{Namespaces: []string{ns}, NoEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// syncEnvironment: needs sync; resumes for the head and asks Flux.
	if r := s.do(s.token("mallory", "Mallory"), `mutation($id: ID!) { syncEnvironment(environmentId: $id) { revision } }`, map[string]any{"id": envID}); r.code() != "NOT_FOUND" {
		t.Fatalf("outsider sync: %+v", r.Errors)
	}
	head := git(t, bare, "rev-parse", "main")
	var sr struct {
		SyncEnvironment struct {
			Environment           struct{ ID string }
			Revision              string
			ResumedKustomizations int
		}
	}
	s.must(dave, `mutation($id: ID!) { syncEnvironment(environmentId: $id) { environment { id } revision resumedKustomizations } }`, map[string]any{"id": envID}, &sr)
	if sr.SyncEnvironment.Revision != head || sr.SyncEnvironment.ResumedKustomizations != 1 || sr.SyncEnvironment.Environment.ID != envID {
		t.Fatalf("syncEnvironment = %+v, want revision %s", sr.SyncEnvironment, head)
	}
	ks := get()
	if ks.Spec.Suspend || ks.Annotations[k8s.AnnotationSyncRevision] != head || ks.Annotations[meta.ReconcileRequestAnnotation] == "" {
		t.Fatalf("after syncEnvironment: suspend=%t annotations=%v", ks.Spec.Suspend, ks.Annotations)
	}

	// Flux applies the head: the Kustomization is suspended again.
	rev := "main@sha1:" + head
	ks.Status.ObservedGeneration = ks.Generation
	ks.Status.LastAppliedRevision, ks.Status.LastAttemptedRevision = rev, rev
	ks.Status.LastHandledReconcileAt = ks.Annotations[meta.ReconcileRequestAnnotation]
	apimeta.SetStatusCondition(&ks.Status.Conditions, metav1.Condition{
		Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
		Message: "Applied revision: " + rev, ObservedGeneration: ks.Generation,
	})
	if err := kube.Status().Update(ctx, ks); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Kustomization suspended again after the synced revision was applied", func() bool { return get().Spec.Suspend })

	// An approved deploy resumes it for the approved commit, until applied.
	s.must(alice, `mutation($in: UpdateEnvironmentInput!) { updateEnvironment(input: $in) { environment { id } } }`,
		map[string]any{"in": map[string]any{"id": envID, "approval": map[string]any{"required": true, "minApprovals": 1}}}, nil)
	var dr deployResp
	s.must(dave, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "image": "acme/web:9.0.0"}}, &dr)
	var ar approveResp
	s.must(alice, approveMutation, map[string]any{"id": dr.DeployWithGitOps.Deployment.ID}, &ar)
	sha := ar.ApproveDeployment.Deployment.CommitSha
	if sha == "" || sha != git(t, bare, "rev-parse", "main") || ar.ApproveDeployment.Deployment.Status != "PENDING" {
		t.Fatalf("approved deploy = %+v", ar.ApproveDeployment)
	}
	ks = get()
	if ks.Spec.Suspend || ks.Annotations[k8s.AnnotationSyncRevision] != sha {
		t.Fatalf("after the approved deploy: suspend=%t annotations=%v", ks.Spec.Suspend, ks.Annotations)
	}
	rev = "main@sha1:" + sha
	ks.Status.LastAppliedRevision, ks.Status.LastAttemptedRevision = rev, rev
	apimeta.SetStatusCondition(&ks.Status.Conditions, metav1.Condition{
		Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
		Message: "Applied revision: " + rev, ObservedGeneration: ks.Generation,
	})
	if err := kube.Status().Update(ctx, ks); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Kustomization suspended again after the approved commit was applied", func() bool { return get().Spec.Suspend })

	// autoSync back on: resumed, and left running.
	gitops["autoSync"] = true
	s.must(alice, `mutation($in: UpdateEnvironmentInput!) { updateEnvironment(input: $in) { environment { id } } }`,
		map[string]any{"in": map[string]any{"id": envID, "gitops": gitops}}, nil)
	if get().Spec.Suspend {
		t.Fatal("turning autoSync on did not resume the Kustomization")
	}
}

// waitFor polls cond until it holds, failing after a generous bound (not a
// timing assertion: only a hang fails).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
