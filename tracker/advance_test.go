package tracker

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/fluxgate/fluxgate"
)

var t0 = time.Date(2026, 11, 27, 4, 37, 20, 0, time.UTC)

// snap is what the watcher knows at a moment, and the deployment status
// expected once Advance has seen it.
type snap struct {
	at   time.Duration
	obs  func(f *fixtures) Observation
	want fluxgate.DeploymentStatus
}

func TestAdvanceSequences(t *testing.T) {
	f := loadFixtures(t)
	tests := []struct {
		name      string
		sha       string
		timeout   time.Duration
		snaps     []snap
		wantSteps [stepCount]string
		// substrings expected in step messages (by step index)
		wantMsg  map[int]string
		wantPods [2]int // ready, total on the healthy step
	}{
		{
			name: "happy path: rollout seen before Kustomization Ready",
			sha:  shaB,
			snaps: []snap{
				{at: 0, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaA), Apply: f.ready(shaA), Workloads: f.wl("done")}
				}, want: fluxgate.DeploymentPending},
				{at: 250 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaA), Workloads: f.wl("done")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 300 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.building(shaB, shaA), Workloads: f.wl("done")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 400 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: f.wl("new-spec")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 600 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 900 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: f.wl("done-gen3")}
				}, want: fluxgate.DeploymentSucceeded},
				// Flux's own verdict 5 s later changes nothing.
				{at: 5800 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaB), Workloads: f.wl("done-gen3")}
				}, want: fluxgate.DeploymentSucceeded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepDone},
			wantMsg:   map[int]string{stepFetched: rev(shaB), stepApplied: "checking its health", stepHealthy: "rolled out: 2/2 pods ready"},
			wantPods:  [2]int{2, 2},
		},
		{
			name: "happy path: Kustomization Ready when workloads are not watched",
			sha:  shaB,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 6 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentSucceeded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepDone},
			wantMsg:   map[int]string{stepHealthy: "Applied revision: " + rev(shaB)},
		},
		{
			name: "build failure",
			sha:  shaC,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.building(shaC, shaB), Workloads: f.wl("done")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.buildFailed(shaC, shaB), Workloads: f.wl("done")}
				}, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepFailed, StepPending},
			wantMsg:   map[int]string{stepApplied: "BuildFailed: kustomize build failed"},
		},
		{
			name: "health-check failure (captured conditions)",
			sha:  shaBad,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaBad), Apply: f.checking(shaBad, shaB), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 2 * time.Minute, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaBad), Apply: f.healthCheckFailed(shaB), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepFailed},
			wantMsg:   map[int]string{stepHealthy: "HealthCheckFailed: health check failed after 2m0.026097515s: timeout waiting for: [Deployment/default/webapp status: 'InProgress']"},
			wantPods:  [2]int{1, 2},
		},
		{
			name: "health-check failure seen without the checking state",
			sha:  shaBad,
			snaps: []snap{
				{at: 2 * time.Minute, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaBad), Apply: f.healthCheckFailed(shaB)}
				}, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepFailed},
			wantMsg:   map[int]string{stepHealthy: "HealthCheckFailed"},
		},
		{
			name:    "timeout waiting for the fetch",
			sha:     shaC,
			timeout: 5 * time.Minute,
			snaps: []snap{
				{at: time.Minute, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentPending},
				{at: 5*time.Minute - time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentPending},
				{at: 5 * time.Minute, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepFailed, StepPending, StepPending},
			wantMsg:   map[int]string{stepFetched: "timed out waiting for Flux at step 2 (fetched) after 5m0s: the GitRepository has " + rev(shaB)},
		},
		{
			name:    "timeout counts from the last step reached",
			sha:     shaC,
			timeout: 5 * time.Minute,
			snaps: []snap{
				{at: 4 * time.Minute, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 8 * time.Minute, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 9 * time.Minute, obs: func(f *fixtures) Observation { return Observation{} }, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepFailed, StepPending},
			wantMsg:   map[int]string{stepApplied: "timed out waiting for Flux at step 3 (applied)"},
		},
		{
			name: "superseded: Flux fetched and applied a newer commit first",
			sha:  shaB,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaA)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.ready(shaA)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 3 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.checking(shaC, shaA)}
				}, want: fluxgate.DeploymentSuperseded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepPending, StepPending},
			wantMsg:   map[int]string{stepApplied: "superseded: Flux applied a newer revision first: " + rev(shaC)},
		},
		{
			name: "superseded: Flux moved on to a newer commit that failed to build",
			sha:  shaB,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaA)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.buildFailed(shaC, shaA)}
				}, want: fluxgate.DeploymentSuperseded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepPending, StepPending},
			wantMsg:   map[int]string{stepApplied: "superseded: Flux moved on to a newer revision before applying this one: " + rev(shaC)},
		},
		{
			name: "applied, then a newer commit: superseded only once Flux applied it",
			sha:  shaB,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.building(shaC, shaA), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 3 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.checking(shaC, shaA), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentSuperseded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepPending},
			wantMsg:   map[int]string{stepHealthy: "before this one was healthy: " + rev(shaC)},
			wantPods:  [2]int{1, 2},
		},
		{
			name: "out of order: applied seen before fetched still ends healthy",
			sha:  shaB,
			snaps: []snap{
				{at: 400 * time.Millisecond, obs: func(f *fixtures) Observation {
					// The GitRepository event is still queued.
					return Observation{Source: f.source(shaA), Apply: f.checking(shaB, shaA), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 500 * time.Millisecond, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentInProgress},
				{at: 6 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaB), Apply: f.ready(shaB), Workloads: f.wl("rolling")}
				}, want: fluxgate.DeploymentSucceeded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepDone},
			wantPods:  [2]int{1, 2},
		},
		{
			name: "fetch failure after the commit",
			sha:  shaC,
			snaps: []snap{
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.sourceFailed(shaB, t0.Add(2*time.Second)), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepFailed, StepPending, StepPending},
			wantMsg:   map[int]string{stepFetched: "Flux could not fetch the commit: GitOperationFailed: failed to checkout"},
		},
		{
			name: "fetch failing since before the commit waits, then times out with Flux's message",
			sha:  shaC,
			snaps: []snap{
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.sourceFailed(shaB, t0.Add(-time.Hour)), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentPending},
				{at: DefaultTimeout, obs: func(f *fixtures) Observation {
					return Observation{Source: f.sourceFailed(shaB, t0.Add(-time.Hour)), Apply: f.ready(shaB)}
				}, want: fluxgate.DeploymentFailed},
			},
			wantSteps: [stepCount]string{StepDone, StepFailed, StepPending, StepPending},
			wantMsg:   map[int]string{stepFetched: "authentication required"},
		},
		{
			name: "an older failure of the Kustomization does not fail a new commit",
			sha:  shaC,
			snaps: []snap{
				{at: time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.buildFailed(shaB, shaA)}
				}, want: fluxgate.DeploymentInProgress},
				{at: 2 * time.Second, obs: func(f *fixtures) Observation {
					return Observation{Source: f.source(shaC), Apply: f.ready(shaC)}
				}, want: fluxgate.DeploymentSucceeded},
			},
			wantSteps: [stepCount]string{StepDone, StepDone, StepDone, StepDone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment("d1", "env1", tt.sha, t0)
			for i, s := range tt.snaps {
				ff := *f
				ff.t = t
				obs := s.obs(&ff)
				obs.Timeout = tt.timeout
				now := t0.Add(s.at)
				before := clone(t, d)
				changed := Advance(d, obs, now)
				if d.Status != s.want {
					t.Fatalf("snap %d: status %s, want %s; steps %+v", i, d.Status, s.want, d.Steps)
				}
				if changed != !jsonEqual(t, before, d) {
					t.Fatalf("snap %d: changed=%v but deployment %s", i, changed, map[bool]string{true: "is unchanged", false: "differs"}[changed])
				}
				// Idempotence: the same observation again changes nothing.
				again := clone(t, d)
				if Advance(again, obs, now) || !jsonEqual(t, again, d) {
					t.Fatalf("snap %d: the same observation twice changed the deployment", i)
				}
			}
			for i, want := range tt.wantSteps {
				st := d.Steps[i]
				if st.Name != stepName(i) || st.Status != want {
					t.Errorf("step %d: %s %s, want %s %s", i, st.Name, st.Status, stepName(i), want)
				}
				if (st.Status == StepDone || st.Status == StepFailed) && st.At == nil {
					t.Errorf("step %s is %s without a timestamp", st.Name, st.Status)
				}
				if st.Status == StepPending && st.At != nil {
					t.Errorf("pending step %s has a timestamp", st.Name)
				}
			}
			for i, sub := range tt.wantMsg {
				if !strings.Contains(d.Steps[i].Message, sub) {
					t.Errorf("step %s message %q, want it to contain %q", d.Steps[i].Name, d.Steps[i].Message, sub)
				}
			}
			if got := [2]int{d.Steps[stepHealthy].ReadyPods, d.Steps[stepHealthy].TotalPods}; got != tt.wantPods {
				t.Errorf("healthy step pods %v, want %v", got, tt.wantPods)
			}
			if d.Status.Terminal() != (d.FinishedAt != nil) {
				t.Errorf("status %s with FinishedAt %v", d.Status, d.FinishedAt)
			}
			// Timestamps never go backwards along the steps.
			var last time.Time
			for _, st := range d.Steps {
				if st.At == nil {
					continue
				}
				if st.At.Before(last) {
					t.Errorf("step %s at %v before the previous step at %v", st.Name, st.At, last)
				}
				last = *st.At
			}
		})
	}
}

func TestAdvanceHappyPathTimestamps(t *testing.T) {
	f := loadFixtures(t)
	d := newDeployment("d1", "env1", shaB, t0)
	seq := []struct {
		at  time.Duration
		obs Observation
	}{
		{250 * time.Millisecond, Observation{Source: f.source(shaB), Apply: f.ready(shaA)}},
		{400 * time.Millisecond, Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: []Workload{f.workloadState("new-spec")}}},
		{900 * time.Millisecond, Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: []Workload{f.workloadState("done-gen3")}}},
	}
	for _, s := range seq {
		if !Advance(d, s.obs, t0.Add(s.at)) {
			t.Fatalf("no progress at %v", s.at)
		}
	}
	want := []time.Duration{0, 250 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond}
	for i, w := range want {
		if got := d.Steps[i].At.Sub(t0); got != w {
			t.Errorf("step %s at +%v, want +%v", d.Steps[i].Name, got, w)
		}
	}
	if d.FinishedAt == nil || !d.FinishedAt.Equal(t0.Add(900*time.Millisecond)) {
		t.Errorf("FinishedAt %v", d.FinishedAt)
	}
}

func TestAdvanceOutOfOrderAllTimestamps(t *testing.T) {
	f := loadFixtures(t)
	d := newDeployment("d1", "env1", shaB, t0)
	d.Steps = nil // a row written before steps were recorded
	// The first thing seen is Flux's final verdict.
	if !Advance(d, Observation{Source: f.source(shaA), Apply: f.ready(shaB), Workloads: []Workload{f.workloadState("done")}}, t0.Add(6*time.Second)) {
		t.Fatal("no progress")
	}
	if d.Status != fluxgate.DeploymentSucceeded {
		t.Fatalf("status %s", d.Status)
	}
	for _, s := range d.Steps {
		if s.Status != StepDone || s.At == nil {
			t.Fatalf("step %s: %s at %v", s.Name, s.Status, s.At)
		}
	}
	if !d.Steps[stepCommitted].At.Equal(t0) || !d.Steps[stepFetched].At.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("committed at %v, fetched at %v", d.Steps[stepCommitted].At, d.Steps[stepFetched].At)
	}
	if d.Steps[stepHealthy].ReadyPods != 2 || d.Steps[stepHealthy].TotalPods != 2 {
		t.Fatalf("pods %d/%d", d.Steps[stepHealthy].ReadyPods, d.Steps[stepHealthy].TotalPods)
	}
}

func TestAdvanceRolloutNeedsApplied(t *testing.T) {
	f := loadFixtures(t)
	d := newDeployment("d1", "env1", shaB, t0)
	// Fetched, workloads rolled out — but those are the old spec: Flux has
	// not applied the commit yet.
	Advance(d, Observation{Source: f.source(shaB), Apply: f.building(shaB, shaA), Workloads: []Workload{f.workloadState("done")}}, t0.Add(time.Second))
	if d.Status != fluxgate.DeploymentInProgress || d.Steps[stepApplied].Status != StepPending {
		t.Fatalf("status %s, applied %s", d.Status, d.Steps[stepApplied].Status)
	}
	// Applied, but a workload of the inventory was never seen.
	Advance(d, Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA)}, t0.Add(2*time.Second))
	if d.Status != fluxgate.DeploymentInProgress || d.Steps[stepApplied].Status != StepDone {
		t.Fatalf("status %s, applied %s", d.Status, d.Steps[stepApplied].Status)
	}
	// Pods progress is recorded while rolling out.
	if !Advance(d, Observation{Source: f.source(shaB), Apply: f.checking(shaB, shaA), Workloads: []Workload{f.workloadState("rolling")}}, t0.Add(3*time.Second)) {
		t.Fatal("pod progress not recorded")
	}
	if s := d.Steps[stepHealthy]; s.Status != StepPending || s.ReadyPods != 1 || s.TotalPods != 2 {
		t.Fatalf("healthy step %+v", s)
	}
}

func TestAdvanceLeavesUntrackedAlone(t *testing.T) {
	f := loadFixtures(t)
	obs := Observation{Source: f.source(shaB), Apply: f.ready(shaB)}
	for _, d := range []*fluxgate.Deployment{
		func() *fluxgate.Deployment {
			d := newDeployment("a", "env1", shaB, t0)
			d.Status = fluxgate.DeploymentAwaitingApproval
			return d
		}(),
		func() *fluxgate.Deployment { d := newDeployment("b", "env1", "", t0); return d }(),
		func() *fluxgate.Deployment {
			d := newDeployment("c", "env1", shaB, t0)
			d.Status = fluxgate.DeploymentSucceeded
			return d
		}(),
		func() *fluxgate.Deployment {
			d := newDeployment("m", "env1", shaB, t0)
			d.Method = fluxgate.MethodManual
			return d
		}(),
	} {
		before := clone(t, d)
		if Advance(d, obs, t0.Add(time.Hour)) || !jsonEqual(t, before, d) {
			t.Errorf("deployment %s (%s, %q) was advanced", d.ID, d.Status, d.CommitSHA)
		}
	}
}

func TestAdvanceWithoutStartTimeNeverTimesOut(t *testing.T) {
	d := newDeployment("d1", "env1", shaB, time.Time{})
	d.Steps[stepCommitted] = fluxgate.DeploymentStep{Name: fluxgate.StepCommitted, Status: StepPending}
	if Advance(d, Observation{}, t0.Add(time.Hour)) || d.Status != fluxgate.DeploymentPending {
		t.Fatalf("a deployment with no reference time was timed out: %+v", d)
	}
}

func TestWorkloadOf(t *testing.T) {
	f := loadFixtures(t)
	tests := []struct {
		state      string
		want       status.Status
		ready, tot int
		rolledOut  bool
	}{
		{"done", status.CurrentStatus, 2, 2, true},
		{"new-spec", status.InProgressStatus, 0, 2, false},
		{"rolling", status.InProgressStatus, 1, 2, false},
		{"done-gen3", status.CurrentStatus, 2, 2, true},
	}
	for _, tt := range tests {
		w := f.workloadState(tt.state)
		if w.ID != "default_webapp_apps_Deployment" || w.Status != tt.want || w.ReadyPods != tt.ready || w.TotalPods != tt.tot || w.RolledOut() != tt.rolledOut {
			t.Errorf("%s: %+v", tt.state, w)
		}
	}
	// Typed, as an informer hands it over (no TypeMeta).
	var typed appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(f.workloadObject("rolling").Object, &typed); err != nil {
		t.Fatal(err)
	}
	typed.TypeMeta = metav1.TypeMeta{}
	w, err := WorkloadFromObject(&typed)
	if err != nil || w.ID != "default_webapp_apps_Deployment" || w.Status != status.InProgressStatus || w.ReadyPods != 1 || w.TotalPods != 2 {
		t.Errorf("typed: %+v %v", w, err)
	}
	if _, err := WorkloadFromObject(&appsv1.ReplicaSet{}); err == nil {
		t.Error("a ReplicaSet was taken for a workload")
	}
	svc := f.workloadObject("done")
	svc.SetAPIVersion("v1")
	svc.SetKind("Service")
	if _, err := WorkloadOf(svc); err == nil {
		t.Error("a Service was taken for a workload")
	}
}

func TestRevisions(t *testing.T) {
	tests := []struct {
		revision, sha string
		want          bool
		wantSHA       string
	}{
		{"main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", shaB, true, shaB},
		{"main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", "87e4763", true, shaB},
		{"main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", "87E476366D3CFD45C32E7F80BF278F9FA0AD5192", true, shaB},
		{"sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", shaB, true, shaB},
		{"refs/heads/feature/x@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", shaB, true, shaB},
		{"main/87e476366d3cfd45c32e7f80bf278f9fa0ad5192", shaB, true, shaB},
		{"87e476366d3cfd45c32e7f80bf278f9fa0ad5192", "87e4763", true, shaB},
		{"main@sha1:87e4763", shaB, true, "87e4763"},
		{"main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", shaA, false, shaB},
		{"main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", "87e4", false, shaB},
		{"main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192", "", false, shaB},
		{"", shaB, false, ""},
		{"6.1.0", "6.1.0", false, ""},
		{"main@sha1:not-a-sha", "not-a-sha", false, ""},
	}
	for _, tt := range tests {
		if got := RevisionHas(tt.revision, tt.sha); got != tt.want {
			t.Errorf("RevisionHas(%q, %q) = %v, want %v", tt.revision, tt.sha, got, tt.want)
		}
		if got := SHAOf(tt.revision); got != tt.wantSHA {
			t.Errorf("SHAOf(%q) = %q, want %q", tt.revision, got, tt.wantSHA)
		}
	}
}

func TestUnclaimed(t *testing.T) {
	open := []*fluxgate.Deployment{newDeployment("a", "env1", shaA, t0), newDeployment("b", "env1", "87e4763", t0)}
	if Unclaimed(rev(shaA), open) || Unclaimed(rev(shaB), open) {
		t.Error("a claimed revision was reported unclaimed")
	}
	if !Unclaimed(rev(shaC), open) || !Unclaimed(rev(shaC), nil) {
		t.Error("an unclaimed revision was reported claimed")
	}
	if Unclaimed("6.1.0", nil) || Unclaimed("", nil) {
		t.Error("a revision without a commit was reported unclaimed")
	}
}
