package server_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// kubeEnv is a real kube-apiserver + etcd with the Flux CRDs, shared by
// the tests of this package that need a cluster.
var kubeEnv *k8stest.Env

func TestMain(m *testing.M) { os.Exit(k8stest.Run(m, &kubeEnv)) }

// clusterStack is a fluxgate server driving the real API server.
type clusterStack struct {
	*stack
	db   *store.DB
	kube client.Client
}

func startClusterStack(t *testing.T) *clusterStack {
	t.Helper()
	env := kubeEnv.Require(t)
	kc, err := k8s.New(env.Config, k8s.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.MustOpen(t)
	s := startStack(t, db, service.WithCluster(service.StaticCluster{C: kc}))
	return &clusterStack{stack: s, db: db, kube: env.Client}
}

const gitRepoMutation = `mutation($in: CreateGitRepositoryInput!) { createGitRepository(input: $in) { resource { id kind name namespace status spec } } }`

func TestGitOpsResourcesOnRealAPIServer(t *testing.T) {
	cs := startClusterStack(t)
	ctx := context.Background()
	alice := cs.token("alice", "Alice")
	slug := "gitops-" + k8stest.Suffix()
	pid := cs.createProject(alice, slug)
	ns := "fg-" + slug

	// Create: the row and the object, built from the Flux types and applied
	// by fluxgate's field manager, with the ownership labels.
	var created struct {
		CreateGitRepository struct {
			Resource struct{ ID, Kind, Name, Namespace, Status string }
		}
	}
	cs.must(alice, gitRepoMutation, map[string]any{"in": map[string]any{
		"projectId": pid, "name": "app",
		"spec": map[string]any{"url": "https://github.com/acme/app.git", "ref": map[string]any{"branch": "main"}, "interval": "1m"},
	}}, &created)
	res := created.CreateGitRepository.Resource
	if res.Kind != "GIT_REPOSITORY" || res.Namespace != ns || res.Status != "PENDING" {
		t.Fatalf("created = %+v", res)
	}
	var repo sourcev1.GitRepository
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &repo); err != nil {
		t.Fatalf("object not in cluster: %v", err)
	}
	if repo.Spec.URL != "https://github.com/acme/app.git" || repo.Spec.Reference.Branch != "main" || repo.Labels[k8s.LabelProject] != pid {
		t.Fatalf("object = %+v labels %v", repo.Spec, repo.Labels)
	}
	managedByFluxgate := false
	for _, mf := range repo.ManagedFields {
		if mf.Manager == k8s.FieldOwner && mf.Operation == metav1.ManagedFieldsOperationApply {
			managedByFluxgate = true
		}
	}
	if !managedByFluxgate {
		t.Fatalf("object not server-side applied by %s: %+v", k8s.FieldOwner, repo.ManagedFields)
	}

	// The API server refuses the spec (timeout in hours is not allowed for a
	// GitRepository): nothing is left behind in the database.
	r := cs.do(alice, gitRepoMutation, map[string]any{"in": map[string]any{
		"projectId": pid, "name": "refused",
		"spec": map[string]any{"url": "https://github.com/acme/app.git", "timeout": "1h"},
	}})
	if len(r.Errors) == 0 {
		t.Fatal("apply of an invalid spec succeeded")
	}
	rows, _, err := cs.db.ListResources(ctx, fluxgate.ResourceFilter{ProjectID: pid})
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows after refused apply = %d (%v), want 1", len(rows), err)
	}

	// Kustomization with health checks and dependsOn, then an update.
	var kz struct {
		CreateKustomization struct{ Resource struct{ ID string } }
	}
	cs.must(alice, `mutation($in: CreateKustomizationInput!) { createKustomization(input: $in) { resource { id } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "name": "app", "spec": map[string]any{
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "app"}, "path": "./k8s/overlays/dev", "prune": true,
			"healthChecks": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "default"}},
			"dependsOn":    []any{map[string]any{"name": "infra"}}, "interval": "5m", "timeout": "2m", "retryInterval": "30s",
		}}}, &kz)
	kid := kz.CreateKustomization.Resource.ID
	cs.must(alice, `mutation($in: UpdateKustomizationInput!) { updateKustomization(input: $in) { resource { id } } }`,
		map[string]any{"in": map[string]any{"id": kid, "spec": map[string]any{
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "app"}, "path": "./k8s/overlays/prod", "prune": false,
		}}}, nil)
	var kobj kustomizev1.Kustomization
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &kobj); err != nil {
		t.Fatal(err)
	}
	if kobj.Spec.Path != "./k8s/overlays/prod" || kobj.Spec.Prune {
		t.Fatalf("kustomization after update = path %q prune %v", kobj.Spec.Path, kobj.Spec.Prune)
	}

	// Suspend sets spec.suspend; resume clears it.
	cs.must(alice, `mutation($id: ID!) { suspendResource(input: {id: $id}) { resource { suspended } } }`, map[string]any{"id": kid}, nil)
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &kobj); err != nil || !kobj.Spec.Suspend {
		t.Fatalf("suspend: %v %v", err, kobj.Spec.Suspend)
	}
	cs.must(alice, `mutation($id: ID!) { resumeResource(input: {id: $id}) { resource { suspended } } }`, map[string]any{"id": kid}, nil)
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &kobj); err != nil || kobj.Spec.Suspend {
		t.Fatalf("resume: %v %v", err, kobj.Spec.Suspend)
	}

	// triggerSync: the test plays Flux and handles the request.
	stop := playFlux(t, cs.kube, ns, "app")
	defer stop()
	var sync struct {
		TriggerSync struct {
			Handled  bool
			Token    string
			Resource struct{ Status, LastAppliedRevision string }
		}
	}
	cs.must(alice, `mutation($id: ID!) { triggerSync(input: {id: $id, waitSeconds: 20}) { handled token resource { status lastAppliedRevision } } }`, map[string]any{"id": kid}, &sync)
	if !sync.TriggerSync.Handled || sync.TriggerSync.Resource.Status != "READY" || sync.TriggerSync.Resource.LastAppliedRevision != "main@sha1:0123456789abcdef0123456789abcdef01234567" {
		t.Fatalf("triggerSync = %+v", sync.TriggerSync)
	}

	// Git credentials: a Secret of the shape Flux reads; its data never comes back.
	var cred struct {
		CreateGitCredentials struct{ Name, Namespace, Type string }
	}
	resp := cs.do(alice, `mutation($in: CreateGitCredentialsInput!) { createGitCredentials(input: $in) { name namespace type } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "name": "app-auth", "basic": map[string]any{"username": "git", "password": "s3cret-pass"}}})
	if len(resp.Errors) > 0 || strings.Contains(string(resp.Data), "s3cret-pass") {
		t.Fatalf("createGitCredentials: %+v %s", resp.Errors, resp.Data)
	}
	_ = jsonUnmarshal(resp.Data, &cred)
	var secret corev1.Secret
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app-auth"}, &secret); err != nil {
		t.Fatal(err)
	}
	if string(secret.Data["username"]) != "git" || string(secret.Data["password"]) != "s3cret-pass" || cred.CreateGitCredentials.Type == "" {
		t.Fatalf("secret keys %v, payload %+v", keys(secret.Data), cred)
	}

	// A batch with one bad item creates nothing.
	r = cs.do(alice, `mutation($in: BatchCreateResourcesInput!) { batchCreateResources(input: $in) { resources { id } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "resources": []any{
			map[string]any{"kind": "HELM_REPOSITORY", "name": "charts", "spec": map[string]any{"url": "https://charts.example.com", "interval": "10m"}},
			map[string]any{"kind": "GIT_REPOSITORY", "name": "bad", "spec": map[string]any{"url": "https://github.com/acme/x.git", "timeout": "2h"}},
		}}})
	if len(r.Errors) == 0 {
		t.Fatal("batch with a refused item succeeded")
	}
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "charts"}, &sourcev1.HelmRepository{}); !apierrors.IsNotFound(err) {
		t.Fatalf("batch left its first object behind: %v", err)
	}
	// A good batch creates all.
	var batch struct {
		BatchCreateResources struct{ Resources []struct{ ID string } }
	}
	cs.must(alice, `mutation($in: BatchCreateResourcesInput!) { batchCreateResources(input: $in) { resources { id } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "resources": []any{
			map[string]any{"kind": "HELM_REPOSITORY", "name": "charts", "spec": map[string]any{"url": "https://charts.example.com", "interval": "10m"}},
			map[string]any{"kind": "GIT_REPOSITORY", "name": "second", "spec": map[string]any{"url": "https://github.com/acme/second.git"}},
		}}}, &batch)
	if len(batch.BatchCreateResources.Resources) != 2 {
		t.Fatalf("batch = %+v", batch)
	}

	// The list comes from the database with filters.
	var list struct {
		GitopsResources struct {
			Edges []struct{ Node struct{ Kind, Name string } }
		}
	}
	cs.must(alice, `query($p: ID!) { gitopsResources(projectId: $p, kind: GIT_REPOSITORY) { edges { node { kind name } } } }`, map[string]any{"p": pid}, &list)
	if len(list.GitopsResources.Edges) != 2 {
		t.Fatalf("git repositories listed = %+v", list)
	}

	// Delete removes the object and the row.
	cs.must(alice, `mutation($id: ID!) { deleteGitOpsResource(input: {id: $id}) { deletedId } }`, map[string]any{"id": res.ID}, nil)
	if err := cs.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &sourcev1.GitRepository{}); !apierrors.IsNotFound(err) {
		t.Fatalf("object after delete: %v", err)
	}
	if r := cs.do(alice, `query($id: ID!) { gitopsResource(id: $id) { id } }`, map[string]any{"id": res.ID}); r.code() != "NOT_FOUND" {
		t.Fatalf("row after delete: %q", r.code())
	}

	// A viewer can read but neither create nor sync.
	bob := cs.token("bob", "Bob")
	cs.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "userId": cs.viewerID(bob), "role": "VIEWER"}}, nil)
	if r := cs.do(bob, `mutation($id: ID!) { triggerSync(input: {id: $id}) { handled } }`, map[string]any{"id": kid}); r.code() != "FORBIDDEN" {
		t.Fatalf("viewer triggerSync: %q", r.code())
	}
	if r := cs.do(bob, gitRepoMutation, map[string]any{"in": map[string]any{"projectId": pid, "name": "x", "spec": map[string]any{"url": "https://github.com/acme/x.git"}}}); r.code() != "FORBIDDEN" {
		t.Fatalf("viewer create: %q", r.code())
	}

	// The audit log names every change.
	var audit struct {
		Project struct {
			AuditLog struct {
				Edges []struct{ Node struct{ Action string } }
			}
		}
	}
	cs.must(alice, `query($id: ID) { project(id: $id) { auditLog(first: 50) { edges { node { action } } } } }`, map[string]any{"id": pid}, &audit)
	seen := map[string]bool{}
	for _, e := range audit.Project.AuditLog.Edges {
		seen[e.Node.Action] = true
	}
	for _, want := range []string{"gitops.resource.created", "gitops.resource.updated", "gitops.resource.deleted", "gitops.sync.started", "gitops.sync.completed", "gitops.resource.suspended", "gitops.credentials.created"} {
		if !seen[want] {
			t.Errorf("audit log lacks %s (has %v)", want, seen)
		}
	}
}

// playFlux answers reconcile requests on a Kustomization as
// kustomize-controller would: lastHandledReconcileAt = the token, Ready=True
// at a revision.
func playFlux(t *testing.T, c client.Client, ns, name string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var k kustomizev1.Kustomization
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &k); err != nil {
				continue
			}
			token := k.Annotations[meta.ReconcileRequestAnnotation]
			if token == "" || k.Status.LastHandledReconcileAt == token {
				continue
			}
			k.Status.LastHandledReconcileAt = token
			k.Status.ObservedGeneration = k.Generation
			k.Status.LastAppliedRevision = "main@sha1:0123456789abcdef0123456789abcdef01234567"
			k.Status.LastAttemptedRevision = k.Status.LastAppliedRevision
			apimeta.SetStatusCondition(&k.Status.Conditions, metav1.Condition{
				Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
				Message: "Applied revision: " + k.Status.LastAppliedRevision, ObservedGeneration: k.Generation,
			})
			_ = c.Status().Update(ctx, &k)
		}
	}()
	return func() { cancel(); <-done }
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
