package service

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/fluxgate/fluxgate"
	"github.com/fluxgate/fluxgate/gitrepo"
	"github.com/fluxgate/fluxgate/hub"
	"github.com/fluxgate/fluxgate/k8s"
	"github.com/fluxgate/fluxgate/tracker"
)

// Tracker returns the deployment tracker the service feeds from the
// watcher (docs/deployment-tracking.md). The leader runs Resume and Run.
func (s *Service) Tracker() *tracker.Tracker { return s.tracker }

func (s *Service) newTracker() *tracker.Tracker {
	return tracker.New(s.store, tracker.Options{
		Now:     func() time.Time { return s.now().UTC() },
		Publish: s.publishDeployment,
		Timeout: s.progressTimeout,
		Logger:  s.logger,
	})
}

// progressTimeout is an environment's progress timeout for the tracker;
// the default when the environment cannot be read.
func (s *Service) progressTimeout(environmentID string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := s.store.GetEnvironment(ctx, environmentID)
	if err != nil {
		return fluxgate.DefaultProgressTimeout
	}
	return e.GitOps.ProgressTimeoutOrDefault()
}

// trackDeployment hands a stored deployment to the tracker, which moves it
// at once when Flux already fetched its commit. Errors are logged: the
// next observation or check picks the deployment up again.
func (s *Service) trackDeployment(ctx context.Context, d *fluxgate.Deployment) {
	if _, err := s.tracker.Track(ctx, d); err != nil {
		s.logger.WarnContext(ctx, "track deployment", "deployment", d.ID, "err", err)
	}
}

// observeFlux passes a GitRepository's or Kustomization's status to the
// tracker, records a gitops-git deployment for a revision nobody deployed
// through fluxgate, and suspends again a Kustomization that autoSync off
// keeps suspended once what it was resumed for is applied.
func (w *WatchSink) observeFlux(ctx context.Context, ch k8s.ResourceChange) error {
	if ch.EnvironmentID == "" {
		return nil
	}
	var obs tracker.Observation
	switch ch.Kind {
	case fluxgate.KindGitRepository:
		obs.Source = tracker.SourceFromStatus(ch.Status)
	case fluxgate.KindKustomization:
		obs.Apply = tracker.ApplyFromStatus(ch.Status)
	default:
		return nil
	}
	out, err := w.s.tracker.Observe(ctx, ch.EnvironmentID, obs)
	if err != nil {
		return err
	}
	if out.Unclaimed != "" {
		d, err := w.s.recordPushedRevision(ctx, ch.EnvironmentID, out.Unclaimed)
		if err != nil {
			return err
		}
		if d != nil {
			if _, err := w.s.tracker.Track(ctx, d); err != nil {
				return err
			}
		}
	}
	// Last: a retry after its error repeats only idempotent work.
	return w.keepSuspended(ctx, ch)
}

// recordPushedRevision records a gitops-git deployment of the commit a
// Flux revision names, unless one of that commit exists already (then it
// returns nil).
func (s *Service) recordPushedRevision(ctx context.Context, environmentID, revision string) (*fluxgate.Deployment, error) {
	sha := tracker.SHAOf(revision)
	if sha == "" {
		return nil, nil
	}
	e, err := s.store.GetEnvironment(ctx, environmentID)
	if err != nil {
		if fluxgate.ErrorCode(err) == fluxgate.ENOTFOUND {
			return nil, nil
		}
		return nil, err
	}
	branch := ""
	if i := strings.Index(revision, "@"); i > 0 {
		branch = revision[:i]
	} else if i := strings.Index(revision, "/"); i > 0 {
		branch = revision[:i]
	}
	now := s.now().UTC()
	d := &fluxgate.Deployment{
		ProjectID: e.ProjectID, EnvironmentID: e.ID, Strategy: "rolling", Method: fluxgate.MethodGitOpsGit,
		Status: fluxgate.DeploymentPending, CommitSHA: sha, Branch: branch, Message: "pushed to Git",
		Change: []byte("{}"), StartedAt: now, Steps: pendingSteps(),
	}
	d.Steps[0] = fluxgate.DeploymentStep{Name: fluxgate.StepCommitted, Status: "done", At: &now, Message: "commit " + shortSHA(sha) + " pushed to Git"}
	if info := s.pushedCommit(ctx, e, branch, sha); info != nil {
		d.CommitAuthor = fluxgate.CommitAuthor{Name: info.AuthorName, Email: info.AuthorEmail}
		if info.Subject != "" {
			d.Message = info.Subject
		}
		d.Steps[0].Message = "commit " + shortSHA(sha) + " pushed to " + branch + " by " + info.AuthorName
	}
	created := false
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		_, err := s.store.FindDeploymentByCommit(ctx, e.ID, sha)
		switch fluxgate.ErrorCode(err) {
		case "":
			return nil // claimed meanwhile (a deploy through fluxgate, another replica)
		case fluxgate.ENOTFOUND:
		default:
			return err
		}
		if err := s.store.CreateDeployment(ctx, d); err != nil {
			return err
		}
		created = true
		return s.audit(ctx, d.ProjectID, "deploy.detected", "deployment", d.ID, map[string]any{
			"environmentId": d.EnvironmentID, "method": d.Method, "commitSha": d.CommitSHA, "branch": d.Branch,
		})
	})
	if err != nil || !created {
		return nil, err
	}
	s.publishDeployment(ctx, d)
	return d, nil
}

// pushedCommitTimeout bounds reading a pushed commit's author and message
// (a fetch of the environment's branch); the deployment is recorded either
// way.
const pushedCommitTimeout = 10 * time.Second

// pushedCommit reads the author and message of a commit pushed to the
// environment's branch from its repository, or returns nil (logged) when
// it cannot: no Git workspace, no repository, the remote unreachable.
func (s *Service) pushedCommit(ctx context.Context, e *fluxgate.Environment, branch, sha string) *gitrepo.CommitInfo {
	if s.git == nil {
		return nil
	}
	t, err := s.gitTarget(ctx, e)
	if err != nil {
		s.logger.WarnContext(ctx, "read pushed commit", "environment", e.ID, "commit", shortSHA(sha), "err", fluxgate.ErrorMessage(err))
		return nil
	}
	if branch == "" {
		branch = t.branch
	}
	ctx, cancel := context.WithTimeout(ctx, pushedCommitTimeout)
	defer cancel()
	info, err := s.git.CommitInfo(ctx, t.remote, branch, sha)
	if err != nil {
		s.logger.WarnContext(ctx, "read pushed commit", "environment", e.ID, "commit", shortSHA(sha), "err", err)
		return nil
	}
	return info
}

// Deployments lists a project's deployments, newest first, limited to one
// environment and/or status when given and to the environments the caller
// may read.
func (s *Service) Deployments(ctx context.Context, projectID, environmentID string, status fluxgate.DeploymentStatus, page fluxgate.Page) ([]*fluxgate.Deployment, fluxgate.PageInfo, error) {
	_, u, err := s.authorizeProject(ctx, projectID, fluxgate.ActionRead)
	if err != nil {
		return nil, fluxgate.PageInfo{}, err
	}
	if page.First < 0 || page.First > fluxgate.MaxPageSize {
		return nil, fluxgate.PageInfo{}, fluxgate.InvalidField("first", "first must be between 0 and %d", fluxgate.MaxPageSize)
	}
	if environmentID != "" {
		env, _, _, err := s.authorizeEnvironment(ctx, environmentID, fluxgate.ActionRead)
		if err != nil {
			return nil, fluxgate.PageInfo{}, err
		}
		if env.ProjectID != projectID {
			return nil, fluxgate.PageInfo{}, fluxgate.Errorf(fluxgate.ENOTFOUND, "environment %s not found in the project", environmentID)
		}
	}
	f := fluxgate.DeploymentFilter{ProjectID: projectID, EnvironmentID: environmentID, Status: status, Page: page}
	readable, err := s.readableEnvironments(ctx, u.ID, projectID)
	if err != nil || readable == nil || environmentID != "" {
		if err != nil {
			return nil, fluxgate.PageInfo{}, err
		}
		return s.store.ListDeployments(ctx, f)
	}
	// A caller with environment grants only: keep the readable ones,
	// reading further pages until the page is full.
	want := page.First
	if want == 0 {
		want = fluxgate.DefaultPageSize
	}
	var out []*fluxgate.Deployment
	for {
		f.Page.First = want
		items, pi, err := s.store.ListDeployments(ctx, f)
		if err != nil {
			return nil, fluxgate.PageInfo{}, err
		}
		for _, d := range items {
			if readable[d.EnvironmentID] {
				out = append(out, d)
				if len(out) == want {
					return out, fluxgate.PageInfo{HasNextPage: true, EndCursor: fluxgate.EncodeCursor(d.ID)}, nil
				}
			}
		}
		if !pi.HasNextPage {
			end := ""
			if len(out) > 0 {
				end = fluxgate.EncodeCursor(out[len(out)-1].ID)
			}
			return out, fluxgate.PageInfo{EndCursor: end}, nil
		}
		f.Page.After = pi.EndCursor
	}
}

// SubscribeDeploymentProgress streams a deployment: its current state
// first, then every change; the stream ends after a terminal status.
// Needs read on the deployment's environment.
func (s *Service) SubscribeDeploymentProgress(ctx context.Context, deploymentID string) (<-chan *fluxgate.Deployment, error) {
	if err := s.realtime(); err != nil {
		return nil, err
	}
	if _, err := s.Deployment(ctx, deploymentID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	// Subscribe before reading the current state, so no change is missed.
	stream, err := s.hub.Subscribe(ctx, hub.Request{Topic: fluxgate.DeploymentTopic(deploymentID)})
	if err != nil {
		cancel()
		return nil, err
	}
	cur, err := s.store.GetDeployment(ctx, deploymentID)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan *fluxgate.Deployment, 1)
	go func() {
		defer cancel()
		defer close(out)
		send := func(d *fluxgate.Deployment) bool {
			select {
			case out <- d:
				return !d.Status.Terminal()
			case <-ctx.Done():
				return false
			}
		}
		if !send(cur) {
			return
		}
		last := cur
		for ev := range stream.C() {
			var d *fluxgate.Deployment
			switch ev.Type {
			case fluxgate.EventDeploymentProgress:
				var got fluxgate.Deployment
				if err := json.Unmarshal(ev.Payload, &got); err != nil || got.ID != deploymentID {
					continue
				}
				d = &got
			case fluxgate.EventResync:
				// Events may have been lost: read the deployment again.
				got, err := s.store.GetDeployment(ctx, deploymentID)
				if err != nil {
					s.logger.WarnContext(ctx, "reload deployment after resync", "deployment", deploymentID, "err", err)
					continue
				}
				d = got
			default:
				continue
			}
			if !newer(d, last) {
				continue
			}
			last = d
			if !send(d) {
				return
			}
		}
	}()
	return out, nil
}

// newer reports whether d is a later state than last: events published
// before the subscriber read the current state, and repeats, are skipped.
func newer(d, last *fluxgate.Deployment) bool {
	if d.UpdatedAt.Before(last.UpdatedAt) {
		return false
	}
	return d.Status != last.Status || !bytes.Equal(progressOf(d), progressOf(last))
}

func progressOf(d *fluxgate.Deployment) []byte {
	b, _ := json.Marshal(struct {
		S []fluxgate.DeploymentStep
		F *time.Time
	}{d.Steps, d.FinishedAt})
	return b
}
