package server_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/fluxgate/fluxgate/store"
)

const (
	approveMutation = `mutation($id: ID!, $comment: String) { approveDeployment(id: $id, comment: $comment) {
		__typename
		... on DeploymentApproval { approval { user { name } decision comment at } deployment { id status commitSha requiredApprovals } }
		... on ApprovalConflict { deployment { id status } conflicts { path theirs ours } } } }`
	rejectMutation = `mutation($id: ID!, $reason: String!) { rejectDeployment(id: $id, reason: $reason) {
		deployment { id status finishedAt steps { status message } } } }`
	approvalsQuery = `query($id: ID!) { deployment(id: $id) { status commitSha requiredApprovals
		approvals { user { name } decision comment at } } }`
)

type approveResp struct {
	ApproveDeployment struct {
		Typename string `json:"__typename"`
		Approval struct {
			User              struct{ Name string }
			Decision, Comment string
			At                string
		}
		Deployment struct {
			ID, Status, CommitSha string
			RequiredApprovals     int
		}
		Conflicts []struct{ Path, Theirs, Ours string }
	}
}

type approvalsResp struct {
	Deployment struct {
		Status, CommitSha string
		RequiredApprovals int
		Approvals         []struct {
			User                  struct{ Name string }
			Decision, Comment, At string
		}
	}
}

// TestApprovalsEndToEnd: deploys and config changes to an environment
// that requires two approvals, over GraphQL HTTP, on each backend; what
// lands on the bare remote is checked with the git CLI.
func TestApprovalsEndToEnd(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		db := open(t)
		s := startDeployStack(t, db, nil)
		alice, bob, carol, dave, erin := s.token("alice", "Alice"), s.token("bob", "Bob"), s.token("carol", "Carol"), s.token("dave", "Dave"), s.token("erin", "Erin")
		pid := s.createProject(alice, "approvals")
		for tok, role := range map[string]string{bob: "MAINTAINER", carol: "MAINTAINER", erin: "MAINTAINER", dave: "DEVELOPER"} {
			s.must(alice, `mutation($in: AddProjectMemberInput!) { addProjectMember(input: $in) { member { role } } }`,
				map[string]any{"in": map[string]any{"projectId": pid, "userId": s.viewerID(tok), "role": role}}, nil)
		}
		bare := seedRemote(t)
		s.connectRepo(alice, pid, "file://"+bare)
		envID := s.createEnv(alice, map[string]any{"projectId": pid, "name": "prod", "type": "PRODUCTION",
			"gitops":   map[string]any{"enabled": true, "autoSync": true, "gitBranch": "main", "gitPath": "k8s/overlays/dev", "syncInterval": "1m"},
			"approval": map[string]any{"required": true, "minApprovals": 2}})
		head := func() string { return git(t, bare, "rev-parse", "main") }
		initial := head()

		deploy := func(image string) string {
			t.Helper()
			var dr deployResp
			s.must(bob, deployMutation, map[string]any{"in": map[string]any{"environmentId": envID, "image": image}}, &dr)
			if d := dr.DeployWithGitOps.Deployment; d.Status != "AWAITING_APPROVAL" || d.CommitSha != "" {
				t.Fatalf("deploy to prod = %+v", d)
			}
			return dr.DeployWithGitOps.Deployment.ID
		}
		d1 := deploy("acme/web:2.0.0")
		var q approvalsResp
		s.must(bob, approvalsQuery, map[string]any{"id": d1}, &q)
		if q.Deployment.RequiredApprovals != 2 || len(q.Deployment.Approvals) != 0 || head() != initial {
			t.Fatalf("held deployment = %+v", q.Deployment)
		}

		// The requester and a developer may not approve.
		r := s.do(bob, approveMutation, map[string]any{"id": d1})
		if r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "you requested this deployment") {
			t.Fatalf("self-approval: %+v", r.Errors)
		}
		if r := s.do(dave, approveMutation, map[string]any{"id": d1}); r.code() != "FORBIDDEN" {
			t.Fatalf("developer approval: %+v", r.Errors)
		}

		// One approval of two: still held.
		var ar approveResp
		s.must(carol, approveMutation, map[string]any{"id": d1, "comment": "ship it"}, &ar)
		a := ar.ApproveDeployment
		if a.Typename != "DeploymentApproval" || a.Deployment.Status != "AWAITING_APPROVAL" || a.Approval.User.Name != "Carol" ||
			a.Approval.Decision != "APPROVED" || a.Approval.Comment != "ship it" || a.Approval.At == "" || head() != initial {
			t.Fatalf("first approval = %+v", a)
		}
		if r := s.do(carol, approveMutation, map[string]any{"id": d1}); r.code() != "CONFLICT" {
			t.Fatalf("second decision: %+v", r.Errors)
		}

		// The second commits, as Bob.
		s.must(alice, approveMutation, map[string]any{"id": d1}, &ar)
		a = ar.ApproveDeployment
		if a.Deployment.Status != "PENDING" || a.Deployment.CommitSha != head() || head() == initial {
			t.Fatalf("second approval = %+v, head %s", a, head())
		}
		if got := git(t, bare, "log", "-1", "--format=%an|%s", "main"); got != "Bob|chore(deploy): update image to acme/web:2.0.0" {
			t.Fatalf("approved commit = %q", got)
		}
		if m := git(t, bare, "show", "main:k8s/overlays/dev/deployment.yaml"); !strings.Contains(m, `image: "acme/web:2.0.0" # pinned`) {
			t.Fatalf("manifest:\n%s", m)
		}
		s.must(dave, approvalsQuery, map[string]any{"id": d1}, &q)
		if len(q.Deployment.Approvals) != 2 || q.Deployment.Approvals[0].User.Name != "Carol" || q.Deployment.Approvals[1].User.Name != "Alice" ||
			q.Deployment.Approvals[1].Decision != "APPROVED" || q.Deployment.CommitSha != head() {
			t.Fatalf("approvals = %+v", q.Deployment)
		}

		// Reject: final, and blocks later approvals.
		d2 := deploy("acme/web:3.0.0")
		if r := s.do(carol, rejectMutation, map[string]any{"id": d2, "reason": " "}); r.code() != "INVALID_INPUT" || r.field() != "reason" {
			t.Fatalf("empty reason: %+v", r.Errors)
		}
		var rr struct {
			RejectDeployment struct {
				Deployment struct {
					ID, Status string
					FinishedAt *string
					Steps      []struct{ Status, Message string }
				}
			}
		}
		s.must(carol, rejectMutation, map[string]any{"id": d2, "reason": "freeze until Monday"}, &rr)
		if d := rr.RejectDeployment.Deployment; d.Status != "REJECTED" || d.FinishedAt == nil || !strings.Contains(d.Steps[0].Message, "freeze until Monday") {
			t.Fatalf("rejected = %+v", d)
		}
		if r := s.do(alice, approveMutation, map[string]any{"id": d2}); r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "awaiting approval") {
			t.Fatalf("approval after rejection: %+v", r.Errors)
		}
		s.must(dave, approvalsQuery, map[string]any{"id": d2}, &q)
		if len(q.Deployment.Approvals) != 1 || q.Deployment.Approvals[0].Decision != "REJECTED" || q.Deployment.Approvals[0].Comment != "freeze until Monday" {
			t.Fatalf("rejected approvals = %+v", q.Deployment.Approvals)
		}

		// Two approvers at once complete the approvals: one commit.
		d3 := deploy("acme/web:4.0.0")
		s.must(carol, approveMutation, map[string]any{"id": d3}, nil)
		before := head()
		var wg sync.WaitGroup
		codes := make([]string, 2)
		for i, tok := range []string{alice, erin} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = s.do(tok, approveMutation, map[string]any{"id": d3}).code()
			}()
		}
		wg.Wait()
		if n := git(t, bare, "rev-list", "--count", before+"..main"); n != "1" {
			t.Fatalf("concurrent approvals pushed %s commits (codes %v), want 1", n, codes)
		}
		if !(codes[0] == "" && codes[1] == "CONFLICT" || codes[0] == "CONFLICT" && codes[1] == "") {
			t.Fatalf("concurrent approvals: codes %v, want one success and one CONFLICT", codes)
		}

		// A config change is held too.
		var cr struct {
			CommitConfigChanges struct {
				Typename   string `json:"__typename"`
				Deployment struct{ ID, Status string }
			}
		}
		s.must(bob, `mutation($in: CommitConfigChangesInput!) { commitConfigChanges(input: $in) { __typename
			... on ConfigAwaitingApproval { deployment { id status } } } }`,
			map[string]any{"in": map[string]any{"environmentId": envID, "change": map[string]any{"replicas": 5}, "message": "scale to 5"}}, &cr)
		if cr.CommitConfigChanges.Typename != "ConfigAwaitingApproval" || cr.CommitConfigChanges.Deployment.Status != "AWAITING_APPROVAL" {
			t.Fatalf("held config change = %+v", cr.CommitConfigChanges)
		}

		// The history lists each deployment's decisions (batched loaders).
		var list struct {
			Deployments struct {
				Edges []struct {
					Node struct {
						ID                string
						RequiredApprovals int
						Approvals         []struct{ Decision string }
					}
				}
			}
		}
		s.must(dave, `query($p: ID!) { deployments(projectId: $p, first: 50) { edges { node { id requiredApprovals approvals { decision } } } } }`,
			map[string]any{"p": pid}, &list)
		want := map[string]int{d1: 2, d2: 1, d3: 2, cr.CommitConfigChanges.Deployment.ID: 0}
		for _, e := range list.Deployments.Edges {
			n, ok := want[e.Node.ID]
			if !ok {
				continue
			}
			delete(want, e.Node.ID)
			if len(e.Node.Approvals) != n || e.Node.RequiredApprovals != 2 {
				t.Errorf("deployment %s: %d decisions (want %d), requiredApprovals %d", e.Node.ID, len(e.Node.Approvals), n, e.Node.RequiredApprovals)
			}
		}
		if len(want) > 0 {
			t.Fatalf("deployments missing from the list: %v", want)
		}

		// Every decision is in the audit log.
		var audit struct {
			Project struct {
				AuditLog struct {
					Edges []struct {
						Node struct {
							Action, TargetID string
							Actor            *struct{ Name string }
						}
					}
				}
			}
		}
		s.must(alice, `query($id: ID) { project(id: $id) { auditLog(first: 100) { edges { node { action targetId actor { name } } } } } }`, map[string]any{"id": pid}, &audit)
		count := map[string]int{}
		for _, e := range audit.Project.AuditLog.Edges {
			n := e.Node
			count[n.Action+" "+n.TargetID]++
			if n.Action == "deploy.rejected" && (n.Actor == nil || n.Actor.Name != "Carol") {
				t.Fatalf("deploy.rejected actor = %+v", n.Actor)
			}
		}
		for key, want := range map[string]int{
			"deploy.requested " + d1: 1, "deploy.approved " + d1: 2, "deploy.committed " + d1: 1,
			"deploy.rejected " + d2: 1, "deploy.approved " + d2: 0,
			"deploy.approved " + d3: 2, "deploy.committed " + d3: 1,
			"config.requested " + cr.CommitConfigChanges.Deployment.ID: 1,
		} {
			if count[key] != want {
				t.Errorf("audit %q: %d entries, want %d", key, count[key], want)
			}
		}
	})
}
