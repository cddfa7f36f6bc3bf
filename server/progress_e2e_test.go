package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/service"
)

// fluxStates builds status reports of an environment's GitRepository and
// Kustomization from the captured objects (../tracker/testdata), mapped as
// the watcher does (k8s.StatusOf), and reports them to a WatchSink.
type fluxStates struct {
	t         *testing.T
	sink      *service.WatchSink
	repo      sourcev1.GitRepository
	ks        kustomizev1.Kustomization
	rRepo, rK *fluxgate.GitOpsResource
}

func newFluxStates(t *testing.T, sink *service.WatchSink, repo, ks *fluxgate.GitOpsResource) *fluxStates {
	t.Helper()
	f := &fluxStates{t: t, sink: sink, rRepo: repo, rK: ks}
	for name, into := range map[string]any{"gitrepository-ready.json": &f.repo, "kustomization-ready.json": &f.ks} {
		b, err := os.ReadFile(filepath.Join("..", "tracker", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func fluxRev(sha string) string { return "main@sha1:" + sha }

func (f *fluxStates) report(r *fluxgate.GitOpsResource, u fluxgate.ResourceStatusUpdate) {
	f.t.Helper()
	err := f.sink.ResourceChanged(context.Background(), k8s.ResourceChange{
		ResourceRef: k8s.ResourceRef{ObjectKey: k8s.KeyOf(r), ProjectID: r.ProjectID, EnvironmentID: *r.EnvironmentID, ResourceID: r.ID},
		Status:      u,
	})
	if err != nil {
		f.t.Fatalf("ResourceChanged %s: %v", r.Kind, err)
	}
}

func (f *fluxStates) cond(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason, msg string) []metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			conds[i].Status, conds[i].Reason, conds[i].Message = status, reason, msg
			return conds
		}
	}
	return append(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now(), ObservedGeneration: 1})
}

// source: the GitRepository stored the artifact of sha.
func (f *fluxStates) source(sha string) {
	o := f.repo.DeepCopy()
	o.Status.Artifact.Revision = fluxRev(sha)
	for i := range o.Status.Conditions {
		o.Status.Conditions[i].Message = "stored artifact for revision '" + fluxRev(sha) + "'"
	}
	f.report(f.rRepo, k8s.StatusOf(o))
}

// checking: the Kustomization applied sha and runs its health checks.
func (f *fluxStates) checking(sha, prev string) {
	o := f.ks.DeepCopy()
	o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = fluxRev(prev), fluxRev(sha)
	msg := "Running health checks for revision " + fluxRev(sha) + " with a timeout of 2m0s"
	o.Status.Conditions = f.cond(o.Status.Conditions, "Ready", metav1.ConditionUnknown, "Progressing", "Reconciliation in progress")
	o.Status.Conditions = f.cond(o.Status.Conditions, "Reconciling", metav1.ConditionTrue, "Progressing", msg)
	f.report(f.rK, k8s.StatusOf(o))
}

// ready: the Kustomization applied sha and it is healthy.
func (f *fluxStates) ready(sha string) {
	o := f.ks.DeepCopy()
	o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = fluxRev(sha), fluxRev(sha)
	o.Status.Conditions = f.cond(o.Status.Conditions, "Ready", metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+fluxRev(sha))
	f.report(f.rK, k8s.StatusOf(o))
}

const deploymentProgressSubscription = `subscription($id: ID!) { deploymentProgress(deploymentId: $id) {
	id status method commitSha steps { name status at } } }`

const deploymentsChangedSubscription = `subscription($p: ID!) { deploymentsChanged(projectId: $p) { method status commitSha } }`

type progressMsg struct {
	DeploymentProgress struct {
		ID, Status, Method, CommitSha string
		Steps                         []struct {
			Name, Status string
			At           *time.Time
		}
	}
}

// TestDeploymentProgressOverWebsocket: the watcher runs on the leader (a
// service on replica B's database and bus); a client of replica A follows
// a UI deploy from committed to healthy, and the subscription completes.
// A push nobody deployed through fluxgate shows in the deployments query.
func TestDeploymentProgressOverWebsocket(t *testing.T) {
	const (
		shaA = "61566cd25f4f49c81969c245db50c428df714185"
		shaB = "87e476366d3cfd45c32e7f80bf278f9fa0ad5192"
		shaC = "0c5d3c4a1f7e2b9d8a6e5f4c3b2a1908f7e6d5c4"
	)
	d := startDeployment(t)
	alice := d.a.token("alice", "Alice")
	outsider := d.a.token("mallory", "Mallory")
	p := d.newProject(t, alice, "shop", "GitRepository/shop", "Kustomization/shop")
	leader := service.New(d.b.db, service.WithPublisher(d.b.bus), service.WithLogger(testLogger("leader")))
	flux := newFluxStates(t, leader.WatchSink(), p.resources["GitRepository/shop"], p.resources["Kustomization/shop"])
	flux.source(shaA)
	flux.ready(shaA)

	now := time.Now().UTC()
	dep := &fluxgate.Deployment{
		ProjectID: p.id, EnvironmentID: p.envID, Method: fluxgate.MethodGitOpsUI, Status: fluxgate.DeploymentPending,
		CommitSHA: shaB, Branch: "main", Strategy: "rolling", Message: "deploy shop", Change: json.RawMessage(`{}`), StartedAt: now,
		Steps: []fluxgate.DeploymentStep{
			{Name: fluxgate.StepCommitted, Status: "done", At: &now},
			{Name: fluxgate.StepFetched, Status: "pending"},
			{Name: fluxgate.StepApplied, Status: "pending"},
			{Name: fluxgate.StepHealthy, Status: "pending"},
		},
	}
	if err := d.a.db.CreateDeployment(context.Background(), dep); err != nil {
		t.Fatal(err)
	}

	// Someone without access to the project cannot follow it.
	m := connect(t, d.a, protoTransportWS, outsider)
	m.subscribe("x", deploymentProgressSubscription, map[string]any{"id": dep.ID})
	if _, code := m.result("x", 10*time.Second); !strings.HasPrefix(code, "error: NOT_FOUND") {
		t.Fatalf("outsider's subscription: %q, want NOT_FOUND", code)
	}
	m.subscribe("y", deploymentsChangedSubscription, map[string]any{"p": p.id})
	if _, code := m.result("y", 10*time.Second); !strings.HasPrefix(code, "error: NOT_FOUND") {
		t.Fatalf("outsider's deploymentsChanged: %q, want NOT_FOUND", code)
	}

	c := connect(t, d.a, protoTransportWS, alice)
	c.subscribe("1", deploymentProgressSubscription, map[string]any{"id": dep.ID})
	step := func() (status, reached string) {
		t.Helper()
		data, code := c.result("1", 10*time.Second)
		if code != "" {
			t.Fatalf("deploymentProgress ended: %s", code)
		}
		var msg progressMsg
		if err := json.Unmarshal(data, &msg); err != nil {
			t.Fatal(err)
		}
		for _, s := range msg.DeploymentProgress.Steps {
			if s.Status == "done" {
				if s.At == nil {
					t.Errorf("step %s done without a time", s.Name)
				}
				reached = s.Name
			}
		}
		return msg.DeploymentProgress.Status, reached
	}
	if st, r := step(); st != "PENDING" || r != "committed" {
		t.Fatalf("first state %s at %q, want PENDING at committed", st, r)
	}
	d.a.waitActive(t, 1)
	for _, s := range []struct {
		report          func()
		status, reached string
	}{
		{func() { flux.source(shaB) }, "IN_PROGRESS", "fetched"},
		{func() { flux.checking(shaB, shaA) }, "IN_PROGRESS", "applied"},
		{func() { flux.ready(shaB) }, "SUCCEEDED", "healthy"},
	} {
		s.report()
		if st, r := step(); st != s.status || r != s.reached {
			t.Fatalf("got %s at %q, want %s at %q", st, r, s.status, s.reached)
		}
	}
	if _, code := c.result("1", 10*time.Second); code != "complete" {
		t.Fatalf("after SUCCEEDED: %q, want complete", code)
	}

	// The project's live deployment list shows the push as it is detected.
	c.subscribe("2", deploymentsChangedSubscription, map[string]any{"p": p.id})
	d.a.waitActive(t, 1)
	flux.source(shaC)
	data, code := c.result("2", 10*time.Second)
	if code != "" {
		t.Fatalf("deploymentsChanged: %s", code)
	}
	var changed struct {
		DeploymentsChanged struct{ Method, Status, CommitSha string }
	}
	if err := json.Unmarshal(data, &changed); err != nil {
		t.Fatal(err)
	}
	if got := changed.DeploymentsChanged; got.Method != "GITOPS_GIT" || got.CommitSha != shaC || got.Status != "PENDING" {
		t.Fatalf("deploymentsChanged = %+v, want the pushed shaC, GITOPS_GIT, PENDING", got)
	}
	var q struct {
		Deployments struct {
			Edges []struct {
				Cursor string
				Node   struct{ ID, Method, Status, CommitSha string }
			}
			PageInfo struct{ HasNextPage bool }
		}
	}
	d.a.must(alice, `query($p: ID!) { deployments(projectId: $p, first: 10) { edges { cursor node { id method status commitSha } } pageInfo { hasNextPage } } }`,
		map[string]any{"p": p.id}, &q)
	e := q.Deployments.Edges
	if len(e) != 2 || e[0].Node.Method != "GITOPS_GIT" || e[0].Node.CommitSha != shaC || e[1].Node.ID != dep.ID || e[1].Node.Status != "SUCCEEDED" {
		t.Fatalf("deployments = %+v, want the pushed shaC (GITOPS_GIT) then the UI deploy (SUCCEEDED)", e)
	}
	var page2 struct {
		Deployments struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	d.a.must(alice, `query($p: ID!, $after: String) { deployments(projectId: $p, first: 1, after: $after) { edges { node { id } } } }`,
		map[string]any{"p": p.id, "after": e[0].Cursor}, &page2)
	if len(page2.Deployments.Edges) != 1 || page2.Deployments.Edges[0].Node.ID != dep.ID {
		t.Fatalf("page after the first = %+v, want the UI deploy", page2.Deployments.Edges)
	}
}
