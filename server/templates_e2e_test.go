package server_test

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fluxgate/fluxgate/k8s/k8stest"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// gitHTTP serves the bare repositories under root over git's smart HTTP
// protocol (git http-backend), so the clone URL is an http:// URL that
// both fluxgate and a Flux GitRepository accept.
func gitHTTP(t *testing.T, root string) *httptest.Server {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		// REMOTE_USER enables receive-pack (push) for the test user.
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=fluxgate", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	srv := httptest.NewServer(http.HandlerFunc(backend.ServeHTTP))
	t.Cleanup(srv.Close)
	return srv
}

const (
	applyTemplateMutation = `mutation($in: ApplyTemplateInput!) { applyTemplate(input: $in) {
		commitSha branch created kept
		createdResources { id kind name namespace spec }
		skippedResources { kind name existing { id } } } }`
	onboardingQuery = `query($id: ID!) { onboarding(projectId: $id) {
		complete nextAction nextStep { id title detail } steps { id title done detail } } }`
)

type applyResp struct {
	ApplyTemplate struct {
		CommitSha, Branch string
		Created, Kept     []string
		CreatedResources  []struct{ ID, Kind, Name, Namespace string }
		SkippedResources  []struct {
			Kind, Name string
			Existing   *struct{ ID string }
		}
	}
}

type onboardingResp struct {
	Onboarding struct {
		Complete   bool
		NextAction *string
		NextStep   *struct{ ID, Title, Detail string }
		Steps      []struct {
			ID, Title, Detail string
			Done              bool
		}
	}
}

func TestApplyTemplateEndToEnd(t *testing.T) {
	kc, kube := kubeClient(t)
	db := storetest.MustOpen(t)
	s := startDeployStack(t, db, kc)
	ctx := context.Background()
	alice, bob := s.token("alice", "Alice"), s.token("bob", "Bob")
	bobID := s.viewerID(bob)
	slug := "tpl-" + k8stest.Suffix()
	pid := s.createProject(alice, slug)
	ns := "fg-" + slug
	s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "userId": bobID, "role": "VIEWER"}}, nil)

	onboarding := func() onboardingResp {
		t.Helper()
		var o onboardingResp
		s.must(bob, onboardingQuery, map[string]any{"id": pid}, &o)
		return o
	}
	o := onboarding()
	if o.Onboarding.Complete || o.Onboarding.NextStep == nil || o.Onboarding.NextStep.ID != "repository" ||
		o.Onboarding.NextAction == nil || !strings.Contains(*o.Onboarding.NextAction, "Connect a repository") || len(o.Onboarding.Steps) != 5 {
		t.Fatalf("new project onboarding = %+v", o.Onboarding)
	}

	// The templates and their parameters.
	var ts struct {
		Templates []struct {
			ID         string
			Parameters []struct {
				Name     string
				Required bool
				Default  *string
			}
		}
	}
	s.must(bob, `{ templates { id name description parameters { name description required default } } }`, nil, &ts)
	if len(ts.Templates) != 3 || ts.Templates[0].ID != "web-app-basic" || ts.Templates[0].Parameters[0].Name != "name" ||
		!ts.Templates[0].Parameters[0].Required || ts.Templates[0].Parameters[2].Default == nil || *ts.Templates[0].Parameters[2].Default != "8080" {
		t.Fatalf("templates = %+v", ts.Templates)
	}

	// A repository served over HTTP that already has its own Service.
	root := t.TempDir()
	bare := filepath.Join(root, "web.git")
	git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	work := t.TempDir()
	const ownService = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web # ours, keep it\nspec:\n  selector:\n    app.kubernetes.io/name: web\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n"
	for p, c := range map[string]string{"README.md": "# web\n", "k8s/base/service.yaml": ownService} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", "README.md", "k8s")
	git(t, work, "commit", "-q", "-m", "initial")
	git(t, work, "push", "-q", bare, "main")
	initial := git(t, bare, "rev-parse", "main")
	cloneURL := gitHTTP(t, root).URL + "/web.git"

	repoID := s.connectRepo(alice, pid, cloneURL)
	if o := onboarding(); o.Onboarding.NextStep == nil || o.Onboarding.NextStep.ID != "environments" || !o.Onboarding.Steps[0].Done || !o.Onboarding.Steps[1].Done {
		t.Fatalf("after connecting a repository: %+v", o.Onboarding)
	}
	devID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})
	s.createEnv(alice, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION",
		"gitops":       map[string]any{"enabled": true, "autoSync": true, "gitBranch": "main", "gitPath": "./k8s/overlays/prod", "syncInterval": "5m"},
		"healthChecks": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "db-proxy"}},
	})
	if o := onboarding(); o.Onboarding.NextStep == nil || o.Onboarding.NextStep.ID != "gitops-resources" ||
		!strings.Contains(o.Onboarding.NextStep.Detail, "dev, prod") || !strings.Contains(*o.Onboarding.NextAction, "Apply a template") {
		t.Fatalf("after creating environments: %+v", o.Onboarding)
	}

	in := map[string]any{"projectId": pid, "repositoryId": repoID, "templateId": "web-app-basic", "params": []any{
		map[string]any{"name": "name", "value": "web"},
		map[string]any{"name": "image", "value": "ghcr.io/acme/web:1.0.0"},
		map[string]any{"name": "replicas", "value": "2"},
	}}

	// A viewer may not apply a template; nothing reaches the remote or
	// the cluster.
	if r := s.do(bob, applyTemplateMutation, map[string]any{"in": in}); r.code() != "FORBIDDEN" {
		t.Fatalf("viewer applyTemplate: code %q errors %+v", r.code(), r.Errors)
	}
	// A bad parameter is refused by name.
	bad := map[string]any{"projectId": pid, "repositoryId": repoID, "templateId": "web-app-basic", "params": []any{
		map[string]any{"name": "name", "value": "web"}, map[string]any{"name": "image", "value": "ghcr.io/acme/web:1.0.0"},
		map[string]any{"name": "port", "value": "70000"},
	}}
	if r := s.do(alice, applyTemplateMutation, map[string]any{"in": bad}); r.code() != "INVALID_INPUT" || r.field() != "params.port" {
		t.Fatalf("port 70000: code %q field %q", r.code(), r.field())
	}
	if h := git(t, bare, "rev-parse", "main"); h != initial {
		t.Fatalf("a refused applyTemplate moved main to %s", h)
	}
	var gr sourcev1.GitRepositoryList
	if err := kube.List(ctx, &gr, client.InNamespace(ns)); err != nil || len(gr.Items) != 0 {
		t.Fatalf("refused applyTemplate left %d GitRepositories (%v)", len(gr.Items), err)
	}

	// Apply: one commit with the files that were missing.
	var ar applyResp
	s.must(alice, applyTemplateMutation, map[string]any{"in": in}, &ar)
	res := ar.ApplyTemplate
	head := git(t, bare, "rev-parse", "main")
	if res.CommitSha != head || head == initial || res.Branch != "main" {
		t.Fatalf("commit %q branch %q, remote main %q (was %q)", res.CommitSha, res.Branch, head, initial)
	}
	if git(t, bare, "rev-parse", "main~1") != initial {
		t.Fatal("the scaffold is not exactly one commit on top of the previous head")
	}
	wantCreated := []string{
		"k8s/base/deployment.yaml", "k8s/base/kustomization.yaml",
		"k8s/overlays/dev/deployment.yaml", "k8s/overlays/dev/kustomization.yaml",
		"k8s/overlays/prod/deployment.yaml", "k8s/overlays/prod/kustomization.yaml",
	}
	if !slices.Equal(res.Created, wantCreated) || !slices.Equal(res.Kept, []string{"k8s/base/service.yaml"}) {
		t.Fatalf("created %v kept %v", res.Created, res.Kept)
	}
	if files := strings.Fields(git(t, bare, "diff", "--name-only", initial, head)); !slices.Equal(files, wantCreated) {
		t.Fatalf("the commit changed %v", files)
	}
	if got := git(t, bare, "show", "main:k8s/base/service.yaml"); got != strings.TrimSpace(ownService) {
		t.Fatalf("the existing Service was rewritten:\n%s", got)
	}
	if a := git(t, bare, "log", "-1", "--format=%an <%ae>|%cn|%s", "main"); a != "Alice <alice@example.com>|fluxgate|chore(templates): scaffold web-app-basic for web" {
		t.Fatalf("author|committer|subject = %q", a)
	}
	var dep appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(git(t, bare, "show", "main:k8s/base/deployment.yaml")), &dep); err != nil {
		t.Fatal(err)
	}
	if c := dep.Spec.Template.Spec.Containers[0]; dep.Name != "web" || *dep.Spec.Replicas != 2 || c.Image != "ghcr.io/acme/web:1.0.0" ||
		c.ReadinessProbe == nil || c.LivenessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Fatalf("deployment in Git = %+v", dep)
	}

	// The Flux objects, on the real API server.
	kinds := map[string]bool{}
	for _, r := range res.CreatedResources {
		if r.Namespace != ns {
			t.Fatalf("resource %+v not in %s", r, ns)
		}
		kinds[r.Kind+"/"+r.Name] = true
	}
	if len(res.CreatedResources) != 4 || !kinds["GIT_REPOSITORY/web-dev"] || !kinds["KUSTOMIZATION/web-dev"] ||
		!kinds["GIT_REPOSITORY/web-prod"] || !kinds["KUSTOMIZATION/web-prod"] || len(res.SkippedResources) != 0 {
		t.Fatalf("created %+v skipped %+v", res.CreatedResources, res.SkippedResources)
	}
	for env, want := range map[string]struct {
		interval time.Duration
		path     string
		checks   []meta.NamespacedObjectKindReference
	}{
		"dev": {time.Minute, "./k8s/overlays/dev", []meta.NamespacedObjectKindReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "web-dev", Namespace: ns}}},
		"prod": {5 * time.Minute, "./k8s/overlays/prod", []meta.NamespacedObjectKindReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "web-prod", Namespace: ns},
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "db-proxy"}}},
	} {
		var repo sourcev1.GitRepository
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-" + env}, &repo); err != nil {
			t.Fatal(err)
		}
		if repo.Spec.URL != cloneURL || repo.Spec.Reference == nil || repo.Spec.Reference.Branch != "main" || repo.Spec.Interval.Duration != want.interval {
			t.Fatalf("%s GitRepository spec = %+v", env, repo.Spec)
		}
		var ks kustomizev1.Kustomization
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-" + env}, &ks); err != nil {
			t.Fatal(err)
		}
		if ks.Spec.Path != want.path || !ks.Spec.Prune || ks.Spec.Interval.Duration != want.interval || ks.Spec.SourceRef.Name != "web-"+env ||
			ks.Spec.SourceRef.Kind != "GitRepository" || ks.Spec.TargetNamespace != ns || !slices.Equal(ks.Spec.HealthChecks, want.checks) {
			t.Fatalf("%s Kustomization spec = %+v", env, ks.Spec)
		}
	}

	// Onboarding is complete now.
	o = onboarding()
	if !o.Onboarding.Complete || o.Onboarding.NextStep != nil || o.Onboarding.NextAction != nil {
		t.Fatalf("after applyTemplate: %+v", o.Onboarding)
	}
	for _, st := range o.Onboarding.Steps {
		if !st.Done || st.Detail == "" {
			t.Fatalf("step %+v", st)
		}
	}

	// Applying again keeps every file and object, and says so.
	var again applyResp
	s.must(alice, applyTemplateMutation, map[string]any{"in": in}, &again)
	a := again.ApplyTemplate
	allFiles := append(slices.Clone(wantCreated), "k8s/base/service.yaml")
	slices.Sort(allFiles)
	if a.CommitSha != "" || len(a.Created) != 0 || !slices.Equal(a.Kept, allFiles) || len(a.CreatedResources) != 0 || len(a.SkippedResources) != 4 {
		t.Fatalf("second apply = %+v", a)
	}
	for _, sk := range a.SkippedResources {
		if sk.Existing == nil || !kinds[sk.Kind+"/"+sk.Name] {
			t.Fatalf("skipped %+v", sk)
		}
	}
	if h := git(t, bare, "rev-parse", "main"); h != head {
		t.Fatalf("second apply moved main from %s to %s", head, h)
	}

	// Both applications are in the audit log.
	audit := s.auditEntries(alice, pid)
	n := 0
	for _, e := range audit {
		if e.Action == "template.applied" && e.TargetID == repoID {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d template.applied entries: %+v", n, audit)
	}

	// The scaffold is what a UI deploy edits: a deploy to dev changes the
	// dev overlay only.
	var dr deployResp
	s.must(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": devID, "image": "ghcr.io/acme/web:1.1.0", "replicas": 3}}, &dr)
	if files := git(t, bare, "diff", "--name-only", head, dr.DeployWithGitOps.Deployment.CommitSha); files != "k8s/overlays/dev/deployment.yaml" {
		t.Fatalf("the deploy changed %q", files)
	}
	var patched appsv1.Deployment
	if err := yaml.Unmarshal([]byte(git(t, bare, "show", "main:k8s/overlays/dev/deployment.yaml")), &patched); err != nil {
		t.Fatal(err)
	}
	if patched.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/web:1.1.0" || *patched.Spec.Replicas != 3 {
		t.Fatalf("dev overlay after deploy = %+v", patched.Spec)
	}
}

func TestApplyHelmTemplateEndToEnd(t *testing.T) {
	kc, kube := kubeClient(t)
	db := storetest.MustOpen(t)
	s := startDeployStack(t, db, kc)
	ctx := context.Background()
	alice := s.token("alice", "Alice")
	slug := "helm-" + k8stest.Suffix()
	pid := s.createProject(alice, slug)
	ns := "fg-" + slug

	root := t.TempDir()
	bare := filepath.Join(root, "api.git")
	git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# api\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", "README.md")
	git(t, work, "commit", "-q", "-m", "initial")
	git(t, work, "push", "-q", bare, "main")
	initial := git(t, bare, "rev-parse", "main")
	repoID := s.connectRepo(alice, pid, gitHTTP(t, root).URL+"/api.git")
	s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})
	s.createEnv(alice, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION",
		"gitops": map[string]any{"enabled": true, "autoSync": false, "gitBranch": "main", "gitPath": "k8s/overlays/prod", "syncInterval": "10m"}})

	params := func(kv ...string) []any {
		var out []any
		for i := 0; i < len(kv); i += 2 {
			out = append(out, map[string]any{"name": kv[i], "value": kv[i+1]})
		}
		return out
	}
	// A chart path without a chart in Git is refused before anything is
	// created.
	r := s.do(alice, applyTemplateMutation, map[string]any{"in": map[string]any{"projectId": pid, "repositoryId": repoID,
		"templateId": "microservice-helm", "params": params("name", "api", "chartPath", "charts/api")}})
	if r.code() != "INVALID_INPUT" || r.field() != "params.chartPath" {
		t.Fatalf("missing chart: code %q field %q errors %+v", r.code(), r.field(), r.Errors)
	}

	var ar applyResp
	s.must(alice, applyTemplateMutation, map[string]any{"in": map[string]any{"projectId": pid, "repositoryId": repoID,
		"templateId": "microservice-helm", "params": params("name", "api", "repositoryUrl", "https://charts.example.com",
			"chart", "podinfo", "version", "6.x", "image", "ghcr.io/acme/api:3.1.0", "values", `{"ingress":{"enabled":true}}`)}}, &ar)
	res := ar.ApplyTemplate
	if res.CommitSha != "" || len(res.Created) != 0 || git(t, bare, "rev-parse", "main") != initial {
		t.Fatalf("a Helm template committed: %+v", res)
	}
	var got []string
	for _, c := range res.CreatedResources {
		got = append(got, c.Kind+"/"+c.Name)
	}
	if !slices.Equal(got, []string{"HELM_REPOSITORY/api", "HELM_RELEASE/api-dev", "HELM_RELEASE/api-prod"}) {
		t.Fatalf("created %v", got)
	}
	var hr helmv2.HelmRelease
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api-prod"}, &hr); err != nil {
		t.Fatal(err)
	}
	cs := hr.Spec.Chart.Spec
	if cs.Chart != "podinfo" || cs.Version != "6.x" || cs.SourceRef.Kind != "HelmRepository" || cs.SourceRef.Name != "api" ||
		hr.Spec.Interval.Duration != 10*time.Minute || hr.Spec.Values == nil ||
		string(hr.Spec.Values.Raw) != `{"image":{"repository":"ghcr.io/acme/api","tag":"3.1.0"},"ingress":{"enabled":true},"replicaCount":1}` {
		t.Fatalf("HelmRelease spec = %+v values %s", hr.Spec, hr.Spec.Values.Raw)
	}
	var repo sourcev1.HelmRepository
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api"}, &repo); err != nil || repo.Spec.URL != "https://charts.example.com" {
		t.Fatalf("HelmRepository %+v (%v)", repo.Spec, err)
	}

	var o onboardingResp
	s.must(alice, onboardingQuery, map[string]any{"id": pid}, &o)
	if !o.Onboarding.Complete || !strings.Contains(o.Onboarding.Steps[4].Detail, "prod: off") {
		t.Fatalf("onboarding = %+v", o.Onboarding)
	}
	// Suspending the release of an environment with auto-sync on undoes
	// the auto-sync step; resuming it completes it again.
	var devRelease string
	for _, c := range res.CreatedResources {
		if c.Name == "api-dev" {
			devRelease = c.ID
		}
	}
	s.must(alice, `mutation($id: ID!) { suspendResource(input: {id: $id}) { resource { id } } }`, map[string]any{"id": devRelease}, nil)
	s.must(alice, onboardingQuery, map[string]any{"id": pid}, &o)
	if o.Onboarding.Complete || o.Onboarding.NextStep == nil || o.Onboarding.NextStep.ID != "auto-sync" ||
		!strings.Contains(o.Onboarding.NextStep.Detail, "api-dev") || !strings.Contains(*o.Onboarding.NextAction, "Resume") {
		t.Fatalf("onboarding with a suspended release = %+v", o.Onboarding)
	}
	s.must(alice, `mutation($id: ID!) { resumeResource(input: {id: $id}) { resource { id } } }`, map[string]any{"id": devRelease}, nil)
	s.must(alice, onboardingQuery, map[string]any{"id": pid}, &o)
	if !o.Onboarding.Complete {
		t.Fatalf("onboarding after resume = %+v", o.Onboarding)
	}

	// A chart kept in the repository: a GitRepository per environment is
	// its source.
	if err := os.MkdirAll(filepath.Join(work, "charts/web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "charts/web/Chart.yaml"), []byte("apiVersion: v2\nname: web\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "charts")
	git(t, work, "commit", "-q", "-m", "chart")
	git(t, work, "push", "-q", bare, "main")
	s.must(alice, applyTemplateMutation, map[string]any{"in": map[string]any{"projectId": pid, "repositoryId": repoID,
		"templateId": "microservice-helm", "params": params("name", "web", "chartPath", "./charts/web", "replicas", "2")}}, &ar)
	got = nil
	for _, c := range ar.ApplyTemplate.CreatedResources {
		got = append(got, c.Kind+"/"+c.Name)
	}
	if !slices.Equal(got, []string{"GIT_REPOSITORY/web-dev", "HELM_RELEASE/web-dev", "GIT_REPOSITORY/web-prod", "HELM_RELEASE/web-prod"}) {
		t.Fatalf("created %v", got)
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-dev"}, &hr); err != nil {
		t.Fatal(err)
	}
	if cs := hr.Spec.Chart.Spec; cs.Chart != "./charts/web" || cs.SourceRef.Kind != "GitRepository" || cs.SourceRef.Name != "web-dev" ||
		string(hr.Spec.Values.Raw) != `{"replicaCount":2}` {
		t.Fatalf("HelmRelease from Git = %+v values %s", cs, hr.Spec.Values.Raw)
	}
}
