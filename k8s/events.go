package k8s

import (
	"encoding/json"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fluxgate/fluxgate"
)

// Flux event severities and sources (fluxgate.FluxEvent fields).
const (
	EventSeverityInfo  = "info"
	EventSeverityError = "error"
	EventSourceWatcher = "watcher"
	fluxGroupSuffix    = ".toolkit.fluxcd.io"
)

// IsFluxEvent reports whether a core/v1 Event is about a Flux object.
func IsFluxEvent(ev *corev1.Event) bool {
	group, _, _ := strings.Cut(ev.InvolvedObject.APIVersion, "/")
	return strings.HasSuffix(group, fluxGroupSuffix) && fluxgate.ResourceKind(ev.InvolvedObject.Kind).Valid()
}

// FluxEventFromEvent maps a core/v1 Event written by a Flux controller to a
// fluxgate.FluxEvent (ProjectID and ResourceID are left to the caller):
// Warning → severity error, the <group>/revision annotation → Revision, the
// toolkit annotations and reporting controller → Metadata.
func FluxEventFromEvent(ev *corev1.Event) *fluxgate.FluxEvent {
	fe := &fluxgate.FluxEvent{
		Kind:      ev.InvolvedObject.Kind,
		Name:      ev.InvolvedObject.Name,
		Namespace: ev.InvolvedObject.Namespace,
		Reason:    ev.Reason,
		Message:   ev.Message,
		Type:      ev.Type,
		Severity:  EventSeverityInfo,
		Source:    EventSourceWatcher,
		Timestamp: eventTime(ev).UTC(),
	}
	if fe.Namespace == "" {
		fe.Namespace = ev.Namespace
	}
	if fe.Type == "" {
		fe.Type = corev1.EventTypeNormal
	}
	if fe.Type == corev1.EventTypeWarning {
		fe.Severity = EventSeverityError
	}
	md := map[string]string{}
	for k, v := range ev.Annotations {
		group, key, ok := strings.Cut(k, "/")
		if !ok || !strings.HasSuffix(group, fluxGroupSuffix) {
			continue
		}
		md[key] = v
		if key == "revision" {
			fe.Revision = v
		}
	}
	controller := ev.ReportingController
	if controller == "" {
		controller = ev.Source.Component
	}
	if controller != "" {
		md["reportingController"] = controller
	}
	fe.Metadata, _ = json.Marshal(md)
	fe.DedupKey = DedupKey(fe)
	return fe
}

// eventTime is the last time the event happened.
func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	}
	return ev.CreationTimestamp.Time
}

// DedupKey identifies one occurrence of a Flux event whichever way it
// arrived (watcher or notification-controller webhook); see
// fluxgate.FluxEventDedupKey.
func DedupKey(ev *fluxgate.FluxEvent) string { return fluxgate.FluxEventDedupKey(ev) }
