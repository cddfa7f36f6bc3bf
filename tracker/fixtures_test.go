package tracker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/k8s"
)

// Commits of the captured fixtures (testdata/ is a copy of
// /work/shared/fixtures/objects): the GitRepository and Kustomization were
// captured at shaB, the previous revision was shaA; the health check
// failure was captured for shaBad.
const (
	shaA   = "61566cd25f4f49c81969c245db50c428df714185"
	shaB   = "87e476366d3cfd45c32e7f80bf278f9fa0ad5192"
	shaC   = "0c5d3c4a1f7e2b9d8a6e5f4c3b2a1908f7e6d5c4"
	shaBad = "2db05fd1dfe0bd0910276ba6982c1f065019a905"
)

func rev(sha string) string { return "main@sha1:" + sha }

func readFixture(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
}

// fixtures builds Flux object states from the captured ones, mapped to the
// domain exactly as the watcher does (k8s.StatusOf).
type fixtures struct {
	t        *testing.T
	repo     sourcev1.GitRepository
	ks       kustomizev1.Kustomization
	workload unstructured.Unstructured
	hcFailed []metav1.Condition
}

func loadFixtures(t *testing.T) *fixtures {
	t.Helper()
	f := &fixtures{t: t}
	readFixture(t, "gitrepository-ready.json", &f.repo)
	readFixture(t, "kustomization-ready.json", &f.ks)
	b, err := os.ReadFile(filepath.Join("testdata", "deployment-rolled-out.json"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	if err := f.workload.UnmarshalJSON(b); err != nil {
		t.Fatalf("decode deployment fixture: %v", err)
	}
	readFixture(t, "kustomization-healthcheckfailed-conditions.json", &f.hcFailed)
	if f.repo.Status.Artifact == nil || f.repo.Status.Artifact.Revision != rev(shaB) ||
		f.ks.Status.LastAppliedRevision != rev(shaB) || len(f.ks.Status.Inventory.Entries) != 2 {
		t.Fatalf("fixtures are not the captured ones")
	}
	return f
}

// source is the GitRepository after it stored the artifact of sha.
func (f *fixtures) source(sha string) *SourceStatus {
	o := f.repo.DeepCopy()
	o.Status.Artifact.Revision = rev(sha)
	o.Status.Artifact.Path = strings.ReplaceAll(o.Status.Artifact.Path, shaB, sha)
	for i := range o.Status.Conditions {
		o.Status.Conditions[i].Message = "stored artifact for revision '" + rev(sha) + "'"
	}
	return SourceFromStatus(k8s.StatusOf(o))
}

// sourceFailed is the GitRepository failing to fetch, still holding the
// artifact of sha.
func (f *fixtures) sourceFailed(sha string, at time.Time) *SourceStatus {
	o := f.repo.DeepCopy()
	o.Status.Artifact.Revision = rev(sha)
	o.Status.Conditions = []metav1.Condition{
		{Type: "FetchFailed", Status: metav1.ConditionTrue, Reason: "GitOperationFailed", Message: "failed to checkout and determine revision: unable to clone 'http://127.0.0.1:28480/web.git': authentication required", LastTransitionTime: metav1.NewTime(at), ObservedGeneration: 1},
		{Type: "Ready", Status: metav1.ConditionFalse, Reason: "GitOperationFailed", Message: "failed to checkout and determine revision: unable to clone 'http://127.0.0.1:28480/web.git': authentication required", LastTransitionTime: metav1.NewTime(at), ObservedGeneration: 1},
	}
	return SourceFromStatus(k8s.StatusOf(o))
}

func (f *fixtures) kustomization(mutate func(o *kustomizev1.Kustomization)) *ApplyStatus {
	o := f.ks.DeepCopy()
	mutate(o)
	return ApplyFromStatus(k8s.StatusOf(o))
}

// ready is the Kustomization after it applied sha and its health checks
// passed (the captured object, at sha).
func (f *fixtures) ready(sha string) *ApplyStatus {
	return f.kustomization(func(o *kustomizev1.Kustomization) {
		o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(sha), rev(sha)
		setCond(o, "Ready", metav1.ConditionTrue, "ReconciliationSucceeded", "Applied revision: "+rev(sha))
	})
}

// building is the Kustomization building sha, prev still applied.
func (f *fixtures) building(sha, prev string) *ApplyStatus {
	return f.kustomization(func(o *kustomizev1.Kustomization) {
		o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(prev), rev(sha)
		setCond(o, "Ready", metav1.ConditionUnknown, "Progressing", "Reconciliation in progress")
		setCond(o, "Reconciling", metav1.ConditionTrue, "Progressing", "Building manifests for revision "+rev(sha)+" with a timeout of 2m0s")
	})
}

// checking is the Kustomization after it applied sha, waiting for health
// checks (lastAppliedRevision is still prev until they pass).
func (f *fixtures) checking(sha, prev string) *ApplyStatus {
	return f.kustomization(func(o *kustomizev1.Kustomization) {
		o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(prev), rev(sha)
		msg := "Running health checks for revision " + rev(sha) + " with a timeout of 2m0s"
		setCond(o, "Ready", metav1.ConditionUnknown, "Progressing", "Reconciliation in progress")
		setCond(o, "Reconciling", metav1.ConditionTrue, "Progressing", msg)
		setCond(o, "Healthy", metav1.ConditionUnknown, "Progressing", msg)
	})
}

// buildFailed is the Kustomization failing to build sha.
func (f *fixtures) buildFailed(sha, prev string) *ApplyStatus {
	return f.kustomization(func(o *kustomizev1.Kustomization) {
		o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(prev), rev(sha)
		setCond(o, "Ready", metav1.ConditionFalse, "BuildFailed", "kustomize build failed: accumulating resources: accumulation err='accumulating resources from 'deployment.yaml': MalformedYAMLError: yaml: line 7: mapping values are not allowed in this context'")
		setCond(o, "Reconciling", metav1.ConditionTrue, "ProgressingWithRetry", "Building manifests for revision "+rev(sha)+" with a timeout of 2m0s")
	})
}

// healthCheckFailed is the Kustomization with the captured conditions of a
// rollout that never became ready (captured for shaBad).
func (f *fixtures) healthCheckFailed(prev string) *ApplyStatus {
	return f.kustomization(func(o *kustomizev1.Kustomization) {
		o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = rev(prev), rev(shaBad)
		o.Status.Conditions = append([]metav1.Condition(nil), f.hcFailed...)
	})
}

func setCond(o *kustomizev1.Kustomization, typ string, status metav1.ConditionStatus, reason, msg string) {
	for i := range o.Status.Conditions {
		if o.Status.Conditions[i].Type == typ {
			o.Status.Conditions[i].Status, o.Status.Conditions[i].Reason, o.Status.Conditions[i].Message = status, reason, msg
			return
		}
	}
	o.Status.Conditions = append(o.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: metav1.Now(), ObservedGeneration: 1})
}

// workloadObject is the captured Deployment; rollout states are derived
// from it: "done" as captured, "new-spec" right after Flux applied a new
// spec (generation not yet observed), "rolling" half way.
func (f *fixtures) workloadObject(state string) *unstructured.Unstructured {
	u := f.workload.DeepCopy()
	set := func(v int64, fields ...string) {
		if err := unstructured.SetNestedField(u.Object, v, fields...); err != nil {
			f.t.Fatalf("set %v: %v", fields, err)
		}
	}
	switch state {
	case "done":
	case "new-spec":
		u.SetGeneration(3)
	case "rolling":
		u.SetGeneration(3)
		set(3, "status", "observedGeneration")
		set(1, "status", "updatedReplicas")
		set(3, "status", "replicas")
		set(2, "status", "readyReplicas")
		set(2, "status", "availableReplicas")
	case "done-gen3":
		u.SetGeneration(3)
		set(3, "status", "observedGeneration")
	default:
		f.t.Fatalf("unknown workload state %q", state)
	}
	return u
}

func (f *fixtures) wl(state string) []Workload { return []Workload{f.workloadState(state)} }

func (f *fixtures) workloadState(state string) Workload {
	w, err := WorkloadOf(f.workloadObject(state))
	if err != nil {
		f.t.Fatalf("workload: %v", err)
	}
	return w
}

// newDeployment is a gitops-ui deployment of sha committed at start, as
// the deploy service records it.
func newDeployment(id, envID, sha string, start time.Time) *fluxgate.Deployment {
	at := start
	return &fluxgate.Deployment{
		ID: id, ProjectID: "p1", EnvironmentID: envID, CommitSHA: sha, Branch: "main",
		Method: fluxgate.MethodGitOpsUI, Status: fluxgate.DeploymentPending, StartedAt: start,
		Steps: []fluxgate.DeploymentStep{
			{Name: fluxgate.StepCommitted, Status: StepDone, At: &at, Message: "commit " + shortSHA(sha) + " pushed to main"},
			{Name: fluxgate.StepFetched, Status: StepPending},
			{Name: fluxgate.StepApplied, Status: StepPending},
			{Name: fluxgate.StepHealthy, Status: StepPending},
		},
	}
}
