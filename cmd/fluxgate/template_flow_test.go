package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemplateOnboardingOnLocalCluster onboards a new project as a user
// would, on the local cluster: an empty repository is connected, the
// web-app-basic template scaffolds it and creates the Flux objects, the real
// controllers apply it, and a UI deploy then rolls out through it.
func TestTemplateOnboardingOnLocalCluster(t *testing.T) {
	requireClusterBinaries(t)
	s := startStack(t)
	demo := s.demo()

	// An empty repository on the local Git server, next to the demo's.
	var repos struct {
		Project struct{ Repositories []struct{ CloneURL string } }
	}
	s.must(s.devToken, `query($p: ID!) { project(id: $p) { repositories { cloneUrl } } }`, map[string]any{"p": demo.projectID}, &repos)
	if len(repos.Project.Repositories) == 0 {
		t.Fatal("the demo project has no repository")
	}
	cloneURL := strings.TrimSuffix(repos.Project.Repositories[0].CloneURL, "demo.git") + "shop.git"
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", filepath.Join(s.dataDir, "cluster", "git", "shop.git")).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}

	var p struct {
		CreateProject struct {
			Project struct{ ID, Namespace string }
		}
	}
	s.must(s.devToken, `mutation { createProject(input: {slug: "shop", name: "Shop", namespace: "shop"}) { project { id namespace } } }`, nil, &p)
	pid := p.CreateProject.Project.ID
	onboarding := func() (next string, complete bool) {
		var o struct {
			Onboarding struct {
				Complete bool
				NextStep *struct{ ID string }
			}
		}
		s.must(s.devToken, `query($p: ID!) { onboarding(projectId: $p) { complete nextStep { id } } }`, map[string]any{"p": pid}, &o)
		if o.Onboarding.NextStep != nil {
			next = o.Onboarding.NextStep.ID
		}
		return next, o.Onboarding.Complete
	}
	if _, complete := onboarding(); complete {
		t.Fatal("a new project's onboarding is complete")
	}
	var env struct {
		CreateEnvironment struct{ Environment struct{ ID string } }
	}
	s.must(s.devToken, `mutation($p: ID!) { createEnvironment(input: {projectId: $p, name: "dev", type: DEVELOPMENT}) { environment { id } } }`,
		map[string]any{"p": pid}, &env)
	dev := env.CreateEnvironment.Environment.ID
	var repo struct {
		ConnectRepository struct{ Repository struct{ ID string } }
	}
	s.must(s.devToken, `mutation($p: ID!, $u: String!) { connectRepository(input: {projectId: $p, cloneUrl: $u, defaultBranch: "main"}) { repository { id } } }`,
		map[string]any{"p": pid, "u": cloneURL}, &repo)

	var applied struct {
		ApplyTemplate struct {
			CommitSha        string
			Created          []string
			CreatedResources []struct{ ID, Kind, Name string }
		}
	}
	s.must(s.devToken, `mutation($in: ApplyTemplateInput!) { applyTemplate(input: $in) { commitSha created createdResources { id kind name } } }`,
		map[string]any{"in": map[string]any{"projectId": pid, "repositoryId": repo.ConnectRepository.Repository.ID, "templateId": "web-app-basic",
			"params": []any{map[string]any{"name": "name", "value": "web"}, map[string]any{"name": "image", "value": "nginx:1.27.0"},
				map[string]any{"name": "replicas", "value": "2"}}}}, &applied)
	a := applied.ApplyTemplate
	if len(a.CommitSha) != 40 || len(a.Created) == 0 || len(a.CreatedResources) != 2 {
		t.Fatalf("applyTemplate = %+v", a)
	}

	// The real controllers fetch and apply it; the health check passes once
	// KWOK's pods are ready.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var rs struct {
			GitopsResources struct {
				Edges []struct {
					Node struct{ Kind, Name, Status, ErrorMessage string }
				}
			}
		}
		s.must(s.devToken, `query($p: ID!) { gitopsResources(projectId: $p) { edges { node { kind name status errorMessage } } } }`, map[string]any{"p": pid}, &rs)
		ready := 0
		for _, e := range rs.GitopsResources.Edges {
			if e.Node.Status == "READY" {
				ready++
			}
		}
		if len(rs.GitopsResources.Edges) == 2 && ready == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scaffolded resources not READY: %+v", rs.GitopsResources.Edges)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if next, complete := onboarding(); !complete {
		t.Fatalf("onboarding after applyTemplate: next step %q", next)
	}

	// The scaffold is what a UI deploy edits.
	w := s.watchDeployments(s.devToken, pid, dev)
	dep := s.deploy(s.devToken, dev, "nginx:1.27.1")
	states := w.until(func(m deploymentMsg) bool { return m.ID == dep.ID }, 2*time.Minute)
	checkOrder(t, states)
	final := states[len(states)-1]
	if h := final.step("healthy"); final.Status != "SUCCEEDED" || h.ReadyPods != 2 || h.TotalPods != 2 {
		t.Fatalf("deploy to the scaffolded app: %s %+v", final.Status, final.Steps)
	}
	if got := s.clusterImageOf("shop", "web-dev"); got != "nginx:1.27.1" {
		t.Fatalf("cluster runs %s after the deploy", got)
	}
}
