package yamledit

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const mergeBase = `# shop web
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2 # base replicas
  template:
    spec:
      containers:
        - name: web
          image: acme/web:1
          args: ["--port", "8080"]
          env:
            - name: A
              value: "1"
            - name: B
              value: "2"
          livenessProbe:
            httpGet: {path: /healthz, port: 8080}
        - name: sidecar
          image: acme/sidecar:1
`

// edit returns mergeBase with each old→new replacement applied once.
func edit(t *testing.T, pairs ...string) []byte {
	t.Helper()
	s := mergeBase
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("fixture has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return []byte(s)
}

func TestMerge3(t *testing.T) {
	type want struct {
		contains  []string
		absent    []string
		conflicts []Conflict // compared on Path, Base, Theirs, Ours
	}
	tests := []struct {
		name         string
		theirs, ours []byte
		want         want
	}{
		{name: "disjoint fields",
			theirs: edit(t, "replicas: 2 # base replicas", "replicas: 3 # theirs scaled"),
			ours:   edit(t, "image: acme/web:1", "image: acme/web:2"),
			want:   want{contains: []string{"replicas: 3 # theirs scaled", "image: acme/web:2", "# shop web"}}},
		{name: "same field same value",
			theirs: edit(t, "image: acme/web:1", "image: acme/web:2 # bumped"),
			ours:   edit(t, "image: acme/web:1", "image: acme/web:2"),
			want:   want{contains: []string{"image: acme/web:2 # bumped"}}},
		{name: "same field different values",
			theirs: edit(t, "image: acme/web:1", "image: acme/web:2"),
			ours:   edit(t, "image: acme/web:1", "image: acme/web:3"),
			want:   want{conflicts: []Conflict{{Path: "spec.template.spec.containers[name=web].image", Base: "acme/web:1", Theirs: "acme/web:2", Ours: "acme/web:3"}}}},
		{name: "every conflict is reported",
			theirs: edit(t, "image: acme/web:1", "image: acme/web:2", "replicas: 2", "replicas: 4"),
			ours:   edit(t, "image: acme/web:1", "image: acme/web:3", "replicas: 2", "replicas: 5"),
			want: want{conflicts: []Conflict{
				{Path: "spec.replicas", Base: "2", Theirs: "4", Ours: "5"},
				{Path: "spec.template.spec.containers[name=web].image", Base: "acme/web:1", Theirs: "acme/web:2", Ours: "acme/web:3"}}}},
		{name: "named list: both add different items",
			theirs: edit(t, "            - name: B\n              value: \"2\"\n", "            - name: B\n              value: \"2\"\n            - name: C\n              value: \"3\"\n"),
			ours:   edit(t, "            - name: B\n              value: \"2\"\n", "            - name: B\n              value: \"2\"\n            # added by ours\n            - name: D\n              value: \"4\"\n"),
			want:   want{contains: []string{"- name: C", "- name: D", "# added by ours"}}},
		{name: "named list: different items modified",
			theirs: edit(t, `value: "1"`, `value: "10"`),
			ours:   edit(t, `value: "2"`, `value: "20"`),
			want:   want{contains: []string{`value: "10"`, `value: "20"`}}},
		{name: "containers by name",
			theirs: edit(t, "image: acme/sidecar:1", "image: acme/sidecar:2"),
			ours:   edit(t, "image: acme/web:1", "image: acme/web:9"),
			want:   want{contains: []string{"image: acme/sidecar:2", "image: acme/web:9"}}},
		{name: "remove and add",
			theirs: edit(t, "            - name: B\n              value: \"2\"\n", ""),
			ours:   edit(t, "            - name: A\n", "            - name: Z\n              value: \"26\"\n            - name: A\n"),
			want:   want{contains: []string{"- name: Z"}, absent: []string{"name: B"}}},
		{name: "removal on ours, unrelated change on theirs",
			theirs: edit(t, "replicas: 2", "replicas: 6"),
			ours:   edit(t, "          livenessProbe:\n            httpGet: {path: /healthz, port: 8080}\n", ""),
			want:   want{contains: []string{"replicas: 6"}, absent: []string{"livenessProbe"}}},
		{name: "removed on ours, modified on theirs",
			theirs: edit(t, `value: "2"`, `value: "22"`),
			ours:   edit(t, "            - name: B\n              value: \"2\"\n", ""),
			want:   want{conflicts: []Conflict{{Path: "spec.template.spec.containers[name=web].env[name=B]", Base: "{name: B, value: \"2\"}", Theirs: "{name: B, value: \"22\"}", Ours: ""}}}},
		{name: "plain list is one value",
			theirs: edit(t, `args: ["--port", "8080"]`, `args: ["--port", "9090"]`),
			ours:   edit(t, `args: ["--port", "8080"]`, `args: ["--port", "8080", "--debug"]`),
			want:   want{conflicts: []Conflict{{Path: "spec.template.spec.containers[name=web].args", Base: `["--port", "8080"]`, Theirs: `["--port", "9090"]`, Ours: `["--port", "8080", "--debug"]`}}}},
		{name: "plain list changed on one side",
			theirs: edit(t, "replicas: 2", "replicas: 1"),
			ours:   edit(t, `args: ["--port", "8080"]`, `args: ["--port", "8080", "--debug"]`),
			want:   want{contains: []string{"replicas: 1", `args: ["--port", "8080", "--debug"]`}}},
		{name: "both add the same key with different values",
			theirs: edit(t, "          image: acme/web:1\n", "          image: acme/web:1\n          imagePullPolicy: Always\n"),
			ours:   edit(t, "          image: acme/web:1\n", "          image: acme/web:1\n          imagePullPolicy: Never\n"),
			want:   want{conflicts: []Conflict{{Path: "spec.template.spec.containers[name=web].imagePullPolicy", Base: "", Theirs: "Always", Ours: "Never"}}}},
		{name: "ours adds a document",
			theirs: edit(t, "replicas: 2", "replicas: 3"),
			ours:   []byte(mergeBase + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"),
			want:   want{contains: []string{"replicas: 3", "name: extra"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Merge3("deploy.yaml", []byte(mergeBase), tt.theirs, tt.ours)
			if len(tt.want.conflicts) > 0 {
				var ce *ConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a conflict", err)
				}
				if out != nil {
					t.Fatal("a conflicting merge returned content")
				}
				var got []Conflict
				for _, c := range ce.Conflicts {
					if c.File != "deploy.yaml" || c.Resource != "Deployment/web" {
						t.Errorf("conflict location = %q %q", c.File, c.Resource)
					}
					got = append(got, Conflict{Path: c.Path, Base: c.Base, Theirs: c.Theirs, Ours: c.Ours})
				}
				if !reflect.DeepEqual(got, tt.want.conflicts) {
					t.Fatalf("conflicts = %+v\nwant %+v", got, tt.want.conflicts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want.contains {
				if !strings.Contains(string(out), s) {
					t.Errorf("merged output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.want.absent {
				if strings.Contains(string(out), s) {
					t.Errorf("merged output still has %q:\n%s", s, out)
				}
			}
			// Everything theirs wrote that neither side touched is kept byte for byte.
			removed, _ := changedLines(tt.theirs, out)
			if len(removed) > 4 {
				t.Errorf("merge rewrote %d lines of theirs: %q", len(removed), removed)
			}
			if issues := Validate(out); len(issues) > 0 {
				t.Errorf("merged output invalid: %v", issues)
			}
			// The merge is symmetric in content: merging with sides swapped
			// gives the same objects.
			swapped, err := Merge3("deploy.yaml", []byte(mergeBase), tt.ours, tt.theirs)
			if err != nil {
				t.Fatal(err)
			}
			if d, err := DiffFiles("f", out, swapped); err != nil || len(d) > 0 {
				t.Errorf("merge not symmetric (%v): %+v", err, d)
			}
		})
	}
}

func TestMergeDocumentDeletion(t *testing.T) {
	const cm = "---\n# config for web\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  a: \"1\"\n"
	const svc = "---\n# the service\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80 # http\n"
	base := []byte(mergeBase + cm + svc)
	theirs := []byte(strings.Replace(mergeBase, "replicas: 2", "replicas: 3", 1) + cm + strings.Replace(svc, "port: 80", "port: 8080", 1))
	ours := []byte(mergeBase + svc) // ours deletes the ConfigMap
	out, err := Merge3("all.yaml", base, theirs, ours)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(mergeBase, "replicas: 2", "replicas: 3", 1) + strings.Replace(svc, "port: 80", "port: 8080", 1)
	if string(out) != want {
		t.Fatalf("merged:\n%s\nwant:\n%s", out, want)
	}
	// Deleting a document that theirs changed is a conflict.
	theirs = []byte(mergeBase + strings.Replace(cm, `a: "1"`, `a: "2"`, 1) + svc)
	var ce *ConflictError
	if _, err := Merge3("all.yaml", base, theirs, ours); !errors.As(err, &ce) || ce.Conflicts[0].Resource != "ConfigMap/web-config" || ce.Conflicts[0].Ours != "" {
		t.Fatalf("err = %v", err)
	}
}

func TestMergeTrivialCases(t *testing.T) {
	base := []byte(mergeBase)
	th := edit(t, "replicas: 2", "replicas: 3")
	if out, err := Merge3("f", base, th, base); err != nil || string(out) != string(th) {
		t.Fatalf("ours unchanged: %v", err)
	}
	if out, err := Merge3("f", base, base, th); err != nil || string(out) != string(th) {
		t.Fatalf("theirs unchanged: %v", err)
	}
	// File deleted on theirs, edited on ours.
	var ce *ConflictError
	if _, err := Merge3("f", base, nil, th); !errors.As(err, &ce) {
		t.Fatalf("delete/modify: %v", err)
	}
	// File created on ours only.
	if out, err := Merge3("f", nil, nil, th); err != nil || string(out) != string(th) {
		t.Fatalf("added file: %v", err)
	}
}

func TestDiffFilesAndImpact(t *testing.T) {
	base := []byte(mergeBase)
	tests := []struct {
		name     string
		new      []byte
		changes  []Change // compared on Path, Op, Old, New
		restarts bool
	}{
		{name: "image", new: edit(t, "image: acme/web:1", "image: acme/web:2"),
			changes:  []Change{{Path: "spec.template.spec.containers[name=web].image", Op: OpModify, Old: "acme/web:1", New: "acme/web:2"}},
			restarts: true},
		{name: "replicas only", new: edit(t, "replicas: 2", "replicas: 7"),
			changes: []Change{{Path: "spec.replicas", Op: OpModify, Old: "2", New: "7"}}},
		{name: "env add and remove", new: edit(t, "            - name: A\n              value: \"1\"\n", "            - name: N\n              value: new\n"),
			changes: []Change{
				{Path: "spec.template.spec.containers[name=web].env[name=A]", Op: OpRemove, Old: "{name: A, value: \"1\"}"},
				{Path: "spec.template.spec.containers[name=web].env[name=N]", Op: OpAdd, New: "{name: N, value: new}"},
			}, restarts: true},
		{name: "label added", new: edit(t, "  name: web\n", "  name: web\n  labels:\n    team: shop\n"),
			changes: []Change{{Path: "metadata.labels", Op: OpAdd, New: "{team: shop}"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DiffFiles("deploy.yaml", base, tt.new)
			if err != nil {
				t.Fatal(err)
			}
			var simple []Change
			for _, c := range got {
				if c.Resource != "Deployment/web" || c.Kind != "Deployment" || c.File != "deploy.yaml" {
					t.Errorf("change location = %+v", c)
				}
				simple = append(simple, Change{Path: c.Path, Op: c.Op, Old: c.Old, New: c.New})
			}
			if !reflect.DeepEqual(simple, tt.changes) {
				t.Fatalf("changes = %+v\nwant %+v", simple, tt.changes)
			}
			im := AssessImpact(got)
			if im.RestartsPods != tt.restarts || (tt.restarts && len(im.Reasons) == 0) {
				t.Fatalf("impact = %+v, want restarts=%v", im, tt.restarts)
			}
			if d := UnifiedDiff("deploy.yaml", base, tt.new); !strings.HasPrefix(d, "--- a/deploy.yaml\n+++ b/deploy.yaml\n@@") {
				t.Fatalf("diff = %q", d)
			}
		})
	}
	got, _ := DiffFiles("cm.yaml", nil, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"))
	if len(got) != 1 || got[0].Op != OpAdd || got[0].Resource != "ConfigMap/c" {
		t.Fatalf("new file changes = %+v", got)
	}
	if d := UnifiedDiff("x", base, base); d != "" {
		t.Fatalf("diff of equal files = %q", d)
	}
}

// TestMergeGolden: a realistic concurrent edit of the annotated manifest;
// the merged file is theirs (their comment and replicas) plus ours (image,
// env, resources, probe removal), byte for byte as in the golden file.
func TestMergeGolden(t *testing.T) {
	base := mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml"))
	theirs := []byte(strings.Replace(strings.Replace(string(base), "  replicas: 2 # scaled by HPA in prod", "  # raised for the sale\n  replicas: 6 # scaled by HPA in prod", 1),
		"    targetPort: http", "    targetPort: 8080 # numeric now", 1))
	ours, err := EditDeployment(base, DeploymentEdit{Containers: []ContainerEdit{
		{Image: ptr("ghcr.io/acme/web:1.6.0"), Env: []EnvVar{{Name: "CACHE", Value: "on"}}, RemoveEnv: []string{"FEATURE_X"}, LivenessProbe: &ProbeEdit{Remove: true}},
		{Name: "sidecar", Resources: &ResourcesEdit{Limits: map[string]string{"memory": "64Mi"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Merge3("deployment.yaml", base, theirs, ours)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "merge-concurrent.yaml", out)
	// Theirs' lines are all kept except the ones ours changed.
	removed, _ := changedLines(theirs, out)
	if len(removed) != 9 {
		t.Errorf("removed from theirs: %q", removed)
	}
}
