package k8s

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxgate/fluxgate"
)

func TestStatusOfFixtures(t *testing.T) {
	t.Run("git repository ready", func(t *testing.T) {
		var repo sourcev1.GitRepository
		readFixture(t, "objects/gitrepository-ready.json", &repo)
		u := StatusOf(&repo)
		if u.Status != fluxgate.ResourceReady || u.ErrorMessage != "" {
			t.Fatalf("status = %s %q", u.Status, u.ErrorMessage)
		}
		const rev = "main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192"
		if u.LastAppliedRevision != rev || u.LastAttemptedRevision != rev || u.ObservedGeneration != 1 {
			t.Fatalf("revisions = %q %q gen %d", u.LastAppliedRevision, u.LastAttemptedRevision, u.ObservedGeneration)
		}
		if len(u.Conditions) != 2 || u.Conditions[0].Type != "Ready" || u.Conditions[1].Type != "ArtifactInStorage" {
			t.Fatalf("conditions = %+v", u.Conditions)
		}
		if u.LastReconciledAt == nil || !u.LastReconciledAt.Equal(time.Date(2026, 11, 27, 4, 37, 31, 0, time.UTC)) {
			t.Fatalf("last reconciled = %v", u.LastReconciledAt)
		}
	})
	t.Run("kustomization ready with inventory", func(t *testing.T) {
		var ks kustomizev1.Kustomization
		readFixture(t, "objects/kustomization-ready.json", &ks)
		u := StatusOf(&ks)
		if u.Status != fluxgate.ResourceReady {
			t.Fatalf("status = %s", u.Status)
		}
		if u.LastAppliedRevision != "main@sha1:87e476366d3cfd45c32e7f80bf278f9fa0ad5192" || u.LastAttemptedRevision != u.LastAppliedRevision {
			t.Fatalf("revisions = %q %q", u.LastAppliedRevision, u.LastAttemptedRevision)
		}
		want := []fluxgate.InventoryEntry{{ID: "default_webapp__Service", Version: "v1"}, {ID: "default_webapp_apps_Deployment", Version: "v1"}}
		if len(u.Inventory) != 2 || u.Inventory[0] != want[0] || u.Inventory[1] != want[1] {
			t.Fatalf("inventory = %+v", u.Inventory)
		}
		// history[0].lastReconciled
		if u.LastReconciledAt == nil || !u.LastReconciledAt.Equal(time.Date(2026, 11, 27, 4, 37, 36, 0, time.UTC)) {
			t.Fatalf("last reconciled = %v", u.LastReconciledAt)
		}
	})
	t.Run("kustomization health check failed", func(t *testing.T) {
		var ks kustomizev1.Kustomization
		readFixture(t, "objects/kustomization-ready.json", &ks)
		readFixture(t, "objects/kustomization-healthcheckfailed-conditions.json", &ks.Status.Conditions)
		u := StatusOf(&ks)
		if u.Status != fluxgate.ResourceFailed {
			t.Fatalf("status = %s, want failed", u.Status)
		}
		if !strings.HasPrefix(u.ErrorMessage, "health check failed after 2m0.026097515s") {
			t.Fatalf("message = %q", u.ErrorMessage)
		}
	})
	t.Run("suspended wins", func(t *testing.T) {
		var ks kustomizev1.Kustomization
		readFixture(t, "objects/kustomization-healthcheckfailed-conditions.json", &ks.Status.Conditions)
		ks.Spec.Suspend = true
		u := StatusOf(&ks)
		if u.Status != fluxgate.ResourceSuspended || !u.Suspended || u.ErrorMessage != "" {
			t.Fatalf("status = %+v", u)
		}
	})
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC))}
}

func TestMapConditions(t *testing.T) {
	tests := []struct {
		name        string
		conds       []metav1.Condition
		suspended   bool
		gen, obsGen int64
		want        fluxgate.ResourceStatus
		wantMsg     string
	}{
		{name: "no conditions", want: fluxgate.ResourcePending},
		{name: "ready", conds: []metav1.Condition{cond("Ready", "True", "Succeeded", "ok")}, gen: 2, obsGen: 2, want: fluxgate.ResourceReady},
		{name: "ready unknown", conds: []metav1.Condition{cond("Ready", "Unknown", "Progressing", "reconciliation in progress")}, want: fluxgate.ResourceReconciling},
		{name: "reconciling", conds: []metav1.Condition{cond("Reconciling", "True", "Progressing", ""), cond("Ready", "True", "Succeeded", "")}, want: fluxgate.ResourceReconciling},
		{name: "stalled", conds: []metav1.Condition{cond("Stalled", "True", "InvalidURL", "bad url"), cond("Ready", "False", "InvalidURL", "bad url")}, want: fluxgate.ResourceFailed, wantMsg: "bad url"},
		{name: "build failed", conds: []metav1.Condition{cond("Ready", "False", "BuildFailed", "kustomize build failed: missing file")}, want: fluxgate.ResourceFailed, wantMsg: "kustomize build failed: missing file"},
		{name: "git operation failed", conds: []metav1.Condition{cond("Ready", "False", "GitOperationFailed", "failed to checkout")}, want: fluxgate.ResourceFailed, wantMsg: "failed to checkout"},
		{name: "waiting for dependency", conds: []metav1.Condition{cond("Ready", "False", "DependencyNotReady", "dependency 'infra' is not ready")}, want: fluxgate.ResourceReconciling},
		{name: "stale generation", conds: []metav1.Condition{cond("Ready", "True", "Succeeded", "")}, gen: 3, obsGen: 2, want: fluxgate.ResourceReconciling},
		{name: "suspended", conds: []metav1.Condition{cond("Ready", "False", "BuildFailed", "x")}, suspended: true, want: fluxgate.ResourceSuspended},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := MapConditions(tt.conds, tt.suspended, tt.gen, tt.obsGen)
			if got != tt.want || msg != tt.wantMsg {
				t.Fatalf("MapConditions = %s %q, want %s %q", got, msg, tt.want, tt.wantMsg)
			}
		})
	}
}

func TestStatusOfOtherKinds(t *testing.T) {
	hr := &helmv2.HelmRelease{}
	hr.Status.Conditions = []metav1.Condition{cond("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded")}
	hr.Status.LastAttemptedRevision = "6.5.1"
	hr.Status.History = helmv2.Snapshots{{Version: 2, Status: "deployed", ChartVersion: "6.5.1", LastDeployed: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}}
	hr.Status.Inventory = &helmv2.ResourceInventory{Entries: []helmv2.ResourceRef{{ID: "apps_podinfo_apps_Deployment", Version: "v1"}}}
	u := StatusOf(hr)
	if u.Status != fluxgate.ResourceReady || u.LastAppliedRevision != "6.5.1" || u.LastAttemptedRevision != "6.5.1" || len(u.Inventory) != 1 {
		t.Fatalf("helm release = %+v", u)
	}
	ip := &imagev1.ImagePolicy{}
	ip.Status.LatestRef = &imagev1.ImageRef{Name: "ghcr.io/org/app", Tag: "1.4.2"}
	ip.Status.Conditions = []metav1.Condition{cond("Ready", "True", "Succeeded", "")}
	if u := StatusOf(ip); u.Status != fluxgate.ResourceReady || u.LastAppliedRevision != "ghcr.io/org/app:1.4.2" {
		t.Fatalf("image policy = %+v", u)
	}
	if u := StatusOf(&corev1.ConfigMap{}); u.Status != fluxgate.ResourcePending {
		t.Fatalf("non-flux = %+v", u)
	}
}

func TestFluxEventFromEventFixtures(t *testing.T) {
	var list corev1.EventList
	readFixture(t, "objects/flux-system-events.json", &list)
	if len(list.Items) < 5 {
		t.Fatalf("fixture has %d events", len(list.Items))
	}
	first := FluxEventFromEvent(&list.Items[0])
	if first.Kind != "GitRepository" || first.Name != "web" || first.Namespace != "flux-system" || first.Reason != "NewArtifact" ||
		first.Type != "Normal" || first.Severity != "info" || first.Source != "watcher" {
		t.Fatalf("event = %+v", first)
	}
	if first.Revision != "main@sha1:61566cd25f4f49c81969c245db50c428df714185" {
		t.Fatalf("revision = %q", first.Revision)
	}
	var md map[string]string
	if err := json.Unmarshal(first.Metadata, &md); err != nil {
		t.Fatal(err)
	}
	if md["digest"] == "" || md["reportingController"] != "source-controller" {
		t.Fatalf("metadata = %v", md)
	}
	keys := map[string]bool{}
	for i := range list.Items {
		if !IsFluxEvent(&list.Items[i]) {
			t.Fatalf("event %d not recognised as a Flux event", i)
		}
		fe := FluxEventFromEvent(&list.Items[i])
		if keys[fe.DedupKey] {
			t.Fatalf("duplicate dedup key for event %d (%s %s)", i, fe.Reason, fe.Message)
		}
		keys[fe.DedupKey] = true
		if fe.Reason == "ReconciliationSucceeded" && !strings.HasPrefix(fe.Revision, "main@sha1:") {
			t.Fatalf("kustomization revision = %q", fe.Revision)
		}
	}
	// The same occurrence computes the same key.
	if again := FluxEventFromEvent(&list.Items[0]); again.DedupKey != first.DedupKey {
		t.Fatal("dedup key not stable")
	}
	warn := list.Items[0].DeepCopy()
	warn.Type = corev1.EventTypeWarning
	if fe := FluxEventFromEvent(warn); fe.Severity != "error" {
		t.Fatalf("warning severity = %q", fe.Severity)
	}
	notFlux := list.Items[0].DeepCopy()
	notFlux.InvolvedObject.APIVersion, notFlux.InvolvedObject.Kind = "apps/v1", "Deployment"
	if IsFluxEvent(notFlux) {
		t.Fatal("a Deployment event is not a Flux event")
	}
}
