package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/store/storetest"
)

// memStore is an in-memory Store that keeps deployments as JSON, so that
// what the Tracker reads back is only what it stored.
type memStore struct {
	mu         sync.Mutex
	rows       map[string][]byte
	failUpdate error
	updates    int
}

func newMemStore(t *testing.T, ds ...*fluxgate.Deployment) *memStore {
	s := &memStore{rows: map[string][]byte{}}
	for _, d := range ds {
		s.put(t, d)
	}
	return s
}

func (s *memStore) put(t *testing.T, d *fluxgate.Deployment) {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[d.ID] = b
}

func (s *memStore) get(t *testing.T, id string) *fluxgate.Deployment {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var d fluxgate.Deployment
	if err := json.Unmarshal(s.rows[id], &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func (s *memStore) all() ([]*fluxgate.Deployment, error) {
	var ids []string
	for id := range s.rows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []*fluxgate.Deployment
	for _, id := range ids {
		var d fluxgate.Deployment
		if err := json.Unmarshal(s.rows[id], &d); err != nil {
			return nil, err
		}
		out = append(out, &d)
	}
	return out, nil
}

func (s *memStore) ListOpenDeployments(context.Context) ([]*fluxgate.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(d *fluxgate.Deployment) bool { return d.Status.Terminal() }), nil
}

func (s *memStore) UpdateDeployment(_ context.Context, d *fluxgate.Deployment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failUpdate != nil {
		return s.failUpdate
	}
	if _, ok := s.rows[d.ID]; !ok {
		return fluxgate.Errorf(fluxgate.ENOTFOUND, "deployment %s not found", d.ID)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	s.rows[d.ID] = b
	s.updates++
	return nil
}

func (s *memStore) FindDeploymentByCommit(_ context.Context, envID, sha string) (*fluxgate.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].EnvironmentID == envID && all[i].CommitSHA == sha {
			return all[i], nil
		}
	}
	return nil, fluxgate.Errorf(fluxgate.ENOTFOUND, "deployment of commit %s not found", sha)
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t0.Add(d)
}

// published records what the Tracker published.
type published struct {
	mu  sync.Mutex
	got []string // "id status step-statuses"
}

func (p *published) publish(_ context.Context, d *fluxgate.Deployment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var steps []string
	for _, s := range d.Steps {
		steps = append(steps, s.Status)
	}
	p.got = append(p.got, fmt.Sprintf("%s %s %s", d.ID, d.Status, strings.Join(steps, ",")))
}

func (p *published) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func newTestTracker(s Store, c *clock, p *published) *Tracker {
	return New(s, Options{Now: c.Now, Publish: p.publish, Timeout: func(envID string) time.Duration {
		if envID == "fast" {
			return time.Minute
		}
		return 0
	}})
}

func mustObserve(t *testing.T, tr *Tracker, envID string, obs Observation) Outcome {
	t.Helper()
	out, err := tr.Observe(context.Background(), envID, obs)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return out
}

func TestTrackerFollowsWatcherEvents(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	c := &clock{now: t0}
	p := &published{}
	s := newMemStore(t, newDeployment("d1", "env1", shaB, t0), newDeployment("d0", "other", shaB, t0))
	tr := newTestTracker(s, c, p)

	// Initial sync of the watcher: the state before the push.
	c.Set(100 * time.Millisecond)
	mustObserve(t, tr, "env1", Observation{Source: f.source(shaA)})
	mustObserve(t, tr, "env1", Observation{Apply: f.ready(shaA)})
	if _, err := tr.ObserveWorkloadObject(ctx, f.workloadObject("done")); err != nil {
		t.Fatal(err)
	}
	if got := p.list(); len(got) != 0 {
		t.Fatalf("published before any progress: %v", got)
	}
	// Each watcher event carries one object.
	c.Set(250 * time.Millisecond)
	out := mustObserve(t, tr, "env1", Observation{Source: f.source(shaB)})
	if len(out.Changed) != 1 || out.Changed[0].ID != "d1" || out.Unclaimed != "" {
		t.Fatalf("fetch: %+v", out)
	}
	c.Set(300 * time.Millisecond)
	mustObserve(t, tr, "env1", Observation{Apply: f.building(shaB, shaA)})
	// Flux applied the commit. The Deployment's state seen so far (rolled
	// out, at the old spec) predates the apply: it must not count.
	c.Set(400 * time.Millisecond)
	mustObserve(t, tr, "env1", Observation{Apply: f.checking(shaB, shaA)})
	for i, state := range []string{"new-spec", "rolling", "done-gen3"} {
		c.Set(time.Duration(500+200*i) * time.Millisecond)
		if _, err := tr.ObserveWorkloadObject(ctx, f.workloadObject(state)); err != nil {
			t.Fatal(err)
		}
	}
	// Flux's verdict comes later; the deployment is no longer open.
	c.Set(6 * time.Second)
	if out := mustObserve(t, tr, "env1", Observation{Apply: f.ready(shaB)}); len(out.Changed) != 0 {
		t.Fatalf("a finished deployment changed: %+v", out)
	}

	want := []string{
		"d1 in_progress done,done,pending,pending",
		"d1 in_progress done,done,done,pending",
		"d1 in_progress done,done,done,pending", // 0/2 pods
		"d1 in_progress done,done,done,pending", // 1/2 pods
		"d1 succeeded done,done,done,done",
	}
	if got := p.list(); !slices.Equal(got, want) {
		t.Fatalf("published\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	d := s.get(t, "d1")
	wantAt := []time.Duration{0, 250 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond}
	for i, w := range wantAt {
		if d.Steps[i].At == nil || d.Steps[i].At.Sub(t0) != w {
			t.Errorf("stored step %s at %v, want +%v", d.Steps[i].Name, d.Steps[i].At, w)
		}
	}
	if h := d.Steps[stepHealthy]; h.ReadyPods != 2 || h.TotalPods != 2 {
		t.Errorf("stored pods %d/%d", h.ReadyPods, h.TotalPods)
	}
	if d.FinishedAt == nil || d.FinishedAt.Sub(t0) != 900*time.Millisecond {
		t.Errorf("FinishedAt %v", d.FinishedAt)
	}
	// Another environment's deployment of the same commit saw nothing.
	if got := s.get(t, "d0"); got.Status != fluxgate.DeploymentPending || got.Steps[stepFetched].Status != StepPending {
		t.Errorf("deployment of another environment moved: %+v", got)
	}
}

func TestTrackerUnclaimedRevision(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	c := &clock{now: t0}
	p := &published{}
	done := newDeployment("old", "env1", shaA, t0.Add(-time.Hour))
	done.Status = fluxgate.DeploymentSucceeded
	s := newMemStore(t, done)
	tr := newTestTracker(s, c, p)

	// The first sight of an environment is its state, not a push.
	if out := mustObserve(t, tr, "env1", Observation{Source: f.source(shaB), Apply: f.ready(shaB)}); out.Unclaimed != "" {
		t.Fatalf("initial state reported as a push: %+v", out)
	}
	// A finished deployment claims its commit (fetched again, e.g. a revert).
	if out := mustObserve(t, tr, "env1", Observation{Source: f.source(shaA)}); out.Unclaimed != "" {
		t.Fatalf("a revision of a finished deployment was unclaimed: %+v", out)
	}
	// Someone pushed shaC.
	c.Set(time.Second)
	out := mustObserve(t, tr, "env1", Observation{Source: f.source(shaC)})
	if out.Unclaimed != rev(shaC) || SHAOf(out.Unclaimed) != shaC {
		t.Fatalf("push not reported: %+v", out)
	}
	// The same revision again is not a new push.
	if out := mustObserve(t, tr, "env1", Observation{Source: f.source(shaC)}); out.Unclaimed != "" {
		t.Fatalf("reported twice: %+v", out)
	}
	// The caller records a gitops-git deployment and tracks it.
	g := newDeployment("git1", "env1", shaC, t0.Add(time.Second))
	g.Method = fluxgate.MethodGitOpsGit
	s.put(t, g)
	c.Set(1100 * time.Millisecond)
	moved, err := tr.Track(ctx, g)
	if err != nil || !moved {
		t.Fatalf("track: %v %v", moved, err)
	}
	if got := s.get(t, "git1"); got.Status != fluxgate.DeploymentInProgress || got.Steps[stepFetched].Status != StepDone {
		t.Fatalf("gitops-git deployment not fetched: %+v", got)
	}
	c.Set(2 * time.Second)
	mustObserve(t, tr, "env1", Observation{Apply: f.ready(shaC)})
	if got := s.get(t, "git1"); got.Status != fluxgate.DeploymentSucceeded {
		t.Fatalf("gitops-git deployment: %s", got.Status)
	}
}

func TestTrackerSupersedesOlderDeployment(t *testing.T) {
	f := loadFixtures(t)
	c := &clock{now: t0}
	p := &published{}
	s := newMemStore(t, newDeployment("d1", "env1", shaB, t0), newDeployment("d2", "env1", shaC, t0.Add(time.Second)))
	tr := newTestTracker(s, c, p)
	mustObserve(t, tr, "env1", Observation{Source: f.source(shaA), Apply: f.ready(shaA)})
	// Flux fetched only the newer head and applied it.
	c.Set(2 * time.Second)
	mustObserve(t, tr, "env1", Observation{Source: f.source(shaC)})
	c.Set(3 * time.Second)
	mustObserve(t, tr, "env1", Observation{Apply: f.checking(shaC, shaA)})
	d1, d2 := s.get(t, "d1"), s.get(t, "d2")
	if d1.Status != fluxgate.DeploymentSuperseded || d1.FinishedAt == nil ||
		!strings.Contains(d1.Steps[stepFetched].Message, "deployment d2 (commit "+shortSHA(shaC)+") was applied first") {
		t.Fatalf("d1 not superseded: %+v", d1)
	}
	if d2.Status != fluxgate.DeploymentInProgress || d2.Steps[stepApplied].Status != StepDone {
		t.Fatalf("d2: %+v", d2)
	}
	c.Set(4 * time.Second)
	mustObserve(t, tr, "env1", Observation{Apply: f.ready(shaC)})
	if got := s.get(t, "d2"); got.Status != fluxgate.DeploymentSucceeded {
		t.Fatalf("d2: %s", got.Status)
	}
	if got := s.get(t, "d1"); got.Status != fluxgate.DeploymentSuperseded {
		t.Fatalf("d1 moved after it was superseded: %s", got.Status)
	}
}

func TestTrackerCheckTimesOut(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	c := &clock{now: t0}
	p := &published{}
	s := newMemStore(t, newDeployment("slow", "env1", shaC, t0), newDeployment("quick", "fast", shaC, t0))
	tr := newTestTracker(s, c, p)
	mustObserve(t, tr, "env1", Observation{Source: f.source(shaC), Apply: f.ready(shaB)})
	c.Set(2 * time.Minute)
	changed, err := tr.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// "fast" has a one-minute timeout; env1 the default.
	if len(changed) != 1 || changed[0].ID != "quick" {
		t.Fatalf("changed %v", changed)
	}
	q := s.get(t, "quick")
	if q.Status != fluxgate.DeploymentFailed || q.Steps[stepFetched].Status != StepFailed ||
		!strings.HasPrefix(q.Steps[stepFetched].Message, "timed out waiting for Flux at step 2 (fetched) after 1m0s") {
		t.Fatalf("quick: %+v", q)
	}
	c.Set(DefaultTimeout + time.Second)
	if _, err := tr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	sl := s.get(t, "slow")
	if sl.Status != fluxgate.DeploymentFailed || sl.Steps[stepApplied].Status != StepFailed ||
		!strings.HasPrefix(sl.Steps[stepApplied].Message, "timed out waiting for Flux at step 3 (applied)") {
		t.Fatalf("slow: %+v", sl)
	}
	want := []string{
		"slow in_progress done,done,pending,pending",
		"quick failed done,failed,pending,pending",
		"slow failed done,done,failed,pending",
	}
	if got := p.list(); !slices.Equal(got, want) {
		t.Fatalf("published %v", got)
	}
}

func TestTrackerRetriesAfterStoreError(t *testing.T) {
	f := loadFixtures(t)
	c := &clock{now: t0}
	p := &published{}
	s := newMemStore(t, newDeployment("d1", "env1", shaB, t0))
	s.failUpdate = errors.New("database is locked")
	tr := newTestTracker(s, c, p)
	c.Set(time.Second)
	_, err := tr.Observe(context.Background(), "env1", Observation{Source: f.source(shaB), Apply: f.ready(shaB)})
	if err == nil || !strings.Contains(err.Error(), "update deployment d1: database is locked") {
		t.Fatalf("err %v", err)
	}
	if len(p.list()) != 0 {
		t.Fatal("published a deployment that was not stored")
	}
	// The watcher retries the same call.
	s.mu.Lock()
	s.failUpdate = nil
	s.mu.Unlock()
	out := mustObserve(t, tr, "env1", Observation{Source: f.source(shaB), Apply: f.ready(shaB)})
	if len(out.Changed) != 1 || s.get(t, "d1").Status != fluxgate.DeploymentSucceeded {
		t.Fatalf("retry: %+v", out)
	}
}

func TestTrackerConcurrentObservations(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	c := &clock{now: t0}
	p := &published{}
	var ds []*fluxgate.Deployment
	for i := range 4 {
		ds = append(ds, newDeployment(fmt.Sprintf("d%d", i), fmt.Sprintf("env%d", i), shaB, t0))
	}
	s := newMemStore(t, ds...)
	tr := newTestTracker(s, c, p)
	c.Set(time.Second)
	var wg sync.WaitGroup
	for i := range 4 {
		env := fmt.Sprintf("env%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, obs := range []Observation{{Source: f.source(shaB)}, {Apply: f.checking(shaB, shaA)}} {
				if _, err := tr.Observe(ctx, env, obs); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := tr.ObserveWorkload(ctx, f.workloadState("done-gen3")); err != nil {
				t.Error(err)
			}
			if _, err := tr.Check(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if _, err := tr.ObserveWorkload(ctx, f.workloadState("done-gen3")); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if got := s.get(t, d.ID); got.Status != fluxgate.DeploymentSucceeded {
			t.Errorf("%s: %s %+v", d.ID, got.Status, got.Steps)
		}
	}
}

// TestTrackerResumeSQLite restarts the tracker mid-way on the real store:
// the fresh Tracker knows nothing but the database and what the watcher
// reports again, and finishes the deployment.
func TestTrackerResumeSQLite(t *testing.T) {
	f := loadFixtures(t)
	ctx := context.Background()
	db := storetest.MustOpen(t)
	p := &fluxgate.Project{Slug: "web", Name: "Web", Namespace: "web", DeploymentMode: fluxgate.DeploymentModeHybrid, GitOpsEnabled: true, CreatedBy: "tester"}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	env := &fluxgate.Environment{ProjectID: p.ID, Name: "dev", Type: fluxgate.EnvironmentDevelopment,
		GitOps: fluxgate.EnvironmentGitOps{Enabled: true, GitBranch: "main", GitPath: "base"}}
	if err := db.CreateEnvironment(ctx, env); err != nil {
		t.Fatal(err)
	}
	stale := &fluxgate.Environment{ProjectID: p.ID, Name: "stale", Type: fluxgate.EnvironmentDevelopment}
	if err := db.CreateEnvironment(ctx, stale); err != nil {
		t.Fatal(err)
	}
	create := func(envID, sha string, start time.Time, status fluxgate.DeploymentStatus) *fluxgate.Deployment {
		d := newDeployment("", envID, sha, start)
		d.ProjectID, d.Status = p.ID, status
		if err := db.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := create(env.ID, shaB, t0, fluxgate.DeploymentPending)
	waiting := create(stale.ID, shaC, t0, fluxgate.DeploymentPending)
	approval := create(env.ID, "", t0, fluxgate.DeploymentAwaitingApproval)

	c := &clock{now: t0}
	pub1 := &published{}
	tr1 := newTestTracker(db, c, pub1)
	c.Set(250 * time.Millisecond)
	mustObserve(t, tr1, env.ID, Observation{Source: f.source(shaB), Apply: f.ready(shaA)})
	c.Set(400 * time.Millisecond)
	mustObserve(t, tr1, env.ID, Observation{Apply: f.checking(shaB, shaA)})
	mid, err := db.GetDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Status != fluxgate.DeploymentInProgress || mid.Steps[stepApplied].Status != StepDone {
		t.Fatalf("before restart: %+v", mid)
	}

	// fluxgate restarts 20 minutes later. The stale environment (5-minute
	// timeout) saw nothing meanwhile; dev allows an hour.
	c.Set(20 * time.Minute)
	pub2 := &published{}
	tr2 := New(db, Options{Now: c.Now, Publish: pub2.publish, Timeout: func(envID string) time.Duration {
		if envID == stale.ID {
			return 5 * time.Minute
		}
		return time.Hour
	}})
	open, err := tr2.Resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != d.ID || open[0].Steps[stepApplied].Status != StepDone {
		t.Fatalf("resumed %+v", open)
	}
	w, err := db.GetDeployment(ctx, waiting.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != fluxgate.DeploymentFailed || w.FinishedAt == nil ||
		!strings.HasPrefix(w.Steps[stepFetched].Message, "timed out waiting for Flux at step 2 (fetched) after 5m0s") {
		t.Fatalf("stale deployment: %+v", w)
	}
	if got := pub2.list(); len(got) != 1 || !strings.HasPrefix(got[0], waiting.ID+" failed") {
		t.Fatalf("published on resume: %v", got)
	}

	// The watcher's initial sync reports every object as it is now: the
	// rollout finished while fluxgate was down.
	c.Set(20*time.Minute + time.Second)
	mustObserve(t, tr2, env.ID, Observation{Source: f.source(shaB)})
	mustObserve(t, tr2, env.ID, Observation{Apply: f.checking(shaB, shaA)})
	out, err := tr2.ObserveWorkloadObject(ctx, f.workloadObject("done-gen3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].ID != d.ID {
		t.Fatalf("after restart: %+v", out)
	}
	got, err := db.GetDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != fluxgate.DeploymentSucceeded || got.FinishedAt == nil {
		t.Fatalf("after restart: %+v", got)
	}
	wantAt := []time.Time{t0, t0.Add(250 * time.Millisecond), t0.Add(400 * time.Millisecond), t0.Add(20*time.Minute + time.Second)}
	if h := got.Steps[stepHealthy]; h.ReadyPods != 2 || h.TotalPods != 2 || !strings.Contains(h.Message, "rolled out") {
		t.Errorf("healthy step %+v", h)
	}
	for i, at := range wantAt {
		if s := got.Steps[i]; s.Status != StepDone || s.At == nil || !s.At.Equal(at) {
			t.Errorf("step %s: %s at %v, want done at %v", s.Name, s.Status, s.At, at)
		}
	}
	a, err := db.GetDeployment(ctx, approval.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != fluxgate.DeploymentAwaitingApproval {
		t.Fatalf("awaiting approval moved: %s", a.Status)
	}
	if open, err := db.ListOpenDeployments(ctx); err != nil || len(open) != 1 || open[0].ID != approval.ID {
		t.Fatalf("open after all: %v %v", open, err)
	}
}
