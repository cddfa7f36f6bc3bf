package k8s

import (
	"fmt"
	"strconv"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// metricState is what the metrics remember of one object between changes.
type metricState struct {
	// sig identifies the last finished reconciliation seen.
	sig string
	// progressSince is when the watcher first saw the current
	// reconciliation in progress (zero when none is).
	progressSince time.Time
	// helm is the version/status of the latest Helm release counted.
	helm string
	// failure is the reason/time of the failure last counted.
	failure string
}

// observeMetrics counts what changed between the previous and the current
// state of obj. Nothing is counted on the first sight of an object (the
// previous leader may have counted it). Called with r.mu held.
func (r *watchRun) observeMetrics(kind fluxgate.ResourceKind, st *objState, obj client.Object, u fluxgate.ResourceStatusUpdate, first bool) {
	m := r.w.opts.Metrics
	if m == nil {
		return
	}
	now := r.w.opts.Now()
	ms := &st.m

	// Errors: each new failure (reason + transition time) of any kind.
	if u.Status == fluxgate.ResourceFailed {
		reason, since := failureOf(u.Conditions)
		sig := reason + "@" + since
		if !first && sig != ms.failure {
			m.Errors.WithLabelValues(string(kind), reason).Inc()
		}
		ms.failure = sig
	} else {
		ms.failure = ""
	}

	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		rev := ""
		if o.Status.Artifact != nil {
			rev = o.Status.Artifact.Revision
		}
		done, ok, sig := finished(o.Status.Conditions, o.Status.LastHandledReconcileAt, rev)
		if d, counted := r.countFinish(ms, first, done, ok, sig, now, o.Status.LastHandledReconcileAt, o.Status.Conditions); counted {
			m.GitRepositorySync.WithLabelValues(resultLabel(ok)).Inc()
			if d > 0 {
				m.GitRepositorySyncDuration.Observe(d.Seconds())
			}
		}
	case *kustomizev1.Kustomization:
		hist := ""
		var histDur time.Duration
		if h := o.Status.History; len(h) > 0 {
			hist = fmt.Sprintf("%s/%d/%s", h[0].Digest, h[0].TotalReconciliations, h[0].LastReconciled.UTC().Format(time.RFC3339Nano))
			if h[0].LastReconciledDuration.Duration > 0 {
				histDur = h[0].LastReconciledDuration.Duration
			}
		}
		done, ok, sig := finished(o.Status.Conditions, o.Status.LastHandledReconcileAt, o.Status.LastAttemptedRevision+"|"+hist)
		if d, counted := r.countFinish(ms, first, done, ok, sig, now, o.Status.LastHandledReconcileAt, o.Status.Conditions); counted {
			m.KustomizationApply.WithLabelValues(resultLabel(ok)).Inc()
			if histDur > 0 && hist != "" {
				d = histDur
			}
			if d > 0 {
				m.KustomizationApplyDuration.Observe(d.Seconds())
			}
		}
	case *helmv2.HelmRelease:
		latest := o.Status.History.Latest()
		if latest == nil {
			return
		}
		sig := strconv.Itoa(latest.Version) + "/" + latest.Status
		if !first && sig != ms.helm {
			var ok, known bool
			switch latest.Status {
			case "deployed", "superseded":
				ok, known = true, true
			case "failed":
				ok, known = false, true
			}
			if known {
				install := latest.Version == 1
				switch o.Status.LastAttemptedReleaseAction {
				case helmv2.ReleaseActionInstall:
					install = true
				case helmv2.ReleaseActionUpgrade:
					install = false
				}
				if install {
					m.HelmReleaseInstall.WithLabelValues(resultLabel(ok)).Inc()
				} else {
					m.HelmReleaseUpgrade.WithLabelValues(resultLabel(ok)).Inc()
				}
			}
		}
		ms.helm = sig
	}
}

// countFinish tracks the in-progress time of a reconciliation and says
// whether a newly finished one should be counted, with its duration (0 when
// unknown). Called with r.mu held.
func (r *watchRun) countFinish(ms *metricState, first, done, ok bool, sig string, now time.Time, token string, conds []metav1.Condition) (time.Duration, bool) {
	if !done {
		if ms.progressSince.IsZero() {
			ms.progressSince = now
		}
		return 0, false
	}
	changed := sig != ms.sig
	ms.sig = sig
	if first || !changed {
		ms.progressSince = time.Time{}
		return 0, false
	}
	var d time.Duration
	if !ms.progressSince.IsZero() {
		d = now.Sub(ms.progressSince)
	} else if req, err := time.Parse(time.RFC3339Nano, token); err == nil {
		// A reconcile fluxgate requested, handled faster than we saw it in
		// progress: Ready's transition time minus the request time.
		if c := findCondition(conds, conditionReady); c != nil && c.LastTransitionTime.After(req) {
			d = c.LastTransitionTime.Sub(req)
		}
	}
	ms.progressSince = time.Time{}
	return d, true
}

// finished says whether the object's latest reconciliation has finished
// (Ready True, or False for a failure) and how, with a signature that
// changes with every new outcome.
func finished(conds []metav1.Condition, token, extra string) (done, ok bool, sig string) {
	ready := findCondition(conds, conditionReady)
	if ready == nil || ready.Status == metav1.ConditionUnknown {
		return false, false, ""
	}
	if rc := findCondition(conds, conditionReconciling); rc != nil && rc.Status == metav1.ConditionTrue && ready.Status == metav1.ConditionTrue {
		return false, false, ""
	}
	if ready.Status == metav1.ConditionFalse && waitingReason(ready.Reason) {
		return false, false, ""
	}
	ok = ready.Status == metav1.ConditionTrue
	sig = fmt.Sprintf("%s|%s|%s|%s|%s", ready.Status, ready.Reason, ready.LastTransitionTime.UTC().Format(time.RFC3339), token, extra)
	return true, ok, sig
}

// failureOf returns the reason and transition time of the condition that
// makes an object failed (Stalled, else Ready).
func failureOf(conds []fluxgate.Condition) (string, string) {
	for _, t := range []string{conditionStalled, conditionReady} {
		for _, c := range conds {
			if c.Type == t && ((t == conditionStalled && c.Status == "True") || (t == conditionReady && c.Status == "False")) {
				reason := c.Reason
				if reason == "" {
					reason = "Unknown"
				}
				return reason, c.LastTransitionTime.Format(time.RFC3339Nano)
			}
		}
	}
	return "Unknown", ""
}

func resultLabel(ok bool) string {
	if ok {
		return statusSuccess
	}
	return statusFailure
}
