package templates

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/fluxgate/fluxgate"
)

func mustNew(t *testing.T, id string, params ...string) *Instance {
	t.Helper()
	var vs []Value
	for i := 0; i+1 < len(params); i += 2 {
		vs = append(vs, Value{Name: params[i], Value: params[i+1]})
	}
	in, err := New(id, vs)
	if err != nil {
		t.Fatalf("New(%s, %v): %v", id, params, err)
	}
	return in
}

// strict decodes a manifest into a typed object, refusing unknown fields.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}

// build runs kustomize (krusty, the library kustomize-controller uses) on
// an overlay of the files.
func build(t *testing.T, files map[string][]byte, dir string) resmap.ResMap {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	for p, c := range files {
		if err := fs.WriteFile("/repo/"+p, c); err != nil {
			t.Fatal(err)
		}
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/repo/"+dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return rm
}

func builtObject(t *testing.T, rm resmap.ResMap, kind, name string, v any) {
	t.Helper()
	for _, r := range rm.Resources() {
		if r.GetKind() == kind && r.GetName() == name {
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			strict(t, b, v)
			return
		}
	}
	var have []string
	for _, r := range rm.Resources() {
		have = append(have, r.GetKind()+"/"+r.GetName())
	}
	t.Fatalf("no %s/%s in the build; have %v", kind, name, have)
}

func TestListDescribesEveryTemplate(t *testing.T) {
	ts := List()
	var ids []string
	for _, tpl := range ts {
		ids = append(ids, tpl.ID)
		if tpl.Name == "" || tpl.Description == "" || len(tpl.Params) == 0 {
			t.Errorf("%s: incomplete %+v", tpl.ID, tpl)
		}
		for _, p := range tpl.Params {
			if p.Description == "" {
				t.Errorf("%s.%s has no description", tpl.ID, p.Name)
			}
			if p.Required && p.Default != "" {
				t.Errorf("%s.%s is required and has a default", tpl.ID, p.Name)
			}
		}
	}
	if !slices.Equal(ids, []string{WebAppBasic, MicroserviceHelm, CronJob}) {
		t.Fatalf("ids = %v", ids)
	}
	// List hands out copies.
	ts[0].Params[0].Name = "changed"
	if tpl, _ := Get(WebAppBasic); tpl.Params[0].Name != "name" {
		t.Fatal("List returned the package's own slice")
	}
}

func TestWebAppBasicManifests(t *testing.T) {
	in := mustNew(t, WebAppBasic, "name", "shop", "image", "ghcr.io/acme/shop:1.4.2", "port", "9090", "replicas", "2", "healthPath", "/ready")
	files, err := in.Files([]string{"dev", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"k8s/base/deployment.yaml", "k8s/base/kustomization.yaml", "k8s/base/service.yaml",
		"k8s/overlays/dev/deployment.yaml", "k8s/overlays/dev/kustomization.yaml",
		"k8s/overlays/prod/deployment.yaml", "k8s/overlays/prod/kustomization.yaml",
	}
	var got []string
	for p := range files {
		got = append(got, p)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("files = %v", got)
	}

	var dep appsv1.Deployment
	strict(t, files["k8s/base/deployment.yaml"], &dep)
	c := dep.Spec.Template.Spec.Containers
	if dep.Kind != "Deployment" || dep.APIVersion != "apps/v1" || dep.Name != "shop" || *dep.Spec.Replicas != 2 || len(c) != 1 {
		t.Fatalf("deployment = %+v", dep)
	}
	if c[0].Image != "ghcr.io/acme/shop:1.4.2" || c[0].Ports[0].ContainerPort != 9090 || c[0].Ports[0].Name != "http" {
		t.Fatalf("container = %+v", c[0])
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c[0].ReadinessProbe, "liveness": c[0].LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/ready" || p.HTTPGet.Port.String() != "http" {
			t.Fatalf("%s probe = %+v", name, p)
		}
	}
	if dep.Spec.Selector.MatchLabels[labelName] != "shop" || dep.Spec.Template.Labels[labelName] != "shop" {
		t.Fatalf("labels = %v / %v", dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels)
	}
	if strings.Contains(string(files["k8s/base/deployment.yaml"]), "creationTimestamp") ||
		strings.Contains(string(files["k8s/base/deployment.yaml"]), "status") {
		t.Fatalf("noise from the API types:\n%s", files["k8s/base/deployment.yaml"])
	}
	var svc corev1.Service
	strict(t, files["k8s/base/service.yaml"], &svc)
	if svc.Name != "shop" || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" || svc.Spec.Selector[labelName] != "shop" {
		t.Fatalf("service = %+v", svc)
	}
	var ov kusttypes.Kustomization
	strict(t, files["k8s/overlays/prod/kustomization.yaml"], &ov)
	if ov.Kind != "Kustomization" || !slices.Equal(ov.Resources, []string{"../../base"}) || ov.NameSuffix != "-prod" || ov.Patches[0].Path != "deployment.yaml" {
		t.Fatalf("prod overlay = %+v", ov)
	}

	// Each overlay builds; the two environments' objects do not collide
	// in the shared namespace and each Deployment selects its own pods.
	selectors := map[string]bool{}
	for _, env := range []string{"dev", "prod"} {
		rm := build(t, files, OverlayPath(env))
		if rm.Size() != 2 {
			t.Fatalf("%s: %d objects", env, rm.Size())
		}
		var d appsv1.Deployment
		builtObject(t, rm, "Deployment", in.ObjectName(env), &d)
		if d.Spec.Selector.MatchLabels[labelInstance] != "shop-"+env || d.Spec.Template.Labels[labelInstance] != "shop-"+env {
			t.Fatalf("%s: selector %v, pod labels %v", env, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/shop:1.4.2" ||
			d.Spec.Template.Spec.Containers[0].LivenessProbe == nil {
			t.Fatalf("%s: built deployment %+v", env, d.Spec)
		}
		var s corev1.Service
		builtObject(t, rm, "Service", in.ObjectName(env), &s)
		if s.Spec.Selector[labelInstance] != "shop-"+env {
			t.Fatalf("%s: service selector %v", env, s.Spec.Selector)
		}
		selectors[d.Spec.Selector.String()] = true
		if hc := in.HealthCheck(env, "fg-shop"); hc == nil || *hc != (fluxgate.HealthCheck{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, Namespace: "fg-shop"}) {
			t.Fatalf("%s: health check %+v does not name the built Deployment %s", env, hc, d.Name)
		}
	}
	if len(selectors) != 2 {
		t.Fatal("the environments' Deployments share a selector")
	}

	// The overlay's patch sets what a UI deploy edits: editing it in one
	// environment changes that environment's build only.
	edited := map[string][]byte{}
	for p, c := range files {
		edited[p] = c
	}
	var patch appsv1.Deployment
	strict(t, files["k8s/overlays/prod/deployment.yaml"], &patch)
	patch.Spec.Template.Spec.Containers[0].Image = "ghcr.io/acme/shop:2.0.0"
	r := int32(5)
	patch.Spec.Replicas = &r
	if edited["k8s/overlays/prod/deployment.yaml"], err = yaml.Marshal(&patch); err != nil {
		t.Fatal(err)
	}
	var prod, dev appsv1.Deployment
	builtObject(t, build(t, edited, OverlayPath("prod")), "Deployment", "shop-prod", &prod)
	builtObject(t, build(t, edited, OverlayPath("dev")), "Deployment", "shop-dev", &dev)
	if prod.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/shop:2.0.0" || *prod.Spec.Replicas != 5 ||
		dev.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/shop:1.4.2" || *dev.Spec.Replicas != 2 {
		t.Fatalf("prod %s x%d, dev %s x%d", prod.Spec.Template.Spec.Containers[0].Image, *prod.Spec.Replicas,
			dev.Spec.Template.Spec.Containers[0].Image, *dev.Spec.Replicas)
	}
}

func TestWebAppBasicDefaults(t *testing.T) {
	in := mustNew(t, WebAppBasic, "name", "web", "image", "nginx")
	files, err := in.Files([]string{"staging"})
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	builtObject(t, build(t, files, OverlayPath("staging")), "Deployment", "web-staging", &d)
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 1 || c.Ports[0].ContainerPort != 8080 || c.ReadinessProbe.HTTPGet.Path != "/healthz" || c.Image != "nginx" {
		t.Fatalf("defaults: replicas %d, port %d, probe %s, image %s", *d.Spec.Replicas, c.Ports[0].ContainerPort, c.ReadinessProbe.HTTPGet.Path, c.Image)
	}
}

func TestCronJobManifests(t *testing.T) {
	in := mustNew(t, CronJob, "name", "report", "image", "registry.example.com:5000/acme/report@sha256:"+strings.Repeat("a", 64), "schedule", "*/15 2-5 * * mon-fri")
	files, err := in.Files([]string{"dev", "prod"})
	if err != nil {
		t.Fatal(err)
	}
	var base batchv1.CronJob
	strict(t, files["k8s/base/cronjob.yaml"], &base)
	if base.Spec.Schedule != "*/15 2-5 * * mon-fri" || base.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent ||
		base.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Fatalf("base cronjob = %+v", base.Spec)
	}
	if in.HealthCheck("dev", "ns") != nil {
		t.Fatal("a CronJob template has no Deployment to health-check")
	}
	for _, env := range []string{"dev", "prod"} {
		rm := build(t, files, OverlayPath(env))
		var cj batchv1.CronJob
		builtObject(t, rm, "CronJob", "report-"+env, &cj)
		c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers
		if rm.Size() != 1 || len(c) != 1 || c[0].Image != "registry.example.com:5000/acme/report@sha256:"+strings.Repeat("a", 64) ||
			cj.Spec.Schedule != "*/15 2-5 * * mon-fri" || c[0].Resources.Requests.Cpu().String() != "50m" {
			t.Fatalf("%s: built cronjob %+v", env, cj.Spec)
		}
		if cj.Labels[labelInstance] != "report-"+env {
			t.Fatalf("%s: labels %v", env, cj.Labels)
		}
	}
}

func TestMicroserviceHelm(t *testing.T) {
	in := mustNew(t, MicroserviceHelm, "name", "api", "repositoryUrl", "https://charts.example.com", "chart", "podinfo",
		"version", "6.x", "image", "ghcr.io/acme/api:3.1.0", "replicas", "3", "values", `{"image":{"pullPolicy":"Always"},"ingress":{"enabled":true}}`)
	files, err := in.Files([]string{"dev"})
	if err != nil || len(files) != 0 {
		t.Fatalf("files %v, err %v: a Helm template writes nothing to Git", files, err)
	}
	if in.Delivery() != DeliveryHelm {
		t.Fatal("delivery")
	}
	h := in.Helm()
	if h.Chart != "podinfo" || h.Version != "6.x" || h.RepositoryURL != "https://charts.example.com" || h.RepositoryType != "default" || h.Path != "" {
		t.Fatalf("chart = %+v", h)
	}
	var values map[string]any
	if err := json.Unmarshal(h.Values, &values); err != nil {
		t.Fatal(err)
	}
	img := values["image"].(map[string]any)
	if img["repository"] != "ghcr.io/acme/api" || img["tag"] != "3.1.0" || img["pullPolicy"] != "Always" ||
		values["replicaCount"] != float64(3) || values["ingress"].(map[string]any)["enabled"] != true {
		t.Fatalf("values = %s", h.Values)
	}

	git := mustNew(t, MicroserviceHelm, "name", "api", "chartPath", "./charts/api")
	if h := git.Helm(); h.Path != "charts/api" || h.Chart != "./charts/api" || h.RepositoryURL != "" || string(h.Values) != `{"replicaCount":1}` {
		t.Fatalf("chart from Git = %+v (values %s)", h, h.Values)
	}
	oci := mustNew(t, MicroserviceHelm, "name", "api", "repositoryUrl", "oci://ghcr.io/acme/charts", "chart", "api")
	if oci.Helm().RepositoryType != "oci" {
		t.Fatalf("oci repository type %q", oci.Helm().RepositoryType)
	}
}

func TestParameterValidation(t *testing.T) {
	web := func(kv ...string) []string { return append([]string{"name", "web", "image", "nginx:1.27"}, kv...) }
	tests := []struct {
		name      string
		template  string
		params    []string
		wantField string
	}{
		{"unknown template", "nope", nil, "templateId"},
		{"missing name", WebAppBasic, []string{"image", "nginx"}, "params.name"},
		{"missing image", WebAppBasic, []string{"name", "web"}, "params.image"},
		{"unknown parameter", WebAppBasic, web("colour", "blue"), "params.colour"},
		{"duplicate parameter", WebAppBasic, web("port", "80", "port", "81"), "params.port"},
		{"uppercase name", WebAppBasic, []string{"name", "Web", "image", "nginx"}, "params.name"},
		{"name with a dot", WebAppBasic, []string{"name", "web.app", "image", "nginx"}, "params.name"},
		{"name too long for <name>-<env>", WebAppBasic, []string{"name", strings.Repeat("a", 41), "image", "nginx"}, "params.name"},
		{"YAML in the name", WebAppBasic, []string{"name", "web\nkind: Secret", "image", "nginx"}, "params.name"},
		{"image with uppercase", WebAppBasic, []string{"name", "web", "image", "Nginx:1"}, "params.image"},
		{"image with a scheme", WebAppBasic, []string{"name", "web", "image", "https://ghcr.io/acme/web"}, "params.image"},
		{"image with spaces", WebAppBasic, []string{"name", "web", "image", "nginx latest"}, "params.image"},
		{"image with YAML", WebAppBasic, []string{"name", "web", "image", "nginx\n  command: [sh]"}, "params.image"},
		{"port zero", WebAppBasic, web("port", "0"), "params.port"},
		{"port too big", WebAppBasic, web("port", "65536"), "params.port"},
		{"port not a number", WebAppBasic, web("port", "http"), "params.port"},
		{"service port", WebAppBasic, web("servicePort", "-1"), "params.servicePort"},
		{"replicas", WebAppBasic, web("replicas", "101"), "params.replicas"},
		{"relative health path", WebAppBasic, web("healthPath", "healthz"), "params.healthPath"},
		{"health path URL", WebAppBasic, web("healthPath", "http://evil/healthz"), "params.healthPath"},
		{"health path with newline", WebAppBasic, web("healthPath", "/h\nport: 1"), "params.healthPath"},
		{"missing schedule", CronJob, []string{"name", "job", "image", "busybox"}, "params.schedule"},
		{"schedule with six fields", CronJob, []string{"name", "job", "image", "busybox", "schedule", "0 0 3 * * *"}, "params.schedule"},
		{"schedule out of range", CronJob, []string{"name", "job", "image", "busybox", "schedule", "61 * * * *"}, "params.schedule"},
		{"schedule with a time zone", CronJob, []string{"name", "job", "image", "busybox", "schedule", "TZ=UTC 0 3 * * *"}, "params.schedule"},
		{"schedule words", CronJob, []string{"name", "job", "image", "busybox", "schedule", "every day"}, "params.schedule"},
		{"concurrency", CronJob, []string{"name", "job", "image", "busybox", "schedule", "@daily", "concurrencyPolicy", "Sometimes"}, "params.concurrencyPolicy"},
		{"no chart source", MicroserviceHelm, []string{"name", "api"}, "params.repositoryUrl"},
		{"both chart sources", MicroserviceHelm, []string{"name", "api", "repositoryUrl", "https://c.example.com", "chart", "a", "chartPath", "charts/a"}, "params.chartPath"},
		{"chart missing", MicroserviceHelm, []string{"name", "api", "repositoryUrl", "https://c.example.com"}, "params.chart"},
		{"repository URL scheme", MicroserviceHelm, []string{"name", "api", "repositoryUrl", "ftp://c.example.com", "chart", "a"}, "params.repositoryUrl"},
		{"repository URL credentials", MicroserviceHelm, []string{"name", "api", "repositoryUrl", "https://u:p@c.example.com", "chart", "a"}, "params.repositoryUrl"},
		{"chart path escapes", MicroserviceHelm, []string{"name", "api", "chartPath", "../other/chart"}, "params.chartPath"},
		{"chart path absolute", MicroserviceHelm, []string{"name", "api", "chartPath", "/charts/api"}, "params.chartPath"},
		{"values not an object", MicroserviceHelm, []string{"name", "api", "chartPath", "charts/api", "values", "[1,2]"}, "params.values"},
		{"values not JSON", MicroserviceHelm, []string{"name", "api", "chartPath", "charts/api", "values", "replicaCount: 2"}, "params.values"},
		{"helm image", MicroserviceHelm, []string{"name", "api", "chartPath", "charts/api", "image", "UPPER"}, "params.image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vs []Value
			for i := 0; i+1 < len(tt.params); i += 2 {
				vs = append(vs, Value{Name: tt.params[i], Value: tt.params[i+1]})
			}
			_, err := New(tt.template, vs)
			if fluxgate.ErrorCode(err) != fluxgate.EINVALID || fluxgate.ErrorField(err) != tt.wantField {
				t.Fatalf("err = %v, want INVALID_INPUT on %s", err, tt.wantField)
			}
			if fluxgate.ErrorMessage(err) == "" || fluxgate.ErrorMessage(err) == "internal error" {
				t.Fatalf("no useful message: %v", err)
			}
		})
	}
}

// A value full of YAML syntax that passes validation stays one scalar.
func TestValuesCannotInjectYAML(t *testing.T) {
	path := `/ready?a=:&b=---&c={"kind":"Secret"}&d=*alias&e=!!binary&f=#x`
	in := mustNew(t, WebAppBasic, "name", "web", "image", "nginx", "healthPath", path)
	files, err := in.Files([]string{"dev"})
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	strict(t, files["k8s/base/deployment.yaml"], &d)
	if got := d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path; got != path {
		t.Fatalf("probe path %q, want %q", got, path)
	}
	rm := build(t, files, OverlayPath("dev"))
	if rm.Size() != 2 {
		t.Fatalf("%d objects: the value added documents", rm.Size())
	}

	h := mustNew(t, MicroserviceHelm, "name", "api", "chartPath", "charts/api", "values", `{"k: v\n---\nkind: Secret": "x\n- y"}`)
	var values map[string]any
	if err := json.Unmarshal(h.Helm().Values, &values); err != nil || values["k: v\n---\nkind: Secret"] != "x\n- y" {
		t.Fatalf("values %s (%v)", h.Helm().Values, err)
	}
}

func TestFilesRefusesBadEnvironmentName(t *testing.T) {
	in := mustNew(t, WebAppBasic, "name", "web", "image", "nginx")
	if _, err := in.Files([]string{"../etc"}); err == nil {
		t.Fatal("an environment name that is not a DNS label became a directory")
	}
}
