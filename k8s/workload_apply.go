package k8s

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
)

// WorkloadEnvVar is one environment variable to set on a container.
type WorkloadEnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WorkloadChange is a direct (non-GitOps) deploy: what to change on one
// Deployment in the cluster.
type WorkloadChange struct {
	Namespace string
	Name      string
	// Container names the container; empty selects the first.
	Container string
	Image     *string
	Replicas  *int32
	Env       []WorkloadEnvVar
	RemoveEnv []string
}

// WorkloadApplied is the Deployment after a direct deploy.
type WorkloadApplied struct {
	Container     string
	Generation    int64
	Replicas      int32
	ReadyReplicas int32
}

// ApplyWorkloadChange changes a Deployment's image, replicas and env
// directly, with server-side apply (field owner "fluxgate", taking over
// the fields it sets); removed env vars are deleted with a strategic merge
// patch, since apply only drops what fluxgate itself set.
//
// Returns ENOTFOUND if the Deployment or container does not exist, EINVALID
// when the API server refuses the change, EUNAVAILABLE when the cluster
// cannot be reached.
func (c *Client) ApplyWorkloadChange(ctx context.Context, ch WorkloadChange) (*WorkloadApplied, error) {
	key := types.NamespacedName{Namespace: ch.Namespace, Name: ch.Name}
	var dep appsv1.Deployment
	if err := c.c.Get(ctx, key, &dep); err != nil {
		return nil, apiError(err, "get deployment %s", key)
	}
	container := ch.Container
	if container == "" {
		if len(dep.Spec.Template.Spec.Containers) == 0 {
			return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "deployment %s has no container", key)
		}
		container = dep.Spec.Template.Spec.Containers[0].Name
	} else {
		found := false
		for _, ct := range dep.Spec.Template.Spec.Containers {
			found = found || ct.Name == container
		}
		if !found {
			return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "container %q not found in deployment %s", container, key)
		}
	}

	if ch.Image != nil || ch.Replicas != nil || len(ch.Env) > 0 || len(ch.RemoveEnv) > 0 {
		u, err := workloadApplyConfig(&dep, container, ch)
		if err != nil {
			return nil, err
		}
		if err := c.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return nil, apiError(err, "apply deployment %s", key)
		}
	}

	if len(ch.RemoveEnv) > 0 {
		env := make([]any, len(ch.RemoveEnv))
		for i, n := range ch.RemoveEnv {
			env[i] = map[string]any{"name": n, "$patch": "delete"}
		}
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": container, "env": env}},
		}}}})
		if err != nil {
			return nil, err
		}
		if err := c.c.Get(ctx, key, &dep); err != nil {
			return nil, apiError(err, "get deployment %s", key)
		}
		if err := c.c.Patch(ctx, &dep, client.RawPatch(types.StrategicMergePatchType, patch), client.FieldOwner(FieldOwner)); err != nil {
			return nil, apiError(err, "remove env of deployment %s", key)
		}
	}

	if err := c.c.Get(ctx, key, &dep); err != nil {
		return nil, apiError(err, "get deployment %s", key)
	}
	out := &WorkloadApplied{Container: container, Generation: dep.Generation, ReadyReplicas: dep.Status.ReadyReplicas}
	if dep.Spec.Replicas != nil {
		out.Replicas = *dep.Spec.Replicas
	}
	return out, nil
}

// workloadApplyConfig is fluxgate's full intent for the Deployment: the
// fields it applied before (extracted from managedFields, so that an apply
// setting only the image does not drop the replicas set by an earlier one)
// with the change on top.
func workloadApplyConfig(dep *appsv1.Deployment, container string, ch WorkloadChange) (*unstructured.Unstructured, error) {
	ac, err := appsv1ac.ExtractDeployment(dep, FieldOwner)
	if err != nil {
		return nil, fmt.Errorf("extract fluxgate's fields of deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(b, &u.Object); err != nil {
		return nil, err
	}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	u.SetNamespace(dep.Namespace)
	u.SetName(dep.Name)
	if ch.Replicas != nil {
		if err := unstructured.SetNestedField(u.Object, int64(*ch.Replicas), "spec", "replicas"); err != nil {
			return nil, fmt.Errorf("set replicas: %w", err)
		}
	}
	if ch.Image == nil && len(ch.Env) == 0 && len(ch.RemoveEnv) == 0 {
		return u, nil
	}
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	idx := -1
	for i, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == container {
			idx = i
		}
	}
	if idx < 0 {
		containers = append(containers, map[string]any{"name": container})
		idx = len(containers) - 1
	}
	ct := containers[idx].(map[string]any)
	if ch.Image != nil {
		ct["image"] = *ch.Image
	}
	remove := map[string]bool{}
	for _, n := range ch.RemoveEnv {
		remove[n] = true
	}
	var env []any
	set := map[string]string{}
	for _, e := range ch.Env {
		set[e.Name] = e.Value
	}
	old, _ := ct["env"].([]any)
	for _, e := range old {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		n, _ := m["name"].(string)
		if remove[n] {
			continue
		}
		if v, ok := set[n]; ok {
			m = map[string]any{"name": n, "value": v}
			delete(set, n)
		}
		env = append(env, m)
	}
	for _, e := range ch.Env {
		if _, ok := set[e.Name]; ok {
			env = append(env, map[string]any{"name": e.Name, "value": e.Value})
		}
	}
	if len(env) > 0 {
		ct["env"] = env
	} else {
		delete(ct, "env")
	}
	containers[idx] = ct
	if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return nil, fmt.Errorf("set containers: %w", err)
	}
	return u, nil
}
