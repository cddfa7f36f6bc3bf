// Package k8s is fluxgate's Kubernetes adapter: Flux objects built from the
// Flux API Go types and applied with server-side apply (field owner
// "fluxgate"), Git credential Secrets, reconcile / suspend / resume, Flux
// health, diagnostics and installation, and a Watcher that turns Flux status
// changes and events into domain updates for a Sink, counting Prometheus
// metrics, run by the holder of a coordination.k8s.io Lease.
//
// It talks to any cluster through a rest.Config (kubeconfig, in-cluster or
// the local cluster) and never shells out to flux or kubectl.
package k8s
