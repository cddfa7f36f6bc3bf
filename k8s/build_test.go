package k8s

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxgate/fluxgate"
)

func TestBuildObjectEveryKind(t *testing.T) {
	f := false
	tests := []struct {
		name  string
		kind  fluxgate.ResourceKind
		spec  any
		check func(t *testing.T, obj any)
	}{
		{
			name: "git repository",
			kind: fluxgate.KindGitRepository,
			spec: fluxgate.GitRepositorySpec{URL: "https://git.example.com/org/app.git", Ref: fluxgate.GitRef{Branch: "main"},
				Interval: "2m", Timeout: "30s", SecretRef: "app-creds", Ignore: "/docs\n"},
			check: func(t *testing.T, obj any) {
				o := obj.(*sourcev1.GitRepository)
				if o.Spec.URL != "https://git.example.com/org/app.git" || o.Spec.Reference.Branch != "main" ||
					o.Spec.Interval.Duration != 2*time.Minute || o.Spec.Timeout.Duration != 30*time.Second ||
					o.Spec.SecretRef.Name != "app-creds" || *o.Spec.Ignore != "/docs\n" {
					t.Fatalf("spec = %+v", o.Spec)
				}
			},
		},
		{
			name: "kustomization",
			kind: fluxgate.KindKustomization,
			spec: fluxgate.KustomizationSpec{
				SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "app"}, Path: "./k8s/overlays/prod", Prune: true,
				HealthChecks: []fluxgate.HealthCheck{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: "prod"}},
				DependsOn:    []fluxgate.DependsOn{{Name: "infra"}}, Interval: "10m", Timeout: "2m", RetryInterval: "20s",
				TargetNamespace: "prod", Wait: true,
			},
			check: func(t *testing.T, obj any) {
				o := obj.(*kustomizev1.Kustomization)
				s := o.Spec
				if s.SourceRef.Kind != "GitRepository" || s.SourceRef.Name != "app" || s.Path != "./k8s/overlays/prod" || !s.Prune ||
					len(s.HealthChecks) != 1 || s.HealthChecks[0].Name != "web" || s.HealthChecks[0].Namespace != "prod" ||
					len(s.DependsOn) != 1 || s.DependsOn[0].Name != "infra" || s.Interval.Duration != 10*time.Minute ||
					s.Timeout.Duration != 2*time.Minute || s.RetryInterval.Duration != 20*time.Second || s.TargetNamespace != "prod" || !s.Wait {
					t.Fatalf("spec = %+v", s)
				}
			},
		},
		{
			name: "helm release",
			kind: fluxgate.KindHelmRelease,
			spec: fluxgate.HelmReleaseSpec{
				Chart: "podinfo", Version: ">=6.0.0", SourceKind: "HelmRepository", SourceName: "podinfo",
				Values:     json.RawMessage(`{"replicaCount":2,"ingress":{"enabled":true}}`),
				ValuesFrom: []fluxgate.ValuesReference{{Kind: "ConfigMap", Name: "extra", ValuesKey: "values.yaml"}},
				Install:    &fluxgate.HelmInstall{RemediationRetries: 3, CreateNamespace: true},
				Upgrade:    &fluxgate.HelmUpgrade{RemediationRetries: 2, RemediateLastFailure: &f, CleanupOnFail: true},
				Interval:   "5m", TargetNamespace: "apps",
			},
			check: func(t *testing.T, obj any) {
				o := obj.(*helmv2.HelmRelease)
				s := o.Spec
				if s.Chart.Spec.Chart != "podinfo" || s.Chart.Spec.Version != ">=6.0.0" || s.Chart.Spec.SourceRef.Kind != "HelmRepository" ||
					s.Chart.Spec.SourceRef.Name != "podinfo" || string(s.Values.Raw) != `{"replicaCount":2,"ingress":{"enabled":true}}` ||
					len(s.ValuesFrom) != 1 || s.ValuesFrom[0].ValuesKey != "values.yaml" ||
					s.Install.Remediation.Retries != 3 || !s.Install.CreateNamespace ||
					s.Upgrade.Remediation.Retries != 2 || *s.Upgrade.Remediation.RemediateLastFailure || !s.Upgrade.CleanupOnFail ||
					s.TargetNamespace != "apps" {
					t.Fatalf("spec = %+v", s)
				}
			},
		},
		{
			name: "helm repository",
			kind: fluxgate.KindHelmRepository,
			spec: fluxgate.HelmRepositorySpec{URL: "oci://ghcr.io/stefanprodan/charts", Type: "oci"},
			check: func(t *testing.T, obj any) {
				o := obj.(*sourcev1.HelmRepository)
				if o.Spec.Type != "oci" || o.Spec.Interval.Duration != 10*time.Minute {
					t.Fatalf("spec = %+v", o.Spec)
				}
			},
		},
		{
			name: "image repository",
			kind: fluxgate.KindImageRepository,
			spec: fluxgate.ImageRepositorySpec{Image: "ghcr.io/org/app", ExclusionList: []string{"^.*\\.sig$"}},
			check: func(t *testing.T, obj any) {
				o := obj.(*imagev1.ImageRepository)
				if o.Spec.Image != "ghcr.io/org/app" || len(o.Spec.ExclusionList) != 1 || o.Spec.Interval.Duration != 5*time.Minute {
					t.Fatalf("spec = %+v", o.Spec)
				}
			},
		},
		{
			name: "image policy",
			kind: fluxgate.KindImagePolicy,
			spec: fluxgate.ImagePolicySpec{ImageRepository: "app", Policy: "numerical", Order: "asc",
				FilterTags: &fluxgate.TagFilter{Pattern: `^main-[a-f0-9]+-(?P<ts>[0-9]+)`, Extract: "$ts"}},
			check: func(t *testing.T, obj any) {
				o := obj.(*imagev1.ImagePolicy)
				if o.Spec.ImageRepositoryRef.Name != "app" || o.Spec.Policy.Numerical == nil || o.Spec.Policy.Numerical.Order != "asc" ||
					o.Spec.FilterTags.Extract != "$ts" {
					t.Fatalf("spec = %+v", o.Spec)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource(t, tt.kind, "app", tt.spec)
			obj, err := BuildObject(r)
			if err != nil {
				t.Fatal(err)
			}
			gvk := obj.GetObjectKind().GroupVersionKind()
			if gvk.Kind != string(tt.kind) || obj.GetNamespace() != "proj-demo" || obj.GetName() != "app" {
				t.Fatalf("object %v %s/%s", gvk, obj.GetNamespace(), obj.GetName())
			}
			l := obj.GetLabels()
			if l[LabelProject] != "proj-1" || l[LabelEnvironment] != "env-1" || l[LabelResourceID] != "res-app" || l[LabelManagedBy] != "fluxgate" {
				t.Fatalf("labels = %v", l)
			}
			tt.check(t, obj)
		})
	}
}

func TestBuildObjectRejectsInvalidSpecs(t *testing.T) {
	tests := []struct {
		name      string
		kind      fluxgate.ResourceKind
		spec      any
		wantField string
	}{
		{"scp url", fluxgate.KindGitRepository, map[string]any{"url": "git@github.com:org/app.git"}, "url"},
		{"ftp url", fluxgate.KindGitRepository, map[string]any{"url": "ftp://example.com/x"}, "url"},
		{"ssh without secret", fluxgate.KindGitRepository, map[string]any{"url": "ssh://git@github.com/org/app"}, "secretRef"},
		{"two refs", fluxgate.KindGitRepository, map[string]any{"url": "https://x.io/a", "ref": map[string]any{"branch": "a", "tag": "v1"}}, "ref"},
		{"bad interval", fluxgate.KindGitRepository, map[string]any{"url": "https://x.io/a", "interval": "soon"}, "interval"},
		{"unknown field", fluxgate.KindGitRepository, map[string]any{"url": "https://x.io/a", "branch": "main"}, "spec"},
		{"no source", fluxgate.KindKustomization, map[string]any{"path": "./"}, "sourceRef.kind"},
		{"path escapes", fluxgate.KindKustomization, map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "a"}, "path": "../etc"}, "path"},
		{"health check name", fluxgate.KindKustomization, map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "a"},
			"healthChecks": []any{map[string]any{"kind": "Deployment", "name": "Web App"}}}, "healthChecks[0].name"},
		{"values not object", fluxgate.KindHelmRelease, map[string]any{"chart": "c", "sourceKind": "HelmRepository", "sourceName": "r", "values": []int{1}}, "values"},
		{"helm source kind", fluxgate.KindHelmRelease, map[string]any{"chart": "c", "sourceKind": "OCIRepository", "sourceName": "r"}, "sourceKind"},
		{"retries", fluxgate.KindHelmRelease, map[string]any{"chart": "c", "sourceKind": "HelmRepository", "sourceName": "r",
			"install": map[string]any{"remediationRetries": -2}}, "install.remediationRetries"},
		{"oci type mismatch", fluxgate.KindHelmRepository, map[string]any{"url": "https://charts.example.com", "type": "oci"}, "url"},
		{"image with tag", fluxgate.KindImageRepository, map[string]any{"image": "ghcr.io/org/app:1.0"}, "image"},
		{"semver without range", fluxgate.KindImagePolicy, map[string]any{"imageRepository": "app", "policy": "semver"}, "range"},
		{"bad order", fluxgate.KindImagePolicy, map[string]any{"imageRepository": "app", "policy": "alphabetical", "order": "up"}, "order"},
		{"bad pattern", fluxgate.KindImagePolicy, map[string]any{"imageRepository": "app", "policy": "numerical",
			"filterTags": map[string]any{"pattern": "([a-z"}}, "filterTags.pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildObject(resource(t, tt.kind, "app", tt.spec))
			wantCode(t, err, fluxgate.EINVALID, tt.wantField)
		})
	}
	t.Run("bad name", func(t *testing.T) {
		r := resource(t, fluxgate.KindGitRepository, "App_1", fluxgate.GitRepositorySpec{URL: "https://x.io/a"})
		_, err := BuildObject(r)
		wantCode(t, err, fluxgate.EINVALID, "name")
	})
	t.Run("no namespace", func(t *testing.T) {
		r := resource(t, fluxgate.KindGitRepository, "app", fluxgate.GitRepositorySpec{URL: "https://x.io/a"})
		r.Namespace = ""
		_, err := BuildObject(r)
		wantCode(t, err, fluxgate.EINVALID, "namespace")
	})
}

func TestApplyServerSideOnFakeClient(t *testing.T) {
	ctx := context.Background()
	kc := mustFakeClient(t)
	c := NewFromClient(kc, Options{})
	r := resource(t, fluxgate.KindKustomization, "web", fluxgate.KustomizationSpec{
		SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "web"}, Path: "./base", Prune: true,
	})
	applied, err := c.Apply(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if applied.Status.Status != fluxgate.ResourcePending || applied.Object.GetName() != "web" {
		t.Fatalf("applied = %+v", applied)
	}
	var got kustomizev1.Kustomization
	if err := kc.Get(ctx, types.NamespacedName{Namespace: "proj-demo", Name: "web"}, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Spec.Prune || got.Spec.Path != "./base" || got.Spec.Interval.Duration != 5*time.Minute || got.Labels[LabelResourceID] != "res-web" {
		t.Fatalf("stored = %+v", got)
	}

	// Another manager sets a field fluxgate does not own: the next apply
	// keeps it, and changes only fluxgate's fields.
	got.Spec.Force = true
	if err := kc.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	r.Suspended = true
	r.Spec = specJSON(t, fluxgate.KustomizationSpec{SourceRef: fluxgate.SourceRef{Kind: "GitRepository", Name: "web"}, Path: "./overlays/prod"})
	applied, err = c.Apply(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if applied.Status.Status != fluxgate.ResourceSuspended {
		t.Fatalf("status = %s, want suspended", applied.Status.Status)
	}
	if err := kc.Get(ctx, types.NamespacedName{Namespace: "proj-demo", Name: "web"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Path != "./overlays/prod" || got.Spec.Prune || !got.Spec.Suspend || !got.Spec.Force {
		t.Fatalf("after re-apply: path=%q prune=%t suspend=%t force=%t", got.Spec.Path, got.Spec.Prune, got.Spec.Suspend, got.Spec.Force)
	}

	// Un-suspending in the database resumes in the cluster.
	r.Suspended = false
	if _, err := c.Apply(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := kc.Get(ctx, types.NamespacedName{Namespace: "proj-demo", Name: "web"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Suspend {
		t.Fatal("still suspended after applying Suspended=false")
	}
}
