package yamledit

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func ptr[T any](v T) *T { return &v }

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// golden compares got with testdata/edit/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "edit", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := mustRead(t, path)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from golden file\n%s", name, UnifiedDiff(name, want, got))
	}
}

// changedLines returns the old lines that are not in new and the new lines
// that are not in old (multiset difference), to prove edits are local.
func changedLines(old, new []byte) (removed, added []string) {
	count := map[string]int{}
	for _, l := range strings.Split(string(old), "\n") {
		count[l]++
	}
	for _, l := range strings.Split(string(new), "\n") {
		if count[l] > 0 {
			count[l]--
			continue
		}
		added = append(added, l)
	}
	for l, n := range count {
		for ; n > 0; n-- {
			removed = append(removed, l)
		}
	}
	return removed, added
}

func TestEditDeploymentGolden(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		edit    DeploymentEdit
		removed int // lines of the input that may change
		added   int
	}{
		{name: "image", in: "deployment.yaml", edit: DeploymentEdit{Name: "web", Containers: []ContainerEdit{{Image: ptr("ghcr.io/acme/web:1.5.0")}}}, removed: 1, added: 1},
		{name: "image-by-container", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Name: "sidecar", Image: ptr("fluent/fluent-bit:3.0")}}}, removed: 1, added: 1},
		{name: "replicas", in: "deployment.yaml", edit: DeploymentEdit{Replicas: ptr(int32(5))}, removed: 1, added: 1},
		{name: "env-merge", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Env: []EnvVar{{Name: "LOG_LEVEL", Value: "debug"}, {Name: "CACHE_TTL", Value: "30"}}}}}, removed: 1, added: 3},
		{name: "env-remove", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{RemoveEnv: []string{"FEATURE_X"}}}}, removed: 2, added: 0},
		{name: "env-valuefrom-to-value", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Env: []EnvVar{{Name: "DB_PASSWORD", Value: "plain"}}}}}, removed: 2, added: 1},
		{name: "pull-policy", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{ImagePullPolicy: ptr("Always")}}}, removed: 1, added: 1},
		{name: "pull-policy-new", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Name: "sidecar", ImagePullPolicy: ptr("Always")}}}, removed: 0, added: 1},
		{name: "resources", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Resources: &ResourcesEdit{
			Requests: map[string]string{"cpu": "250m"}, Limits: map[string]string{"cpu": "1", "memory": "512Mi"}}}}}, removed: 2, added: 3},
		{name: "resources-from-empty", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Name: "sidecar", Resources: &ResourcesEdit{
			Requests: map[string]string{"cpu": "50m", "memory": "64Mi"}}}}}, removed: 1, added: 4},
		{name: "resources-remove", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Resources: &ResourcesEdit{Limits: map[string]string{"memory": ""}}}}}, removed: 2, added: 0},
		{name: "probe", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{LivenessProbe: &ProbeEdit{Path: ptr("/livez"), Port: ptr("8080"), InitialDelaySeconds: ptr(int32(15))}}}}, removed: 3, added: 3},
		{name: "probe-new", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{Name: "sidecar", LivenessProbe: &ProbeEdit{Path: ptr("/"), Port: ptr("2020"), InitialDelaySeconds: ptr(int32(3))}}}}, removed: 0, added: 5},
		{name: "probe-remove", in: "deployment.yaml", edit: DeploymentEdit{Containers: []ContainerEdit{{LivenessProbe: &ProbeEdit{Remove: true}}}}, removed: 5, added: 0},
		{name: "deploy-form", in: "deployment.yaml", edit: DeploymentEdit{Replicas: ptr(int32(3)), Containers: []ContainerEdit{{Image: ptr("ghcr.io/acme/web:2.0.0"), Env: []EnvVar{{Name: "FEATURE_X", Value: "off"}}}}}, removed: 3, added: 3},
		{name: "compact-indent4", in: "compact.yaml", edit: DeploymentEdit{Replicas: ptr(int32(2)), Containers: []ContainerEdit{{Image: ptr("acme/api:v2"), Env: []EnvVar{{Name: "A", Value: "1"}}}}}, removed: 1, added: 5},
		{name: "multi-deployment", in: "multi.yaml", edit: DeploymentEdit{Name: "worker", Replicas: ptr(int32(4)), Containers: []ContainerEdit{{Image: ptr("acme/worker:9")}}}, removed: 2, added: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := mustRead(t, filepath.Join("..", "testdata", "edit", tt.in))
			out, err := EditDeployment(src, tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".yaml", out)
			removed, added := changedLines(src, out)
			if len(removed) != tt.removed || len(added) != tt.added {
				t.Errorf("changed lines: removed %d %q, added %d %q; want %d and %d", len(removed), removed, len(added), added, tt.removed, tt.added)
			}
			if issues := Validate(out); len(issues) > 0 {
				t.Errorf("edited file does not validate: %v", issues)
			}
			// The edit is visible in the structured view.
			v, err := ParseDeploymentView(out, tt.edit.Name)
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit.Replicas != nil && (v.Replicas == nil || *v.Replicas != *tt.edit.Replicas) {
				t.Errorf("replicas = %v, want %d", v.Replicas, *tt.edit.Replicas)
			}
			for _, ce := range tt.edit.Containers {
				c := v.Containers[0]
				for _, vc := range v.Containers {
					if vc.Name == ce.Name {
						c = vc
					}
				}
				if ce.Image != nil && c.Image != *ce.Image {
					t.Errorf("image = %q, want %q", c.Image, *ce.Image)
				}
				if ce.ImagePullPolicy != nil && c.ImagePullPolicy != *ce.ImagePullPolicy {
					t.Errorf("imagePullPolicy = %q", c.ImagePullPolicy)
				}
				for _, ev := range ce.Env {
					found := false
					for _, got := range c.Env {
						if got.Name == ev.Name && got.Value == ev.Value && !got.FromSource {
							found = true
						}
					}
					if !found {
						t.Errorf("env %s=%s missing in %+v", ev.Name, ev.Value, c.Env)
					}
				}
				for _, n := range ce.RemoveEnv {
					for _, got := range c.Env {
						if got.Name == n {
							t.Errorf("env %s not removed", n)
						}
					}
				}
				if r := ce.Resources; r != nil {
					for k, q := range r.Requests {
						if c.Resources.Requests[k] != q {
							t.Errorf("requests.%s = %q, want %q", k, c.Resources.Requests[k], q)
						}
					}
					for k, q := range r.Limits {
						if c.Resources.Limits[k] != q {
							t.Errorf("limits.%s = %q, want %q", k, c.Resources.Limits[k], q)
						}
					}
				}
				if p := ce.LivenessProbe; p != nil {
					switch {
					case p.Remove:
						if c.LivenessProbe != nil {
							t.Errorf("probe not removed")
						}
					case c.LivenessProbe == nil:
						t.Errorf("probe missing")
					default:
						if p.Path != nil && c.LivenessProbe.Path != *p.Path || p.Port != nil && c.LivenessProbe.Port != *p.Port ||
							p.InitialDelaySeconds != nil && c.LivenessProbe.InitialDelaySeconds != *p.InitialDelaySeconds {
							t.Errorf("probe = %+v, want %+v", c.LivenessProbe, p)
						}
					}
				}
			}
		})
	}
}

func TestEditDeploymentErrors(t *testing.T) {
	src := mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml"))
	multi := mustRead(t, filepath.Join("..", "testdata", "edit", "multi.yaml"))
	var inv *InvalidInputError
	tests := []struct {
		name  string
		src   []byte
		edit  DeploymentEdit
		check func(error) bool
	}{
		{"missing deployment", src, DeploymentEdit{Name: "nope", Replicas: ptr(int32(1))}, func(err error) bool { return errors.Is(err, ErrNotFound) }},
		{"missing container", src, DeploymentEdit{Containers: []ContainerEdit{{Name: "nope", Image: ptr("a:1")}}}, func(err error) bool { return errors.Is(err, ErrNotFound) }},
		{"ambiguous", multi, DeploymentEdit{Replicas: ptr(int32(1))}, func(err error) bool { return errors.As(err, &inv) && inv.Field == "name" }},
		{"empty change", src, DeploymentEdit{}, func(err error) bool { return errors.As(err, &inv) && inv.Field == "change" }},
		{"bad image", src, DeploymentEdit{Containers: []ContainerEdit{{Image: ptr("bad image")}}}, func(err error) bool { return errors.As(err, &inv) && inv.Field == "containers[0].image" }},
		{"bad replicas", src, DeploymentEdit{Replicas: ptr(int32(-1))}, func(err error) bool { return errors.As(err, &inv) && inv.Field == "replicas" }},
		{"bad env name", src, DeploymentEdit{Containers: []ContainerEdit{{Env: []EnvVar{{Name: "1BAD", Value: "x"}}}}}, func(err error) bool {
			return errors.As(err, &inv) && inv.Field == "containers[0].env[0].name"
		}},
		{"bad quantity", src, DeploymentEdit{Containers: []ContainerEdit{{Resources: &ResourcesEdit{Limits: map[string]string{"cpu": "lots"}}}}}, func(err error) bool {
			return errors.As(err, &inv) && inv.Field == "containers[0].resources.limits.cpu"
		}},
		{"bad pull policy", src, DeploymentEdit{Containers: []ContainerEdit{{ImagePullPolicy: ptr("Sometimes")}}}, func(err error) bool { return errors.As(err, &inv) }},
		{"bad yaml", []byte("kind: Deployment\n  bad: [\n"), DeploymentEdit{Replicas: ptr(int32(1))}, func(err error) bool {
			var se *SyntaxError
			return errors.As(err, &se) && se.Line > 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EditDeployment(tt.src, tt.edit)
			if err == nil || !tt.check(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
		})
	}
}

func TestEditNoOpKeepsBytes(t *testing.T) {
	src := mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml"))
	out, err := EditDeployment(src, DeploymentEdit{Replicas: ptr(int32(2)), Containers: []ContainerEdit{{Image: ptr("ghcr.io/acme/web:1.4.2")}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, src) {
		t.Fatalf("setting current values changed the file:\n%s", UnifiedDiff("f", src, out))
	}
}

func TestEditEdgeCases(t *testing.T) {
	edit := DeploymentEdit{Replicas: ptr(int32(2)), Containers: []ContainerEdit{{Image: ptr("new:1"),
		Env:       []EnvVar{{Name: "A", Value: "1"}, {Name: "OLD", Value: "two\nlines"}},
		Resources: &ResourcesEdit{Limits: map[string]string{"cpu": "1"}}}}}
	tests := []struct {
		name     string
		src      string
		contains []string
	}{
		{name: "flow container, document marker, no final newline",
			src:      "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: api, image: \"acme/api:1\"}\n# trailing comment",
			contains: []string{"---\napiVersion: apps/v1\n", "metadata: {name: a}\n", "image: \"new:1\"", "\n# trailing comment"}},
		{name: "empty env list and null resources",
			src:      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: x\n        env: []\n        resources:\n",
			contains: []string{"        env:\n        - name: A\n", "        resources:\n          limits:\n            cpu: 1\n"}},
		{name: "CRLF line ends are kept",
			src:      "apiVersion: apps/v1\r\nkind: Deployment\r\nmetadata:\r\n  name: a\r\nspec:\r\n  replicas: 1\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: c\r\n        image: x\r\n",
			contains: []string{"  replicas: 2\r\n", "        image: new:1\r\n", "        - name: A\r\n"}},
		{name: "block scalars and foot comments",
			src:      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: >-\n          x\n        env:\n        - name: OLD\n          value: |\n            multi\n            line\n        # end of env\n      # end of containers\n",
			contains: []string{"        image: >-\n          new:1\n", "          value: |-\n            two\n            lines\n", "spec:\n  replicas: 2\n  template:\n", "        # end of env\n      # end of containers\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := EditDeployment([]byte(tt.src), edit)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(string(out), c) {
					t.Errorf("output lacks %q:\n%s", c, out)
				}
			}
			if strings.Contains(tt.src, "\r\n") && strings.Count(string(out), "\n") != strings.Count(string(out), "\r\n") {
				t.Errorf("mixed line ends:\n%q", out)
			}
			v, err := ParseDeploymentView(out, "")
			if err != nil {
				t.Fatal(err)
			}
			c := v.Containers[0]
			if *v.Replicas != 2 || c.Image != "new:1" || c.Resources.Limits["cpu"] != "1" || len(c.Env) < 2 {
				t.Fatalf("view = %+v %+v", v, c)
			}
		})
	}
}

// Strings YAML 1.1 would read as booleans or numbers are quoted, so
// Kubernetes tooling (sigs.k8s.io/yaml) still sees strings.
func TestYAML11StringsQuoted(t *testing.T) {
	src := mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml"))
	out, err := EditDeployment(src, DeploymentEdit{Containers: []ContainerEdit{{Env: []EnvVar{{Name: "A", Value: "on"}, {Name: "B", Value: "yes"}, {Name: "LOG_LEVEL", Value: "off"}, {Name: "C", Value: "0x1F"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`value: "on"`, `value: "yes"`, `value: "off"`, `value: "0x1F"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
