package k8s

import (
	"context"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/fluxgate/fluxgate"
)

func TestSetAnnotations(t *testing.T) {
	ctx := context.Background()
	c := NewFromClient(mustFakeClient(t), Options{PollInterval: 10 * time.Millisecond})
	r := resource(t, fluxgate.KindKustomization, "web", fluxgate.KustomizationSpec{SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "web"}})
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	key := KeyOf(r)
	if _, err := c.Reconcile(ctx, key, 0); err != nil { // another annotation, to keep
		t.Fatal(err)
	}
	if err := c.SetAnnotations(ctx, key, map[string]string{AnnotationSyncRevision: "abc123"}); err != nil {
		t.Fatal(err)
	}
	obj, _, err := c.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if a := obj.GetAnnotations(); a[AnnotationSyncRevision] != "abc123" || a[meta.ReconcileRequestAnnotation] == "" {
		t.Fatalf("annotations after set = %v", a)
	}
	if err := c.SetAnnotations(ctx, key, map[string]string{AnnotationSyncRevision: ""}); err != nil {
		t.Fatal(err)
	}
	obj, _, err = c.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if a := obj.GetAnnotations(); len(a[AnnotationSyncRevision]) != 0 || a[meta.ReconcileRequestAnnotation] == "" {
		t.Fatalf("annotations after removal = %v", a)
	}
	if _, ok := obj.GetAnnotations()[AnnotationSyncRevision]; ok {
		t.Fatal("an empty value did not remove the annotation")
	}
	missing := key
	missing.Name = "ghost"
	wantCode(t, c.SetAnnotations(ctx, missing, map[string]string{AnnotationSyncRevision: "x"}), fluxgate.ENOTFOUND, "")
}
