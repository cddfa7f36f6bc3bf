package yamledit

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func related(a, b Change) bool {
	if a.File != b.File || a.Resource != b.Resource {
		return false
	}
	p, q := a.Path, b.Path
	return p == "" || q == "" || p == q ||
		strings.HasPrefix(p, q+".") || strings.HasPrefix(p, q+"[") ||
		strings.HasPrefix(q, p+".") || strings.HasPrefix(q, p+"[")
}

func relatedToAny(c Change, set []Change) bool {
	for _, s := range set {
		if related(c, s) {
			return true
		}
	}
	return false
}

// FuzzEdit: editing never panics, and the only fields that change are the
// edited ones (nothing unrelated is lost or altered).
func FuzzEdit(f *testing.F) {
	for _, name := range []string{"deployment.yaml", "compact.yaml", "multi.yaml"} {
		src := mustRead(f, filepath.Join("..", "testdata", "edit", name))
		f.Add(src, "", int32(3), "nginx:1.27", "LOG_LEVEL", "debug", "FEATURE_X")
		f.Add(src, "worker", int32(0), "", "NEW", "", "")
	}
	f.Add([]byte(mergeBase), "web", int32(9), "acme/web:7", "B", "x", "A")
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: a, image: b}]}}}\n"), "a", int32(1), "c:1", "E", "v", "")
	f.Add([]byte("kind: Deployment\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: |\n          weird\n"), "", int32(2), "i:2", "K", "'quoted'", "")
	f.Fuzz(func(t *testing.T, src []byte, name string, replicas int32, image, envName, envValue, removeEnv string) {
		e := DeploymentEdit{Name: name, Replicas: &replicas}
		ce := ContainerEdit{}
		if image != "" {
			ce.Image = &image
		}
		if envName != "" {
			ce.Env = []EnvVar{{Name: envName, Value: envValue}}
		}
		if removeEnv != "" && removeEnv != envName {
			ce.RemoveEnv = []string{removeEnv}
		}
		e.Containers = []ContainerEdit{ce}
		out, err := EditDeployment(src, e)
		if err != nil {
			var inv *InvalidInputError
			var se *SyntaxError
			var le *LimitError
			if !errors.As(err, &inv) && !errors.Is(err, ErrNotFound) && !errors.As(err, &se) && !errors.As(err, &le) {
				// Other errors are acceptable only for documents kyaml
				// cannot edit (e.g. fields of the wrong kind).
				if !strings.Contains(err.Error(), "wrong node kind") && !strings.Contains(err.Error(), "is not") {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
			}
			return
		}
		changes, err := DiffFiles("f", src, out)
		if err != nil {
			t.Fatalf("edited output does not parse: %v\n%s", err, out)
		}
		f0, _ := Parse(src)
		di, _ := f0.FindDeployment(name)
		res := objectID(f0.Root(di)).String()
		f1, _ := Parse(out)
		for _, c := range changes {
			ok := c.Resource == res && (c.Path == "spec" || c.Path == "spec.replicas" ||
				strings.HasPrefix(c.Path, "spec.template.spec.containers") && (strings.HasSuffix(c.Path, "]") ||
					strings.HasSuffix(c.Path, ".image") || strings.Contains(c.Path, ".env")))
			if c.Path == "spec.template.spec.containers" {
				// Containers without names are compared as a whole list:
				// check that only image and env differ.
				ok = sameExcept(f0.Root(di), f1.Root(di))
			}
			if !ok {
				t.Fatalf("unrelated field changed: %+v\n--- before\n%s\n--- after\n%s", c, src, out)
			}
		}
		v, err := ParseDeploymentView(out, name)
		if err != nil {
			return // e.g. fields of the wrong type for the typed view
		}
		if v.Replicas == nil || *v.Replicas != replicas {
			t.Fatalf("replicas = %v, want %d", v.Replicas, replicas)
		}
		if image != "" && len(v.Containers) > 0 && v.Containers[0].Image != image {
			t.Fatalf("image = %q, want %q", v.Containers[0].Image, image)
		}
	})
}

// FuzzMerge: merging never panics; a successful merge keeps every change
// of theirs that ours did not touch and every change of ours that theirs did
// not touch. Empty theirs / ours are derived from base with Deployment
// edits (image and replicas on theirs, env and replicas on ours), so the
// fuzzer explores realistic concurrent edits as well as raw YAML.
func FuzzMerge(f *testing.F) {
	base := []byte(mergeBase)
	f.Add(base, []byte(strings.Replace(mergeBase, "replicas: 2", "replicas: 3", 1)), []byte(strings.Replace(mergeBase, "acme/web:1", "acme/web:2", 1)), "", int32(0), "", int32(0))
	f.Add(base, []byte(strings.Replace(mergeBase, `value: "1"`, `value: "9"`, 1)), []byte(strings.Replace(mergeBase, "            - name: B\n              value: \"2\"\n", "", 1)), "", int32(0), "", int32(0))
	f.Add(base, []byte(strings.Replace(mergeBase, "        - name: sidecar\n          image: acme/sidecar:1\n", "", 1)), []byte(mergeBase+"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"), "", int32(0), "", int32(0))
	f.Add(base, []byte(strings.Replace(mergeBase, "# shop web", "# theirs", 1)), []byte(strings.Replace(mergeBase, "httpGet: {path: /healthz, port: 8080}", "httpGet: {path: /live, port: 8080}", 1)), "", int32(0), "", int32(0))
	f.Add([]byte("a: 1\nb: [1, 2]\n"), []byte("a: 2\nb: [1, 2]\n"), []byte("a: 1\nb: [1]\nc: {d: e}\n"), "", int32(0), "", int32(0))
	f.Add(base, []byte{}, []byte{}, "acme/web:5", int32(4), "NEW", int32(0))
	f.Add(base, []byte{}, []byte{}, "acme/web:5", int32(4), "A", int32(4))
	f.Add(mustRead(f, filepath.Join("..", "testdata", "edit", "deployment.yaml")), []byte{}, []byte{}, "x:1", int32(1), "LOG_LEVEL", int32(2))
	f.Fuzz(func(t *testing.T, base, theirs, ours []byte, tImage string, tReplicas int32, oEnv string, oReplicas int32) {
		if len(theirs) == 0 {
			e := DeploymentEdit{Replicas: &tReplicas}
			if tImage != "" {
				e.Containers = []ContainerEdit{{Image: &tImage}}
			}
			var err error
			if theirs, err = EditDeployment(base, e); err != nil {
				return
			}
		}
		if len(ours) == 0 {
			e := DeploymentEdit{}
			if oReplicas != 0 {
				e.Replicas = &oReplicas
			}
			if oEnv != "" {
				e.Containers = []ContainerEdit{{Env: []EnvVar{{Name: oEnv, Value: oEnv + "-value"}}}}
			}
			var err error
			if ours, err = EditDeployment(base, e); err != nil {
				return
			}
		}
		out, err := Merge3("f", base, theirs, ours)
		if err != nil {
			return
		}
		ours2, err1 := DiffFiles("f", base, ours)
		theirs2, err2 := DiffFiles("f", base, theirs)
		if err1 != nil || err2 != nil || out == nil {
			return
		}
		vsTheirs, err := DiffFiles("f", theirs, out)
		if err != nil {
			t.Fatalf("merged output does not parse: %v\n%s", err, out)
		}
		for _, c := range vsTheirs {
			if !relatedToAny(c, ours2) {
				t.Fatalf("merge changed %+v, which ours did not change\nbase:\n%s\ntheirs:\n%s\nours:\n%s\nout:\n%s", c, base, theirs, ours, out)
			}
		}
		vsOurs, err := DiffFiles("f", ours, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range vsOurs {
			if !relatedToAny(c, theirs2) {
				t.Fatalf("merge lost ours' %+v\nbase:\n%s\ntheirs:\n%s\nours:\n%s\nout:\n%s", c, base, theirs, ours, out)
			}
		}
	})
}

// sameExcept reports whether the containers of two Deployment roots are
// equal once their image and env fields are ignored.
func sameExcept(a, b *yaml.Node) bool {
	ca := mapGet(mapGet(mapGet(mapGet(a, "spec"), "template"), "spec"), "containers")
	cb := mapGet(mapGet(mapGet(mapGet(b, "spec"), "template"), "spec"), "containers")
	if ca == nil || cb == nil || len(ca.Content) != len(cb.Content) {
		return false
	}
	strip := func(n *yaml.Node) *yaml.Node {
		c := deepCopy(n)
		if c.Kind != yaml.MappingNode {
			return c
		}
		var kept []*yaml.Node
		for i := 0; i+1 < len(c.Content); i += 2 {
			if k := c.Content[i].Value; k != "image" && k != "env" {
				kept = append(kept, c.Content[i], c.Content[i+1])
			}
		}
		c.Content = kept
		return c
	}
	for i := range ca.Content {
		if !equalNodes(strip(ca.Content[i]), strip(cb.Content[i])) {
			return false
		}
	}
	return true
}
