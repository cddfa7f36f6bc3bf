package k8s

import (
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 10)
	c.Collect(ch)
	close(ch)
	total := 0.0
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		switch {
		case pb.Counter != nil:
			total += pb.Counter.GetValue()
		case pb.Gauge != nil:
			total += pb.Gauge.GetValue()
		case pb.Histogram != nil:
			total += float64(pb.Histogram.GetSampleCount())
		}
	}
	return total
}

// observer feeds successive states of one object to observeMetrics.
type observer struct {
	r  *watchRun
	st objState
	n  int
}

func newObserver(t *testing.T, now func() time.Time) (*observer, *Metrics) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &Watcher{opts: WatcherOptions{Metrics: m, Now: now}}
	return &observer{r: &watchRun{w: w}}, m
}

func (o *observer) see(kind fluxgate.ResourceKind, obj client.Object) {
	o.r.observeMetrics(kind, &o.st, obj, StatusOf(obj), o.n == 0)
	o.n++
}

func TestMetricsKustomizationApplies(t *testing.T) {
	o, m := newObserver(t, fixedClock(time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC), 2*time.Second))
	var ks kustomizev1.Kustomization
	readFixture(t, "objects/kustomization-ready.json", &ks)
	o.see(fluxgate.KindKustomization, &ks) // first sight: not counted
	if v := metricValue(t, m.KustomizationApply); v != 0 {
		t.Fatalf("first sight counted %v applies", v)
	}
	// Flux reconciles again: in progress, then a new history entry.
	ks.Status.Conditions = append([]metav1.Condition{{Type: meta.ReconcilingCondition, Status: "True", Reason: "Progressing"}}, ks.Status.Conditions...)
	o.see(fluxgate.KindKustomization, &ks)
	ks.Status.Conditions = ks.Status.Conditions[1:]
	ks.Status.History[0].TotalReconciliations++
	ks.Status.History[0].LastReconciledDuration = metav1.Duration{Duration: 1500 * time.Millisecond}
	o.see(fluxgate.KindKustomization, &ks)
	if v := metricValue(t, m.KustomizationApply.WithLabelValues("success")); v != 1 {
		t.Fatalf("applies = %v", v)
	}
	if v := metricValue(t, m.KustomizationApplyDuration); v != 1 {
		t.Fatalf("durations = %v", v)
	}
	// Same state again (a resync): nothing new.
	o.see(fluxgate.KindKustomization, &ks)
	if v := metricValue(t, m.KustomizationApply); v != 1 {
		t.Fatalf("resync counted: %v", v)
	}
	// Health check fails: a failed apply and one error.
	readFixture(t, "objects/kustomization-healthcheckfailed-conditions.json", &ks.Status.Conditions)
	ks.Status.Conditions = ks.Status.Conditions[1:] // drop Reconciling: Flux gave up
	o.see(fluxgate.KindKustomization, &ks)
	o.see(fluxgate.KindKustomization, &ks)
	if v := metricValue(t, m.KustomizationApply.WithLabelValues("failure")); v != 1 {
		t.Fatalf("failed applies = %v", v)
	}
	if v := metricValue(t, m.Errors.WithLabelValues("Kustomization", "HealthCheckFailed")); v != 1 {
		t.Fatalf("errors = %v", v)
	}
}

func TestMetricsHelmInstallAndUpgrade(t *testing.T) {
	o, m := newObserver(t, time.Now)
	hr := &helmv2.HelmRelease{}
	o.see(fluxgate.KindHelmRelease, hr)
	hr.Status.History = helmv2.Snapshots{{Version: 1, Status: "deployed", ChartVersion: "6.5.0"}}
	o.see(fluxgate.KindHelmRelease, hr)
	hr.Status.History = append(helmv2.Snapshots{{Version: 2, Status: "failed", ChartVersion: "6.5.1"}}, hr.Status.History...)
	hr.Status.LastAttemptedReleaseAction = helmv2.ReleaseActionUpgrade
	o.see(fluxgate.KindHelmRelease, hr)
	hr.Status.History = append(helmv2.Snapshots{{Version: 3, Status: "deployed", ChartVersion: "6.5.2"}}, hr.Status.History...)
	o.see(fluxgate.KindHelmRelease, hr)
	o.see(fluxgate.KindHelmRelease, hr)
	if v := metricValue(t, m.HelmReleaseInstall.WithLabelValues("success")); v != 1 {
		t.Fatalf("installs = %v", v)
	}
	if f, s := metricValue(t, m.HelmReleaseUpgrade.WithLabelValues("failure")), metricValue(t, m.HelmReleaseUpgrade.WithLabelValues("success")); f != 1 || s != 1 {
		t.Fatalf("upgrades failure=%v success=%v", f, s)
	}
}
