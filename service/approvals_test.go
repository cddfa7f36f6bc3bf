package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/gitrepo/yamledit"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store/storetest"
)

const prodDeploymentYAML = `# the web front end
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: acme/web:1.0.0
          imagePullPolicy: IfNotPresent
`

// gitCLI runs the git CLI: the independent check of what is on the remote.
func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Pusher", "GIT_AUTHOR_EMAIL=pusher@example.com",
		"GIT_COMMITTER_NAME=Pusher", "GIT_COMMITTER_EMAIL=pusher@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// approvalFixture: a project whose prod environment requires approvals,
// a bare Git remote on disk with the environment's manifests, and users
// of every kind.
type approvalFixture struct {
	t     *testing.T
	svc   *service.Service
	bare  string
	users map[string]*fluxgate.User
	p     *fluxgate.Project
	env   *fluxgate.Environment
}

func newApprovalFixture(t *testing.T, minApprovals int, opts ...service.Option) *approvalFixture {
	t.Helper()
	db := storetest.MustOpen(t)
	ws, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir(), Locker: db, Committer: gitrepo.Signature{Name: "fluxgate", Email: "fluxgate@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	f := &approvalFixture{t: t, users: map[string]*fluxgate.User{}}
	f.svc = service.New(db, append([]service.Option{service.WithGit(ws), service.WithLocalRepositories()}, opts...)...)
	ctx := context.Background()
	for _, name := range []string{"owner", "requester", "m1", "m2", "developer", "viewer", "outsider"} {
		f.users[name] = must(f.svc.SignIn(ctx, service.Identity{Subject: name, Name: strings.ToUpper(name[:1]) + name[1:], Email: name + "@example.com"}))
	}
	f.p = must(f.svc.CreateProject(f.as("owner"), service.CreateProjectInput{Slug: "shop", Name: "Shop"}))
	for name, role := range map[string]fluxgate.Role{"requester": fluxgate.RoleMaintainer, "m1": fluxgate.RoleMaintainer, "m2": fluxgate.RoleMaintainer, "developer": fluxgate.RoleDeveloper, "viewer": fluxgate.RoleViewer} {
		must(f.svc.AddProjectMember(f.as("owner"), f.p.ID, f.users[name].ID, role))
	}

	f.bare = filepath.Join(t.TempDir(), "shop.git")
	gitCLI(t, "", "init", "-q", "--bare", "-b", "main", f.bare)
	work := t.TempDir()
	gitCLI(t, work, "init", "-q", "-b", "main")
	f.write(work, "k8s/overlays/prod/deployment.yaml", prodDeploymentYAML)
	f.write(work, "README.md", "# shop\n")
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "commit", "-q", "-m", "initial")
	gitCLI(t, work, "push", "-q", f.bare, "main")

	must(f.svc.ConnectRepository(f.as("owner"), service.ConnectRepositoryInput{ProjectID: f.p.ID, CloneURL: "file://" + f.bare, FullName: "acme/shop"}))
	f.env = must(f.svc.CreateEnvironment(f.as("owner"), service.CreateEnvironmentInput{
		ProjectID: f.p.ID, Name: "prod", Type: fluxgate.EnvironmentProduction,
		Approval: &fluxgate.ApprovalPolicy{Required: true, MinApprovals: minApprovals},
	}))
	return f
}

func (f *approvalFixture) write(dir, path, content string) {
	f.t.Helper()
	p := filepath.Join(dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *approvalFixture) as(name string) context.Context {
	return fluxgate.NewContextWithUser(context.Background(), f.users[name])
}

func (f *approvalFixture) head() string { return gitCLI(f.t, f.bare, "rev-parse", "main") }

// push commits an edit of the prod manifest behind fluxgate's back.
func (f *approvalFixture) push(msg string, edit func(string) string) string {
	f.t.Helper()
	work := f.t.TempDir()
	gitCLI(f.t, work, "clone", "-q", f.bare, ".")
	b, err := os.ReadFile(filepath.Join(work, "k8s/overlays/prod/deployment.yaml"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(work, "k8s/overlays/prod/deployment.yaml", edit(string(b)))
	gitCLI(f.t, work, "commit", "-q", "-am", msg)
	gitCLI(f.t, work, "push", "-q", "origin", "main")
	return f.head()
}

func (f *approvalFixture) manifest() string {
	return gitCLI(f.t, f.bare, "show", "main:k8s/overlays/prod/deployment.yaml")
}

// request deploys an image to prod as the requester.
func (f *approvalFixture) request(image string) *fluxgate.Deployment {
	f.t.Helper()
	res, err := f.svc.DeployWithGitOps(f.as("requester"), service.DeployInput{EnvironmentID: f.env.ID, Image: &image})
	if err != nil {
		f.t.Fatal(err)
	}
	return res.Deployment
}

func wantErrCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := fluxgate.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want %s", what, err, got, code)
	}
}

func (f *approvalFixture) auditActions(targetID string) []string {
	f.t.Helper()
	entries, _, err := f.svc.AuditLog(f.as("owner"), f.p.ID, fluxgate.Page{First: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- { // oldest first
		if entries[i].TargetID == targetID {
			out = append(out, entries[i].Action)
		}
	}
	return out
}

func TestApproveDeploymentCommitsAtMinApprovals(t *testing.T) {
	f := newApprovalFixture(t, 2)
	initial := f.head()
	d := f.request("acme/web:2.0.0")
	if d.Status != fluxgate.DeploymentAwaitingApproval || d.CommitSHA != "" {
		t.Fatalf("requested deployment = %+v", d)
	}
	if f.head() != initial {
		t.Fatal("a deploy awaiting approval was committed")
	}
	if n := service.RequiredApprovals(f.env, d); n != 2 {
		t.Fatalf("RequiredApprovals = %d, want 2", n)
	}

	// Who may not decide.
	_, err := f.svc.ApproveDeployment(f.as("requester"), d.ID, "mine")
	wantErrCode(t, "requester approves", err, fluxgate.EFORBIDDEN)
	if !strings.Contains(fluxgate.ErrorMessage(err), "you requested this deployment") {
		t.Fatalf("self-approval message = %q", fluxgate.ErrorMessage(err))
	}
	_, err = f.svc.ApproveDeployment(f.as("developer"), d.ID, "")
	wantErrCode(t, "developer approves", err, fluxgate.EFORBIDDEN)
	_, err = f.svc.ApproveDeployment(f.as("viewer"), d.ID, "")
	wantErrCode(t, "viewer approves", err, fluxgate.EFORBIDDEN)
	_, err = f.svc.ApproveDeployment(f.as("outsider"), d.ID, "")
	wantErrCode(t, "outsider approves", err, fluxgate.ENOTFOUND)
	_, err = f.svc.ApproveDeployment(f.as("m1"), "ghost", "")
	wantErrCode(t, "unknown deployment", err, fluxgate.ENOTFOUND)

	// The first approval: still awaiting, nothing committed.
	res, err := f.svc.ApproveDeployment(f.as("m1"), d.ID, "looks good")
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment.Status != fluxgate.DeploymentAwaitingApproval || res.Deployment.CommitSHA != "" || res.Approval.UserID != f.users["m1"].ID || res.Approval.Comment != "looks good" {
		t.Fatalf("after one approval: %+v / %+v", res.Deployment, res.Approval)
	}
	if f.head() != initial {
		t.Fatal("one approval of two committed the deploy")
	}
	_, err = f.svc.ApproveDeployment(f.as("m1"), d.ID, "again")
	wantErrCode(t, "second decision", err, fluxgate.ECONFLICT)
	_, err = f.svc.RejectDeployment(f.as("m1"), d.ID, "changed my mind")
	wantErrCode(t, "reject after approving", err, fluxgate.ECONFLICT)

	// The branch moves meanwhile: the deploy is re-applied onto the new head.
	moved := f.push("add an annotation", func(s string) string {
		return strings.Replace(s, "metadata:\n  name: web\n", "metadata:\n  name: web\n  annotations:\n    team: shop\n", 1)
	})

	// The second approval (the owner) commits it, as the requester.
	res, err = f.svc.ApproveDeployment(f.as("owner"), d.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	head := f.head()
	got := res.Deployment
	if head == moved || gitCLI(t, f.bare, "rev-parse", "main~1") != moved {
		t.Fatalf("the approved deploy is not one commit on top of the moved head: head %s, moved %s", head, moved)
	}
	if got.Status != fluxgate.DeploymentPending || got.CommitSHA != head || got.Branch != "main" || len(res.Conflicts) != 0 {
		t.Fatalf("after the second approval: %+v", got)
	}
	if got.Steps[0].Name != fluxgate.StepCommitted || got.Steps[0].Status != "done" || got.Steps[0].At == nil {
		t.Fatalf("committed step = %+v", got.Steps[0])
	}
	if author := gitCLI(t, f.bare, "log", "-1", "--format=%an <%ae>|%cn", "main"); author != "Requester <requester@example.com>|fluxgate" {
		t.Fatalf("author|committer = %s, want the requester and fluxgate", author)
	}
	m := f.manifest()
	if !strings.Contains(m, "image: acme/web:2.0.0") || strings.Contains(m, "acme/web:1.0.0") || !strings.Contains(m, "team: shop") {
		t.Fatalf("manifest after the approved deploy:\n%s", m)
	}
	stored, err := f.svc.Deployment(f.as("viewer"), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != fluxgate.DeploymentPending || stored.CommitSHA != head {
		t.Fatalf("stored deployment = %+v", stored)
	}
	lists, err := f.svc.ApprovalsOf(f.as("viewer"), []string{stored.ID})
	if err != nil {
		t.Fatal(err)
	}
	approvals := lists[0]
	if len(approvals) != 2 || approvals[0].UserID != f.users["m1"].ID || approvals[1].UserID != f.users["owner"].ID || approvals[1].Decision != fluxgate.ApprovalApproved {
		t.Fatalf("approvals = %+v", approvals)
	}
	want := []string{"deploy.requested", "deploy.approved", "deploy.approved", "deploy.committed"}
	if got := f.auditActions(d.ID); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("audit = %v, want %v", got, want)
	}

	// Decided: no further decisions.
	_, err = f.svc.ApproveDeployment(f.as("m2"), d.ID, "")
	wantErrCode(t, "approve a committed deployment", err, fluxgate.ECONFLICT)
}

func TestApproverList(t *testing.T) {
	f := newApprovalFixture(t, 1)
	// Only the listed approver may decide, even if a maintainer or owner.
	f.env = must(f.svc.UpdateEnvironment(f.as("owner"), service.UpdateEnvironmentInput{ID: f.env.ID,
		Approval: &fluxgate.ApprovalPolicy{Required: true, MinApprovals: 1, ApproverIDs: []string{f.users["developer"].ID}}}))
	d := f.request("acme/web:3.0.0")
	_, err := f.svc.ApproveDeployment(f.as("owner"), d.ID, "")
	wantErrCode(t, "owner not on the approver list", err, fluxgate.EFORBIDDEN)
	_, err = f.svc.RejectDeployment(f.as("m1"), d.ID, "no")
	wantErrCode(t, "maintainer not on the approver list rejects", err, fluxgate.EFORBIDDEN)
	res, err := f.svc.ApproveDeployment(f.as("developer"), d.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment.Status != fluxgate.DeploymentPending || res.Deployment.CommitSHA != f.head() {
		t.Fatalf("approved by the listed developer: %+v", res.Deployment)
	}
}

func TestConcurrentApprovalsCommitOnce(t *testing.T) {
	f := newApprovalFixture(t, 2)
	for round := range 3 {
		d := f.request(fmt.Sprintf("acme/web:4.%d.0", round))
		if _, err := f.svc.ApproveDeployment(f.as("m1"), d.ID, ""); err != nil {
			t.Fatal(err)
		}
		before := f.head()
		var wg sync.WaitGroup
		results := make([]*service.ApprovalResult, 2)
		errs := make([]error, 2)
		for i, who := range []string{"m2", "owner"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = f.svc.ApproveDeployment(f.as(who), d.ID, "")
			}()
		}
		wg.Wait()
		committed := 0
		for i := range errs {
			switch fluxgate.ErrorCode(errs[i]) {
			case "":
				if results[i].Deployment.CommitSHA != "" {
					committed++
				}
			case fluxgate.ECONFLICT:
			default:
				t.Fatalf("round %d: concurrent approval: %v", round, errs[i])
			}
		}
		if committed != 1 {
			t.Fatalf("round %d: %d approvals committed (errors %v), want exactly 1", round, committed, errs)
		}
		if n := gitCLI(t, f.bare, "rev-list", "--count", before+"..main"); n != "1" {
			t.Fatalf("round %d: %s commits pushed, want 1", round, n)
		}
		actions := strings.Join(f.auditActions(d.ID), ",")
		if strings.Count(actions, "deploy.committed") != 1 {
			t.Fatalf("round %d: audit %s", round, actions)
		}
	}
}

func TestRejectDeployment(t *testing.T) {
	f := newApprovalFixture(t, 2)
	initial := f.head()
	d := f.request("acme/web:5.0.0")
	_, err := f.svc.RejectDeployment(f.as("m1"), d.ID, "  ")
	wantErrCode(t, "empty reason", err, fluxgate.EINVALID)
	_, err = f.svc.RejectDeployment(f.as("developer"), d.ID, "no")
	wantErrCode(t, "developer rejects", err, fluxgate.EFORBIDDEN)

	got, err := f.svc.RejectDeployment(f.as("m1"), d.ID, "not during the sale")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != fluxgate.DeploymentRejected || got.FinishedAt == nil || !strings.Contains(got.Steps[0].Message, "not during the sale") {
		t.Fatalf("rejected deployment = %+v", got)
	}
	lists, err := f.svc.ApprovalsOf(f.as("m1"), []string{got.ID})
	if err != nil {
		t.Fatal(err)
	}
	approvals := lists[0]
	if len(approvals) != 1 || approvals[0].Decision != fluxgate.ApprovalRejected || approvals[0].Comment != "not during the sale" {
		t.Fatalf("approvals = %+v", approvals)
	}
	// A rejected deployment can no longer be approved, by anyone.
	_, err = f.svc.ApproveDeployment(f.as("m2"), d.ID, "")
	wantErrCode(t, "approve after reject", err, fluxgate.ECONFLICT)
	if !strings.Contains(fluxgate.ErrorMessage(err), "only deployments awaiting approval") {
		t.Fatalf("message = %q", fluxgate.ErrorMessage(err))
	}
	_, err = f.svc.RejectDeployment(f.as("owner"), d.ID, "also no")
	wantErrCode(t, "reject twice", err, fluxgate.ECONFLICT)
	if f.head() != initial {
		t.Fatal("a rejected deployment was committed")
	}
	if got := strings.Join(f.auditActions(d.ID), ","); got != "deploy.requested,deploy.rejected" {
		t.Fatalf("audit = %s", got)
	}
	// The requester may withdraw a request.
	d2 := f.request("acme/web:5.0.1")
	if w, err := f.svc.RejectDeployment(f.as("requester"), d2.ID, "wrong tag"); err != nil || w.Status != fluxgate.DeploymentRejected {
		t.Fatalf("withdraw: %+v, %v", w, err)
	}
}

func TestHeldConfigChangeMergesOntoMovedHead(t *testing.T) {
	f := newApprovalFixture(t, 2)
	base := f.head()
	replicas := int32(5)
	res, err := f.svc.CommitConfigChanges(f.as("requester"), service.ConfigChangeInput{
		EnvironmentID: f.env.ID, BaseRevision: base, Change: &yamledit.DeploymentEdit{Replicas: &replicas},
		Message: "scale web to 5", Description: "sale traffic",
	})
	if err != nil {
		t.Fatal(err)
	}
	// A change that changes nothing is refused at once.
	_, err = f.svc.CommitConfigChanges(f.as("requester"), service.ConfigChangeInput{
		EnvironmentID: f.env.ID, Files: map[string][]byte{"k8s/overlays/prod/deployment.yaml": []byte(prodDeploymentYAML)}, Message: "no-op",
	})
	wantErrCode(t, "held no-op change", err, fluxgate.EINVALID)
	d := res.Deployment
	if res.CommitSHA != "" || d == nil || d.Status != fluxgate.DeploymentAwaitingApproval || f.head() != base {
		t.Fatalf("config change to an approval environment: %+v (head %s, base %s)", res, f.head(), base)
	}
	var held map[string]any
	if err := json.Unmarshal(d.Change, &held); err != nil || held["kind"] != "config" || held["baseRevision"] != base {
		t.Fatalf("held change = %s (%v)", d.Change, err)
	}
	// A disjoint change pushed meanwhile.
	theirs := f.push("always pull", func(s string) string { return strings.Replace(s, "IfNotPresent", "Always", 1) })
	must(f.svc.ApproveDeployment(f.as("m1"), d.ID, ""))
	ar, err := f.svc.ApproveDeployment(f.as("m2"), d.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	head := f.head()
	if ar.Deployment.Status != fluxgate.DeploymentPending || ar.Deployment.CommitSHA != head || len(ar.Conflicts) != 0 {
		t.Fatalf("approved config change = %+v conflicts %v", ar.Deployment, ar.Conflicts)
	}
	if gitCLI(t, f.bare, "rev-parse", "main~1") != theirs {
		t.Fatal("the merged change is not one commit on top of the other push")
	}
	if msg := gitCLI(t, f.bare, "log", "-1", "--format=%an|%B", "main"); msg != "Requester|scale web to 5\n\nsale traffic" {
		t.Fatalf("commit = %q", msg)
	}
	if m := f.manifest(); !strings.Contains(m, "replicas: 5") || !strings.Contains(m, "imagePullPolicy: Always") {
		t.Fatalf("merged manifest lost a side:\n%s", m)
	}
}

func TestHeldConfigChangeConflictFails(t *testing.T) {
	f := newApprovalFixture(t, 1)
	base := f.head()
	policy := "Never"
	res, err := f.svc.CommitConfigChanges(f.as("requester"), service.ConfigChangeInput{
		EnvironmentID: f.env.ID, BaseRevision: base,
		Change:  &yamledit.DeploymentEdit{Containers: []yamledit.ContainerEdit{{ImagePullPolicy: &policy}}},
		Message: "never pull",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Deployment
	// The same field changed on the branch meanwhile.
	theirs := f.push("always pull", func(s string) string { return strings.Replace(s, "IfNotPresent", "Always", 1) })
	ar, err := f.svc.ApproveDeployment(f.as("m1"), d.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.head() != theirs {
		t.Fatal("a conflicting held change was written")
	}
	if len(ar.Conflicts) != 1 || ar.Conflicts[0].Path != "spec.template.spec.containers[name=web].imagePullPolicy" ||
		ar.Conflicts[0].Theirs != "Always" || ar.Conflicts[0].Ours != "Never" {
		t.Fatalf("conflicts = %+v", ar.Conflicts)
	}
	got := ar.Deployment
	if got.Status != fluxgate.DeploymentFailed || got.FinishedAt == nil || got.CommitSHA != "" ||
		got.Steps[0].Status != "failed" || !strings.Contains(got.Steps[0].Message, "imagePullPolicy") {
		t.Fatalf("deployment after a conflicting approval = %+v", got)
	}
	stored := must(f.svc.Deployment(f.as("m1"), d.ID))
	if stored.Status != fluxgate.DeploymentFailed {
		t.Fatalf("stored status = %s", stored.Status)
	}
	if got := strings.Join(f.auditActions(d.ID), ","); got != "config.requested,deploy.approved,deploy.failed" {
		t.Fatalf("audit = %s", got)
	}
}

// workloadCluster records direct deploys.
type workloadCluster struct {
	service.Cluster
	mu      sync.Mutex
	applied []k8s.WorkloadChange
}

func (c *workloadCluster) ApplyWorkloadChange(_ context.Context, ch k8s.WorkloadChange) (*k8s.WorkloadApplied, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied = append(c.applied, ch)
	return &k8s.WorkloadApplied{Generation: 2, Replicas: 1, ReadyReplicas: 1}, nil
}

// Without GitOps, an approved deploy is applied directly, as an unheld one
// would be.
func TestApprovedDeployWithoutGitOpsAppliesDirectly(t *testing.T) {
	kc := &workloadCluster{}
	svc := service.New(storetest.MustOpen(t), service.WithCluster(service.StaticCluster{C: kc}))
	ctx := context.Background()
	owner := must(svc.SignIn(ctx, service.Identity{Subject: "owner", Name: "Owner"}))
	dev := must(svc.SignIn(ctx, service.Identity{Subject: "dev", Name: "Dev"}))
	asOwner, asDev := fluxgate.NewContextWithUser(ctx, owner), fluxgate.NewContextWithUser(ctx, dev)
	off := false
	p := must(svc.CreateProject(asOwner, service.CreateProjectInput{Slug: "plain", Name: "Plain", GitOpsEnabled: &off}))
	must(svc.AddProjectMember(asOwner, p.ID, dev.ID, fluxgate.RoleDeveloper))
	e := must(svc.CreateEnvironment(asOwner, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "prod", Type: fluxgate.EnvironmentProduction,
		Approval: &fluxgate.ApprovalPolicy{Required: true, MinApprovals: 1}}))
	image := "acme/web:7.0.0"
	_, err := svc.DeployWithGitOps(asDev, service.DeployInput{EnvironmentID: e.ID, Image: &image})
	wantErrCode(t, "held direct deploy without a Deployment name", err, fluxgate.EINVALID)
	res := must(svc.DeployWithGitOps(asDev, service.DeployInput{EnvironmentID: e.ID, Deployment: "web", Image: &image}))
	if res.Deployment.Status != fluxgate.DeploymentAwaitingApproval || len(kc.applied) != 0 {
		t.Fatalf("held direct deploy = %+v, applied %v", res.Deployment, kc.applied)
	}
	ar, err := svc.ApproveDeployment(asOwner, res.Deployment.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	d := ar.Deployment
	if d.Status != fluxgate.DeploymentSucceeded || d.Method != fluxgate.MethodManual || d.FinishedAt == nil || d.CommitSHA != "" {
		t.Fatalf("approved direct deploy = %+v", d)
	}
	if len(kc.applied) != 1 || kc.applied[0].Name != "web" || kc.applied[0].Namespace != p.Namespace || *kc.applied[0].Image != image {
		t.Fatalf("applied = %+v", kc.applied)
	}
}
