package k8s

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fluxgate/fluxgate"
)

func webDeployment() *appsv1.Deployment {
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "web", Image: "acme/web:1", Env: []corev1.EnvVar{{Name: "KEEP", Value: "k"}, {Name: "DROP", Value: "d"}}},
					{Name: "sidecar", Image: "acme/proxy:1"},
				}},
			},
		},
	}
}

func TestApplyWorkloadChange(t *testing.T) {
	ctx := context.Background()
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	// Managed fields returned, as a real API server does: each apply
	// carries fluxgate's earlier fields along.
	kc := fake.NewClientBuilder().WithScheme(scheme).WithObjects(webDeployment()).WithReturnManagedFields().Build()
	c := NewFromClient(kc, Options{})
	img, three := "acme/web:2", int32(3)

	got, err := c.ApplyWorkloadChange(ctx, WorkloadChange{
		Namespace: "shop", Name: "web", Image: &img, Replicas: &three,
		Env: []WorkloadEnvVar{{Name: "MODE", Value: "fast"}}, RemoveEnv: []string{"DROP"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Container != "web" || got.Replicas != 3 {
		t.Fatalf("applied = %+v, want container web (the first) and 3 replicas", got)
	}
	var dep appsv1.Deployment
	if err := kc.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 3 {
		t.Fatalf("replicas = %d", *dep.Spec.Replicas)
	}
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Image != "acme/web:2" || cs[1].Image != "acme/proxy:1" {
		t.Fatalf("containers = %+v (only web's image may change)", cs)
	}
	env := map[string]string{}
	for _, e := range cs[0].Env {
		env[e.Name] = e.Value
	}
	if env["MODE"] != "fast" || env["KEEP"] != "k" || len(env) != 2 {
		t.Fatalf("env = %v, want MODE set, KEEP kept, DROP removed", env)
	}
	// A named container; the other keeps its image.
	proxy := "acme/proxy:2"
	if _, err := c.ApplyWorkloadChange(ctx, WorkloadChange{Namespace: "shop", Name: "web", Container: "sidecar", Image: &proxy}); err != nil {
		t.Fatal(err)
	}
	if err := kc.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	if cs := dep.Spec.Template.Spec.Containers; cs[0].Image != "acme/web:2" || cs[1].Image != "acme/proxy:2" || len(cs[0].Env) != 2 {
		t.Fatalf("containers after sidecar change = %+v (web keeps its image and env)", cs)
	}
	if *dep.Spec.Replicas != 3 {
		t.Fatalf("replicas after sidecar change = %d, want 3 kept", *dep.Spec.Replicas)
	}
	owned := false
	for _, mf := range dep.ManagedFields {
		owned = owned || (mf.Manager == FieldOwner && mf.Operation == metav1.ManagedFieldsOperationApply)
	}
	if !owned {
		t.Fatalf("not server-side applied by %s: %+v", FieldOwner, dep.ManagedFields)
	}

	for name, ch := range map[string]WorkloadChange{
		"missing deployment": {Namespace: "shop", Name: "api", Image: &img},
		"missing container":  {Namespace: "shop", Name: "web", Container: "nope", Image: &img},
	} {
		if _, err := c.ApplyWorkloadChange(ctx, ch); fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND {
			t.Errorf("%s: err = %v, want NOT_FOUND", name, err)
		}
	}
}
