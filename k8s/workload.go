package k8s

import (
	"context"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// DeploymentHealth is the rollout state of one Deployment a Flux object
// applied.
type DeploymentHealth struct {
	Namespace     string `json:"namespace"`
	Name          string `json:"name"`
	Found         bool   `json:"found"`
	Ready         bool   `json:"ready"`
	Replicas      int32  `json:"replicas"`
	ReadyReplicas int32  `json:"readyReplicas"`
	Message       string `json:"message"`
}

// WorkloadHealth sums the Deployments of an inventory: the "healthy (ready
// pods / total pods)" step of a deployment.
type WorkloadHealth struct {
	Ready         bool               `json:"ready"` // every Deployment rolled out
	Replicas      int32              `json:"replicas"`
	ReadyReplicas int32              `json:"readyReplicas"`
	Deployments   []DeploymentHealth `json:"deployments"`
}

// inventoryRef is a parsed inventory entry id
// ("<namespace>_<name>_<group>_<kind>", as Flux writes them).
type inventoryRef struct{ namespace, name, group, kind string }

func parseInventoryID(id string) (inventoryRef, bool) {
	parts := strings.Split(id, "_")
	if len(parts) != 4 {
		return inventoryRef{}, false
	}
	return inventoryRef{namespace: parts[0], name: parts[1], group: parts[2], kind: parts[3]}, true
}

// WorkloadHealth reads the Deployments listed in a Kustomization's or
// HelmRelease's inventory (fluxgate.ResourceStatusUpdate.Inventory) and
// reports how many replicas are ready. It reads from the API server: call
// it when a deployment step needs it, not per request.
func (c *Client) WorkloadHealth(ctx context.Context, inventory []fluxgate.InventoryEntry) (*WorkloadHealth, error) {
	wh := &WorkloadHealth{Ready: true}
	for _, e := range inventory {
		ref, ok := parseInventoryID(e.ID)
		if !ok || ref.group != "apps" || ref.kind != "Deployment" {
			continue
		}
		dh := DeploymentHealth{Namespace: ref.namespace, Name: ref.name}
		var d appsv1.Deployment
		err := c.c.Get(ctx, client.ObjectKey{Namespace: ref.namespace, Name: ref.name}, &d)
		switch {
		case apierrors.IsNotFound(err):
			dh.Message = "not found"
		case err != nil:
			return nil, apiError(err, "get deployment %s/%s", ref.namespace, ref.name)
		default:
			dh.Found = true
			dh.Ready, dh.Message = deploymentReady(&d)
			dh.Replicas = 1
			if d.Spec.Replicas != nil {
				dh.Replicas = *d.Spec.Replicas
			}
			dh.ReadyReplicas = d.Status.ReadyReplicas
		}
		if !dh.Ready {
			wh.Ready = false
		}
		wh.Replicas += dh.Replicas
		wh.ReadyReplicas += dh.ReadyReplicas
		wh.Deployments = append(wh.Deployments, dh)
	}
	return wh, nil
}
