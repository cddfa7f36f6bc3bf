package yamledit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []Issue // compared on Line, Column (when set), Path and a Message substring
	}{
		{name: "valid", src: string(mustRead(t, filepath.Join("..", "testdata", "edit", "deployment.yaml")))},
		{name: "kustomization without name", src: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n"},
		{name: "unknown kind is not strict", src: "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  anything: 1\n"},
		{name: "syntax error", src: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1, 2\n", want: []Issue{{Line: 6, Column: 6, Message: "did not find expected"}}},
		{name: "bad indentation", src: "apiVersion: v1\nkind: ConfigMap\n metadata: x\n", want: []Issue{{Line: 2, Column: 7, Message: "mapping values are not allowed"}}},
		{name: "duplicate key", src: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", want: []Issue{{Line: 5, Column: 3, Message: "duplicate key \"name\""}}},
		{name: "not an object", src: "- a\n- b\n", want: []Issue{{Line: 1, Message: "not a mapping"}}},
		{name: "missing kind and name", src: "apiVersion: v1\nmetadata:\n  labels: {}\n", want: []Issue{{Path: "kind", Message: "missing"}, {Path: "metadata.name", Message: "missing"}}},
		{name: "bad name", src: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n", want: []Issue{{Line: 4, Path: "metadata.name", Message: "RFC 1123"}}},
		{name: "unknown field", src: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        imagee: nginx\n",
			want: []Issue{{Line: 10, Column: 9, Path: "spec.template.spec.containers[0].imagee", Message: "unknown field"}}},
		{name: "wrong type", src: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: three\n",
			want: []Issue{{Line: 6, Path: "spec.replicas", Message: "wrong type"}}},
		{name: "second document", src: "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: t\nspec:\n  portz: []\n",
			want: []Issue{{Line: 11, Path: "spec.portz", Message: "unknown field"}}},
		{name: "duplicate object", src: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
			want: []Issue{{Line: 6, Message: "duplicate of document 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Validate([]byte(tt.src))
			if len(got) != len(tt.want) {
				t.Fatalf("issues = %v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if (w.Line != 0 && g.Line != w.Line) || (w.Column != 0 && g.Column != w.Column) || g.Path != w.Path || !strings.Contains(g.Message, w.Message) {
					t.Errorf("issue %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	// A billion-laughs document: 9 levels of 9 aliases.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	_, err := Parse([]byte(b.String()))
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(le.Msg, "alias") {
		t.Fatalf("alias bomb: err = %v", err)
	}
	if issues := Validate([]byte(b.String())); len(issues) != 1 || !strings.Contains(issues[0].Message, "alias") {
		t.Fatalf("validate alias bomb: %v", issues)
	}
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: " + strings.Repeat("x", MaxDocumentBytes) + "\n"
	if _, err := Parse([]byte(big)); !errors.As(err, &le) {
		t.Fatalf("oversized document: err = %v", err)
	}
	var inv *InvalidInputError
	if err := AsInvalidInput("yaml", err); !errors.As(err, &inv) || inv.Field != "yaml" {
		t.Fatalf("AsInvalidInput = %v", err)
	}
	// Small aliases are fine.
	if _, err := Parse([]byte("a: &x {k: v}\nb: *x\n")); err != nil {
		t.Fatal(err)
	}
}
