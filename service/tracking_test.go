package service_test

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
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/inmem"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// Commits of the captured fixtures (../tracker/testdata): the objects were
// captured at shaB; shaA is the revision before, shaC a later push.
const (
	shaA = "61566cd25f4f49c81969c245db50c428df714185"
	shaB = "87e476366d3cfd45c32e7f80bf278f9fa0ad5192"
	shaC = "0c5d3c4a1f7e2b9d8a6e5f4c3b2a1908f7e6d5c4"
)

func rev(sha string) string { return "main@sha1:" + sha }

func readTrackerFixture(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "tracker", "testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
}

func setCondition(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason, msg string) []metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			conds[i].Status, conds[i].Reason, conds[i].Message = status, reason, msg
			return conds
		}
	}
	return append(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now(), ObservedGeneration: 1})
}

// committedDeployment stores a UI deployment of sha to e, pushed at
// started and not yet picked up by Flux.
func committedDeployment(t *testing.T, db fluxgate.Store, e *fluxgate.Environment, sha string, started time.Time) *fluxgate.Deployment {
	t.Helper()
	d := &fluxgate.Deployment{
		ProjectID: e.ProjectID, EnvironmentID: e.ID, Method: fluxgate.MethodGitOpsUI, Status: fluxgate.DeploymentPending,
		CommitSHA: sha, Branch: "main", Strategy: "rolling", Message: "deploy web", Change: json.RawMessage(`{}`), StartedAt: started,
		Steps: []fluxgate.DeploymentStep{
			{Name: fluxgate.StepCommitted, Status: "done", At: &started},
			{Name: fluxgate.StepFetched, Status: "pending"},
			{Name: fluxgate.StepApplied, Status: "pending"},
			{Name: fluxgate.StepHealthy, Status: "pending"},
		},
	}
	if err := db.CreateDeployment(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// trackingFixture is a service with live updates, one environment with
// the captured GitRepository and Kustomization as its resources.
type trackingFixture struct {
	t     *testing.T
	svc   *service.Service
	db    fluxgate.Store
	octx  context.Context
	env   *fluxgate.Environment
	repo  sourcev1.GitRepository
	ks    kustomizev1.Kustomization
	rRepo *fluxgate.GitOpsResource
	rKs   *fluxgate.GitOpsResource
}

func newTrackingFixture(t *testing.T) *trackingFixture {
	t.Helper()
	db := storetest.MustOpen(t)
	bus := inmem.NewBus(64)
	t.Cleanup(func() { bus.Close() })
	svc := service.New(db, service.WithPublisher(bus), service.WithRealtime(hub.New(bus, hub.Options{}), nil))
	ctx := context.Background()
	owner := must(svc.SignIn(ctx, service.Identity{Subject: "owner"}))
	octx := fluxgate.NewContextWithUser(ctx, owner)
	p := must(svc.CreateProject(octx, service.CreateProjectInput{Slug: "demo", Name: "Demo"}))
	env := must(svc.CreateEnvironment(octx, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "staging", Type: fluxgate.EnvironmentStaging}))
	f := &trackingFixture{t: t, svc: svc, db: db, octx: octx, env: env}
	readTrackerFixture(t, "gitrepository-ready.json", &f.repo)
	readTrackerFixture(t, "kustomization-ready.json", &f.ks)
	mk := func(kind fluxgate.ResourceKind, ns, name string) *fluxgate.GitOpsResource {
		r := &fluxgate.GitOpsResource{ProjectID: p.ID, EnvironmentID: &env.ID, Kind: kind, Name: name, Namespace: ns, Spec: json.RawMessage(`{}`)}
		if err := db.CreateResource(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	f.rRepo = mk(fluxgate.KindGitRepository, f.repo.Namespace, f.repo.Name)
	f.rKs = mk(fluxgate.KindKustomization, f.ks.Namespace, f.ks.Name)
	return f
}

func (f *trackingFixture) report(r *fluxgate.GitOpsResource, u fluxgate.ResourceStatusUpdate) {
	f.t.Helper()
	ch := k8s.ResourceChange{
		ResourceRef: k8s.ResourceRef{ObjectKey: k8s.KeyOf(r), ProjectID: r.ProjectID, EnvironmentID: *r.EnvironmentID, ResourceID: r.ID},
		Status:      u,
	}
	// Twice: the watcher may repeat a report; nothing changes the second time.
	for range 2 {
		if err := f.svc.WatchSink().ResourceChanged(context.Background(), ch); err != nil {
			f.t.Fatalf("ResourceChanged %s: %v", r.Kind, err)
		}
	}
}

// source reports the GitRepository after it stored the artifact of sha.
func (f *trackingFixture) source(sha string) {
	o := f.repo.DeepCopy()
	o.Status.Artifact.Revision = rev(sha)
	for i := range o.Status.Conditions {
		o.Status.Conditions[i].Message = "stored artifact for revision '" + rev(sha) + "'"
	}
	f.report(f.rRepo, k8s.StatusOf(o))
}

// checking reports the Kustomization health-checking sha (applied), prev
// still its lastAppliedRevision.
func (f *trackingFixture) checking(sha, prev string) {
	o := f.ks.DeepCopy()
	o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(prev), rev(sha)
	msg := "Running health checks for revision " + rev(sha) + " with a timeout of 2m0s"
	o.Status.Conditions = setCondition(o.Status.Conditions, "Ready", metav1.ConditionUnknown, "Progressing", "Reconciliation in progress")
	o.Status.Conditions = setCondition(o.Status.Conditions, "Reconciling", metav1.ConditionTrue, "Progressing", msg)
	o.Status.Conditions = setCondition(o.Status.Conditions, "Healthy", metav1.ConditionUnknown, "Progressing", msg)
	f.report(f.rKs, k8s.StatusOf(o))
}

// ready reports the Kustomization with sha applied and healthy.
func (f *trackingFixture) ready(sha string) {
	o := f.ks.DeepCopy()
	o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(sha), rev(sha)
	o.Status.Conditions = setCondition(o.Status.Conditions, "Ready", metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+rev(sha))
	f.report(f.rKs, k8s.StatusOf(o))
}

func next(t *testing.T, ch <-chan *fluxgate.Deployment) (*fluxgate.Deployment, bool) {
	t.Helper()
	select {
	case d, ok := <-ch:
		return d, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no deployment progress within 5s")
		return nil, false
	}
}

// reached is the last step done, "" for none.
func reached(d *fluxgate.Deployment) fluxgate.DeploymentStepName {
	var last fluxgate.DeploymentStepName
	for _, s := range d.Steps {
		if s.Status == "done" {
			last = s.Name
		}
	}
	return last
}

func TestDeploymentProgressFromWatcher(t *testing.T) {
	f := newTrackingFixture(t)
	// What Flux reported before the deploy: shaA applied and healthy.
	f.source(shaA)
	f.ready(shaA)

	d := committedDeployment(t, f.db, f.env, shaB, time.Now().UTC())
	sctx, cancel := context.WithCancel(f.octx)
	defer cancel()
	progress := must(f.svc.SubscribeDeploymentProgress(sctx, d.ID))

	first, _ := next(t, progress)
	if first.Status != fluxgate.DeploymentPending || reached(first) != fluxgate.StepCommitted {
		t.Fatalf("first state = %s at %q, want pending at committed", first.Status, reached(first))
	}
	steps := []struct {
		report func()
		step   fluxgate.DeploymentStepName
		status fluxgate.DeploymentStatus
	}{
		{func() { f.source(shaB) }, fluxgate.StepFetched, fluxgate.DeploymentInProgress},
		{func() { f.checking(shaB, shaA) }, fluxgate.StepApplied, fluxgate.DeploymentInProgress},
		{func() { f.ready(shaB) }, fluxgate.StepHealthy, fluxgate.DeploymentSucceeded},
	}
	for _, s := range steps {
		s.report()
		got, ok := next(t, progress)
		if !ok {
			t.Fatalf("stream ended before %s", s.step)
		}
		if reached(got) != s.step || got.Status != s.status {
			t.Fatalf("after the %s report: %s at %q, want %s at %q", s.step, got.Status, reached(got), s.status, s.step)
		}
	}
	if _, ok := next(t, progress); ok {
		t.Fatal("stream did not complete after the deployment succeeded")
	}
	final := must(f.svc.Deployment(f.octx, d.ID))
	for _, s := range final.Steps {
		if s.Status != "done" || s.At == nil {
			t.Errorf("step %s = %s at %v, want done with a time", s.Name, s.Status, s.At)
		}
	}
	if final.FinishedAt == nil {
		t.Error("finished deployment without FinishedAt")
	}

	// A finished deployment: its state, then the end.
	done := must(f.svc.SubscribeDeploymentProgress(sctx, d.ID))
	if got, _ := next(t, done); got.Status != fluxgate.DeploymentSucceeded {
		t.Fatalf("finished deployment sent as %s", got.Status)
	}
	if _, ok := next(t, done); ok {
		t.Fatal("stream of a finished deployment did not complete")
	}

	// Someone pushes shaC: Flux fetches a revision no deployment claims.
	f.source(shaC)
	list, _ := must2(f.svc.Deployments(f.octx, f.env.ProjectID, "", "", fluxgate.Page{}))
	if len(list) != 2 {
		t.Fatalf("deployments = %d, want 2", len(list))
	}
	pushed := list[0]
	if pushed.Method != fluxgate.MethodGitOpsGit || pushed.CommitSHA != shaC || pushed.Branch != "main" ||
		pushed.Status != fluxgate.DeploymentInProgress || reached(pushed) != fluxgate.StepFetched {
		t.Errorf("pushed revision recorded as %s %s@%s %s at %q, want gitops-git main@shaC in_progress at fetched",
			pushed.Method, pushed.Branch, pushed.CommitSHA, pushed.Status, reached(pushed))
	}
	if list[1].ID != d.ID {
		t.Errorf("deployments not newest first: %s, %s", list[0].ID, list[1].ID)
	}
	ui, _ := must2(f.svc.Deployments(f.octx, f.env.ProjectID, f.env.ID, fluxgate.DeploymentSucceeded, fluxgate.Page{}))
	if len(ui) != 1 || ui[0].ID != d.ID {
		t.Errorf("succeeded deployments of the environment = %d, want the UI one", len(ui))
	}
	// Reported again, the revision is not recorded twice.
	f.source(shaC)
	if again, _ := must2(f.svc.Deployments(f.octx, f.env.ProjectID, "", "", fluxgate.Page{})); len(again) != 2 {
		t.Errorf("deployments after a repeated report = %d, want 2", len(again))
	}
}

func must2[T, U any](a T, b U, err error) (T, U) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// TestProgressTimeoutPerEnvironment: each environment's progressTimeout is
// the tracker's timeout for its deployments.
func TestProgressTimeoutPerEnvironment(t *testing.T) {
	db := storetest.MustOpen(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	svc := service.New(db, service.WithClock(func() time.Time { return now }))
	ctx := context.Background()
	owner := must(svc.SignIn(ctx, service.Identity{Subject: "owner"}))
	octx := fluxgate.NewContextWithUser(ctx, owner)
	p := must(svc.CreateProject(octx, service.CreateProjectInput{Slug: "demo", Name: "Demo"}))
	gitops := func(timeout string) *fluxgate.EnvironmentGitOps {
		return &fluxgate.EnvironmentGitOps{Enabled: true, AutoSync: true, GitBranch: "main", GitPath: "k8s", SyncInterval: "1m", ProgressTimeout: timeout}
	}
	quick := must(svc.CreateEnvironment(octx, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "quick", Type: fluxgate.EnvironmentDevelopment, GitOps: gitops("45s")}))
	usual := must(svc.CreateEnvironment(octx, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "usual", Type: fluxgate.EnvironmentStaging, GitOps: gitops("")}))
	started := now.Add(-time.Minute)
	deps := []*fluxgate.Deployment{committedDeployment(t, db, quick, shaB, started), committedDeployment(t, db, usual, shaB, started)}
	if _, err := svc.Tracker().Check(ctx); err != nil {
		t.Fatal(err)
	}
	q := must(db.GetDeployment(ctx, deps[0].ID))
	if q.Status != fluxgate.DeploymentFailed || q.FinishedAt == nil || !strings.Contains(q.Steps[1].Message, "timed out waiting for Flux at step 2 (fetched) after 45s") {
		t.Fatalf("after 1m with a 45s timeout: %s %+v", q.Status, q.Steps)
	}
	if u := must(db.GetDeployment(ctx, deps[1].ID)); u.Status != fluxgate.DeploymentPending {
		t.Fatalf("after 1m with the default 10m timeout: %s, want still pending", u.Status)
	}
}
