package service_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/fluxgate/fluxgate"
)

// step returns d's step name.
func step(d *fluxgate.Deployment, name fluxgate.DeploymentStepName) fluxgate.DeploymentStep {
	for _, s := range d.Steps {
		if s.Name == name {
			return s
		}
	}
	return fluxgate.DeploymentStep{}
}

// TestDeploymentHealthyFromWorkloads feeds the watcher's workload reports
// (the captured Deployment of the Kustomization's inventory) after the
// Kustomization applied the commit: the rollout's pod counts show on the
// healthy step, and the rolled-out Deployment makes the deployment healthy
// and succeeded while the Kustomization is still health-checking (never
// Ready=True).
func TestDeploymentHealthyFromWorkloads(t *testing.T) {
	f := newTrackingFixture(t)
	ctx := context.Background()
	sink := f.svc.WatchSink()
	var rolledOut appsv1.Deployment
	readTrackerFixture(t, "deployment-rolled-out.json", &rolledOut)
	// The watcher's cached object: typed, apiVersion/kind set, no pod template.
	rolledOut.Spec.Template = appsv1.Deployment{}.Spec.Template
	rolling := rolledOut.DeepCopy()
	rolling.Status.UpdatedReplicas, rolling.Status.ReadyReplicas, rolling.Status.AvailableReplicas = 1, 1, 1
	rolling.Status.Replicas = 3 // the old replica set's pod still runs
	rolling.Status.Conditions = nil

	f.source(shaA)
	f.ready(shaA)
	// The workload as it ran before the deploy: reported before the apply,
	// it does not make the new commit healthy.
	if err := sink.WorkloadChanged(ctx, rolledOut.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	d := committedDeployment(t, f.db, f.env, shaB, time.Now().UTC())
	sctx, cancel := context.WithCancel(f.octx)
	defer cancel()
	progress := must(f.svc.SubscribeDeploymentProgress(sctx, d.ID))
	if got, _ := next(t, progress); reached(got) != fluxgate.StepCommitted {
		t.Fatalf("first state at %q, want committed", reached(got))
	}
	f.source(shaB)
	f.checking(shaB, shaA)
	for _, want := range []fluxgate.DeploymentStepName{fluxgate.StepFetched, fluxgate.StepApplied} {
		got, _ := next(t, progress)
		if reached(got) != want || got.Status != fluxgate.DeploymentInProgress {
			t.Fatalf("%s at %q, want in_progress at %q", got.Status, reached(got), want)
		}
	}

	// Rolling out: one of two pods updated and ready.
	if err := sink.WorkloadChanged(ctx, rolling); err != nil {
		t.Fatal(err)
	}
	got, _ := next(t, progress)
	if h := step(got, fluxgate.StepHealthy); reached(got) != fluxgate.StepApplied || h.Status != "pending" || h.ReadyPods != 1 || h.TotalPods != 2 {
		t.Fatalf("while rolling out: %s at %q, healthy step %+v; want applied, healthy pending with 1/2 pods", got.Status, reached(got), h)
	}

	// Rolled out (the captured status): healthy, before any Ready=True.
	if err := sink.WorkloadChanged(ctx, rolledOut.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	got, _ = next(t, progress)
	h := step(got, fluxgate.StepHealthy)
	if reached(got) != fluxgate.StepHealthy || got.Status != fluxgate.DeploymentSucceeded || h.At == nil || h.ReadyPods != 2 || h.TotalPods != 2 {
		t.Fatalf("rolled out: %s at %q, healthy step %+v; want succeeded at healthy with 2/2 pods", got.Status, reached(got), h)
	}
	if _, ok := next(t, progress); ok {
		t.Fatal("stream did not complete after the deployment succeeded")
	}
	stored := must(f.svc.Deployment(f.octx, d.ID))
	if h := step(stored, fluxgate.StepHealthy); stored.Status != fluxgate.DeploymentSucceeded || h.ReadyPods != 2 || h.TotalPods != 2 {
		t.Errorf("stored deployment %s, healthy step %+v; want succeeded with 2/2 pods", stored.Status, h)
	}

}
