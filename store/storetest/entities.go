package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
)

func testUsers(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	before := time.Now()
	u := &fluxgate.User{Subject: "auth0|alice", Name: "Alice", Email: "alice@example.com", AvatarURL: "https://a/1.png"}
	must(t, s.UpsertUser(ctx, u))
	if u.ID == "" {
		t.Fatal("UpsertUser did not assign an ID")
	}
	wantRecent(t, "CreatedAt", u.CreatedAt, before)
	if !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Fatalf("UpdatedAt %v != CreatedAt %v on creation", u.UpdatedAt, u.CreatedAt)
	}
	got, err := s.GetUser(ctx, u.ID)
	must(t, err)
	wantEqual(t, "GetUser", got, u)
	got, err = s.GetUserBySubject(ctx, "auth0|alice")
	must(t, err)
	wantEqual(t, "GetUserBySubject", got, u)

	// A second sight of the same subject updates the profile, keeps identity.
	time.Sleep(2 * time.Millisecond)
	again := &fluxgate.User{Subject: "auth0|alice", Name: "Alice Liddell", Email: "al@example.com", AvatarURL: "https://a/2.png"}
	must(t, s.UpsertUser(ctx, again))
	if again.ID != u.ID || !again.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("upsert changed identity: got id %s created %v, want %s %v", again.ID, again.CreatedAt, u.ID, u.CreatedAt)
	}
	if !again.UpdatedAt.After(u.UpdatedAt) {
		t.Fatalf("UpdatedAt not advanced: %v then %v", u.UpdatedAt, again.UpdatedAt)
	}
	got, err = s.GetUser(ctx, u.ID)
	must(t, err)
	if got.Name != "Alice Liddell" || got.Email != "al@example.com" || got.AvatarURL != "https://a/2.png" {
		t.Fatalf("profile not updated: %+v", got)
	}

	_, err = s.GetUser(ctx, "no-such-user")
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetUserBySubject(ctx, "nobody")
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.UpsertUser(ctx, &fluxgate.User{Name: "no subject"}), fluxgate.EINVALID)

	bob := mustUser(t, s, "bob")
	users, err := s.GetUsers(ctx, []string{bob.ID, "missing", u.ID, bob.ID})
	must(t, err)
	if len(users) != 4 || users[0] == nil || users[0].ID != bob.ID || users[1] != nil ||
		users[2] == nil || users[2].ID != u.ID || users[3] == nil || users[3].ID != bob.ID {
		t.Fatalf("GetUsers order: %+v", users)
	}
	users, err = s.GetUsers(ctx, nil)
	must(t, err)
	if len(users) != 0 {
		t.Fatalf("GetUsers(nil) = %v", users)
	}
}

func testTeams(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	ops := &fluxgate.Team{Slug: "ops", Name: "Operations"}
	must(t, s.CreateTeam(ctx, ops))
	got, err := s.GetTeam(ctx, ops.ID)
	must(t, err)
	wantEqual(t, "GetTeam", got, ops)
	wantCode(t, s.CreateTeam(ctx, &fluxgate.Team{Slug: "ops"}), fluxgate.ECONFLICT)
	dev := &fluxgate.Team{Slug: "dev", Name: "Developers"}
	must(t, s.CreateTeam(ctx, dev))

	teams, info, err := s.ListTeams(ctx, fluxgate.Page{})
	must(t, err)
	wantEqual(t, "ListTeams", ids(teams, func(t *fluxgate.Team) string { return t.ID }), []string{ops.ID, dev.ID})
	if info.HasNextPage {
		t.Fatal("HasNextPage on a complete list")
	}

	must(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: ops.ID, UserID: alice.ID}))
	must(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: ops.ID, UserID: bob.ID}))
	must(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: dev.ID, UserID: alice.ID}))
	wantCode(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: ops.ID, UserID: alice.ID}), fluxgate.ECONFLICT)
	wantCode(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: ops.ID, UserID: "ghost"}), fluxgate.ENOTFOUND)
	wantCode(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: "ghost", UserID: alice.ID}), fluxgate.ENOTFOUND)

	members, err := s.ListTeamMembers(ctx, ops.ID)
	must(t, err)
	wantEqual(t, "ListTeamMembers", ids(members, func(m *fluxgate.TeamMember) string { return m.UserID }), []string{alice.ID, bob.ID})
	if members[0].TeamID != ops.ID || members[0].CreatedAt.IsZero() {
		t.Fatalf("member fields: %+v", members[0])
	}

	teamIDs, err := s.TeamIDsForUser(ctx, alice.ID)
	must(t, err)
	wantEqual(t, "TeamIDsForUser(alice)", teamIDs, []string{ops.ID, dev.ID})
	teamIDs, err = s.TeamIDsForUser(ctx, "nobody")
	must(t, err)
	if len(teamIDs) != 0 {
		t.Fatalf("TeamIDsForUser(nobody) = %v", teamIDs)
	}

	must(t, s.RemoveTeamMember(ctx, ops.ID, bob.ID))
	wantCode(t, s.RemoveTeamMember(ctx, ops.ID, bob.ID), fluxgate.ENOTFOUND)
	teamIDs, err = s.TeamIDsForUser(ctx, bob.ID)
	must(t, err)
	if len(teamIDs) != 0 {
		t.Fatalf("bob still in %v after removal", teamIDs)
	}

	// Soft delete: gone, name free, no longer counted for its members.
	must(t, s.DeleteTeam(ctx, ops.ID, time.Time{}))
	_, err = s.GetTeam(ctx, ops.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.DeleteTeam(ctx, ops.ID, time.Time{}), fluxgate.ENOTFOUND)
	teamIDs, err = s.TeamIDsForUser(ctx, alice.ID)
	must(t, err)
	wantEqual(t, "TeamIDsForUser after delete", teamIDs, []string{dev.ID})
	teams, _, err = s.ListTeams(ctx, fluxgate.Page{})
	must(t, err)
	wantEqual(t, "ListTeams after delete", ids(teams, func(t *fluxgate.Team) string { return t.ID }), []string{dev.ID})
	wantCode(t, s.AddTeamMember(ctx, &fluxgate.TeamMember{TeamID: ops.ID, UserID: bob.ID}), fluxgate.ENOTFOUND)
	must(t, s.CreateTeam(ctx, &fluxgate.Team{Slug: "ops", Name: "Ops again"}))
}

func testProjects(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	before := time.Now()
	p := &fluxgate.Project{Slug: "shop", Name: "Shop", Description: "web shop", Namespace: "shop",
		GitOpsEnabled: true, DeploymentMode: fluxgate.DeploymentModeUIFirst, CreatedBy: "u1"}
	must(t, s.CreateProject(ctx, p))
	if p.ID == "" {
		t.Fatal("CreateProject did not assign an ID")
	}
	wantRecent(t, "CreatedAt", p.CreatedAt, before)
	got, err := s.GetProject(ctx, p.ID)
	must(t, err)
	wantEqual(t, "GetProject", got, p)
	got, err = s.GetProjectBySlug(ctx, "shop")
	must(t, err)
	wantEqual(t, "GetProjectBySlug", got, p)
	_, err = s.GetProject(ctx, "missing")
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetProjectBySlug(ctx, "missing")
	wantCode(t, err, fluxgate.ENOTFOUND)

	wantCode(t, s.CreateProject(ctx, &fluxgate.Project{Slug: "shop"}), fluxgate.ECONFLICT)
	wantCode(t, s.CreateProject(ctx, &fluxgate.Project{Slug: "dup-id", ID: p.ID}), fluxgate.ECONFLICT)
	wantCode(t, s.CreateProject(ctx, &fluxgate.Project{}), fluxgate.EINVALID)

	// Update, including a slug change; the old slug is free, a taken one is not.
	blog := mustProject(t, s, "blog")
	p.Name, p.Description, p.Slug, p.GitOpsEnabled, p.DeploymentMode = "Shop 2", "", "shop2", false, fluxgate.DeploymentModeGitFirst
	must(t, s.UpdateProject(ctx, p))
	got, err = s.GetProject(ctx, p.ID)
	must(t, err)
	wantEqual(t, "after UpdateProject", got, p)
	_, err = s.GetProjectBySlug(ctx, "shop")
	wantCode(t, err, fluxgate.ENOTFOUND)
	blog.Slug = "shop2"
	wantCode(t, s.UpdateProject(ctx, blog), fluxgate.ECONFLICT)
	wantCode(t, s.UpdateProject(ctx, &fluxgate.Project{ID: "missing", Slug: "x"}), fluxgate.ENOTFOUND)

	// Soft delete hides the project and its children and frees the names.
	env := mustEnvironment(t, s, p.ID, "dev")
	repo := &fluxgate.Repository{ProjectID: p.ID, FullName: "acme/shop"}
	must(t, s.CreateRepository(ctx, repo))
	res := mustResource(t, s, p.ID, &env.ID, fluxgate.KindKustomization, "shop")
	deletedAt := utc(1)
	must(t, s.DeleteProject(ctx, p.ID, deletedAt))
	_, err = s.GetProject(ctx, p.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetProjectBySlug(ctx, "shop2")
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.UpdateProject(ctx, p), fluxgate.ENOTFOUND)
	wantCode(t, s.DeleteProject(ctx, p.ID, time.Time{}), fluxgate.ENOTFOUND)
	_, err = s.GetEnvironment(ctx, env.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetRepository(ctx, repo.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetResource(ctx, res.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.FindResourceByObject(ctx, res.Kind, res.Namespace, res.Name)
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.CreateEnvironment(ctx, &fluxgate.Environment{ProjectID: p.ID, Name: "prod"}), fluxgate.ENOTFOUND)
	projects, _, err := s.ListProjects(ctx, fluxgate.ProjectFilter{})
	must(t, err)
	wantEqual(t, "ListProjects after delete", ids(projects, func(p *fluxgate.Project) string { return p.ID }), []string{blog.ID})
	again := mustProject(t, s, "shop2")
	if again.ID == p.ID {
		t.Fatal("re-created project reused the deleted id")
	}
}

func testProjectMembers(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	alice, bob, carol := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	p1, p2, p3 := mustProject(t, s, "p1"), mustProject(t, s, "p2"), mustProject(t, s, "p3")

	m := &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: alice.ID, Role: fluxgate.RoleOwner}
	must(t, s.AddProjectMember(ctx, m))
	if m.CreatedAt.IsZero() || m.UpdatedAt.IsZero() {
		t.Fatalf("timestamps not filled: %+v", m)
	}
	got, err := s.GetProjectMember(ctx, p1.ID, alice.ID)
	must(t, err)
	wantEqual(t, "GetProjectMember", got, m)
	must(t, s.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: bob.ID, Role: fluxgate.RoleViewer}))
	must(t, s.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p3.ID, UserID: alice.ID, Role: fluxgate.RoleDeveloper}))

	wantCode(t, s.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: alice.ID, Role: fluxgate.RoleViewer}), fluxgate.ECONFLICT)
	wantCode(t, s.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: carol.ID, Role: "admin"}), fluxgate.EINVALID)
	wantCode(t, s.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: "ghost", Role: fluxgate.RoleViewer}), fluxgate.ENOTFOUND)
	wantCode(t, s.AddProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: "ghost", UserID: carol.ID, Role: fluxgate.RoleViewer}), fluxgate.ENOTFOUND)
	_, err = s.GetProjectMember(ctx, p2.ID, alice.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)

	members, err := s.ListProjectMembers(ctx, p1.ID)
	must(t, err)
	wantEqual(t, "ListProjectMembers", ids(members, func(m *fluxgate.ProjectMember) string { return m.UserID + ":" + string(m.Role) }),
		[]string{alice.ID + ":owner", bob.ID + ":viewer"})

	// ListProjects filtered by membership.
	mine, _, err := s.ListProjects(ctx, fluxgate.ProjectFilter{MemberUserID: alice.ID})
	must(t, err)
	wantEqual(t, "ListProjects(alice)", ids(mine, func(p *fluxgate.Project) string { return p.ID }), []string{p1.ID, p3.ID})
	mine, _, err = s.ListProjects(ctx, fluxgate.ProjectFilter{MemberUserID: carol.ID})
	must(t, err)
	if len(mine) != 0 {
		t.Fatalf("ListProjects(carol) = %d projects", len(mine))
	}

	time.Sleep(2 * time.Millisecond)
	upd := &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: bob.ID, Role: fluxgate.RoleMaintainer}
	must(t, s.UpdateProjectMember(ctx, upd))
	got, err = s.GetProjectMember(ctx, p1.ID, bob.ID)
	must(t, err)
	if got.Role != fluxgate.RoleMaintainer || !got.UpdatedAt.After(got.CreatedAt) {
		t.Fatalf("after UpdateProjectMember: %+v", got)
	}
	wantCode(t, s.UpdateProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: bob.ID, Role: "boss"}), fluxgate.EINVALID)
	wantCode(t, s.UpdateProjectMember(ctx, &fluxgate.ProjectMember{ProjectID: p1.ID, UserID: carol.ID, Role: fluxgate.RoleViewer}), fluxgate.ENOTFOUND)

	must(t, s.RemoveProjectMember(ctx, p1.ID, bob.ID))
	wantCode(t, s.RemoveProjectMember(ctx, p1.ID, bob.ID), fluxgate.ENOTFOUND)
	_, err = s.GetProjectMember(ctx, p1.ID, bob.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)

	// Members of a deleted project are not visible.
	must(t, s.DeleteProject(ctx, p3.ID, time.Time{}))
	_, err = s.GetProjectMember(ctx, p3.ID, alice.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	mine, _, err = s.ListProjects(ctx, fluxgate.ProjectFilter{MemberUserID: alice.ID})
	must(t, err)
	wantEqual(t, "ListProjects(alice) after delete", ids(mine, func(p *fluxgate.Project) string { return p.ID }), []string{p1.ID})
}

func testEnvironments(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p, other := mustProject(t, s, "p"), mustProject(t, s, "other")
	e := &fluxgate.Environment{
		ProjectID: p.ID, Name: "production", Type: fluxgate.EnvironmentProduction,
		GitOps:   fluxgate.EnvironmentGitOps{Enabled: true, AutoSync: false, GitBranch: "main", GitPath: "k8s/overlays/production", SyncInterval: "5m"},
		Approval: fluxgate.ApprovalPolicy{Required: true, MinApprovals: 2, ApproverIDs: []string{"u1", "u2", "u3"}},
		HealthChecks: []fluxgate.HealthCheck{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: "shop"},
			{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"},
		},
		Permissions: []fluxgate.EnvPermission{
			{SubjectType: fluxgate.SubjectUser, SubjectID: "u1", Permission: fluxgate.EnvPermissionDeploy},
			{SubjectType: fluxgate.SubjectTeam, SubjectID: "t1", Permission: fluxgate.EnvPermissionAdmin},
		},
	}
	must(t, s.CreateEnvironment(ctx, e))
	got, err := s.GetEnvironment(ctx, e.ID)
	must(t, err)
	wantEqual(t, "GetEnvironment", got, e)
	got, err = s.GetEnvironmentByName(ctx, p.ID, "production")
	must(t, err)
	wantEqual(t, "GetEnvironmentByName", got, e)
	_, err = s.GetEnvironmentByName(ctx, other.ID, "production")
	wantCode(t, err, fluxgate.ENOTFOUND)

	wantCode(t, s.CreateEnvironment(ctx, &fluxgate.Environment{ProjectID: p.ID, Name: "production"}), fluxgate.ECONFLICT)
	wantCode(t, s.CreateEnvironment(ctx, &fluxgate.Environment{ProjectID: "ghost", Name: "x"}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateEnvironment(ctx, &fluxgate.Environment{ProjectID: p.ID}), fluxgate.EINVALID)
	mustEnvironment(t, s, other.ID, "production") // same name, other project
	dev := mustEnvironment(t, s, p.ID, "development")

	envs, err := s.ListEnvironments(ctx, p.ID)
	must(t, err)
	wantEqual(t, "ListEnvironments", ids(envs, func(e *fluxgate.Environment) string { return e.Name }), []string{"production", "development"})

	e.Name, e.Type = "prod", fluxgate.EnvironmentStaging
	e.Approval = fluxgate.ApprovalPolicy{}
	e.HealthChecks, e.Permissions = nil, []fluxgate.EnvPermission{{SubjectType: fluxgate.SubjectUser, SubjectID: "u9", Permission: fluxgate.EnvPermissionRead}}
	must(t, s.UpdateEnvironment(ctx, e))
	got, err = s.GetEnvironment(ctx, e.ID)
	must(t, err)
	wantEqual(t, "after UpdateEnvironment", got, e)
	dev.Name = "prod"
	wantCode(t, s.UpdateEnvironment(ctx, dev), fluxgate.ECONFLICT)
	wantCode(t, s.UpdateEnvironment(ctx, &fluxgate.Environment{ID: "ghost", Name: "x"}), fluxgate.ENOTFOUND)

	// Deleting an environment deletes its resources and frees both names.
	res := mustResource(t, s, p.ID, &e.ID, fluxgate.KindHelmRelease, "web")
	keep := mustResource(t, s, p.ID, nil, fluxgate.KindGitRepository, "src")
	must(t, s.DeleteEnvironment(ctx, e.ID, time.Time{}))
	_, err = s.GetEnvironment(ctx, e.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetEnvironmentByName(ctx, p.ID, "prod")
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.UpdateEnvironment(ctx, e), fluxgate.ENOTFOUND)
	wantCode(t, s.DeleteEnvironment(ctx, e.ID, time.Time{}), fluxgate.ENOTFOUND)
	_, err = s.GetResource(ctx, res.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetResource(ctx, keep.ID)
	must(t, err)
	envs, err = s.ListEnvironments(ctx, p.ID)
	must(t, err)
	wantEqual(t, "ListEnvironments after delete", ids(envs, func(e *fluxgate.Environment) string { return e.ID }), []string{dev.ID})
	mustEnvironment(t, s, p.ID, "prod")
}

func testRepositories(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	r := &fluxgate.Repository{ProjectID: p.ID, Provider: "github", FullName: "acme/shop",
		CloneURL: "https://github.com/acme/shop.git", DefaultBranch: "main",
		GitOps: fluxgate.RepositoryGitOps{Enabled: true, FluxNamespace: "flux-system", FluxResourceName: "shop",
			SyncInterval: "1m", SecretRef: "shop-auth", Timeout: "60s"}}
	must(t, s.CreateRepository(ctx, r))
	got, err := s.GetRepository(ctx, r.ID)
	must(t, err)
	wantEqual(t, "GetRepository", got, r)
	wantCode(t, s.CreateRepository(ctx, &fluxgate.Repository{ProjectID: p.ID, FullName: "acme/shop"}), fluxgate.ECONFLICT)
	wantCode(t, s.CreateRepository(ctx, &fluxgate.Repository{ProjectID: "ghost", FullName: "acme/x"}), fluxgate.ENOTFOUND)
	other := &fluxgate.Repository{ProjectID: p.ID, FullName: "acme/infra"}
	must(t, s.CreateRepository(ctx, other))

	r.FluxSyncStatus, r.FluxLastCommit, r.FluxSyncError = "failed", "abc123", "auth failed"
	r.FluxLastSyncAt = ptr(utc(7))
	r.GitOps.SyncInterval = "10m"
	must(t, s.UpdateRepository(ctx, r))
	got, err = s.GetRepository(ctx, r.ID)
	must(t, err)
	wantEqual(t, "after UpdateRepository", got, r)
	other.FullName = "acme/shop"
	wantCode(t, s.UpdateRepository(ctx, other), fluxgate.ECONFLICT)

	repos, err := s.ListRepositories(ctx, p.ID)
	must(t, err)
	wantEqual(t, "ListRepositories", ids(repos, func(r *fluxgate.Repository) string { return r.ID }), []string{r.ID, other.ID})

	// Push credentials: stored sealed, read back byte for byte, cleared,
	// and never part of the Repository.
	creds, err := s.GetRepositoryCredentials(ctx, r.ID)
	must(t, err)
	wantEqual(t, "credentials before any are set", creds, []byte(nil))
	sealed := []byte{1, 0, 0xff, 'x', 0, 7}
	must(t, s.SetRepositoryCredentials(ctx, r.ID, sealed))
	creds, err = s.GetRepositoryCredentials(ctx, r.ID)
	must(t, err)
	wantEqual(t, "GetRepositoryCredentials", creds, sealed)
	other2, err := s.GetRepositoryCredentials(ctx, other.ID)
	must(t, err)
	wantEqual(t, "other repository's credentials", other2, []byte(nil))
	must(t, s.SetRepositoryCredentials(ctx, r.ID, nil))
	creds, err = s.GetRepositoryCredentials(ctx, r.ID)
	must(t, err)
	wantEqual(t, "credentials after clearing", creds, []byte(nil))
	must(t, s.SetRepositoryCredentials(ctx, r.ID, sealed))
	wantCode(t, s.SetRepositoryCredentials(ctx, "ghost", sealed), fluxgate.ENOTFOUND)
	_, err = s.GetRepositoryCredentials(ctx, "ghost")
	wantCode(t, err, fluxgate.ENOTFOUND)

	must(t, s.DeleteRepository(ctx, r.ID, time.Time{}))
	_, err = s.GetRepository(ctx, r.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	_, err = s.GetRepositoryCredentials(ctx, r.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.DeleteRepository(ctx, r.ID, time.Time{}), fluxgate.ENOTFOUND)
	wantCode(t, s.UpdateRepository(ctx, r), fluxgate.ENOTFOUND)
	must(t, s.CreateRepository(ctx, &fluxgate.Repository{ProjectID: p.ID, FullName: "acme/shop"}))
}

func testResources(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p, other := mustProject(t, s, "p"), mustProject(t, s, "other")
	dev, prod := mustEnvironment(t, s, p.ID, "dev"), mustEnvironment(t, s, p.ID, "prod")
	otherEnv := mustEnvironment(t, s, other.ID, "dev")
	repo := &fluxgate.Repository{ProjectID: p.ID, FullName: "acme/shop"}
	must(t, s.CreateRepository(ctx, repo))

	r := &fluxgate.GitOpsResource{
		ProjectID: p.ID, EnvironmentID: &dev.ID, RepositoryID: &repo.ID, Kind: fluxgate.KindKustomization,
		Name: "shop-dev", Namespace: "flux-system",
		Spec:      json.RawMessage(`{"path": "./k8s/overlays/dev", "prune": true, "dependsOn": [{"name": "infra"}]}`),
		CreatedBy: "u1",
	}
	must(t, s.CreateResource(ctx, r))
	if r.Status != fluxgate.ResourcePending {
		t.Fatalf("default status = %q, want pending", r.Status)
	}
	got, err := s.GetResource(ctx, r.ID)
	must(t, err)
	wantJSONEq(t, "spec", got.Spec, r.Spec)
	want := *r
	got.Spec, want.Spec = nil, nil
	wantEqual(t, "GetResource", got, &want)

	// Unique per project + environment + kind + name, NULL environment included.
	dup := &fluxgate.GitOpsResource{ProjectID: p.ID, EnvironmentID: &dev.ID, Kind: fluxgate.KindKustomization, Name: "shop-dev"}
	wantCode(t, s.CreateResource(ctx, dup), fluxgate.ECONFLICT)
	mustResource(t, s, p.ID, &prod.ID, fluxgate.KindKustomization, "shop-dev")
	mustResource(t, s, p.ID, &dev.ID, fluxgate.KindHelmRelease, "shop-dev")
	src := mustResource(t, s, p.ID, nil, fluxgate.KindGitRepository, "shop")
	wantCode(t, s.CreateResource(ctx, &fluxgate.GitOpsResource{ProjectID: p.ID, Kind: fluxgate.KindGitRepository, Name: "shop"}), fluxgate.ECONFLICT)
	mustResource(t, s, other.ID, nil, fluxgate.KindGitRepository, "shop")

	// References must exist, be live and belong to the same project.
	wantCode(t, s.CreateResource(ctx, &fluxgate.GitOpsResource{ProjectID: p.ID, EnvironmentID: &otherEnv.ID, Kind: fluxgate.KindKustomization, Name: "x"}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateResource(ctx, &fluxgate.GitOpsResource{ProjectID: p.ID, EnvironmentID: ptr("ghost"), Kind: fluxgate.KindKustomization, Name: "x"}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateResource(ctx, &fluxgate.GitOpsResource{ProjectID: "ghost", Kind: fluxgate.KindKustomization, Name: "x"}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateResource(ctx, &fluxgate.GitOpsResource{ProjectID: p.ID, Kind: fluxgate.KindKustomization, Name: "x", Spec: json.RawMessage(`{bad`)}), fluxgate.EINVALID)

	found, err := s.FindResourceByObject(ctx, fluxgate.KindKustomization, "flux-system", "shop-dev")
	must(t, err)
	if found.ID != r.ID {
		t.Fatalf("FindResourceByObject = %s, want %s", found.ID, r.ID)
	}
	_, err = s.FindResourceByObject(ctx, fluxgate.KindHelmRelease, "flux-system", "nothing")
	wantCode(t, err, fluxgate.ENOTFOUND)

	// Filters.
	list := func(f fluxgate.ResourceFilter) []string {
		t.Helper()
		rs, _, err := s.ListResources(ctx, f)
		must(t, err)
		return ids(rs, func(r *fluxgate.GitOpsResource) string { return string(r.Kind) + "/" + r.Name })
	}
	wantEqual(t, "ListResources(project)", list(fluxgate.ResourceFilter{ProjectID: p.ID}),
		[]string{"Kustomization/shop-dev", "Kustomization/shop-dev", "HelmRelease/shop-dev", "GitRepository/shop"})
	wantEqual(t, "ListResources(env)", list(fluxgate.ResourceFilter{ProjectID: p.ID, EnvironmentID: dev.ID}),
		[]string{"Kustomization/shop-dev", "HelmRelease/shop-dev"})
	wantEqual(t, "ListResources(kind)", list(fluxgate.ResourceFilter{ProjectID: p.ID, Kind: fluxgate.KindGitRepository}),
		[]string{"GitRepository/shop"})

	// Status updates from the watcher.
	reconciled := utc(30)
	u := fluxgate.ResourceStatusUpdate{
		Status: fluxgate.ResourceFailed, Suspended: true,
		Conditions: []fluxgate.Condition{{Type: "Ready", Status: "False", Reason: "BuildFailed",
			Message: "kustomize build failed", LastTransitionTime: utc(29), ObservedGeneration: 3}},
		Inventory:           []fluxgate.InventoryEntry{{ID: "shop_web_apps_Deployment", Version: "v1"}},
		LastAppliedRevision: "main@sha1:aaa", LastAttemptedRevision: "main@sha1:bbb",
		ErrorMessage: "kustomize build failed", ObservedGeneration: 3, LastReconciledAt: &reconciled,
	}
	must(t, s.UpdateResourceStatus(ctx, r.ID, u))
	got, err = s.GetResource(ctx, r.ID)
	must(t, err)
	wantEqual(t, "status after UpdateResourceStatus", fluxgate.ResourceStatusUpdate{
		Status: got.Status, Suspended: got.Suspended, Conditions: got.Conditions, Inventory: got.Inventory,
		LastAppliedRevision: got.LastAppliedRevision, LastAttemptedRevision: got.LastAttemptedRevision,
		ErrorMessage: got.ErrorMessage, ObservedGeneration: got.ObservedGeneration, LastReconciledAt: got.LastReconciledAt,
	}, u)
	wantEqual(t, "ListResources(status)", list(fluxgate.ResourceFilter{Status: fluxgate.ResourceFailed}), []string{"Kustomization/shop-dev"})
	wantCode(t, s.UpdateResourceStatus(ctx, "ghost", u), fluxgate.ENOTFOUND)

	// UpdateResource changes configuration and keeps the watcher's status.
	edit := *r
	edit.Spec = json.RawMessage(`{"path":"./k8s/overlays/dev2"}`)
	edit.Name, edit.Suspended, edit.RepositoryID = "shop-dev-2", false, nil
	must(t, s.UpdateResource(ctx, &edit))
	if edit.Status != fluxgate.ResourceFailed || edit.ErrorMessage != "kustomize build failed" || len(edit.Conditions) != 1 {
		t.Fatalf("UpdateResource lost or did not reload the status: %+v", edit)
	}
	got, err = s.GetResource(ctx, r.ID)
	must(t, err)
	wantJSONEq(t, "spec after update", got.Spec, json.RawMessage(`{"path":"./k8s/overlays/dev2"}`))
	if got.Name != "shop-dev-2" || got.Suspended || got.RepositoryID != nil {
		t.Fatalf("after UpdateResource: %+v", got)
	}
	_, err = s.FindResourceByObject(ctx, fluxgate.KindKustomization, "flux-system", "shop-dev")
	wantCode(t, err, fluxgate.ENOTFOUND)
	// Moving it onto the prod Kustomization's environment and name collides.
	edit.Name, edit.EnvironmentID = "shop-dev", &prod.ID
	wantCode(t, s.UpdateResource(ctx, &edit), fluxgate.ECONFLICT)
	wantCode(t, s.UpdateResource(ctx, &fluxgate.GitOpsResource{ID: "ghost", ProjectID: p.ID, Kind: fluxgate.KindKustomization, Name: "g"}), fluxgate.ENOTFOUND)

	// Soft delete frees the name.
	must(t, s.DeleteResource(ctx, src.ID, time.Time{}))
	_, err = s.GetResource(ctx, src.ID)
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.DeleteResource(ctx, src.ID, time.Time{}), fluxgate.ENOTFOUND)
	wantCode(t, s.UpdateResourceStatus(ctx, src.ID, u), fluxgate.ENOTFOUND)
	again := mustResource(t, s, p.ID, nil, fluxgate.KindGitRepository, "shop")
	found, err = s.FindResourceByObject(ctx, fluxgate.KindGitRepository, again.Namespace, "shop")
	must(t, err)
	if found.ProjectID != p.ID && found.ProjectID != other.ID {
		t.Fatalf("FindResourceByObject found %+v", found)
	}
	if slices.Contains(list(fluxgate.ResourceFilter{ProjectID: p.ID}), src.ID) {
		t.Fatal("deleted resource listed")
	}
}

func testDeployments(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	dev, prod := mustEnvironment(t, s, p.ID, "dev"), mustEnvironment(t, s, p.ID, "prod")
	res := mustResource(t, s, p.ID, &dev.ID, fluxgate.KindKustomization, "web")

	before := time.Now()
	d := &fluxgate.Deployment{
		ProjectID: p.ID, EnvironmentID: dev.ID, ResourceID: &res.ID, Version: "1.2.3", CommitSHA: "sha-1",
		Branch: "dev", Strategy: "rolling", Status: fluxgate.DeploymentInProgress, Method: fluxgate.MethodGitOpsUI,
		Message: "chore(deploy): update image", DeployedBy: "u1",
		CommitAuthor: fluxgate.CommitAuthor{Name: "Ada Lovelace", Email: "ada@example.com"},
		Change:       json.RawMessage(`{"image":"web:1.2.3","replicas":3}`),
		Steps: []fluxgate.DeploymentStep{
			{Name: fluxgate.StepCommitted, Status: "done", At: ptr(utc(1))},
			{Name: fluxgate.StepFetched, Status: "pending"},
			{Name: fluxgate.StepApplied, Status: "pending"},
			{Name: fluxgate.StepHealthy, Status: "pending", ReadyPods: 1, TotalPods: 3},
		},
	}
	must(t, s.CreateDeployment(ctx, d))
	wantRecent(t, "StartedAt", d.StartedAt, before)
	got, err := s.GetDeployment(ctx, d.ID)
	must(t, err)
	wantJSONEq(t, "change", got.Change, d.Change)
	want := *d
	got.Change, want.Change = nil, nil
	wantEqual(t, "GetDeployment", got, &want)
	_, err = s.GetDeployment(ctx, "ghost")
	wantCode(t, err, fluxgate.ENOTFOUND)
	wantCode(t, s.CreateDeployment(ctx, &fluxgate.Deployment{ProjectID: p.ID, EnvironmentID: "ghost"}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateDeployment(ctx, &fluxgate.Deployment{ProjectID: "ghost", EnvironmentID: dev.ID}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateDeployment(ctx, &fluxgate.Deployment{ProjectID: p.ID, EnvironmentID: dev.ID, ResourceID: ptr("ghost")}), fluxgate.ENOTFOUND)

	d2 := mustDeployment(t, s, dev, "sha-2", fluxgate.DeploymentSucceeded)
	d3 := mustDeployment(t, s, prod, "sha-2", fluxgate.DeploymentAwaitingApproval)
	d4 := mustDeployment(t, s, dev, "sha-2", fluxgate.DeploymentPending)
	rollback := &fluxgate.Deployment{ProjectID: p.ID, EnvironmentID: dev.ID, CommitSHA: "sha-1", RollbackOf: &d4.ID,
		Status: fluxgate.DeploymentFailed, StartedAt: utc(3), FinishedAt: ptr(utc(4))}
	must(t, s.CreateDeployment(ctx, rollback))
	got, err = s.GetDeployment(ctx, rollback.ID)
	must(t, err)
	if got.RollbackOf == nil || *got.RollbackOf != d4.ID || !got.StartedAt.Equal(utc(3)) || got.FinishedAt == nil || !got.FinishedAt.Equal(utc(4)) {
		t.Fatalf("rollback deployment: %+v", got)
	}

	list := func(f fluxgate.DeploymentFilter) []string {
		t.Helper()
		ds, _, err := s.ListDeployments(ctx, f)
		must(t, err)
		return ids(ds, func(d *fluxgate.Deployment) string { return d.ID })
	}
	wantEqual(t, "ListDeployments(project)", list(fluxgate.DeploymentFilter{ProjectID: p.ID}), []string{rollback.ID, d4.ID, d3.ID, d2.ID, d.ID})
	wantEqual(t, "ListDeployments(env)", list(fluxgate.DeploymentFilter{ProjectID: p.ID, EnvironmentID: prod.ID}), []string{d3.ID})
	wantEqual(t, "ListDeployments(status)", list(fluxgate.DeploymentFilter{ProjectID: p.ID, Status: fluxgate.DeploymentSucceeded}), []string{d2.ID})

	open, err := s.ListOpenDeployments(ctx)
	must(t, err)
	wantEqual(t, "ListOpenDeployments", ids(open, func(d *fluxgate.Deployment) string { return d.ID }), []string{d.ID, d3.ID, d4.ID})

	found, err := s.FindDeploymentByCommit(ctx, dev.ID, "sha-2")
	must(t, err)
	if found.ID != d4.ID {
		t.Fatalf("FindDeploymentByCommit = %s, want newest %s", found.ID, d4.ID)
	}
	found, err = s.FindDeploymentByCommit(ctx, prod.ID, "sha-2")
	must(t, err)
	if found.ID != d3.ID {
		t.Fatalf("FindDeploymentByCommit(prod) = %s, want %s", found.ID, d3.ID)
	}
	_, err = s.FindDeploymentByCommit(ctx, prod.ID, "sha-1")
	wantCode(t, err, fluxgate.ENOTFOUND)

	// Progress: finish the first deployment.
	d.Status, d.FinishedAt = fluxgate.DeploymentSucceeded, ptr(utc(59))
	for i := range d.Steps {
		d.Steps[i].Status, d.Steps[i].At = "done", ptr(utc(10+i))
	}
	d.Steps[3].ReadyPods = 3
	d.Message = "done"
	d.CommitAuthor.Name = "Ada King"
	must(t, s.UpdateDeployment(ctx, d))
	got, err = s.GetDeployment(ctx, d.ID)
	must(t, err)
	want = *d
	got.Change, want.Change = nil, nil
	wantEqual(t, "after UpdateDeployment", got, &want)
	open, err = s.ListOpenDeployments(ctx)
	must(t, err)
	wantEqual(t, "ListOpenDeployments after finish", ids(open, func(d *fluxgate.Deployment) string { return d.ID }), []string{d3.ID, d4.ID})
	wantCode(t, s.UpdateDeployment(ctx, &fluxgate.Deployment{ID: "ghost", Status: fluxgate.DeploymentFailed}), fluxgate.ENOTFOUND)
}

func testApprovals(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	prod := mustEnvironment(t, s, p.ID, "prod")
	d := mustDeployment(t, s, prod, "sha", fluxgate.DeploymentAwaitingApproval)
	other := mustDeployment(t, s, prod, "sha2", fluxgate.DeploymentAwaitingApproval)
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")

	a := &fluxgate.Approval{DeploymentID: d.ID, UserID: alice.ID, Decision: fluxgate.ApprovalApproved, Comment: "lgtm"}
	must(t, s.CreateApproval(ctx, a))
	if a.ID == "" || a.CreatedAt.IsZero() {
		t.Fatalf("approval not filled in: %+v", a)
	}
	wantCode(t, s.CreateApproval(ctx, &fluxgate.Approval{DeploymentID: d.ID, UserID: alice.ID, Decision: fluxgate.ApprovalRejected}), fluxgate.ECONFLICT)
	b := &fluxgate.Approval{DeploymentID: d.ID, UserID: bob.ID, Decision: fluxgate.ApprovalRejected}
	must(t, s.CreateApproval(ctx, b))
	must(t, s.CreateApproval(ctx, &fluxgate.Approval{DeploymentID: other.ID, UserID: alice.ID, Decision: fluxgate.ApprovalApproved}))
	wantCode(t, s.CreateApproval(ctx, &fluxgate.Approval{DeploymentID: "ghost", UserID: bob.ID, Decision: fluxgate.ApprovalApproved}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateApproval(ctx, &fluxgate.Approval{DeploymentID: other.ID, UserID: "ghost", Decision: fluxgate.ApprovalApproved}), fluxgate.ENOTFOUND)
	wantCode(t, s.CreateApproval(ctx, &fluxgate.Approval{DeploymentID: other.ID, UserID: bob.ID, Decision: "maybe"}), fluxgate.EINVALID)

	list, err := s.ListApprovals(ctx, d.ID)
	must(t, err)
	wantEqual(t, "ListApprovals", list, []*fluxgate.Approval{a, b})

	// A dataloader batch: in the order asked, repeats repeated, none empty.
	none := mustDeployment(t, s, prod, "sha-none", fluxgate.DeploymentAwaitingApproval)
	lists, err := s.ListApprovalsOf(ctx, []string{none.ID, d.ID, other.ID, d.ID, "ghost"})
	must(t, err)
	if len(lists) != 5 || len(lists[0]) != 0 || lists[0] == nil || len(lists[2]) != 1 || lists[2][0].DeploymentID != other.ID || len(lists[4]) != 0 {
		t.Fatalf("ListApprovalsOf = %+v", lists)
	}
	wantEqual(t, "ListApprovalsOf[1]", lists[1], []*fluxgate.Approval{a, b})
	wantEqual(t, "ListApprovalsOf[3]", lists[3], []*fluxgate.Approval{a, b})
	lists, err = s.ListApprovalsOf(ctx, nil)
	must(t, err)
	if len(lists) != 0 {
		t.Fatalf("ListApprovalsOf(nil) = %+v", lists)
	}
}

func testAuditEntries(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p, q := mustProject(t, s, "p"), mustProject(t, s, "q")
	e1 := &fluxgate.AuditEntry{ProjectID: &p.ID, ActorID: "u1", Action: "project.created", TargetType: "project",
		TargetID: p.ID, Metadata: json.RawMessage(`{"slug":"p"}`)}
	must(t, s.CreateAuditEntry(ctx, e1))
	e2 := &fluxgate.AuditEntry{ProjectID: &q.ID, ActorID: "u1", Action: "project.created", TargetType: "project", TargetID: q.ID}
	must(t, s.CreateAuditEntry(ctx, e2))
	e3 := &fluxgate.AuditEntry{ProjectID: &p.ID, ActorID: "u2", Action: "gitops.resource.updated", TargetType: "resource",
		TargetID: "r1", Metadata: json.RawMessage(`{"changes":["spec.path"],"old":"a","new":"b"}`)}
	must(t, s.CreateAuditEntry(ctx, e3))
	global := &fluxgate.AuditEntry{ActorID: "u1", Action: "team.created", TargetType: "team", TargetID: "t1"}
	must(t, s.CreateAuditEntry(ctx, global))
	wantCode(t, s.CreateAuditEntry(ctx, &fluxgate.AuditEntry{ActorID: "u1"}), fluxgate.EINVALID)
	wantCode(t, s.CreateAuditEntry(ctx, &fluxgate.AuditEntry{ProjectID: ptr("ghost"), Action: "x"}), fluxgate.ENOTFOUND)

	entries, info, err := s.ListAuditEntries(ctx, fluxgate.AuditFilter{ProjectID: p.ID})
	must(t, err)
	if info.HasNextPage || len(entries) != 2 {
		t.Fatalf("ListAuditEntries(p) = %d entries, info %+v", len(entries), info)
	}
	wantJSONEq(t, "metadata", entries[0].Metadata, e3.Metadata)
	wantJSONEq(t, "metadata", entries[1].Metadata, e1.Metadata)
	entries[0].Metadata, entries[1].Metadata = nil, nil
	w3, w1 := *e3, *e1
	w3.Metadata, w1.Metadata = nil, nil
	wantEqual(t, "ListAuditEntries(p) newest first", entries, []*fluxgate.AuditEntry{&w3, &w1})

	all, _, err := s.ListAuditEntries(ctx, fluxgate.AuditFilter{})
	must(t, err)
	wantEqual(t, "ListAuditEntries(all)", ids(all, func(e *fluxgate.AuditEntry) string { return e.ID }), []string{global.ID, e3.ID, e2.ID, e1.ID})
	if all[0].ProjectID != nil || all[0].Metadata != nil {
		t.Fatalf("global entry: %+v", all[0])
	}
}

func testFluxEvents(t *testing.T, s fluxgate.Store) {
	ctx := context.Background()
	p, q := mustProject(t, s, "p"), mustProject(t, s, "q")
	res := mustResource(t, s, p.ID, nil, fluxgate.KindGitRepository, "src")
	ev := func(project, kind, severity, dedup string) *fluxgate.FluxEvent {
		return &fluxgate.FluxEvent{ProjectID: project, Kind: kind, Name: "web", Namespace: "flux-system",
			Reason: "ReconciliationSucceeded", Message: "applied revision main@sha1:abc", Type: "Normal",
			Severity: severity, Revision: "main@sha1:abc", Source: "watcher", DedupKey: dedup, Timestamp: utc(5)}
	}
	first := ev(p.ID, "GitRepository", "info", "uid-1/1")
	first.ResourceID = &res.ID
	first.Metadata = json.RawMessage(`{"commit_status":"update","revision":"abc"}`)
	inserted, err := s.CreateFluxEvent(ctx, first)
	must(t, err)
	if !inserted || first.Seq <= 0 || first.ID == "" || first.CreatedAt.IsZero() {
		t.Fatalf("first event: inserted %v, %+v", inserted, first)
	}

	// The same delivery again is not stored twice and reports the stored seq.
	again := ev(p.ID, "GitRepository", "info", "uid-1/1")
	inserted, err = s.CreateFluxEvent(ctx, again)
	must(t, err)
	if inserted || again.Seq != first.Seq {
		t.Fatalf("duplicate: inserted %v seq %d, want false %d", inserted, again.Seq, first.Seq)
	}

	var created []*fluxgate.FluxEvent
	created = append(created, first)
	for _, e := range []*fluxgate.FluxEvent{
		ev(p.ID, "Kustomization", "error", "uid-2/1"),
		ev(q.ID, "Kustomization", "info", ""),
		ev(p.ID, "Kustomization", "info", ""), // no dedup key: never deduplicated
		ev(p.ID, "Kustomization", "info", ""),
		ev(p.ID, "HelmRelease", "error", "uid-3/1"),
	} {
		inserted, err := s.CreateFluxEvent(ctx, e)
		must(t, err)
		if !inserted {
			t.Fatalf("event %+v not inserted", e)
		}
		if e.Seq <= created[len(created)-1].Seq {
			t.Fatalf("seq %d not after %d", e.Seq, created[len(created)-1].Seq)
		}
		created = append(created, e)
	}
	_, err = s.CreateFluxEvent(ctx, ev("ghost", "Kustomization", "info", ""))
	wantCode(t, err, fluxgate.ENOTFOUND)

	seqs := func(es []*fluxgate.FluxEvent) []int64 {
		out := make([]int64, len(es))
		for i, e := range es {
			out[i] = e.Seq
		}
		return out
	}
	// Newest first by default.
	got, info, err := s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID})
	must(t, err)
	wantEqual(t, "ListFluxEvents(p)", seqs(got), []int64{created[5].Seq, created[4].Seq, created[3].Seq, created[1].Seq, created[0].Seq})
	if info.HasNextPage {
		t.Fatal("HasNextPage on complete list")
	}
	last := got[len(got)-1]
	wantJSONEq(t, "metadata", last.Metadata, first.Metadata)
	last.Metadata, first.Metadata = nil, nil
	first.Timestamp = utc(5)
	wantEqual(t, "stored event", last, first)

	got, _, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID, Severity: "error"})
	must(t, err)
	wantEqual(t, "ListFluxEvents(severity)", seqs(got), []int64{created[5].Seq, created[1].Seq})
	got, _, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID, Kind: "Kustomization"})
	must(t, err)
	wantEqual(t, "ListFluxEvents(kind)", seqs(got), []int64{created[4].Seq, created[3].Seq, created[1].Seq})

	// Replay after a seq: ascending, paginated.
	got, info, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID, AfterSeq: created[0].Seq, Page: fluxgate.Page{First: 2}})
	must(t, err)
	wantEqual(t, "replay page 1", seqs(got), []int64{created[1].Seq, created[3].Seq})
	if !info.HasNextPage {
		t.Fatal("replay page 1: HasNextPage false")
	}
	got, info, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{ProjectID: p.ID, AfterSeq: created[0].Seq, Page: fluxgate.Page{First: 2, After: info.EndCursor}})
	must(t, err)
	wantEqual(t, "replay page 2", seqs(got), []int64{created[4].Seq, created[5].Seq})
	if info.HasNextPage {
		t.Fatal("replay page 2: HasNextPage true")
	}
	got, _, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{AfterSeq: created[5].Seq})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("replay after the last event = %v", seqs(got))
	}

	// Newest-first pagination.
	got, info, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{Page: fluxgate.Page{First: 4}})
	must(t, err)
	wantEqual(t, "page 1", seqs(got), []int64{created[5].Seq, created[4].Seq, created[3].Seq, created[2].Seq})
	got, info, err = s.ListFluxEvents(ctx, fluxgate.FluxEventFilter{Page: fluxgate.Page{First: 4, After: info.EndCursor}})
	must(t, err)
	wantEqual(t, "page 2", seqs(got), []int64{created[1].Seq, created[0].Seq})
	if info.HasNextPage {
		t.Fatal("page 2: HasNextPage true")
	}
}
