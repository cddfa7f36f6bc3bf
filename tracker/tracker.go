package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxgate/fluxgate"
)

// Store is the persistence the Tracker needs; fluxgate.Store has it.
type Store interface {
	// ListOpenDeployments lists deployments not yet in a terminal status.
	ListOpenDeployments(ctx context.Context) ([]*fluxgate.Deployment, error)
	// UpdateDeployment writes d; ENOTFOUND if it does not exist.
	UpdateDeployment(ctx context.Context, d *fluxgate.Deployment) error
	// FindDeploymentByCommit returns the newest deployment of commitSHA to
	// the environment; ENOTFOUND if there is none.
	FindDeploymentByCommit(ctx context.Context, environmentID, commitSHA string) (*fluxgate.Deployment, error)
}

// Options configure a Tracker. Zero values take the defaults.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timeout returns an environment's progress timeout (default: none
	// given, DefaultTimeout).
	Timeout func(environmentID string) time.Duration
	// Publish is called with every deployment the Tracker changed, after
	// it was stored (default: nothing). It must not block.
	Publish func(ctx context.Context, d *fluxgate.Deployment)
	Logger  *slog.Logger
}

// Outcome is what one observation did.
type Outcome struct {
	// Changed lists the deployments that moved, as stored and published.
	Changed []*fluxgate.Deployment
	// Unclaimed is set to the new artifact revision when the environment's
	// GitRepository moved to a revision that no deployment of the
	// environment claims (open or finished): someone pushed to the branch.
	// Record a gitops-git deployment of SHAOf(Unclaimed) and pass it to
	// Track.
	Unclaimed string
}

// Tracker advances the open deployments of an environment whenever the
// watcher reports something about that environment's GitRepository,
// Kustomization or workloads. It keeps the latest Flux state of each
// environment in memory (the watcher reports every object again after a
// restart or relist) and reads deployments from the Store on each
// observation, so deployments created by any replica are tracked and a
// restarted Tracker carries on from the database. Its methods are safe
// for concurrent use; observations are processed one at a time.
type Tracker struct {
	store Store
	opts  Options

	mu        sync.Mutex
	envs      map[string]*envState
	workloads map[string]seenWorkload // by inventory id
	// seq numbers observations; appliedSeq is the observation in which
	// this Tracker saw each open deployment applied.
	seq        uint64
	appliedSeq map[string]uint64
}

// seenWorkload is a workload state and the observation that brought it.
type seenWorkload struct {
	Workload
	seq uint64
}

// envState is the latest Flux state of one environment.
type envState struct {
	source *SourceStatus
	apply  *ApplyStatus
}

// New returns a Tracker that stores deployments in store.
func New(store Store, opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout == nil {
		opts.Timeout = func(string) time.Duration { return DefaultTimeout }
	}
	if opts.Publish == nil {
		opts.Publish = func(context.Context, *fluxgate.Deployment) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Tracker{store: store, opts: opts, envs: map[string]*envState{}, workloads: map[string]seenWorkload{},
		appliedSeq: map[string]uint64{}}
}

// Observe records what the watcher saw of environmentID's Flux objects
// (nil parts are unchanged; workloads are merged by id) and advances every
// open deployment of the environment, storing and publishing those that
// changed. An error (from the store) leaves the deployment to be advanced
// again by the next observation or Check; retrying the call is safe.
func (t *Tracker) Observe(ctx context.Context, environmentID string, obs Observation) (Outcome, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	st := t.env(environmentID)
	var moved string
	if obs.Source != nil {
		prev := st.source
		src := *obs.Source
		st.source = &src
		if prev != nil && SHAOf(src.ArtifactRevision) != "" && SHAOf(prev.ArtifactRevision) != SHAOf(src.ArtifactRevision) {
			moved = src.ArtifactRevision
		}
	}
	if obs.Apply != nil {
		ks := *obs.Apply
		st.apply = &ks
	}
	for _, w := range obs.Workloads {
		t.workloads[w.ID] = seenWorkload{w, t.seq}
	}
	open, err := t.store.ListOpenDeployments(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("list open deployments: %w", err)
	}
	var out Outcome
	out.Changed, err = t.advanceEnv(ctx, environmentID, open)
	if moved != "" {
		unclaimed, uerr := t.unclaimed(ctx, environmentID, moved, open)
		if uerr != nil {
			err = errors.Join(err, uerr)
		} else if unclaimed {
			out.Unclaimed = moved
		}
	}
	return out, err
}

// ObserveWorkload records the rollout state of a workload and advances the
// environments whose Kustomization inventory lists it.
func (t *Tracker) ObserveWorkload(ctx context.Context, w Workload) ([]*fluxgate.Deployment, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	t.workloads[w.ID] = seenWorkload{w, t.seq}
	return t.advanceListing(ctx, w.ID)
}

// ObserveWorkloadObject is ObserveWorkload for a Deployment, StatefulSet
// or DaemonSet as an informer hands it over (see WorkloadFromObject).
func (t *Tracker) ObserveWorkloadObject(ctx context.Context, obj runtime.Object) ([]*fluxgate.Deployment, error) {
	w, err := WorkloadFromObject(obj)
	if err != nil {
		return nil, err
	}
	return t.ObserveWorkload(ctx, w)
}

// ForgetWorkload drops a deleted workload (by inventory id).
func (t *Tracker) ForgetWorkload(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.workloads, id)
}

// ForgetEnvironment drops what is known of an environment's Flux objects
// (its GitRepository or Kustomization was deleted).
func (t *Tracker) ForgetEnvironment(environmentID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.envs, environmentID)
}

// Track advances one deployment just recorded (a gitops-git deployment for
// an Unclaimed revision, or a UI deployment) against what is known of its
// environment, and stores and publishes it if that moved it.
func (t *Tracker) Track(ctx context.Context, d *fluxgate.Deployment) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	if !t.advance(d, nil, t.opts.Now()) {
		return false, nil
	}
	if err := t.save(ctx, d); err != nil {
		return false, err
	}
	return true, nil
}

// Check advances every open deployment against what is known of its
// environment: it times out deployments that Flux left waiting. Run calls
// it periodically.
func (t *Tracker) Check(ctx context.Context) ([]*fluxgate.Deployment, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	open, err := t.store.ListOpenDeployments(ctx)
	if err != nil {
		return nil, fmt.Errorf("list open deployments: %w", err)
	}
	t.prune(open)
	var envIDs []string
	for _, d := range open {
		if Tracked(d) && !slices.Contains(envIDs, d.EnvironmentID) {
			envIDs = append(envIDs, d.EnvironmentID)
		}
	}
	var changed []*fluxgate.Deployment
	var errs []error
	for _, id := range envIDs {
		c, err := t.advanceEnv(ctx, id, open)
		changed = append(changed, c...)
		errs = append(errs, err)
	}
	return changed, errors.Join(errs...)
}

// Resume is called once at start-up, after a restart: it reloads the open
// deployments from the store, fails those whose timeout passed while
// fluxgate was down, and returns those still being tracked. The watcher's
// initial sync then reports every Flux object and workload, which moves
// them on from where they were.
func (t *Tracker) Resume(ctx context.Context) ([]*fluxgate.Deployment, error) {
	changed, err := t.Check(ctx)
	if err != nil {
		return nil, fmt.Errorf("resume deployments: %w", err)
	}
	open, err := t.store.ListOpenDeployments(ctx)
	if err != nil {
		return nil, fmt.Errorf("resume deployments: %w", err)
	}
	var tracked []*fluxgate.Deployment
	for _, d := range open {
		if Tracked(d) {
			tracked = append(tracked, d)
		}
	}
	t.opts.Logger.InfoContext(ctx, "deployment tracker resumed", "open", len(tracked), "finished", len(changed))
	return tracked, nil
}

// Run calls Check every interval until ctx is done, logging errors.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := t.Check(ctx); err != nil && ctx.Err() == nil {
				t.opts.Logger.WarnContext(ctx, "deployment tracker check", "err", err)
			}
		}
	}
}

// Unclaimed reports whether a fetched revision names a commit that none of
// the deployments claims (compare by SHA). A revision that names no commit
// is never unclaimed.
func Unclaimed(revision string, deployments []*fluxgate.Deployment) bool {
	if SHAOf(revision) == "" {
		return false
	}
	for _, d := range deployments {
		if RevisionHas(revision, d.CommitSHA) {
			return false
		}
	}
	return true
}

// unclaimed checks the open deployments of the environment, then the
// store for finished ones.
func (t *Tracker) unclaimed(ctx context.Context, environmentID, revision string, open []*fluxgate.Deployment) (bool, error) {
	var mine []*fluxgate.Deployment
	for _, d := range open {
		if d.EnvironmentID == environmentID {
			mine = append(mine, d)
		}
	}
	if !Unclaimed(revision, mine) {
		return false, nil
	}
	_, err := t.store.FindDeploymentByCommit(ctx, environmentID, SHAOf(revision))
	switch {
	case err == nil:
		return false, nil
	case fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND:
		return true, nil
	}
	return false, fmt.Errorf("find deployment of %s: %w", shortSHA(SHAOf(revision)), err)
}

func (t *Tracker) env(id string) *envState {
	st := t.envs[id]
	if st == nil {
		st = &envState{}
		t.envs[id] = st
	}
	return st
}

// observation is the environment's current state, with the workloads its
// inventory lists that were seen in observation since or later.
func (t *Tracker) observation(environmentID string, since uint64) Observation {
	obs := Observation{Timeout: t.opts.Timeout(environmentID)}
	st := t.envs[environmentID]
	if st == nil {
		return obs
	}
	obs.Source, obs.Apply = st.source, st.apply
	if st.apply != nil {
		for _, e := range st.apply.Inventory {
			if w, ok := t.workloads[e.ID]; ok && w.seq >= since {
				obs.Workloads = append(obs.Workloads, w.Workload)
			}
		}
	}
	return obs
}

// advance runs Advance on d with the workload states that can speak for
// its commit. A workload state seen before the Kustomization reported the
// commit applied may predate the apply (the watcher reports objects of
// different kinds independently): it is not taken as the commit rolled
// out. States seen in or after the observation that showed the apply are.
// A deployment applied before this Tracker started (a restart) takes every
// state, since the watcher's initial sync lists them after the apply.
// superseder, when set, supersedes d instead.
func (t *Tracker) advance(d *fluxgate.Deployment, superseder *fluxgate.Deployment, now time.Time) bool {
	appliedBefore := stepDone(d, fluxgate.StepApplied)
	since, ok := t.appliedSeq[d.ID]
	switch {
	case !appliedBefore:
		since = t.seq
	case !ok:
		since = 0
	}
	var moved bool
	if superseder != nil {
		moved = Supersede(d, fmt.Sprintf("deployment %s (commit %s) was applied first", superseder.ID, shortSHA(superseder.CommitSHA)), now)
	} else {
		moved = Advance(d, t.observation(d.EnvironmentID, since), now)
	}
	switch {
	case d.Status.Terminal():
		delete(t.appliedSeq, d.ID)
	case !appliedBefore && stepDone(d, fluxgate.StepApplied):
		t.appliedSeq[d.ID] = t.seq
	}
	return moved
}

// prune forgets deployments that are no longer open.
func (t *Tracker) prune(open []*fluxgate.Deployment) {
	for id := range t.appliedSeq {
		if !slices.ContainsFunc(open, func(d *fluxgate.Deployment) bool { return d.ID == id }) {
			delete(t.appliedSeq, id)
		}
	}
}

// advanceListing advances every environment whose inventory lists the
// workload id.
func (t *Tracker) advanceListing(ctx context.Context, id string) ([]*fluxgate.Deployment, error) {
	var envIDs []string
	for envID, st := range t.envs {
		if st.apply != nil && slices.ContainsFunc(st.apply.Inventory, func(e fluxgate.InventoryEntry) bool { return e.ID == id }) {
			envIDs = append(envIDs, envID)
		}
	}
	if len(envIDs) == 0 {
		return nil, nil
	}
	slices.Sort(envIDs)
	open, err := t.store.ListOpenDeployments(ctx)
	if err != nil {
		return nil, fmt.Errorf("list open deployments: %w", err)
	}
	var changed []*fluxgate.Deployment
	var errs []error
	for _, envID := range envIDs {
		c, err := t.advanceEnv(ctx, envID, open)
		changed = append(changed, c...)
		errs = append(errs, err)
	}
	return changed, errors.Join(errs...)
}

// advanceEnv advances the open deployments of one environment, oldest
// first, storing and publishing those that changed. A deployment that has
// not been applied is superseded when Flux applied a newer deployment of
// the environment first.
func (t *Tracker) advanceEnv(ctx context.Context, environmentID string, open []*fluxgate.Deployment) ([]*fluxgate.Deployment, error) {
	var deps []*fluxgate.Deployment
	for _, d := range open {
		if d.EnvironmentID == environmentID && Tracked(d) {
			deps = append(deps, d)
		}
	}
	if len(deps) == 0 {
		// Most observations find nothing to advance; they cost no
		// Timeout lookup (the service reads it from the database).
		return nil, nil
	}
	slices.SortStableFunc(deps, func(a, b *fluxgate.Deployment) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	obs := t.observation(environmentID, 0)
	now := t.opts.Now()
	var changed []*fluxgate.Deployment
	var errs []error
	for i, d := range deps {
		var superseder *fluxgate.Deployment
		if !Applied(d.CommitSHA, obs) && !stepDone(d, fluxgate.StepApplied) {
			for _, n := range deps[i+1:] {
				if !RevisionHas(n.CommitSHA, d.CommitSHA) && Applied(n.CommitSHA, obs) {
					superseder = n
					break
				}
			}
		}
		moved := t.advance(d, superseder, now)
		if !moved {
			continue
		}
		if err := t.save(ctx, d); err != nil {
			errs = append(errs, err)
			continue
		}
		changed = append(changed, d)
	}
	return changed, errors.Join(errs...)
}

func (t *Tracker) save(ctx context.Context, d *fluxgate.Deployment) error {
	if err := t.store.UpdateDeployment(ctx, d); err != nil {
		return fmt.Errorf("update deployment %s: %w", d.ID, err)
	}
	t.opts.Logger.DebugContext(ctx, "deployment progressed", "deployment", d.ID, "environment", d.EnvironmentID,
		"commit", shortSHA(d.CommitSHA), "status", d.Status)
	t.opts.Publish(ctx, d)
	return nil
}

func stepDone(d *fluxgate.Deployment, name fluxgate.DeploymentStepName) bool {
	for _, s := range d.Steps {
		if s.Name == name {
			return s.Status == StepDone
		}
	}
	return false
}
