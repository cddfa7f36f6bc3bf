package yamledit

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDeploymentViewRoundTrip(t *testing.T) {
	for _, file := range []string{"deployment.yaml", "compact.yaml"} {
		t.Run(file, func(t *testing.T) {
			src := mustRead(t, filepath.Join("..", "testdata", "edit", file))
			v, err := ParseDeploymentView(src, "")
			if err != nil {
				t.Fatal(err)
			}
			// YAML -> view -> YAML is the identity, byte for byte.
			out, err := RenderDeploymentView(src, v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, src) {
				t.Fatalf("round trip changed the file:\n%s", UnifiedDiff(file, src, out))
			}
		})
	}
	src := mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml"))
	v, err := ParseDeploymentView(src, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := &DeploymentView{Name: "web", Namespace: "shop", Replicas: ptr(int32(2)), Containers: []ContainerView{
		{Name: "web", Image: "ghcr.io/acme/web:1.4.2", ImagePullPolicy: "IfNotPresent",
			Resources:     ResourcesView{Requests: map[string]string{"cpu": "100m", "memory": "128Mi"}, Limits: map[string]string{"memory": "256Mi"}},
			LivenessProbe: &ProbeView{Path: "/healthz", Port: "http", InitialDelaySeconds: 5},
			Env:           []EnvVarView{{Name: "LOG_LEVEL", Value: "info"}, {Name: "FEATURE_X", Value: "on"}, {Name: "DB_PASSWORD", FromSource: true}}},
		{Name: "sidecar", Image: "fluent/fluent-bit:2.1"},
	}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("view = %+v\nwant %+v", v, want)
	}
	// view change -> YAML -> view gives the changed view.
	v.Replicas = ptr(int32(4))
	v.Containers[0].Image = "ghcr.io/acme/web:1.6.0"
	v.Containers[0].ImagePullPolicy = "Always"
	v.Containers[0].Resources.Limits = map[string]string{"memory": "1Gi", "cpu": "2"}
	v.Containers[0].LivenessProbe = &ProbeView{Path: "/ready", Port: "9090", InitialDelaySeconds: 20}
	v.Containers[0].Env = []EnvVarView{{Name: "LOG_LEVEL", Value: "warn"}, {Name: "DB_PASSWORD", FromSource: true}, {Name: "NEW_VAR", Value: "yes"}}
	v.Containers[1].Resources.Requests = map[string]string{"cpu": "10m"}
	v.Containers[1].LivenessProbe = &ProbeView{Path: "/", Port: "2020", InitialDelaySeconds: 1}
	out, err := RenderDeploymentView(src, v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseDeploymentView(out, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Fatalf("view after render = %+v\nwant %+v\n%s", back, v, UnifiedDiff("f", src, out))
	}
	// Comments survive.
	for _, c := range []string{"# Web front end for the shop.", "# scaled by HPA in prod", "# log shipper", "# log level for the app", "# selector label"} {
		if !bytes.Contains(out, []byte(c)) {
			t.Errorf("comment %q lost", c)
		}
	}
	// Adding a container is not something the view does.
	v.Containers = append(v.Containers, ContainerView{Name: "extra", Image: "x:1"})
	if _, err := RenderDeploymentView(src, v); err == nil {
		t.Fatal("adding a container through the view should fail")
	}
}
