package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// deploymentFields is what the flow tests read of a deployment.
const deploymentFields = `id status method commitSha message version
	commitAuthor { name email }
	steps { name status at message readyPods totalPods }`

type stepMsg struct {
	Name, Status, Message string
	At                    *time.Time
	ReadyPods, TotalPods  int
}

type deploymentMsg struct {
	ID, Status, Method, CommitSha, Message, Version string
	CommitAuthor                                    *struct{ Name, Email string }
	Steps                                           []stepMsg
}

// reached is the index of the furthest step done (0 committed … 3
// healthy), -1 for none.
func (d deploymentMsg) reached() int {
	r := -1
	for i, s := range d.Steps {
		if s.Status == "done" {
			r = i
		}
	}
	return r
}

func (d deploymentMsg) step(name string) stepMsg {
	for _, s := range d.Steps {
		if s.Name == name {
			return s
		}
	}
	return stepMsg{}
}

func (d deploymentMsg) final() bool {
	switch d.Status {
	case "SUCCEEDED", "FAILED", "REJECTED", "SUPERSEDED":
		return true
	}
	return false
}

// seenState is one state of a deployment as a subscriber got it.
type seenState struct {
	deploymentMsg
	at time.Time
}

// watcher follows a project's deploymentsChanged stream and hands out the
// states of one deployment at a time (others are kept for later).
type watcher struct {
	t   testing.TB
	sub *subscription
	got []seenState
}

func (s *stack) watchDeployments(token, projectID, environmentID string) *watcher {
	sub := s.subscribe(token, `subscription($p: ID!, $e: ID) { deploymentsChanged(projectId: $p, environmentId: $e) { `+deploymentFields+` } }`,
		map[string]any{"p": projectID, "e": environmentID})
	return &watcher{t: s.t, sub: sub}
}

// until returns the states of the first deployment match accepts, in the
// order they arrived, up to and including its final one.
func (w *watcher) until(match func(deploymentMsg) bool, timeout time.Duration) []seenState {
	w.t.Helper()
	return w.untilState(match, deploymentMsg.final, timeout)
}

// untilState is until that stops at the first state stop accepts.
func (w *watcher) untilState(match, stop func(deploymentMsg) bool, timeout time.Duration) []seenState {
	w.t.Helper()
	var out []seenState
	id := ""
	take := func(st seenState) bool {
		if id == "" && match(st.deploymentMsg) {
			id = st.ID
		}
		if id == "" || st.ID != id {
			return false
		}
		out = append(out, st)
		return stop(st.deploymentMsg)
	}
	kept := w.got[:0]
	done := false
	for _, st := range w.got {
		if !done && take(st) {
			done = true
			continue
		}
		if id == "" || st.ID != id {
			kept = append(kept, st)
		}
	}
	w.got = kept
	deadline := time.Now().Add(timeout)
	for !done {
		left := time.Until(deadline)
		if left <= 0 {
			w.t.Fatalf("deployment %q did not finish within %s; states: %+v", id, timeout, out)
		}
		data, at, end := w.sub.result(left)
		if end {
			w.t.Fatal("deploymentsChanged completed")
		}
		var m struct{ DeploymentsChanged deploymentMsg }
		if err := json.Unmarshal(data, &m); err != nil {
			w.t.Fatal(err)
		}
		st := seenState{m.DeploymentsChanged, at}
		if !take(st) {
			if id == "" || st.ID != id {
				w.got = append(w.got, st)
			}
			continue
		}
		done = true
	}
	return out
}

// checkOrder fails unless the states move forward only (the furthest step
// never goes back) and the final one has every step done with times in
// order. It returns how many distinct steps the subscriber saw reached.
func checkOrder(t testing.TB, states []seenState) int {
	t.Helper()
	last, distinct := -2, 0
	for _, st := range states {
		r := st.reached()
		if r < last {
			t.Fatalf("deployment went back from step %d to %d: %+v", last, r, states)
		}
		if r > last {
			distinct++
		}
		last = r
	}
	final := states[len(states)-1]
	var prev time.Time
	for _, name := range []string{"committed", "fetched", "applied", "healthy"} {
		s := final.step(name)
		if s.Status != "done" || s.At == nil {
			t.Fatalf("final state: step %s is %s (%s)", name, s.Status, s.Message)
		}
		if s.At.Before(prev) {
			t.Fatalf("step %s at %s before the previous step at %s", name, s.At, prev)
		}
		prev = *s.At
	}
	return distinct
}

// firstReached is when the subscriber first saw step i done.
func firstReached(states []seenState, i int) time.Time {
	for _, st := range states {
		if st.reached() >= i {
			return st.at
		}
	}
	return time.Time{}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1)*p + 0.5)
	return s[i]
}

// demoProject is the demo project as the flow tests see it.
type demoProject struct {
	projectID string
	env       map[string]string // name → id
	resources map[string]string // KIND/name (e.g. GIT_REPOSITORY/demo-development) → id
}

func (s *stack) demo() demoProject {
	s.t.Helper()
	projectID := s.waitDemoReady()
	var q struct {
		Project struct {
			Environments []struct{ ID, Name string }
		}
		GitopsResources struct {
			Edges []struct {
				Node struct{ ID, Kind, Name string }
			}
		}
	}
	s.must(s.devToken, `query($p: ID!) { project(id: $p) { environments { id name } }
		gitopsResources(projectId: $p) { edges { node { id kind name } } } }`, map[string]any{"p": projectID}, &q)
	d := demoProject{projectID: projectID, env: map[string]string{}, resources: map[string]string{}}
	for _, e := range q.Project.Environments {
		d.env[e.Name] = e.ID
	}
	for _, e := range q.GitopsResources.Edges {
		d.resources[e.Node.Kind+"/"+e.Node.Name] = e.Node.ID
	}
	return d
}

// deploy runs deployWithGitOps for image and returns the deployment.
func (s *stack) deploy(token, environmentID, image string) deploymentMsg {
	s.t.Helper()
	var r struct {
		DeployWithGitOps struct{ Deployment deploymentMsg }
	}
	s.must(token, `mutation($in: DeployWithGitOpsInput!) { deployWithGitOps(input: $in) { deployment { `+deploymentFields+` } } }`,
		map[string]any{"in": map[string]any{"environmentId": environmentID, "image": image}}, &r)
	return r.DeployWithGitOps.Deployment
}

// clusterImage reads the image of the demo app's Deployment in namespace.
func (s *stack) clusterImage(namespace string) string {
	s.t.Helper()
	return s.clusterImageOf(namespace, "demo-app")
}

// clusterImageOf reads the image of a Deployment's first container.
func (s *stack) clusterImageOf(namespace, name string) string {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.clusterStatus().Kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		s.t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// push commits a change to the demo repository with the git CLI, as
// someone working outside fluxgate would, and returns the commit SHA.
func (s *stack) push(author, message string, edit func(dir string)) string {
	s.t.Helper()
	bare := filepath.Join(s.dataDir, "cluster", "git", "demo.git")
	work := filepath.Join(s.t.TempDir(), "demo")
	git := func(dir string, args ...string) string {
		s.t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null",
			"GIT_AUTHOR_NAME="+author, "GIT_AUTHOR_EMAIL="+strings.ToLower(strings.Fields(author)[0])+"@example.com",
			"GIT_COMMITTER_NAME="+author, "GIT_COMMITTER_EMAIL=ci@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			s.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(filepath.Dir(work), "clone", "-q", "-b", "main", bare, work)
	edit(work)
	git(work, "commit", "-q", "-am", message)
	git(work, "push", "-q", "origin", "main")
	return git(work, "rev-parse", "HEAD")
}

func replaceInFile(t testing.TB, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q:\n%s", path, old, b)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGitOpsFlowOnLocalCluster follows deployments end to end on the local
// cluster (real kube-apiserver, real source- and kustomize-controller,
// KWOK nodes), as a browser would: over websocket subscriptions.
func TestGitOpsFlowOnLocalCluster(t *testing.T) {
	requireClusterBinaries(t)
	s := startStack(t)
	d := s.demo()
	dev := d.env["development"]
	if dev == "" || d.env["production"] == "" {
		t.Fatalf("demo environments = %v", d.env)
	}
	w := s.watchDeployments(s.devToken, d.projectID, dev)

	var first string // the first UI deploy: nginx:1.27.1
	t.Run("UI deploys reach HEALTHY in order", func(t *testing.T) {
		const n = 10
		f := measureDeploys(t, s, w, dev, n, "nginx:1.27.")
		first = f.ids[0]
		if f.separate == 0 {
			t.Fatalf("no deploy was seen at COMMITTED, FETCHED, APPLIED and HEALTHY one after the other")
		}
		t.Logf("deploy mutation → seen by a subscriber, over %d deploys (%d seen at all four steps separately):", n, f.separate)
		f.log(t)
	})

	t.Run("a push made outside fluxgate becomes a GITOPS_GIT deployment", func(t *testing.T) {
		sha := s.push("Grace Hopper", "feat: nginx 1.28.0 in development\n\nTested on staging first.", func(dir string) {
			replaceInFile(t, filepath.Join(dir, "k8s/overlays/development/deployment.yaml"), "image: nginx:1.27.10", "image: nginx:1.28.0")
		})
		// A Git host's webhook would tell Flux at once; here the user asks.
		s.must(s.devToken, `mutation($id: ID!) { triggerSync(input: {id: $id, waitSeconds: 0}) { token } }`,
			map[string]any{"id": d.resources["GIT_REPOSITORY/demo-development"]}, nil)
		states := w.until(func(m deploymentMsg) bool { return m.CommitSha == sha }, 2*time.Minute)
		final := states[len(states)-1]
		checkOrder(t, states)
		if final.Method != "GITOPS_GIT" || final.Status != "SUCCEEDED" || final.Message != "feat: nginx 1.28.0 in development" ||
			final.CommitAuthor == nil || final.CommitAuthor.Name != "Grace Hopper" || final.CommitAuthor.Email != "grace@example.com" {
			t.Fatalf("pushed deployment = %+v (author %+v)", final, final.CommitAuthor)
		}
		if got := s.clusterImage("demo-development"); got != "nginx:1.28.0" {
			t.Fatalf("cluster runs %s after the push", got)
		}
	})

	t.Run("a broken manifest fails with Flux's message", func(t *testing.T) {
		var cfg struct {
			EnvironmentConfig struct {
				Revision string
				Files    []struct{ Path, Content string }
			}
		}
		s.must(s.devToken, `query($e: ID!) { environmentConfig(environmentId: $e) { revision files { path content } } }`,
			map[string]any{"e": dev}, &cfg)
		const path = "k8s/overlays/development/kustomization.yaml"
		var original string
		for _, f := range cfg.EnvironmentConfig.Files {
			if f.Path == path {
				original = f.Content
			}
		}
		if !strings.Contains(original, "- ../../base") {
			t.Fatalf("%s = %q", path, original)
		}
		commit := func(content, message string) deploymentMsg {
			t.Helper()
			var r struct {
				CommitConfigChanges struct {
					Typename   string `json:"__typename"`
					Deployment deploymentMsg
				}
			}
			s.must(s.devToken, `mutation($in: CommitConfigChangesInput!) { commitConfigChanges(input: $in) {
				__typename ... on ConfigCommitted { deployment { `+deploymentFields+` } } } }`,
				map[string]any{"in": map[string]any{"environmentId": dev, "message": message,
					"files": []any{map[string]any{"path": path, "content": content}}}}, &r)
			if r.CommitConfigChanges.Typename != "ConfigCommitted" {
				t.Fatalf("commitConfigChanges = %s", r.CommitConfigChanges.Typename)
			}
			return r.CommitConfigChanges.Deployment
		}
		broken := commit(strings.Replace(original, "- ../../base", "- ../../base\n  - missing.yaml", 1), "chore: add a manifest that is not there")
		states := w.until(func(m deploymentMsg) bool { return m.ID == broken.ID }, 2*time.Minute)
		final := states[len(states)-1]
		var failed stepMsg
		for _, st := range final.Steps {
			if st.Status == "failed" {
				failed = st
			}
		}
		if final.Status != "FAILED" || !strings.Contains(failed.Message, "missing.yaml") {
			t.Fatalf("broken manifest: %s, steps %+v", final.Status, final.Steps)
		}
		t.Logf("Flux's message: %s", failed.Message)

		fixed := commit(original, "chore: drop the missing manifest")
		states = w.until(func(m deploymentMsg) bool { return m.ID == fixed.ID }, 2*time.Minute)
		if final := states[len(states)-1]; final.Status != "SUCCEEDED" {
			t.Fatalf("after the fix: %s %+v", final.Status, final.Steps)
		}
	})

	t.Run("two approvers: the requester cannot approve, the second approval commits", func(t *testing.T) {
		prod := d.env["production"]
		wp := s.watchDeployments(s.devToken, d.projectID, prod)
		approvers := map[string]string{}
		for _, name := range []string{"alice", "bob"} {
			tok := s.token(name, strings.ToUpper(name[:1])+name[1:])
			var me struct{ Viewer struct{ ID string } }
			s.must(tok, `{ viewer { id } }`, nil, &me)
			s.must(s.devToken, `mutation($p: ID!, $u: ID!) { addProjectMember(input: {projectId: $p, userId: $u, role: MAINTAINER}) { member { role } } }`,
				map[string]any{"p": d.projectID, "u": me.Viewer.ID}, nil)
			approvers[name] = tok
		}
		held := s.deploy(s.devToken, prod, "nginx:1.29.0")
		if held.Status != "AWAITING_APPROVAL" || held.CommitSha != "" {
			t.Fatalf("deploy to production = %+v, want AWAITING_APPROVAL without a commit", held)
		}
		const approve = `mutation($id: ID!, $c: String) { approveDeployment(id: $id, comment: $c) { __typename
			... on DeploymentApproval { deployment { status commitSha requiredApprovals approvals { decision user { name } } } } } }`
		type approval struct {
			ApproveDeployment struct {
				Typename   string `json:"__typename"`
				Deployment struct {
					Status, CommitSha string
					RequiredApprovals int
					Approvals         []struct {
						Decision string
						User     struct{ Name string }
					}
				}
			}
		}
		if errs := s.do(s.devToken, approve, map[string]any{"id": held.ID}, nil); len(errs) == 0 || errs[0].Extensions.Code != "FORBIDDEN" {
			t.Fatalf("the requester's own approval: %+v, want FORBIDDEN", errs)
		}
		var a approval
		s.must(approvers["alice"], approve, map[string]any{"id": held.ID, "c": "looks good"}, &a)
		if dep := a.ApproveDeployment.Deployment; dep.Status != "AWAITING_APPROVAL" || dep.CommitSha != "" || dep.RequiredApprovals != 2 || len(dep.Approvals) != 1 {
			t.Fatalf("after the first approval: %+v", dep)
		}
		if errs := s.do(approvers["alice"], approve, map[string]any{"id": held.ID}, nil); len(errs) == 0 || errs[0].Extensions.Code != "CONFLICT" {
			t.Fatalf("a second approval by the same person: %+v, want CONFLICT", errs)
		}
		s.must(approvers["bob"], approve, map[string]any{"id": held.ID}, &a)
		if dep := a.ApproveDeployment.Deployment; dep.Status != "PENDING" || len(dep.CommitSha) != 40 || len(dep.Approvals) != 2 {
			t.Fatalf("after the second approval: %+v", dep)
		}
		states := wp.until(func(m deploymentMsg) bool { return m.ID == held.ID && m.Status != "AWAITING_APPROVAL" }, 2*time.Minute)
		checkOrder(t, states)
		final := states[len(states)-1]
		if final.Status != "SUCCEEDED" || final.CommitAuthor == nil || final.CommitAuthor.Name != "Developer" {
			t.Fatalf("approved deploy ended %s (author %+v): %+v", final.Status, final.CommitAuthor, final.Steps)
		}
		if got := s.clusterImage("demo-production"); got != "nginx:1.29.0" {
			t.Fatalf("production runs %s after the approved deploy of nginx:1.29.0", got)
		}
	})

	t.Run("autoSync off: a push waits for syncEnvironment", func(t *testing.T) {
		ks := d.resources["KUSTOMIZATION/demo-development"]
		suspended := func() bool {
			var r struct{ GitopsResource struct{ Suspended bool } }
			s.must(s.devToken, `query($id: ID!) { gitopsResource(id: $id) { suspended } }`, map[string]any{"id": ks}, &r)
			return r.GitopsResource.Suspended
		}
		waitSuspended := func(want bool) {
			t.Helper()
			deadline := time.Now().Add(time.Minute)
			for suspended() != want {
				if time.Now().After(deadline) {
					t.Fatalf("Kustomization suspended = %v, want %v", !want, want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		setAutoSync := func(on bool) {
			s.must(s.devToken, `mutation($in: UpdateEnvironmentInput!) { updateEnvironment(input: $in) { environment { id } } }`,
				map[string]any{"in": map[string]any{"id": dev, "gitops": map[string]any{"enabled": true, "autoSync": on,
					"gitBranch": "main", "gitPath": "k8s/overlays/development", "syncInterval": "1m"}}}, nil)
		}
		setAutoSync(false)
		waitSuspended(true)
		before := s.clusterImage("demo-development")

		sha := s.push("Linus Torvalds", "chore: nginx 1.30.0", func(dir string) {
			b, err := os.ReadFile(filepath.Join(dir, "k8s/overlays/development/deployment.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			replaceInFile(t, filepath.Join(dir, "k8s/overlays/development/deployment.yaml"), "image: "+imageIn(t, string(b)), "image: nginx:1.30.0")
		})
		s.must(s.devToken, `mutation($id: ID!) { triggerSync(input: {id: $id, waitSeconds: 0}) { token } }`,
			map[string]any{"id": d.resources["GIT_REPOSITORY/demo-development"]}, nil)
		fetched := w.untilState(func(m deploymentMsg) bool { return m.CommitSha == sha },
			func(m deploymentMsg) bool { return m.reached() >= 1 || m.final() }, time.Minute)
		if last := fetched[len(fetched)-1]; last.Method != "GITOPS_GIT" || last.reached() != 1 {
			t.Fatalf("pushed deployment with autoSync off: %+v", last)
		}
		// Fetched, not applied: kustomize-controller reacts to a new artifact
		// within milliseconds when it is not suspended.
		time.Sleep(3 * time.Second)
		if got := s.clusterImage("demo-development"); got != before || !suspended() {
			t.Fatalf("with autoSync off the push was applied on its own: cluster runs %s", got)
		}

		var sync struct {
			SyncEnvironment struct {
				Revision              string
				ResumedKustomizations int
			}
		}
		s.must(s.devToken, `mutation($e: ID!) { syncEnvironment(environmentId: $e) { revision resumedKustomizations } }`, map[string]any{"e": dev}, &sync)
		if !strings.Contains(sync.SyncEnvironment.Revision, sha) || sync.SyncEnvironment.ResumedKustomizations != 1 {
			t.Fatalf("syncEnvironment = %+v, want %s and one Kustomization resumed", sync.SyncEnvironment, sha)
		}
		states := w.until(func(m deploymentMsg) bool { return m.CommitSha == sha }, 2*time.Minute)
		if final := states[len(states)-1]; final.Status != "SUCCEEDED" {
			t.Fatalf("after syncEnvironment: %s %+v", final.Status, final.Steps)
		}
		if got := s.clusterImage("demo-development"); got != "nginx:1.30.0" {
			t.Fatalf("cluster runs %s after syncEnvironment", got)
		}
		waitSuspended(true) // suspended again once applied
		setAutoSync(true)
		waitSuspended(false)
	})

	t.Run("rollback restores the earlier image", func(t *testing.T) {
		if first == "" {
			t.Fatal("no first deploy to roll back to: the UI deploys failed")
		}
		var r struct {
			RollbackDeployment struct {
				Typename   string `json:"__typename"`
				Deployment struct {
					deploymentMsg
					RollbackOf struct{ ID string }
				}
			}
		}
		s.must(s.devToken, `mutation($id: ID!) { rollbackDeployment(deploymentId: $id) { __typename
			... on RollbackStarted { deployment { `+deploymentFields+` rollbackOf { id } } } } }`, map[string]any{"id": first}, &r)
		rb := r.RollbackDeployment.Deployment
		if r.RollbackDeployment.Typename != "RollbackStarted" || rb.RollbackOf.ID != first || rb.Method != "GITOPS_UI" || rb.Version != "1.27.1" {
			t.Fatalf("rollbackDeployment = %+v", r.RollbackDeployment)
		}
		states := w.until(func(m deploymentMsg) bool { return m.ID == rb.ID }, 2*time.Minute)
		checkOrder(t, states)
		if final := states[len(states)-1]; final.Status != "SUCCEEDED" {
			t.Fatalf("rollback ended %s: %+v", final.Status, final.Steps)
		}
		if got := s.clusterImage("demo-development"); got != "nginx:1.27.1" {
			t.Fatalf("cluster runs %s after rolling back to nginx:1.27.1", got)
		}
	})
}

// deployFigures are the times from a deploy mutation until a subscriber
// saw each step.
type deployFigures struct {
	committed, applied, healthy []time.Duration
	separate                    int      // deploys seen at all four steps one after the other
	ids                         []string // the deployments, in order
}

func (f deployFigures) log(t testing.TB) {
	for _, x := range []struct {
		name string
		ds   []time.Duration
	}{{"COMMITTED", f.committed}, {"APPLIED", f.applied}, {"HEALTHY", f.healthy}} {
		t.Logf("  → %-9s p50 %6s  p95 %6s", x.name, percentile(x.ds, 0.5).Round(time.Millisecond), percentile(x.ds, 0.95).Round(time.Millisecond))
	}
}

// measureDeploys deploys imagePrefix+"1" … imagePrefix+n one after the
// other to the environment, checks that each is seen reaching every step in
// order and rolled out in the cluster, and returns the times.
func measureDeploys(t testing.TB, s *stack, w *watcher, environmentID string, n int, imagePrefix string) deployFigures {
	t.Helper()
	var f deployFigures
	for i := range n {
		image := fmt.Sprintf("%s%d", imagePrefix, i+1)
		start := time.Now()
		dep := s.deploy(s.devToken, environmentID, image)
		if dep.Status != "PENDING" || dep.Method != "GITOPS_UI" || len(dep.CommitSha) != 40 || dep.reached() != 0 {
			t.Fatalf("deploy %s = %+v, want PENDING GITOPS_UI at committed", image, dep)
		}
		states := w.until(func(m deploymentMsg) bool { return m.ID == dep.ID }, 2*time.Minute)
		final := states[len(states)-1]
		if final.Status != "SUCCEEDED" {
			t.Fatalf("deploy %s ended %s: %+v", image, final.Status, final.Steps)
		}
		if seen := checkOrder(t, states); seen == 4 {
			f.separate++
		}
		if h := final.step("healthy"); h.TotalPods != 2 || h.ReadyPods != 2 {
			t.Fatalf("healthy step %+v, want 2/2 pods", h)
		}
		if a := final.CommitAuthor; a == nil || a.Name != "Developer" {
			t.Fatalf("commit author = %+v, want the deploying user", a)
		}
		if got := s.clusterImage("demo-development"); got != image {
			t.Fatalf("cluster runs %s after deploying %s", got, image)
		}
		f.ids = append(f.ids, dep.ID)
		f.committed = append(f.committed, firstReached(states, 0).Sub(start))
		f.applied = append(f.applied, firstReached(states, 2).Sub(start))
		f.healthy = append(f.healthy, firstReached(states, 3).Sub(start))
	}
	return f
}

// BenchmarkDeployProgress prints the figures: deploy mutation →
// COMMITTED, → APPLIED and → HEALTHY as seen by a websocket subscriber, on
// the local cluster, p50 and p95 (run with -benchtime=10x).
func BenchmarkDeployProgress(b *testing.B) {
	requireClusterBinaries(b)
	s := startStack(b)
	d := s.demo()
	w := s.watchDeployments(s.devToken, d.projectID, d.env["development"])
	b.ResetTimer()
	f := measureDeploys(b, s, w, d.env["development"], b.N, "nginx:1.26.")
	b.StopTimer()
	for _, x := range []struct {
		name string
		ds   []time.Duration
	}{{"committed", f.committed}, {"applied", f.applied}, {"healthy", f.healthy}} {
		b.ReportMetric(float64(percentile(x.ds, 0.5).Milliseconds()), x.name+"-p50-ms")
		b.ReportMetric(float64(percentile(x.ds, 0.95).Milliseconds()), x.name+"-p95-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// imageIn returns the first image a manifest names.
func imageIn(t testing.TB, manifest string) string {
	t.Helper()
	for _, l := range strings.Split(manifest, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "image:" {
			return f[1]
		}
	}
	t.Fatalf("no image in %q", manifest)
	return ""
}

// TestDeploymentSurvivesRestart stops fluxgate (and with it the local
// cluster) right after a deploy was committed and starts it again on the
// same data dir: the restarted tracker resumes the open deployment from the
// database and follows it to HEALTHY, keeping the steps it had reached.
func TestDeploymentSurvivesRestart(t *testing.T) {
	requireClusterBinaries(t)
	dataDir := t.TempDir()
	s := startStackIn(t, dataDir)
	d := s.demo()
	dep := s.deploy(s.devToken, d.env["development"], "nginx:1.25.5")
	committedAt := dep.step("committed").At
	if dep.Status != "PENDING" || committedAt == nil {
		t.Fatalf("deploy = %+v", dep)
	}
	s.close()

	s = startStackIn(t, dataDir)
	sub := s.subscribe(s.devToken, `subscription($id: ID!) { deploymentProgress(deploymentId: $id) { `+deploymentFields+` } }`,
		map[string]any{"id": dep.ID})
	var states []seenState
	for {
		data, at, done := sub.result(3 * time.Minute)
		if done {
			break
		}
		var m struct{ DeploymentProgress deploymentMsg }
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		states = append(states, seenState{m.DeploymentProgress, at})
	}
	if len(states) == 0 {
		t.Fatal("deploymentProgress completed without a state")
	}
	t.Logf("after the restart the deployment was at step %d (%s)", states[0].reached(), states[0].Status)
	checkOrder(t, states)
	final := states[len(states)-1]
	if final.Status != "SUCCEEDED" {
		t.Fatalf("after the restart: %s %+v", final.Status, final.Steps)
	}
	if at := final.step("committed").At; at == nil || !at.Equal(*committedAt) {
		t.Fatalf("committed step at %v after the restart, want %v", at, committedAt)
	}
	if got := s.clusterImage("demo-development"); got != "nginx:1.25.5" {
		t.Fatalf("cluster runs %s", got)
	}
}
