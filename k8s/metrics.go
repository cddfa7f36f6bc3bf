package k8s

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (SPEC §15). docs/grafana-dashboard.json queries these.
const (
	MetricGitRepositorySyncTotal     = "flux_git_repository_sync_total"
	MetricGitRepositorySyncDuration  = "flux_git_repository_sync_duration_seconds"
	MetricKustomizationApplyTotal    = "flux_kustomization_apply_total"
	MetricKustomizationApplyDuration = "flux_kustomization_apply_duration_seconds"
	MetricHelmReleaseInstallTotal    = "flux_helm_release_install_total"
	MetricHelmReleaseUpgradeTotal    = "flux_helm_release_upgrade_total"
	MetricErrorsTotal                = "flux_errors_total"
	MetricResourcesReady             = "flux_resources_ready"
	MetricWatcherRelistsTotal        = "fluxgate_watcher_relists_total"
)

// Values of the status label.
const (
	statusSuccess = "success"
	statusFailure = "failure"
)

// MetricNames lists every metric the package registers.
func MetricNames() []string {
	return []string{
		MetricGitRepositorySyncTotal, MetricGitRepositorySyncDuration,
		MetricKustomizationApplyTotal, MetricKustomizationApplyDuration,
		MetricHelmReleaseInstallTotal, MetricHelmReleaseUpgradeTotal,
		MetricErrorsTotal, MetricResourcesReady, MetricWatcherRelistsTotal,
	}
}

// Metrics are the Prometheus collectors the Watcher updates. Create one per
// registry with NewMetrics and pass it to the Watcher.
type Metrics struct {
	// GitRepositorySync counts finished GitRepository fetches by status
	// (success, failure).
	GitRepositorySync *prometheus.CounterVec
	// GitRepositorySyncDuration observes how long a fetch took, from the
	// reconcile request (or the first sight of it in progress) to Ready.
	GitRepositorySyncDuration prometheus.Histogram
	// KustomizationApply counts finished Kustomization reconciliations by
	// status (success, failure).
	KustomizationApply *prometheus.CounterVec
	// KustomizationApplyDuration observes the duration Flux reports in the
	// Kustomization's history (lastReconciledDuration).
	KustomizationApplyDuration prometheus.Histogram
	// HelmReleaseInstall / HelmReleaseUpgrade count Helm actions by status.
	HelmReleaseInstall *prometheus.CounterVec
	HelmReleaseUpgrade *prometheus.CounterVec
	// Errors counts transitions into a failed state by kind and reason.
	Errors *prometheus.CounterVec
	// ResourcesReady is the number of watched objects that are ready, by kind.
	ResourcesReady *prometheus.GaugeVec
	// Relists counts watcher relists after a lost watch, by kind.
	Relists *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg (nil: not
// registered, e.g. in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	buckets := []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		GitRepositorySync: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricGitRepositorySyncTotal,
			Help: "GitRepository fetches finished, by status (success, failure).",
		}, []string{"status"}),
		GitRepositorySyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricGitRepositorySyncDuration,
			Help:    "Time from a GitRepository reconcile request to its Ready condition, in seconds.",
			Buckets: buckets,
		}),
		KustomizationApply: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricKustomizationApplyTotal,
			Help: "Kustomization reconciliations finished, by status (success, failure).",
		}, []string{"status"}),
		KustomizationApplyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricKustomizationApplyDuration,
			Help:    "Kustomization reconcile (build, apply, health checks) duration Flux reports, in seconds.",
			Buckets: buckets,
		}),
		HelmReleaseInstall: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHelmReleaseInstallTotal,
			Help: "HelmRelease installs, by status (success, failure).",
		}, []string{"status"}),
		HelmReleaseUpgrade: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHelmReleaseUpgradeTotal,
			Help: "HelmRelease upgrades, by status (success, failure).",
		}, []string{"status"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricErrorsTotal,
			Help: "Flux objects turning failed, by kind and Flux reason.",
		}, []string{"kind", "reason"}),
		ResourcesReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricResourcesReady,
			Help: "Flux objects managed by fluxgate that are ready, by kind.",
		}, []string{"kind"}),
		Relists: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricWatcherRelistsTotal,
			Help: "Full relists of a Flux kind by the watcher after its watch was lost, by kind.",
		}, []string{"kind"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.GitRepositorySync, m.GitRepositorySyncDuration, m.KustomizationApply, m.KustomizationApplyDuration,
		m.HelmReleaseInstall, m.HelmReleaseUpgrade, m.Errors, m.ResourcesReady, m.Relists,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register flux metrics: %w", err)
		}
	}
	return m, nil
}
