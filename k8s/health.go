package k8s

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// expected is a CRD or controller fluxgate expects from Flux.
type expected struct {
	name     string
	required bool
}

func fluxCRDs() []expected {
	return []expected{
		{"gitrepositories.source.toolkit.fluxcd.io", true},
		{"helmrepositories.source.toolkit.fluxcd.io", true},
		{"helmcharts.source.toolkit.fluxcd.io", true},
		{"kustomizations.kustomize.toolkit.fluxcd.io", true},
		{"helmreleases.helm.toolkit.fluxcd.io", true},
		{"providers.notification.toolkit.fluxcd.io", true},
		{"alerts.notification.toolkit.fluxcd.io", true},
		{"imagerepositories.image.toolkit.fluxcd.io", false},
		{"imagepolicies.image.toolkit.fluxcd.io", false},
	}
}

// fluxComponents are the controller Deployments in the Flux namespace.
func fluxComponents() []expected {
	return []expected{
		{"source-controller", true},
		{"kustomize-controller", true},
		{"helm-controller", true},
		{"notification-controller", true},
		{"image-reflector-controller", false},
		{"image-automation-controller", false},
	}
}

// CRDHealth reports one Flux CRD.
type CRDHealth struct {
	Name     string   `json:"name"`
	Required bool     `json:"required"`
	Present  bool     `json:"present"`
	Versions []string `json:"versions"` // served versions
	Storage  string   `json:"storageVersion"`
	// Established is the CRD's Established condition (the API serves it).
	Established bool `json:"established"`
}

// ComponentHealth reports one Flux controller Deployment.
type ComponentHealth struct {
	Name          string `json:"name"`
	Namespace     string `json:"namespace"`
	Required      bool   `json:"required"`
	Present       bool   `json:"present"`
	Ready         bool   `json:"ready"`
	Replicas      int32  `json:"replicas"`
	ReadyReplicas int32  `json:"readyReplicas"`
	Image         string `json:"image,omitempty"`
	Message       string `json:"message,omitempty"`
}

// FluxHealth is the state of Flux in the cluster.
type FluxHealth struct {
	// Installed is true when every required CRD is present and established.
	Installed bool `json:"installed"`
	// Ready is true when Installed and every required controller is ready.
	Ready      bool              `json:"ready"`
	CRDs       []CRDHealth       `json:"crds"`
	Components []ComponentHealth `json:"components"`
}

// FluxHealth reports whether the Flux CRDs are present (with their served
// versions) and whether the source, kustomize, helm and notification
// controllers in the Flux namespace are ready.
//
// Returns EUNAVAILABLE if the cluster cannot be reached.
func (c *Client) FluxHealth(ctx context.Context) (*FluxHealth, error) {
	h := &FluxHealth{Installed: true, Ready: true}
	for _, want := range fluxCRDs() {
		ch := CRDHealth{Name: want.name, Required: want.required}
		var crd apiextensionsv1.CustomResourceDefinition
		err := c.c.Get(ctx, client.ObjectKey{Name: want.name}, &crd)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, apiError(err, "get crd %s", want.name)
		default:
			ch.Present = true
			for _, v := range crd.Spec.Versions {
				if v.Served {
					ch.Versions = append(ch.Versions, v.Name)
				}
				if v.Storage {
					ch.Storage = v.Name
				}
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					ch.Established = true
				}
			}
		}
		if want.required && !(ch.Present && ch.Established) {
			h.Installed = false
		}
		h.CRDs = append(h.CRDs, ch)
	}
	for _, want := range fluxComponents() {
		ch := ComponentHealth{Name: want.name, Namespace: c.opts.FluxNamespace, Required: want.required}
		var d appsv1.Deployment
		err := c.c.Get(ctx, client.ObjectKey{Namespace: c.opts.FluxNamespace, Name: want.name}, &d)
		switch {
		case apierrors.IsNotFound(err), apimeta.IsNoMatchError(err):
			ch.Message = "not installed"
		case err != nil:
			return nil, apiError(err, "get deployment %s/%s", c.opts.FluxNamespace, want.name)
		default:
			ch.Present = true
			ch.Ready, ch.Message = deploymentReady(&d)
			ch.ReadyReplicas = d.Status.ReadyReplicas
			ch.Replicas = 1
			if d.Spec.Replicas != nil {
				ch.Replicas = *d.Spec.Replicas
			}
			if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
				ch.Image = cs[0].Image
			}
		}
		if want.required && !ch.Ready {
			h.Ready = false
		}
		h.Components = append(h.Components, ch)
	}
	if !h.Installed {
		h.Ready = false
	}
	return h, nil
}

// deploymentReady reports whether a Deployment has rolled out: the
// controller saw the latest spec, every replica is updated and ready, and
// it is Available.
func deploymentReady(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation {
		return false, "rollout not observed yet"
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, c.Message
		}
	}
	if d.Status.UpdatedReplicas < want {
		return false, fmt.Sprintf("%d of %d replicas updated", d.Status.UpdatedReplicas, want)
	}
	if d.Status.ReadyReplicas < want || d.Status.AvailableReplicas < want {
		return false, fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, want)
	}
	return true, "ready"
}
