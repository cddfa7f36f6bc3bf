package service_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store/storetest"
)

type fixture struct {
	svc   *service.Service
	users map[string]*fluxgate.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{svc: service.New(storetest.MustOpen(t)), users: map[string]*fluxgate.User{}}
	for _, name := range []string{"owner", "maintainer", "developer", "viewer", "outsider"} {
		u, err := f.svc.SignIn(context.Background(), service.Identity{Subject: name, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		f.users[name] = u
	}
	return f
}

func (f *fixture) as(name string) context.Context {
	return fluxgate.NewContextWithUser(context.Background(), f.users[name])
}

// must unwraps a setup step; a failing setup panics, failing the test
// with its stack.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("setup: %v", err))
	}
	return v
}

// target is what one matrix cell acts on, made fresh for every cell.
type target struct {
	project *fluxgate.Project
	env     *fluxgate.Environment
	repo    *fluxgate.Repository
	spare   *fluxgate.User // a member the cell may re-role or remove
}

func (f *fixture) newTarget(t *testing.T, n int) target {
	t.Helper()
	ctx := f.as("owner")
	p := must(f.svc.CreateProject(ctx, service.CreateProjectInput{Slug: fmt.Sprintf("p%d", n), Name: "P"}))
	for _, role := range []fluxgate.Role{fluxgate.RoleMaintainer, fluxgate.RoleDeveloper, fluxgate.RoleViewer} {
		must(f.svc.AddProjectMember(ctx, p.ID, f.users[string(role)].ID, role))
	}
	spare := must(f.svc.SignIn(context.Background(), service.Identity{Subject: fmt.Sprintf("spare%d", n)}))
	must(f.svc.AddProjectMember(ctx, p.ID, spare.ID, fluxgate.RoleViewer))
	e := must(f.svc.CreateEnvironment(ctx, service.CreateEnvironmentInput{ProjectID: p.ID, Name: "staging", Type: fluxgate.EnvironmentStaging}))
	r := must(f.svc.ConnectRepository(ctx, service.ConnectRepositoryInput{ProjectID: p.ID, CloneURL: "https://github.com/acme/app.git"}))
	return target{project: p, env: e, repo: r, spare: spare}
}

// TestRBACMatrix runs every operation as every role and asserts allow or
// deny against SPEC §13: owner create/update/delete/sync + members;
// maintainer create/update/sync; developer sync; viewer read; outsiders
// see nothing.
func TestRBACMatrix(t *testing.T) {
	f := newFixture(t)
	name := "renamed"
	ops := []struct {
		name   string
		action fluxgate.Action
		run    func(ctx context.Context, tg target) error
	}{
		{"read project", fluxgate.ActionRead, func(ctx context.Context, tg target) error { _, err := f.svc.Project(ctx, tg.project.ID); return err }},
		{"list environments", fluxgate.ActionRead, func(ctx context.Context, tg target) error {
			_, err := f.svc.Environments(ctx, tg.project.ID)
			return err
		}},
		{"read environment", fluxgate.ActionRead, func(ctx context.Context, tg target) error { _, err := f.svc.Environment(ctx, tg.env.ID); return err }},
		{"list repositories", fluxgate.ActionRead, func(ctx context.Context, tg target) error {
			_, err := f.svc.Repositories(ctx, tg.project.ID)
			return err
		}},
		{"list members", fluxgate.ActionRead, func(ctx context.Context, tg target) error { _, err := f.svc.Members(ctx, tg.project.ID); return err }},
		{"audit log", fluxgate.ActionRead, func(ctx context.Context, tg target) error {
			_, _, err := f.svc.AuditLog(ctx, tg.project.ID, fluxgate.Page{})
			return err
		}},
		{"update project", fluxgate.ActionUpdate, func(ctx context.Context, tg target) error {
			_, err := f.svc.UpdateProject(ctx, service.UpdateProjectInput{ID: tg.project.ID, Name: &name})
			return err
		}},
		{"create environment", fluxgate.ActionCreate, func(ctx context.Context, tg target) error {
			_, err := f.svc.CreateEnvironment(ctx, service.CreateEnvironmentInput{ProjectID: tg.project.ID, Name: "dev", Type: fluxgate.EnvironmentDevelopment})
			return err
		}},
		{"update environment", fluxgate.ActionUpdate, func(ctx context.Context, tg target) error {
			_, err := f.svc.UpdateEnvironment(ctx, service.UpdateEnvironmentInput{ID: tg.env.ID, Name: &name})
			return err
		}},
		{"delete environment", fluxgate.ActionDelete, func(ctx context.Context, tg target) error { return f.svc.DeleteEnvironment(ctx, tg.env.ID) }},
		{"connect repository", fluxgate.ActionCreate, func(ctx context.Context, tg target) error {
			_, err := f.svc.ConnectRepository(ctx, service.ConnectRepositoryInput{ProjectID: tg.project.ID, CloneURL: "https://github.com/acme/other.git"})
			return err
		}},
		{"update repository", fluxgate.ActionUpdate, func(ctx context.Context, tg target) error {
			branch := "release"
			_, err := f.svc.UpdateRepository(ctx, service.UpdateRepositoryInput{ID: tg.repo.ID, DefaultBranch: &branch})
			return err
		}},
		{"disconnect repository", fluxgate.ActionDelete, func(ctx context.Context, tg target) error { return f.svc.DisconnectRepository(ctx, tg.repo.ID) }},
		{"add member", fluxgate.ActionManageMembers, func(ctx context.Context, tg target) error {
			_, err := f.svc.AddProjectMember(ctx, tg.project.ID, f.users["outsider"].ID, fluxgate.RoleViewer)
			return err
		}},
		{"set member role", fluxgate.ActionManageMembers, func(ctx context.Context, tg target) error {
			_, err := f.svc.SetProjectMemberRole(ctx, tg.project.ID, tg.spare.ID, fluxgate.RoleDeveloper)
			return err
		}},
		{"remove member", fluxgate.ActionManageMembers, func(ctx context.Context, tg target) error {
			return f.svc.RemoveProjectMember(ctx, tg.project.ID, tg.spare.ID)
		}},
		{"delete project", fluxgate.ActionDelete, func(ctx context.Context, tg target) error { return f.svc.DeleteProject(ctx, tg.project.ID) }},
	}
	roles := []string{"owner", "maintainer", "developer", "viewer", "outsider"}
	n := 0
	for _, op := range ops {
		for _, role := range roles {
			n++
			tg := f.newTarget(t, n)
			allowed := role != "outsider" && fluxgate.Role(role).Allows(op.action)
			t.Run(op.name+"/"+role, func(t *testing.T) {
				err := op.run(f.as(role), tg)
				switch {
				case allowed && err != nil:
					t.Fatalf("%s as %s: want allowed, got %v", op.name, role, err)
				case !allowed && role == "outsider" && fluxgate.ErrorCode(err) != fluxgate.ENOTFOUND:
					t.Fatalf("%s as outsider: want NOT_FOUND, got %v", op.name, err)
				case !allowed && role != "outsider" && fluxgate.ErrorCode(err) != fluxgate.EFORBIDDEN:
					t.Fatalf("%s as %s: want FORBIDDEN, got %v", op.name, role, err)
				}
			})
		}
	}
}

// TestEnvironmentPermissions checks that environment permissions grant
// (an outsider or viewer named on an environment) and narrow (a restricted
// environment refuses members it does not list).
func TestEnvironmentPermissions(t *testing.T) {
	f := newFixture(t)
	tg := f.newTarget(t, 1)
	owner := f.as("owner")
	team := must(f.svc.CreateTeam(owner, "sre", "SRE"))
	must(f.svc.AddTeamMember(owner, team.ID, f.users["developer"].ID))
	perms := []fluxgate.EnvPermission{
		{SubjectType: fluxgate.SubjectTeam, SubjectID: team.ID, Permission: fluxgate.EnvPermissionAdmin},
		{SubjectType: fluxgate.SubjectUser, SubjectID: f.users["outsider"].ID, Permission: fluxgate.EnvPermissionRead},
	}
	must(f.svc.UpdateEnvironment(owner, service.UpdateEnvironmentInput{ID: tg.env.ID, Permissions: &perms}))

	rename := func(who string) error {
		n := "renamed-by-" + who
		_, err := f.svc.UpdateEnvironment(f.as(who), service.UpdateEnvironmentInput{ID: tg.env.ID, Name: &n})
		return err
	}
	// The developer is in the team with admin: granted beyond the role.
	if err := rename("developer"); err != nil {
		t.Fatalf("developer via team admin: %v", err)
	}
	// The maintainer is not listed: narrowed to read.
	if err := rename("maintainer"); fluxgate.ErrorCode(err) != fluxgate.EFORBIDDEN {
		t.Fatalf("unlisted maintainer on restricted env: %v", err)
	}
	if _, err := f.svc.Environment(f.as("maintainer"), tg.env.ID); err != nil {
		t.Fatalf("unlisted maintainer read: %v", err)
	}
	// The owner always may.
	if err := rename("owner"); err != nil {
		t.Fatalf("owner: %v", err)
	}
	// The outsider with read sees the environment and the project, nothing more.
	if _, err := f.svc.Environment(f.as("outsider"), tg.env.ID); err != nil {
		t.Fatalf("outsider with env read: %v", err)
	}
	if _, err := f.svc.Project(f.as("outsider"), tg.project.ID); err != nil {
		t.Fatalf("outsider with env read, project: %v", err)
	}
	if err := rename("outsider"); fluxgate.ErrorCode(err) != fluxgate.EFORBIDDEN {
		t.Fatalf("outsider with env read renaming: %v", err)
	}
	if _, err := f.svc.UpdateProject(f.as("outsider"), service.UpdateProjectInput{ID: tg.project.ID}); fluxgate.ErrorCode(err) != fluxgate.EFORBIDDEN {
		t.Fatalf("outsider with env read updating project: %v", err)
	}
}
