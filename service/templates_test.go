package service_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store/storetest"
	"github.com/fluxgate/fluxgate/templates"
)

// emptyRemote is a bare repository without any commit.
func emptyRemote(t *testing.T) string {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "r.git")
	gitCLI(t, "", "init", "-q", "--bare", "-b", "main", bare)
	return bare
}

type templateFixture struct {
	svc     *service.Service
	owner   context.Context
	maint   context.Context
	maintID string
}

func newTemplateFixture(t *testing.T) *templateFixture {
	t.Helper()
	db := storetest.MustOpen(t)
	ws, err := gitrepo.New(gitrepo.Options{Dir: t.TempDir(), Committer: gitrepo.Signature{Name: "fluxgate", Email: "fluxgate@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	svc := service.New(db, service.WithGit(ws), service.WithLocalRepositories())
	owner := must(svc.SignIn(context.Background(), service.Identity{Subject: "owner", Name: "Olga"}))
	maint := must(svc.SignIn(context.Background(), service.Identity{Subject: "maint", Name: "Max"}))
	return &templateFixture{svc: svc,
		owner: fluxgate.NewContextWithUser(context.Background(), owner),
		maint: fluxgate.NewContextWithUser(context.Background(), maint), maintID: maint.ID}
}

func webParams() []templates.Value {
	return []templates.Value{{Name: "name", Value: "web"}, {Name: "image", Value: "nginx:1.27"}}
}

// A project without GitOps gets the files (an overlay per environment, as
// the root commit of an empty repository) and no Flux objects, so no
// cluster is needed; its onboarding skips the GitOps steps.
func TestApplyTemplateWithoutGitOps(t *testing.T) {
	f := newTemplateFixture(t)
	off := false
	p := must(f.svc.CreateProject(f.owner, service.CreateProjectInput{Slug: "plain", Name: "Plain", GitOpsEnabled: &off, DeploymentMode: fluxgate.DeploymentModeUIFirst}))

	o := must(f.svc.Onboarding(f.owner, p.ID))
	if o.Complete() || o.Next.ID != service.StepRepository || !strings.Contains(o.NextAction, "Connect a repository") {
		t.Fatalf("onboarding = %+v", o)
	}
	bare := emptyRemote(t)
	repo := must(f.svc.ConnectRepository(f.owner, service.ConnectRepositoryInput{ProjectID: p.ID, CloneURL: "file://" + bare, FullName: "acme/plain"}))
	if o := must(f.svc.Onboarding(f.owner, p.ID)); o.Next.ID != service.StepEnvironments || !strings.Contains(o.Steps[1].Detail, "ui-first") {
		t.Fatalf("onboarding = %+v", o)
	}
	must(f.svc.CreateEnvironment(f.owner, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "qa", Type: fluxgate.EnvironmentStaging}))

	res := must(f.svc.ApplyTemplate(f.owner, service.ApplyTemplateInput{ProjectID: p.ID, RepositoryID: repo.ID, TemplateID: templates.CronJob,
		Params: []templates.Value{{Name: "name", Value: "report"}, {Name: "image", Value: "busybox"}, {Name: "schedule", Value: "@hourly"}}}))
	want := []string{"k8s/base/cronjob.yaml", "k8s/base/kustomization.yaml", "k8s/overlays/qa/cronjob.yaml", "k8s/overlays/qa/kustomization.yaml"}
	if res.CommitSHA == "" || !slices.Equal(res.Created, want) || len(res.Kept) != 0 || len(res.CreatedResources) != 0 {
		t.Fatalf("result = %+v", res)
	}
	if head := gitCLI(t, bare, "rev-parse", "main"); head != res.CommitSHA {
		t.Fatalf("remote main %s, commit %s", head, res.CommitSHA)
	}
	if n := gitCLI(t, bare, "rev-list", "--count", "main"); n != "1" {
		t.Fatalf("%s commits in a repository that was empty", n)
	}
	if got := strings.Fields(gitCLI(t, bare, "ls-tree", "-r", "--name-only", "main")); !slices.Equal(got, want) {
		t.Fatalf("tree = %v", got)
	}
	if a := gitCLI(t, bare, "log", "-1", "--format=%an", "main"); a != "Olga" {
		t.Fatalf("author %q", a)
	}
	o = must(f.svc.Onboarding(f.owner, p.ID))
	if !o.Complete() || !strings.Contains(o.Steps[3].Detail, "does not use GitOps") {
		t.Fatalf("onboarding = %+v", o)
	}
}

// What would be refused after the commit is refused before it: a
// restricted environment, a clone URL Flux cannot fetch, a bad parameter.
func TestApplyTemplateRefusesBeforeCommitting(t *testing.T) {
	f := newTemplateFixture(t)
	p := must(f.svc.CreateProject(f.owner, service.CreateProjectInput{Slug: "shop", Name: "Shop"}))
	must(f.svc.AddProjectMember(f.owner, p.ID, f.maintID, fluxgate.RoleMaintainer))
	bare := emptyRemote(t)
	repo := must(f.svc.ConnectRepository(f.owner, service.ConnectRepositoryInput{ProjectID: p.ID, CloneURL: "file://" + bare, FullName: "acme/shop"}))
	must(f.svc.CreateEnvironment(f.owner, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "dev", Type: fluxgate.EnvironmentDevelopment}))
	owner := fluxgate.UserFromContext(f.owner)
	must(f.svc.CreateEnvironment(f.owner, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "prod", Type: fluxgate.EnvironmentProduction,
		Permissions: []fluxgate.EnvPermission{{SubjectType: fluxgate.SubjectUser, SubjectID: owner.ID, Permission: fluxgate.EnvPermissionAdmin}}}))

	in := service.ApplyTemplateInput{ProjectID: p.ID, RepositoryID: repo.ID, TemplateID: templates.WebAppBasic, Params: webParams()}
	// The maintainer may create in the project but not in prod.
	if _, err := f.svc.ApplyTemplate(f.maint, in); fluxgate.ErrorCode(err) != fluxgate.EFORBIDDEN {
		t.Fatalf("maintainer in a restricted environment: %v", err)
	}
	// A file:// clone URL is fine for fluxgate's workspace, not for Flux.
	_, err := f.svc.ApplyTemplate(f.owner, in)
	if fluxgate.ErrorCode(err) != fluxgate.EINVALID || fluxgate.ErrorField(err) != "resources[0].url" {
		t.Fatalf("file:// GitRepository: %v", err)
	}
	bad := in
	bad.Params = append(webParams(), templates.Value{Name: "replicas", Value: "many"})
	if _, err := f.svc.ApplyTemplate(f.owner, bad); fluxgate.ErrorField(err) != "params.replicas" {
		t.Fatalf("bad replicas: %v", err)
	}
	other := must(f.svc.CreateProject(f.owner, service.CreateProjectInput{Slug: "other", Name: "Other"}))
	foreign := in
	foreign.ProjectID = other.ID
	if _, err := f.svc.ApplyTemplate(f.owner, foreign); fluxgate.ErrorField(err) != "repositoryId" {
		t.Fatalf("repository of another project: %v", err)
	}
	if out := gitCLI(t, bare, "rev-list", "--all"); out != "" {
		t.Fatalf("a refused applyTemplate committed: %s", out)
	}
}
