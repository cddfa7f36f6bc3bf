// Package tracker moves GitOps deployments through their four steps —
// COMMITTED, FETCHED, APPLIED, HEALTHY — from what the watcher sees of the
// environment's GitRepository, Kustomization and workloads, and fails,
// supersedes or times them out. Advance is the pure state machine; Tracker
// drives it from watcher observations, persists and publishes changes, and
// resumes open deployments after a restart.
package tracker

import (
	"fmt"
	"strings"
	"time"

	"github.com/fluxgate/fluxgate"
)

// DefaultTimeout is how long a deployment may wait for its next step when
// the environment sets no timeout. It is longer than a Kustomization's
// usual health-check timeout, so Flux's own verdict normally comes first.
const DefaultTimeout = 10 * time.Minute

// Step statuses.
const (
	StepPending = "pending"
	StepDone    = "done"
	StepFailed  = "failed"
)

// Step indexes in Deployment.Steps after Advance normalised them.
const (
	stepCommitted = iota
	stepFetched
	stepApplied
	stepHealthy
	stepCount
)

func stepName(i int) fluxgate.DeploymentStepName {
	switch i {
	case stepCommitted:
		return fluxgate.StepCommitted
	case stepFetched:
		return fluxgate.StepFetched
	case stepApplied:
		return fluxgate.StepApplied
	}
	return fluxgate.StepHealthy
}

// Flux condition types and reasons read here (github.com/fluxcd/pkg/apis/meta).
const (
	condReady       = "Ready"
	condReconciling = "Reconciling"
	condStalled     = "Stalled"
	condFetchFailed = "FetchFailed"

	reasonHealthCheckFailed   = "HealthCheckFailed"
	reasonHealthCheckCanceled = "HealthCheckCanceled"

	// kustomize-controller patches this message onto Reconciling (and
	// Healthy) once it has applied and pruned a revision, before waiting
	// for health checks; lastAppliedRevision only follows after they pass.
	healthCheckPrefix = "Running health checks for revision "
)

// waitingReason reports whether Ready=False with this reason means "not
// yet" rather than "failed".
func waitingReason(reason string) bool {
	switch reason {
	case "DependencyNotReady", "Progressing", "ProgressingWithRetry", reasonHealthCheckCanceled, "":
		return true
	}
	return false
}

// Tracked reports whether Advance moves d: a GitOps deployment with a
// commit that is pending or in progress (not awaiting approval, not
// finished, not a direct apply).
func Tracked(d *fluxgate.Deployment) bool {
	if d == nil || d.CommitSHA == "" || d.Method == fluxgate.MethodManual {
		return false
	}
	return d.Status == fluxgate.DeploymentPending || d.Status == fluxgate.DeploymentInProgress
}

// Advance moves d, keyed on d.CommitSHA, as far as obs shows and reports
// whether anything in d changed:
//
//   - FETCHED when the GitRepository's artifact revision names the commit;
//   - APPLIED when the Kustomization's lastAppliedRevision names it, or it
//     is running health checks for it (it has applied it), or its health
//     checks for it failed;
//   - HEALTHY when every workload in the Kustomization's inventory is
//     rolled out (kstatus Current) after APPLIED, or the Kustomization is
//     Ready=True with lastAppliedRevision naming the commit, whichever is
//     seen first; ready/total pods are recorded on the step.
//
// A later step implies the earlier ones: they are completed with the same
// timestamp, so out-of-order observations still end with four timestamps.
// It fails d with Flux's reason and message when the Kustomization is
// Ready=False (or Stalled) for an attempt at the commit, or when the
// GitRepository fails to fetch after the commit was made; supersedes d when
// Flux applies a newer revision of the branch before d is healthy; and fails
// d with "timed out waiting for Flux at step N" when no step was reached
// for obs.Timeout. Terminal statuses set FinishedAt. Deployments that are
// not Tracked are left alone.
func Advance(d *fluxgate.Deployment, obs Observation, now time.Time) (changed bool) {
	if !Tracked(d) {
		return false
	}
	m := &machine{d: d, now: now.UTC()}
	m.normalize()
	sha := d.CommitSHA
	ev := gather(sha, obs)

	if ev.fetched {
		m.reach(stepFetched, "Flux fetched "+ev.sourceRevision)
	}
	if ev.applied {
		m.reach(stepApplied, ev.appliedMsg)
	}
	if ev.failed {
		if ev.failStep > stepFetched {
			m.reach(ev.failStep-1, "")
		}
		m.fail(ev.failStep, ev.failMsg)
		return m.changed
	}
	if m.done(stepApplied) {
		if ev.readyForSHA {
			msg := "Flux reports the Kustomization ready"
			if ev.readyMsg != "" {
				msg += ": " + ev.readyMsg
			}
			m.succeed(msg, ev.pods)
			return m.changed
		}
		if ev.rolledOut {
			m.succeed(fmt.Sprintf("rolled out: %d/%d pods ready", ev.pods.ready, ev.pods.total), ev.pods)
			return m.changed
		}
		if ev.pods.known {
			m.pods(ev.pods)
		}
	}
	switch {
	case m.done(stepApplied) && ev.newerApplied != "":
		// Applied but not yet healthy: the newer revision's rollout
		// replaces this one.
		m.supersede("Flux applied a newer revision before this one was healthy: " + ev.newerApplied)
		return m.changed
	case m.done(stepFetched) && !m.done(stepApplied) && ev.newerApplied != "":
		m.supersede("Flux applied a newer revision first: " + ev.newerApplied)
		return m.changed
	case m.done(stepFetched) && !m.done(stepApplied) && ev.newerAttempted != "":
		m.supersede("Flux moved on to a newer revision before applying this one: " + ev.newerAttempted)
		return m.changed
	}
	if ev.sourceFailed && !m.done(stepFetched) && ev.sourceFailedAt.After(d.StartedAt.Add(-time.Second)) {
		m.fail(stepFetched, ev.sourceFailMsg)
		return m.changed
	}
	timeout := obs.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if last := m.lastProgress(); !last.IsZero() && !now.Before(last.Add(timeout)) {
		step := m.waiting()
		msg := fmt.Sprintf("timed out waiting for Flux at step %d (%s) after %s", step+1, stepName(step), timeout)
		if hint := ev.hint(step); hint != "" {
			msg += ": " + hint
		}
		m.fail(step, msg)
	}
	return m.changed
}

// Supersede marks d superseded by a newer deployment (or revision) that
// Flux applied first, unless d is finished or already healthy. It reports
// whether d changed.
func Supersede(d *fluxgate.Deployment, by string, now time.Time) bool {
	if !Tracked(d) {
		return false
	}
	m := &machine{d: d, now: now.UTC()}
	m.normalize()
	if m.done(stepHealthy) {
		return m.changed
	}
	m.supersede(by)
	return m.changed
}

// Applied reports whether obs shows Flux has applied the commit sha (see
// Advance for what counts).
func Applied(sha string, obs Observation) bool {
	return gather(sha, obs).applied
}

// pods is a ready/total count over the environment's workloads.
type pods struct {
	ready, total int
	known        bool
}

// evidence is what an observation says about one commit.
type evidence struct {
	fetched        bool
	sourceRevision string
	sourceFailed   bool
	sourceFailedAt time.Time
	sourceFailMsg  string

	applied     bool
	appliedMsg  string
	readyForSHA bool
	readyMsg    string
	rolledOut   bool
	pods        pods

	failed   bool
	failStep int
	failMsg  string

	// newerAttempted is the current artifact revision when it is not the
	// commit and the Kustomization attempted it; newerApplied is set too
	// when it applied it (or is health-checking it).
	newerAttempted string
	newerApplied   string

	applyWaiting string // Kustomization's current not-ready message, for timeouts
}

func gather(sha string, obs Observation) evidence {
	var ev evidence
	if src := obs.Source; src != nil {
		ev.sourceRevision = src.ArtifactRevision
		ev.fetched = RevisionHas(src.ArtifactRevision, sha)
		if c := failing(src.Conditions, true); c != nil {
			ev.sourceFailed, ev.sourceFailedAt = true, c.LastTransitionTime
			ev.sourceFailMsg = "Flux could not fetch the commit: " + reasonMessage(c)
		}
	}
	ks := obs.Apply
	if ks == nil {
		return ev
	}
	attempted := RevisionHas(ks.LastAttemptedRevision, sha)
	checking := healthCheckRevision(ks.Conditions)
	ready := find(ks.Conditions, condReady)
	switch {
	case RevisionHas(ks.LastAppliedRevision, sha):
		ev.applied, ev.appliedMsg = true, "Flux applied "+ks.LastAppliedRevision
	case RevisionHas(checking, sha):
		ev.applied, ev.appliedMsg = true, "Flux applied "+checking+" and is checking its health"
	}
	if attempted || ev.applied {
		// The Kustomization read the commit's artifact: it was fetched.
		ev.fetched = true
		if ev.sourceRevision == "" || !RevisionHas(ev.sourceRevision, sha) {
			ev.sourceRevision = firstNonEmpty(ks.LastAttemptedRevision, ks.LastAppliedRevision, checking)
		}
	}
	if c := failing(ks.Conditions, false); c != nil && attempted {
		ev.failed, ev.failMsg = true, reasonMessage(c)
		ev.failStep = stepApplied
		if c.Reason == reasonHealthCheckFailed || ev.applied {
			// Health checks run only after the apply succeeded.
			ev.failStep = stepHealthy
			if !ev.applied {
				ev.applied, ev.appliedMsg = true, "Flux applied "+ks.LastAttemptedRevision
			}
		}
	}
	if ready != nil && ready.Status == "True" && RevisionHas(ks.LastAppliedRevision, sha) {
		ev.readyForSHA, ev.readyMsg = true, ready.Message
	}
	if ready != nil && ready.Status != "True" && ready.Message != "" {
		ev.applyWaiting = reasonMessage(ready)
	}
	ev.pods, ev.rolledOut = rollout(ks.Inventory, obs.Workloads)

	// A newer revision of the branch won: the source moved on from the
	// commit, and the Kustomization's latest attempt is that revision (the
	// Kustomization always takes the current artifact, so the commit will
	// never be applied on its own).
	if src := obs.Source; src != nil && !ev.applied && !attempted && SHAOf(src.ArtifactRevision) != "" &&
		!RevisionHas(src.ArtifactRevision, sha) && sameCommit(ks.LastAttemptedRevision, src.ArtifactRevision) {
		ev.newerAttempted = src.ArtifactRevision
		if sameCommit(ks.LastAppliedRevision, src.ArtifactRevision) || sameCommit(checking, src.ArtifactRevision) {
			ev.newerApplied = src.ArtifactRevision
		}
	}
	return ev
}

// hint explains what Flux reports while a deployment waits at step.
func (ev evidence) hint(step int) string {
	switch step {
	case stepFetched:
		if ev.sourceFailed {
			return ev.sourceFailMsg
		}
		if ev.sourceRevision != "" {
			return "the GitRepository has " + ev.sourceRevision
		}
	case stepApplied, stepHealthy:
		if ev.applyWaiting != "" {
			return ev.applyWaiting
		}
		if step == stepHealthy && ev.pods.known {
			return fmt.Sprintf("%d/%d pods ready", ev.pods.ready, ev.pods.total)
		}
	}
	return ""
}

// rollout sums the pods of the inventory's workloads and reports whether
// every one of them is rolled out. It is false when the inventory lists no
// workload or one whose state is not known.
func rollout(inventory []fluxgate.InventoryEntry, workloads []Workload) (pods, bool) {
	byID := make(map[string]Workload, len(workloads))
	for _, w := range workloads {
		byID[w.ID] = w
	}
	var p pods
	n, all := 0, true
	for _, e := range inventory {
		if !isWorkloadID(e.ID) {
			continue
		}
		n++
		w, ok := byID[e.ID]
		if !ok {
			all = false
			continue
		}
		p.known = true
		p.ready += w.ReadyPods
		p.total += w.TotalPods
		if !w.RolledOut() {
			all = false
		}
	}
	if n == 0 || !all {
		return p, false
	}
	return p, true
}

// healthCheckRevision returns the revision kustomize-controller is (or was
// last) running health checks for, from its Reconciling or Healthy message.
func healthCheckRevision(conds []fluxgate.Condition) string {
	for _, c := range conds {
		if c.Type != condReconciling && c.Type != "Healthy" {
			continue
		}
		i := strings.Index(c.Message, healthCheckPrefix)
		if i < 0 {
			continue
		}
		rest := c.Message[i+len(healthCheckPrefix):]
		if j := strings.IndexByte(rest, ' '); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	return ""
}

// failing returns the condition that says a Flux object failed: Stalled,
// Ready=False for a failure reason, or (sources) FetchFailed.
func failing(conds []fluxgate.Condition, source bool) *fluxgate.Condition {
	if c := find(conds, condStalled); c != nil && c.Status == "True" {
		return c
	}
	if c := find(conds, condReady); c != nil && c.Status == "False" && !waitingReason(c.Reason) {
		return c
	}
	if source {
		if c := find(conds, condFetchFailed); c != nil && c.Status == "True" {
			return c
		}
	}
	return nil
}

func find(conds []fluxgate.Condition, typ string) *fluxgate.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func reasonMessage(c *fluxgate.Condition) string {
	switch {
	case c.Reason == "":
		return c.Message
	case c.Message == "":
		return c.Reason
	}
	return c.Reason + ": " + c.Message
}

// sameCommit reports whether two revisions name the same commit.
func sameCommit(a, b string) bool {
	return SHAOf(a) != "" && RevisionHas(a, SHAOf(b))
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// machine applies changes to one deployment and remembers whether any
// value changed.
type machine struct {
	d       *fluxgate.Deployment
	now     time.Time
	changed bool
}

// normalize makes Steps the four steps in order, keeping what is known.
func (m *machine) normalize() {
	steps := m.d.Steps
	if len(steps) == stepCount {
		ok := true
		for i := range steps {
			ok = ok && steps[i].Name == stepName(i)
		}
		if ok {
			return
		}
	}
	out := make([]fluxgate.DeploymentStep, stepCount)
	for i := range out {
		out[i] = fluxgate.DeploymentStep{Name: stepName(i), Status: StepPending}
		for _, s := range steps {
			if s.Name == stepName(i) {
				out[i] = s
			}
		}
	}
	if out[stepCommitted].Status != StepDone {
		// A deployment with a commit was committed when it started.
		at := m.d.StartedAt.UTC()
		if at.IsZero() {
			at = m.now
		}
		out[stepCommitted] = fluxgate.DeploymentStep{Name: fluxgate.StepCommitted, Status: StepDone, At: &at,
			Message: "commit " + shortSHA(m.d.CommitSHA)}
	}
	m.d.Steps = out
	m.changed = true
}

func (m *machine) done(i int) bool { return m.d.Steps[i].Status == StepDone }

// reach marks step i and every earlier step done at now (earlier steps
// keep their own time when they have one).
func (m *machine) reach(i int, msg string) {
	for j := 0; j <= i; j++ {
		s := &m.d.Steps[j]
		if s.Status == StepDone {
			continue
		}
		at := m.now
		if j == stepCommitted && !m.d.StartedAt.IsZero() {
			at = m.d.StartedAt.UTC()
		}
		s.Status, s.At = StepDone, &at
		if j == i && msg != "" {
			s.Message = msg
		}
		m.changed = true
	}
	if m.d.Status == fluxgate.DeploymentPending && i >= stepFetched {
		m.d.Status = fluxgate.DeploymentInProgress
		m.changed = true
	}
}

func (m *machine) pods(p pods) {
	s := &m.d.Steps[stepHealthy]
	if s.ReadyPods != p.ready || s.TotalPods != p.total {
		s.ReadyPods, s.TotalPods = p.ready, p.total
		m.changed = true
	}
}

func (m *machine) succeed(msg string, p pods) {
	if p.known {
		m.pods(p)
	}
	m.reach(stepHealthy, msg)
	m.finish(fluxgate.DeploymentSucceeded)
}

func (m *machine) fail(i int, msg string) {
	s := &m.d.Steps[i]
	at := m.now
	s.Status, s.At, s.Message = StepFailed, &at, msg
	m.changed = true
	m.finish(fluxgate.DeploymentFailed)
}

func (m *machine) supersede(msg string) {
	i := m.waiting()
	m.d.Steps[i].Message = "superseded: " + msg
	m.changed = true
	m.finish(fluxgate.DeploymentSuperseded)
}

func (m *machine) finish(st fluxgate.DeploymentStatus) {
	at := m.now
	m.d.Status, m.d.FinishedAt = st, &at
	m.changed = true
}

// waiting is the first step not done.
func (m *machine) waiting() int {
	for i := range m.d.Steps {
		if m.d.Steps[i].Status != StepDone {
			return i
		}
	}
	return stepHealthy
}

// lastProgress is when d last reached a step (or started).
func (m *machine) lastProgress() time.Time {
	last := m.d.StartedAt
	for _, s := range m.d.Steps {
		if s.Status == StepDone && s.At != nil && s.At.After(last) {
			last = *s.At
		}
	}
	return last
}
