package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/service"
	"github.com/fluxgate/fluxgate/store"
)

const rollbackMutation = `mutation($id: ID!) { rollbackDeployment(deploymentId: $id) { __typename
	... on RollbackStarted { commitSha message deployment { id version commitSha branch status method message
		deployedBy { name } rollbackOf { id version commitSha } } }
	... on ConfigConflict { conflicts { file resource path base theirs ours } } } }`

type rollbackResp struct {
	RollbackDeployment struct {
		Typename   string `json:"__typename"`
		CommitSha  string
		Message    string
		Deployment struct {
			ID, Version, CommitSha, Branch, Status, Method, Message string
			DeployedBy                                              *struct{ Name string }
			RollbackOf                                              *struct{ ID, Version, CommitSha string }
		}
		Conflicts []struct{ File, Resource, Path, Base, Theirs, Ours string }
	}
}

// markApplied records, as the tracker would, that Flux applied a
// deployment and it became healthy.
func markApplied(t *testing.T, db *store.DB, id string) {
	t.Helper()
	ctx := context.Background()
	d, err := db.GetDeployment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	d.Status, d.FinishedAt = fluxgate.DeploymentSucceeded, &now
	for i := range d.Steps {
		d.Steps[i].Status, d.Steps[i].At = "done", &now
	}
	if err := db.UpdateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// Deploy 1.0, then 1.1 (both applied), push an unrelated change, roll back
// to the first: one new commit on the remote whose manifest has image 1.0
// again and keeps the later change; then the refusals.
func TestRollbackDeploymentEndToEnd(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		db := open(t)
		s := startDeployStack(t, db, nil)
		ctx := context.Background()
		alice, bob, carol := s.token("alice", "Alice"), s.token("bob", "Bob"), s.token("carol", "Carol")
		aliceID := s.viewerID(alice)
		pid := s.createProject(alice, "rollback")
		s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
			map[string]any{"in": map[string]any{"projectId": pid, "userId": s.viewerID(bob), "role": "VIEWER"}}, nil)
		s.viewerID(carol) // signed in, not a member

		bare := seedRemote(t)
		s.connectRepo(alice, pid, "file://"+bare)
		envID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "dev", "type": "DEVELOPMENT"})
		const manifest = "k8s/overlays/dev/deployment.yaml"
		deploy := func(in map[string]any) deployResp {
			t.Helper()
			in["environmentId"] = envID
			var dr deployResp
			s.must(alice, deployMutation, map[string]any{"in": in}, &dr)
			return dr
		}

		first := deploy(map[string]any{"image": "acme/web:1.0"}).DeployWithGitOps.Deployment
		markApplied(t, db, first.ID)
		second := deploy(map[string]any{"image": "acme/web:1.1"}).DeployWithGitOps.Deployment
		markApplied(t, db, second.ID)
		// Pushed after the deployed commit, not applied yet: a rollback keeps it.
		later := deploy(map[string]any{"replicas": 5}).DeployWithGitOps.Deployment
		if later.CommitSha != git(t, bare, "rev-parse", "main") {
			t.Fatalf("later deploy %+v is not the head", later)
		}

		// Refusals first: nothing reaches the remote.
		if r := s.do(bob, rollbackMutation, map[string]any{"id": first.ID}); r.code() != "FORBIDDEN" {
			t.Fatalf("viewer rollback: code %q errors %+v", r.code(), r.Errors)
		}
		if r := s.do(carol, rollbackMutation, map[string]any{"id": first.ID}); r.code() != "NOT_FOUND" {
			t.Fatalf("outsider rollback: code %q errors %+v", r.code(), r.Errors)
		}
		if r := s.do(alice, rollbackMutation, map[string]any{"id": "01890000-0000-7000-8000-000000000000"}); r.code() != "NOT_FOUND" {
			t.Fatalf("unknown deployment: code %q errors %+v", r.code(), r.Errors)
		}
		if h := git(t, bare, "rev-parse", "main"); h != later.CommitSha {
			t.Fatalf("a refused rollback moved main to %s", h)
		}

		// The rollback.
		var rr rollbackResp
		s.must(alice, rollbackMutation, map[string]any{"id": first.ID}, &rr)
		res := rr.RollbackDeployment
		head := git(t, bare, "rev-parse", "main")
		if res.Typename != "RollbackStarted" || res.CommitSha != head || head == later.CommitSha {
			t.Fatalf("rollbackDeployment = %+v, remote main %s", res, head)
		}
		if git(t, bare, "rev-parse", "main~1") != later.CommitSha {
			t.Fatal("the rollback is not exactly one commit on top of the head")
		}
		d := res.Deployment
		if d.CommitSha != head || d.Method != "GITOPS_UI" || d.Status != "PENDING" || d.Branch != "main" || d.Version != "1.0" ||
			d.DeployedBy == nil || d.DeployedBy.Name != "Alice" || d.RollbackOf == nil || d.RollbackOf.ID != first.ID ||
			d.RollbackOf.CommitSha != first.CommitSha || d.RollbackOf.Version != "1.0" {
			t.Fatalf("rollback deployment = %+v", d)
		}
		content := git(t, bare, "show", "main:"+manifest)
		if !strings.Contains(content, `image: "acme/web:1.0" # pinned`) || !strings.Contains(content, "replicas: 5 # scaled by the UI") {
			t.Fatalf("rolled back manifest:\n%s", content)
		}
		removed, added := diffLines(t, bare, later.CommitSha, head)
		if !slices.Equal(removed, []string{`          image: "acme/web:1.1" # pinned`}) || !slices.Equal(added, []string{`          image: "acme/web:1.0" # pinned`}) {
			t.Fatalf("rollback diff: removed %q added %q (only the image may change)", removed, added)
		}
		wantMsg := "chore(deploy): roll back dev to " + first.CommitSha[:7] + " (1.0)\n\nRolled back via fluxgate by Alice"
		if got := git(t, bare, "log", "-1", "--format=%an <%ae>|%B", "main"); got != "Alice <alice@example.com>|"+wantMsg {
			t.Fatalf("rollback commit = %q\nwant author Alice and %q", got, wantMsg)
		}
		if d.Message != strings.SplitN(wantMsg, "\n", 2)[0] {
			t.Fatalf("deployment message = %q", d.Message)
		}

		// Read back: rollbackOf by id; the target is no rollback itself.
		var byID struct {
			Rolled, Target struct {
				RollbackOf *struct{ ID string }
			}
		}
		s.must(alice, `query($a: ID!, $b: ID!) { rolled: deployment(id: $a) { rollbackOf { id } } target: deployment(id: $b) { rollbackOf { id } } }`,
			map[string]any{"a": d.ID, "b": first.ID}, &byID)
		if byID.Rolled.RollbackOf == nil || byID.Rolled.RollbackOf.ID != first.ID || byID.Target.RollbackOf != nil {
			t.Fatalf("rollbackOf by id = %+v", byID)
		}
		// The stored row, its change and its audit entry.
		row, err := db.GetDeployment(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		rc, ok := service.ParseRollbackChange(row.Change)
		if row.RollbackOf == nil || *row.RollbackOf != first.ID || row.DeployedBy != aliceID || !ok ||
			rc.TargetDeploymentID != first.ID || rc.TargetCommitSHA != first.CommitSha || rc.BaseRevision != second.CommitSha ||
			rc.BaseDeploymentID != second.ID || !slices.Equal(rc.Files, []string{manifest}) {
			t.Fatalf("row = %+v change %s", row, row.Change)
		}
		audit := s.auditEntries(alice, pid)
		if !slices.ContainsFunc(audit, func(e auditEntry) bool {
			return e.Action == "deploy.rollback" && e.TargetID == d.ID
		}) {
			t.Fatalf("no deploy.rollback audit entry for %s: %+v", d.ID, audit)
		}

		// Again: the environment already has the target's manifests.
		r := s.do(alice, rollbackMutation, map[string]any{"id": first.ID})
		if r.code() != "INVALID_INPUT" || !strings.Contains(r.Errors[0].Message, "nothing to change") {
			t.Fatalf("repeated rollback: code %q errors %+v", r.code(), r.Errors)
		}

		// A newer image pushed (not applied) overlaps the rollback: a
		// ConfigConflict (base: the applied 1.1), nothing written.
		newer := deploy(map[string]any{"image": "acme/web:1.2"}).DeployWithGitOps.Deployment
		s.must(alice, rollbackMutation, map[string]any{"id": first.ID}, &rr)
		res = rr.RollbackDeployment
		if res.Typename != "ConfigConflict" || len(res.Conflicts) != 1 {
			t.Fatalf("overlapping rollback = %+v", res)
		}
		if c := res.Conflicts[0]; c.File != manifest || c.Resource != "Deployment/web" || c.Path != "spec.template.spec.containers[name=web].image" ||
			c.Base != "acme/web:1.1" || c.Theirs != "acme/web:1.2" || c.Ours != "acme/web:1.0" {
			t.Fatalf("conflict = %+v", c)
		}
		if h := git(t, bare, "rev-parse", "main"); h != newer.CommitSha {
			t.Fatalf("a conflicting rollback moved main to %s", h)
		}

		// An environment that requires approval: a deployment without a
		// commit cannot be rolled back to; one with a commit is held.
		prodID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION",
			"gitops":   map[string]any{"enabled": true, "autoSync": true, "gitBranch": "main", "gitPath": "k8s/overlays/dev", "syncInterval": "1m"},
			"approval": map[string]any{"required": true, "minApprovals": 1, "approverIds": []any{aliceID}}})
		var dr deployResp
		s.must(alice, deployMutation, map[string]any{"in": map[string]any{"environmentId": prodID, "image": "acme/web:9"}}, &dr)
		waiting := dr.DeployWithGitOps.Deployment
		if waiting.Status != "AWAITING_APPROVAL" || waiting.CommitSha != "" {
			t.Fatalf("deploy to prod = %+v", waiting)
		}
		r = s.do(alice, rollbackMutation, map[string]any{"id": waiting.ID})
		if r.code() != "INVALID_INPUT" || !strings.Contains(r.Errors[0].Message, "awaits approval") {
			t.Fatalf("rollback to a deployment without commit: code %q errors %+v", r.code(), r.Errors)
		}
		pushed := &fluxgate.Deployment{ProjectID: pid, EnvironmentID: prodID, Strategy: "rolling", Method: fluxgate.MethodGitOpsGit,
			Status: fluxgate.DeploymentSucceeded, CommitSHA: first.CommitSha, Branch: "main", Version: "1.0", Message: "pushed to Git", Change: []byte("{}")}
		if err := db.CreateDeployment(ctx, pushed); err != nil {
			t.Fatal(err)
		}
		before := git(t, bare, "rev-parse", "main")
		s.must(alice, rollbackMutation, map[string]any{"id": pushed.ID}, &rr)
		res = rr.RollbackDeployment
		if res.Typename != "RollbackStarted" || res.CommitSha != "" || res.Deployment.Status != "AWAITING_APPROVAL" ||
			res.Deployment.CommitSha != "" || res.Deployment.RollbackOf == nil || res.Deployment.RollbackOf.ID != pushed.ID || !strings.Contains(res.Message, "approval") {
			t.Fatalf("rollback in an approval environment = %+v", res)
		}
		if h := git(t, bare, "rev-parse", "main"); h != before {
			t.Fatal("a rollback awaiting approval was committed")
		}
		row, err = db.GetDeployment(ctx, res.Deployment.ID)
		if err != nil {
			t.Fatal(err)
		}
		rc, ok = service.ParseRollbackChange(row.Change)
		if !ok || rc.Kind != "rollback" || rc.TargetDeploymentID != pushed.ID || rc.TargetCommitSHA != first.CommitSha ||
			rc.BaseRevision != before || rc.BaseDeploymentID != "" || rc.Branch != "main" || rc.Path != "k8s/overlays/dev" || len(rc.Files) != 0 {
			t.Fatalf("held rollback change = %s", row.Change)
		}
	})
}
