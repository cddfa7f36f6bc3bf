package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/k8s/k8stest"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store"
	"github.com/fluxgate/fluxgate/store/storetest"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

// The dev overlay of the seeded repository: comments, blank lines and
// quoting that a deploy must leave as they are.
const devDeploymentYAML = `# Web front end. Deploys from fluxgate edit this file.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web # keep this label
spec:
  replicas: 2 # scaled by the UI

  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        # the application container
        - name: web
          image: "acme/web:1.0.0" # pinned
          imagePullPolicy: IfNotPresent
          env:
            - name: LOG_LEVEL
              value: info
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8080
            initialDelaySeconds: 5
`

var seedFiles = map[string]string{
	"README.md": "# web\n",
	"k8s/base/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - service.yaml
`,
	"k8s/base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: 8080
`,
	"k8s/overlays/dev/kustomization.yaml": `# dev overlay
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
  - deployment.yaml
`,
	"k8s/overlays/dev/deployment.yaml": devDeploymentYAML,
}

// git runs the git CLI, the independent check of what is on the remote.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Grace", "GIT_AUTHOR_EMAIL=grace@example.com",
		"GIT_COMMITTER_NAME=Grace", "GIT_COMMITTER_EMAIL=grace@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// seedRemote creates a bare repository on disk with one commit on main.
func seedRemote(t *testing.T) (bare string) {
	t.Helper()
	bare = filepath.Join(t.TempDir(), "web.git")
	git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	work := t.TempDir()
	for p, c := range seedFiles {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "initial")
	git(t, work, "push", "-q", bare, "main")
	return bare
}

// startDeployStack is a server with a Git workspace (file:// remotes
// allowed) and, when kc is set, a real cluster.
func startDeployStack(t *testing.T, db *store.DB, kc service.Cluster) *stack {
	t.Helper()
	ws, err := gitrepo.New(gitrepo.Options{
		Dir: t.TempDir(), Locker: db,
		Committer: gitrepo.Signature{Name: "fluxgate", Email: "fluxgate@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	key, err := gitrepo.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := gitrepo.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	opts := []service.Option{service.WithGit(ws), service.WithCredentialSealer(sealer), service.WithLocalRepositories()}
	if kc != nil {
		opts = append(opts, service.WithCluster(service.StaticCluster{C: kc}))
	}
	return startStack(t, db, opts...)
}

func kubeClient(t *testing.T) (*k8s.Client, client.Client) {
	t.Helper()
	env := kubeEnv.Require(t)
	kc, err := k8s.New(env.Config, k8s.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return kc, env.Client
}

const (
	createEnvMutation   = `mutation($in: CreateEnvironmentInput!) { createEnvironment(input: $in) { environment { id } } }`
	connectRepoMutation = `mutation($in: ConnectRepositoryInput!) { connectRepository(input: $in) { repository { id } } }`
	deployMutation      = `mutation($in: DeployWithGitOpsInput!) { deployWithGitOps(input: $in) { message deployment {
		id version commitSha branch status method message deployedBy { name } environment { id }
		steps { name status at message } startedAt createdAt } } }`
	commitConfigMutation = `mutation($in: CommitConfigChangesInput!) { commitConfigChanges(input: $in) {
		__typename
		... on ConfigCommitted { commitSha deployment { id method status commitSha } }
		... on ConfigConflict { conflicts { file resource path base theirs ours } } } }`
	previewQuery = `query($in: ConfigChangeInput!) { previewConfigChange(input: $in) {
		headRevision files { path diff } changes { op resource path old new } impact { restartsPods reasons notes } conflicts { path } } }`
)

type deployResp struct {
	DeployWithGitOps struct {
		Message    string
		Deployment struct {
			ID, Version, CommitSha, Branch, Status, Method, Message string
			DeployedBy                                              *struct{ Name string }
			Environment                                             struct{ ID string }
			Steps                                                   []struct{ Name, Status, Message string }
		}
	}
}

func (s *stack) createEnv(token string, in map[string]any) string {
	s.t.Helper()
	var d struct {
		CreateEnvironment struct{ Environment struct{ ID string } }
	}
	s.must(token, createEnvMutation, map[string]any{"in": in}, &d)
	return d.CreateEnvironment.Environment.ID
}

func (s *stack) connectRepo(token, pid, url string) string {
	s.t.Helper()
	var d struct {
		ConnectRepository struct{ Repository struct{ ID string } }
	}
	s.must(token, connectRepoMutation, map[string]any{"in": map[string]any{"projectId": pid, "cloneUrl": url, "fullName": "acme/web"}}, &d)
	return d.ConnectRepository.Repository.ID
}

// diffLines returns the removed and added lines of the last commit.
func diffLines(t *testing.T, bare, from, to string) (removed, added []string) {
	t.Helper()
	for _, l := range strings.Split(git(t, bare, "diff", "-U0", from, to), "\n") {
		switch {
		case strings.HasPrefix(l, "---"), strings.HasPrefix(l, "+++"):
		case strings.HasPrefix(l, "-"):
			removed = append(removed, l[1:])
		case strings.HasPrefix(l, "+"):
			added = append(added, l[1:])
		}
	}
	return removed, added
}

func TestDeployWithGitOpsEndToEnd(t *testing.T) {
	kc, kube := kubeClient(t)
	db := storetest.MustOpen(t)
	s := startDeployStack(t, db, kc)
	ctx := context.Background()
	alice, bob := s.token("alice", "Alice"), s.token("bob", "Bob")
	aliceID, bobID := s.viewerID(alice), s.viewerID(bob)
	slug := "deploy-" + k8stest.Suffix()
	pid := s.createProject(alice, slug)
	ns := "fg-" + slug
	s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "userId": bobID, "role": "VIEWER"}}, nil)

	bare := seedRemote(t)
	initial := git(t, bare, "rev-parse", "main")
	repoID := s.connectRepo(alice, pid, "file://"+bare)
	envID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})

	// The environment's Flux objects, on the real API server.
	s.must(alice, gitRepoMutation, map[string]any{"in": map[string]any{
		"projectId": pid, "environmentId": envID, "repositoryId": repoID, "name": "web-dev",
		"spec": map[string]any{"url": "https://github.com/acme/web.git", "ref": map[string]any{"branch": "main"}, "interval": "1m"},
	}}, nil)
	s.must(alice, `mutation($in: CreateKustomizationInput!) { createKustomization(input: $in) { resource { id } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "environmentId": envID, "name": "web-dev", "spec": map[string]any{
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "web-dev"}, "path": "./k8s/overlays/dev", "prune": true,
		}}}, nil)

	deployIn := map[string]any{"environmentId": envID, "image": "acme/web:1.1.0", "replicas": 3,
		"env": []any{map[string]any{"name": "FEATURE_X", "value": "on"}}}

	// A viewer may not deploy, and nothing reaches the remote.
	r := s.do(bob, deployMutation, map[string]any{"in": deployIn})
	if r.code() != "FORBIDDEN" {
		t.Fatalf("viewer deploy: code %q errors %+v", r.code(), r.Errors)
	}
	if h := git(t, bare, "rev-parse", "main"); h != initial {
		t.Fatalf("a refused deploy moved main to %s", h)
	}

	// Deploy: one commit on the remote, Flux asked to reconcile.
	start := time.Now()
	var dr deployResp
	s.must(alice, deployMutation, map[string]any{"in": deployIn}, &dr)
	t.Logf("deployWithGitOps end to end (GraphQL → commit pushed → deployment stored → reconcile requested): %v", time.Since(start))
	dep := dr.DeployWithGitOps.Deployment
	head := git(t, bare, "rev-parse", "main")
	if dep.CommitSha != head || head == initial {
		t.Fatalf("deployment commit %q, remote main %q (was %q)", dep.CommitSha, head, initial)
	}
	if dep.Status != "PENDING" || dep.Method != "GITOPS_UI" || dep.Branch != "main" || dep.Version != "1.1.0" ||
		dep.DeployedBy == nil || dep.DeployedBy.Name != "Alice" || dep.Environment.ID != envID {
		t.Fatalf("deployment = %+v", dep)
	}
	if len(dep.Steps) != 4 || dep.Steps[0].Name != "committed" || dep.Steps[0].Status != "done" || dep.Steps[1].Status != "pending" {
		t.Fatalf("steps = %+v", dep.Steps)
	}
	if git(t, bare, "rev-parse", "main~1") != initial {
		t.Fatal("the deploy is not exactly one commit on top of the previous head")
	}
	wantMsg := "chore(deploy): update image to acme/web:1.1.0, scale to 3 replicas, update environment variables\n\nDeployed via fluxgate by Alice"
	if got := git(t, bare, "log", "-1", "--format=%B", "main"); got != wantMsg {
		t.Fatalf("commit message:\n%s\nwant:\n%s", got, wantMsg)
	}
	if got := git(t, bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"); got != "Alice <alice@example.com>|fluxgate <fluxgate@example.com>" {
		t.Fatalf("author|committer = %s", got)
	}
	if files := git(t, bare, "diff", "--name-only", initial, head); files != "k8s/overlays/dev/deployment.yaml" {
		t.Fatalf("changed files = %q", files)
	}
	removed, added := diffLines(t, bare, initial, head)
	if !slices.Equal(removed, []string{"  replicas: 2 # scaled by the UI", `          image: "acme/web:1.0.0" # pinned`}) {
		t.Fatalf("removed lines = %q (only replicas and image may change; comments stay)", removed)
	}
	joined := strings.Join(added, "\n")
	for _, want := range []string{"  replicas: 3 # scaled by the UI", `          image: "acme/web:1.1.0" # pinned`, "- name: FEATURE_X"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("added lines %q lack %q", added, want)
		}
	}
	if len(added) != 4 {
		t.Fatalf("added lines = %q, want replicas, image and the two lines of FEATURE_X", added)
	}

	// The deployment by id, and as a Node.
	var byID struct {
		Deployment struct{ CommitSha, Status string }
		Node       struct{ CommitSha string }
	}
	s.must(alice, `query($id: ID!) { deployment(id: $id) { commitSha status } node(id: $id) { ... on Deployment { commitSha } } }`, map[string]any{"id": dep.ID}, &byID)
	if byID.Deployment.CommitSha != head || byID.Deployment.Status != "PENDING" || byID.Node.CommitSha != head {
		t.Fatalf("deployment by id = %+v", byID)
	}
	// The stored deployment and its audit entry.
	row, err := db.GetDeployment(ctx, dep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Method != fluxgate.MethodGitOpsUI || row.CommitSHA != head || row.DeployedBy != aliceID || !bytes.Contains(row.Change, []byte("acme/web:1.1.0")) {
		t.Fatalf("row = %+v change %s", row, row.Change)
	}
	audit := s.auditEntries(alice, pid)
	found := false
	for _, e := range audit {
		found = found || (e.Action == "deploy.created" && e.TargetID == dep.ID)
	}
	if !found {
		t.Fatalf("no deploy.created audit entry for %s: %+v", dep.ID, audit)
	}

	// Flux is asked to act now.
	var src sourcev1.GitRepository
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-dev"}, &src); err != nil {
		t.Fatal(err)
	}
	var ks kustomizev1.Kustomization
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-dev"}, &ks); err != nil {
		t.Fatal(err)
	}
	if src.Annotations[meta.ReconcileRequestAnnotation] == "" || ks.Annotations[meta.ReconcileRequestAnnotation] == "" {
		t.Fatalf("reconcile not requested: GitRepository %v, Kustomization %v", src.Annotations, ks.Annotations)
	}

	// environmentConfig: files under the path, the revision, the view.
	var cfg struct {
		EnvironmentConfig struct {
			Revision, Branch, Path string
			Files                  []struct{ Path, Content, BlobID string }
			Deployments            []struct {
				Path string
				View struct {
					Name       string
					Replicas   int
					Containers []struct {
						Name, Image, ImagePullPolicy string
						Resources                    struct{ Requests, Limits struct{ CPU, Memory string } }
						LivenessProbe                *struct {
							Path, Port          string
							InitialDelaySeconds int
						}
						Env []struct{ Name, Value string }
					}
				}
			}
		}
	}
	s.must(alice, `query($id: ID!) { environmentConfig(environmentId: $id) { revision branch path files { path content blobId }
		deployments { path view { name replicas containers { name image imagePullPolicy resources { requests { cpu memory } limits { cpu memory } }
		livenessProbe { path port initialDelaySeconds } env { name value } } } } } }`, map[string]any{"id": envID}, &cfg)
	ec := cfg.EnvironmentConfig
	if ec.Revision != head || ec.Branch != "main" || ec.Path != "k8s/overlays/dev" || len(ec.Files) != 2 {
		t.Fatalf("environmentConfig = rev %s branch %s path %s files %d", ec.Revision, ec.Branch, ec.Path, len(ec.Files))
	}
	if ec.Files[0].Path != "k8s/overlays/dev/deployment.yaml" || !strings.Contains(ec.Files[0].Content, "# pinned") ||
		ec.Files[0].BlobID != git(t, bare, "rev-parse", "main:k8s/overlays/dev/deployment.yaml") {
		t.Fatalf("file = %+v", ec.Files[0])
	}
	if len(ec.Deployments) != 1 || len(ec.Deployments[0].View.Containers) != 1 {
		t.Fatalf("deployments = %+v", ec.Deployments)
	}
	v := ec.Deployments[0].View
	c := v.Containers[0]
	if v.Name != "web" || v.Replicas != 3 || c.Image != "acme/web:1.1.0" || c.ImagePullPolicy != "IfNotPresent" ||
		c.Resources.Requests.CPU != "100m" || c.Resources.Requests.Memory != "128Mi" || c.LivenessProbe == nil ||
		c.LivenessProbe.Path != "/healthz" || c.LivenessProbe.Port != "8080" || c.LivenessProbe.InitialDelaySeconds != 5 || len(c.Env) != 2 {
		t.Fatalf("view = %+v", v)
	}

	// The deploy form offers the latest image the project's ImagePolicy
	// selected (its status as the watcher records it).
	var ip struct {
		CreateImagePolicy struct{ ImagePolicy struct{ ID string } }
	}
	s.must(alice, `mutation($in: CreateImagePolicyInput!) { createImagePolicy(input: $in) { imagePolicy { id } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "name": "web", "imageRepository": map[string]any{"image": "acme/web", "interval": "5m"},
			"policy": map[string]any{"policy": "semver", "range": ">=1.0.0"}}}, &ip)
	if err := db.UpdateResourceStatus(ctx, ip.CreateImagePolicy.ImagePolicy.ID, fluxgate.ResourceStatusUpdate{Status: fluxgate.ResourceReady, LastAppliedRevision: "acme/web:1.2.0"}); err != nil {
		t.Fatal(err)
	}
	var latest struct {
		EnvironmentConfig struct {
			Deployments []struct {
				View struct {
					Containers []struct{ LatestImage *string }
				}
			}
		}
	}
	s.must(alice, `query($id: ID!) { environmentConfig(environmentId: $id) { deployments { view { containers { latestImage } } } } }`, map[string]any{"id": envID}, &latest)
	if li := latest.EnvironmentConfig.Deployments[0].View.Containers[0].LatestImage; li == nil || *li != "acme/web:1.2.0" {
		t.Fatalf("latestImage = %v, want acme/web:1.2.0", li)
	}

	// validateConfig: a misspelled field with its path and line.
	bad := strings.Replace(devDeploymentYAML, "imagePullPolicy: IfNotPresent", "imagePulPolicy: IfNotPresent", 1)
	var val struct {
		ValidateConfig struct {
			Valid  bool
			Issues []struct {
				Line, Column  int
				Path, Message string
			}
		}
	}
	s.must(alice, `query($y: String!) { validateConfig(yaml: $y) { valid issues { line column path message } } }`, map[string]any{"y": bad}, &val)
	if val.ValidateConfig.Valid || len(val.ValidateConfig.Issues) != 1 {
		t.Fatalf("validateConfig = %+v", val.ValidateConfig)
	}
	if is := val.ValidateConfig.Issues[0]; is.Path != "spec.template.spec.containers[0].imagePulPolicy" || is.Line != 23 || is.Column != 11 || !strings.Contains(is.Message, "unknown field") {
		t.Fatalf("issue = %+v", is)
	}
	s.must(alice, `query($y: String!) { validateConfig(yaml: $y) { valid issues { line } } }`, map[string]any{"y": devDeploymentYAML}, &val)
	if !val.ValidateConfig.Valid {
		t.Fatalf("the seeded manifest is reported invalid: %+v", val.ValidateConfig.Issues)
	}

	// previewConfigChange: scaling does not restart pods, an image does.
	type preview struct {
		PreviewConfigChange struct {
			HeadRevision string
			Files        []struct{ Path, Diff string }
			Changes      []struct{ Op, Resource, Path, Old, New string }
			Impact       struct {
				RestartsPods   bool
				Reasons, Notes []string
			}
			Conflicts []struct{ Path string }
		}
	}
	var pv preview
	s.must(alice, previewQuery, map[string]any{"in": map[string]any{"environmentId": envID, "baseRevision": head, "change": map[string]any{"replicas": 5}}}, &pv)
	p := pv.PreviewConfigChange
	if p.HeadRevision != head || len(p.Files) != 1 || !strings.Contains(p.Files[0].Diff, "-  replicas: 3 # scaled by the UI") ||
		!strings.Contains(p.Files[0].Diff, "+  replicas: 5 # scaled by the UI") {
		t.Fatalf("preview = %+v", p)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != "MODIFY" || p.Changes[0].Path != "spec.replicas" || p.Changes[0].Old != "3" || p.Changes[0].New != "5" || p.Changes[0].Resource != "Deployment/web" {
		t.Fatalf("changes = %+v", p.Changes)
	}
	if p.Impact.RestartsPods || len(p.Impact.Notes) == 0 {
		t.Fatalf("replicas-only impact = %+v", p.Impact)
	}
	s.must(alice, previewQuery, map[string]any{"in": map[string]any{"environmentId": envID, "baseRevision": head, "change": map[string]any{"image": "acme/web:2.0.0"}}}, &pv)
	if p := pv.PreviewConfigChange; !p.Impact.RestartsPods || len(p.Impact.Reasons) == 0 || len(p.Changes) != 1 || p.Changes[0].Path != "spec.template.spec.containers[name=web].image" {
		t.Fatalf("image preview = %+v", p)
	}
	if h := git(t, bare, "rev-parse", "main"); h != head {
		t.Fatal("a preview wrote to the remote")
	}

	// Someone pushes a change of the pull policy behind the editor's back.
	work := t.TempDir()
	git(t, work, "clone", "-q", bare, ".")
	depFile := filepath.Join(work, "k8s/overlays/dev/deployment.yaml")
	b, _ := os.ReadFile(depFile)
	if err := os.WriteFile(depFile, bytes.Replace(b, []byte("imagePullPolicy: IfNotPresent"), []byte("imagePullPolicy: Always"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "-am", "always pull")
	git(t, work, "push", "-q", "origin", "main")
	theirs := git(t, bare, "rev-parse", "main")

	// A disjoint change made on the stale revision merges into one commit.
	type commitResp struct {
		CommitConfigChanges struct {
			Typename   string `json:"__typename"`
			CommitSha  string
			Deployment struct{ ID, Method, Status, CommitSha string }
			Conflicts  []struct{ File, Resource, Path, Base, Theirs, Ours string }
		}
	}
	var cr commitResp
	s.must(alice, commitConfigMutation, map[string]any{"in": map[string]any{
		"environmentId": envID, "baseRevision": head, "change": map[string]any{"replicas": 4}, "message": "scale web to 4", "description": "more traffic expected",
	}}, &cr)
	cc := cr.CommitConfigChanges
	merged := git(t, bare, "rev-parse", "main")
	if cc.Typename != "ConfigCommitted" || cc.CommitSha != merged || cc.Deployment.CommitSha != merged || cc.Deployment.Method != "GITOPS_UI" || cc.Deployment.Status != "PENDING" {
		t.Fatalf("commitConfigChanges = %+v, remote main %s", cc, merged)
	}
	if git(t, bare, "rev-parse", "main~1") != theirs {
		t.Fatal("the merged change is not one commit on top of the other push")
	}
	if msg := git(t, bare, "log", "-1", "--format=%B", "main"); msg != "scale web to 4\n\nmore traffic expected" {
		t.Fatalf("commit message = %q", msg)
	}
	content := git(t, bare, "show", "main:k8s/overlays/dev/deployment.yaml")
	if !strings.Contains(content, "imagePullPolicy: Always") || !strings.Contains(content, "replicas: 4 # scaled by the UI") {
		t.Fatalf("merged file lost a side:\n%s", content)
	}

	// An overlapping change on the stale revision: every conflict, nothing written.
	s.must(alice, commitConfigMutation, map[string]any{"in": map[string]any{
		"environmentId": envID, "baseRevision": head, "change": map[string]any{"imagePullPolicy": "Never"}, "message": "never pull",
	}}, &cr)
	cc = cr.CommitConfigChanges
	if cc.Typename != "ConfigConflict" || len(cc.Conflicts) != 1 {
		t.Fatalf("overlapping commit = %+v", cc)
	}
	if cf := cc.Conflicts[0]; cf.File != "k8s/overlays/dev/deployment.yaml" || cf.Path != "spec.template.spec.containers[name=web].imagePullPolicy" ||
		cf.Base != "IfNotPresent" || cf.Theirs != "Always" || cf.Ours != "Never" {
		t.Fatalf("conflict = %+v", cf)
	}
	if h := git(t, bare, "rev-parse", "main"); h != merged {
		t.Fatalf("a conflicting commit moved main to %s", h)
	}

	// Raw YAML through the editor, at the head.
	edited := strings.Replace(content, "memory: 128Mi", "memory: 256Mi", 1)
	s.must(alice, commitConfigMutation, map[string]any{"in": map[string]any{
		"environmentId": envID, "baseRevision": merged, "files": []any{map[string]any{"path": "k8s/overlays/dev/deployment.yaml", "content": edited}}, "message": "more memory",
	}}, &cr)
	if cr.CommitConfigChanges.Typename != "ConfigCommitted" || git(t, bare, "show", "main:k8s/overlays/dev/deployment.yaml") != strings.TrimSpace(edited) {
		t.Fatalf("raw YAML commit = %+v", cr.CommitConfigChanges)
	}
	// Files outside the environment's path are refused.
	r = s.do(alice, commitConfigMutation, map[string]any{"in": map[string]any{
		"environmentId": envID, "files": []any{map[string]any{"path": "k8s/overlays/dev/../../base/service.yaml", "content": "x: 1\n"}}, "message": "escape",
	}})
	if r.code() != "INVALID_INPUT" {
		t.Fatalf("path escape: code %q errors %+v", r.code(), r.Errors)
	}
	// Nothing to change.
	r = s.do(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "replicas": 4}})
	if r.code() != "INVALID_INPUT" || !strings.Contains(r.Errors[0].Message, "nothing to change") {
		t.Fatalf("empty deploy: code %q errors %+v", r.code(), r.Errors)
	}
	// A Deployment that does not exist.
	r = s.do(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "deployment": "api", "replicas": 1}})
	if r.code() != "NOT_FOUND" {
		t.Fatalf("unknown deployment: code %q errors %+v", r.code(), r.Errors)
	}
	// A viewer reads the config but may not commit it.
	s.must(bob, `query($id: ID!) { environmentConfig(environmentId: $id) { revision } }`, map[string]any{"id": envID}, nil)
	r = s.do(bob, commitConfigMutation, map[string]any{"in": map[string]any{"environmentId": envID, "change": map[string]any{"replicas": 9}, "message": "x"}})
	if r.code() != "FORBIDDEN" {
		t.Fatalf("viewer commit: code %q", r.code())
	}

	// An environment that requires approval holds the deploy: nothing committed.
	before := git(t, bare, "rev-parse", "main")
	prodID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION",
		"approval": map[string]any{"required": true, "minApprovals": 1, "approverIds": []any{aliceID}}})
	s.must(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": prodID, "image": "acme/web:1.1.0"}}, &dr)
	if d := dr.DeployWithGitOps.Deployment; d.Status != "AWAITING_APPROVAL" || d.CommitSha != "" {
		t.Fatalf("deploy to an approval environment = %+v", d)
	}
	if h := git(t, bare, "rev-parse", "main"); h != before {
		t.Fatal("a deploy awaiting approval was committed")
	}

	// A developer deploys (sync) but may not commit config (update).
	carol := s.token("carol", "Carol")
	s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "userId": s.viewerID(carol), "role": "DEVELOPER"}}, nil)
	s.must(carol, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "replicas": 6}}, &dr)
	if d := dr.DeployWithGitOps.Deployment; d.CommitSha != git(t, bare, "rev-parse", "main") || d.DeployedBy.Name != "Carol" {
		t.Fatalf("developer deploy = %+v", d)
	}
	if got := git(t, bare, "log", "-1", "--format=%an|%B", "main"); got != "Carol|chore(deploy): scale to 6 replicas\n\nDeployed via fluxgate by Carol" {
		t.Fatalf("developer commit = %q", got)
	}
	r = s.do(carol, commitConfigMutation, map[string]any{"in": map[string]any{"environmentId": envID, "change": map[string]any{"replicas": 7}, "message": "x"}})
	if r.code() != "FORBIDDEN" {
		t.Fatalf("developer config commit: code %q", r.code())
	}
	// A base revision that is not a commit.
	r = s.do(alice, previewQuery, map[string]any{"in": map[string]any{"environmentId": envID, "baseRevision": "not-a-sha", "change": map[string]any{"replicas": 2}}})
	if r.code() != "INVALID_INPUT" || r.field() != "baseRevision" {
		t.Fatalf("bad baseRevision: code %q field %q", r.code(), r.field())
	}
}

// A push credential is sealed at rest, sent to the remote, and never comes
// back in any GraphQL answer, even when the remote refuses it.
func TestDeployCredentialsNeverLeak(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		const token = "ghp_s3cr3tTokenValue0123456789"
		var sawToken atomic.Bool
		remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, pw, ok := r.BasicAuth(); ok && pw == token {
				sawToken.Store(true)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
		}))
		defer remote.Close()

		db := open(t)
		s := startDeployStack(t, db, nil)
		alice := s.token("alice", "Alice")
		pid := s.createProject(alice, "creds")
		repoID := s.connectRepo(alice, pid, remote.URL+"/acme/web.git")
		envID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})

		setCreds := `mutation($in: SetRepositoryCredentialsInput!) { setRepositoryCredentials(input: $in) { repositoryId type } }`
		raw := s.do(alice, setCreds, map[string]any{"in": map[string]any{"repositoryId": repoID, "token": token}})
		if len(raw.Errors) > 0 {
			t.Fatalf("setRepositoryCredentials: %+v", raw.Errors)
		}
		if b, _ := json.Marshal(raw.raw); !bytes.Contains(b, []byte(`"type":"token"`)) || bytes.Contains(b, []byte(token)) {
			t.Fatalf("setRepositoryCredentials answered %s", b)
		}
		sealed, err := db.GetRepositoryCredentials(context.Background(), repoID)
		if err != nil || len(sealed) == 0 || bytes.Contains(sealed, []byte(token)) {
			t.Fatalf("stored credentials: %d bytes, plaintext %v, err %v", len(sealed), bytes.Contains(sealed, []byte(token)), err)
		}
		if r := s.do(alice, setCreds, map[string]any{"in": map[string]any{"repositoryId": repoID}}); r.code() != "INVALID_INPUT" {
			t.Fatalf("no credentials: code %q", r.code())
		}

		for name, q := range map[string]struct {
			query string
			vars  map[string]any
		}{
			"deploy":  {deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "image": "acme/web:2"}}},
			"config":  {`query($id: ID!) { environmentConfig(environmentId: $id) { revision } }`, map[string]any{"id": envID}},
			"preview": {previewQuery, map[string]any{"in": map[string]any{"environmentId": envID, "change": map[string]any{"replicas": 2}}}},
		} {
			r := s.do(alice, q.query, q.vars)
			b, _ := json.Marshal(r.raw)
			if len(r.Errors) == 0 {
				t.Fatalf("%s against a refusing remote succeeded: %s", name, b)
			}
			if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte("s3cr3t")) {
				t.Fatalf("%s: the token leaked: %s", name, b)
			}
			if r.code() != "INVALID_INPUT" || !strings.Contains(r.Errors[0].Message, "refused the credentials") {
				t.Fatalf("%s: %s", name, b)
			}
		}
		if !sawToken.Load() {
			t.Fatal("the remote never saw the stored token: credentials were not used")
		}
	})
}

// A project without GitOps deploys directly: a server-side apply to the
// Deployment in the cluster, recorded as MANUAL.
func TestDirectDeployWithoutGitOps(t *testing.T) {
	kc, kube := kubeClient(t)
	s := startDeployStack(t, storetest.MustOpen(t), kc)
	ctx := context.Background()
	alice := s.token("alice", "Alice")
	slug := "direct-" + k8stest.Suffix()
	var cp struct {
		CreateProject struct {
			Project struct{ ID, Namespace string }
		}
	}
	s.must(alice, `mutation($in: CreateProjectInput!) { createProject(input: $in) { project { id namespace } } }`,
		map[string]any{"in": map[string]any{"slug": slug, "name": "Direct", "gitopsEnabled": false}}, &cp)
	pid, ns := cp.CreateProject.Project.ID, cp.CreateProject.Project.Namespace
	envID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})

	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "acme/web:1.0.0"}}},
			},
		},
	}
	if err := kube.Create(ctx, web, client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}

	var dr deployResp
	s.must(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "deployment": "web", "image": "acme/web:2.0.0", "replicas": 2,
		"env": []any{map[string]any{"name": "MODE", "value": "direct"}}}}, &dr)
	d := dr.DeployWithGitOps.Deployment
	if d.Method != "MANUAL" || d.Status != "SUCCEEDED" || d.CommitSha != "" || len(d.Steps) != 1 || d.Steps[0].Name != "applied" {
		t.Fatalf("direct deployment = %+v", d)
	}
	var got appsv1.Deployment
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &got); err != nil {
		t.Fatal(err)
	}
	ct := got.Spec.Template.Spec.Containers[0]
	if *got.Spec.Replicas != 2 || ct.Image != "acme/web:2.0.0" || len(ct.Env) != 1 || ct.Env[0].Value != "direct" {
		t.Fatalf("deployment in the cluster = replicas %d container %+v", *got.Spec.Replicas, ct)
	}
	applied := false
	for _, mf := range got.ManagedFields {
		applied = applied || (mf.Manager == k8s.FieldOwner && mf.Operation == metav1.ManagedFieldsOperationApply)
	}
	if !applied {
		t.Fatalf("not server-side applied by %s: %+v", k8s.FieldOwner, got.ManagedFields)
	}

	// A second deploy changes only the image: the replicas fluxgate set stay.
	s.must(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "deployment": "web", "image": "acme/web:2.1.0"}}, &dr)
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &got); err != nil {
		t.Fatal(err)
	}
	if *got.Spec.Replicas != 2 || got.Spec.Template.Spec.Containers[0].Image != "acme/web:2.1.0" || len(got.Spec.Template.Spec.Containers[0].Env) != 1 {
		t.Fatalf("after a second deploy: replicas %d container %+v", *got.Spec.Replicas, got.Spec.Template.Spec.Containers[0])
	}
	// Without GitOps the Deployment must be named.
	if r := s.do(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "image": "acme/web:3"}}); r.code() != "INVALID_INPUT" || r.field() != "deployment" {
		t.Fatalf("unnamed direct deploy: code %q field %q", r.code(), r.field())
	}
}

// Concurrent deploys from two replicas (two servers, each with its own Git
// cache, sharing PostgreSQL and so its advisory lock) to one branch: every
// deploy is one commit on the remote and none is lost.
func TestConcurrentDeploysFromTwoReplicas(t *testing.T) {
	db := storetest.MustOpenPostgres(t)
	a, b := startDeployStack(t, db, nil), startDeployStack(t, db, nil)
	alice := a.token("alice", "Alice")
	pid := a.createProject(alice, "concurrent")
	bare := seedRemote(t)
	initial := git(t, bare, "rev-parse", "main")
	a.connectRepo(alice, pid, "file://"+bare)
	envID := a.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})

	const n = 10
	shas := make(chan string, n)
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		go func() {
			body, _ := json.Marshal(map[string]any{"query": deployMutation, "variables": map[string]any{"in": map[string]any{
				"environmentId": envID, "env": []any{map[string]any{"name": "REQ_" + string(rune('A'+i)), "value": "x"}}}}})
			req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+alice)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			var out struct {
				Data   deployResp
				Errors []gqlError
			}
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Errors) > 0 {
				errs <- fmt.Errorf("deploy %d: %v %+v", i, err, out.Errors)
				return
			}
			shas <- out.Data.DeployWithGitOps.Deployment.CommitSha
		}()
	}
	seen := map[string]bool{}
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case sha := <-shas:
			seen[sha] = true
		}
	}
	t.Logf("%d concurrent deploys from two replicas: %v", n, time.Since(start))
	if len(seen) != n {
		t.Fatalf("%d distinct commits for %d deploys", len(seen), n)
	}
	if count := git(t, bare, "rev-list", "--count", initial+"..main"); count != fmt.Sprint(n) {
		t.Fatalf("%s commits on the remote, want %d", count, n)
	}
	content := git(t, bare, "show", "main:k8s/overlays/dev/deployment.yaml")
	for i := range n {
		if !strings.Contains(content, "name: REQ_"+string(rune('A'+i))) {
			t.Fatalf("deploy %d lost:\n%s", i, content)
		}
	}
	for sha := range seen {
		if git(t, bare, "cat-file", "-t", sha) != "commit" {
			t.Fatalf("deployment commit %s is not on the remote", sha)
		}
	}
	list, _, err := db.ListDeployments(context.Background(), fluxgate.DeploymentFilter{ProjectID: pid, Page: fluxgate.Page{First: 50}})
	if err != nil || len(list) != n {
		t.Fatalf("%d deployments stored (%v), want %d", len(list), err, n)
	}
}
